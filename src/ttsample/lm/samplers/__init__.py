"""Samplers for language models: each draws from ``pi*(y) ∝ pi_ref(y) tau(y)`` of a ``GenerationTask``.

Every sampler is called as ``sampler(task, oracle, n, rng, **options)``: the
task decodes from ``pi_ref`` and scores leaves; the oracle (``LMOracle`` with
its values, possibly behind an error model; ``None`` for samplers that use no
values) answers ``log pi_ref(v) V_hat(v)``. Each returns a ``SampleResult``
whose samples are leaf handles of ``task.tree`` and whose ledger holds every
cost (``lm_run``), and a budget or Ctrl-C ends a run with the samples it has completed.
"""
