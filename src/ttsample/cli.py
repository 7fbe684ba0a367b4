"""The ``ttsample`` command line."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .errors import ParameterError, TtsampleError
from .lm.decoding import Decoding
from .logspace import normalised_weights
from .oracles import ORACLES
from .display import print_table, summary_table
from .sampling import sample_once
from .staging import staged_folder
from .strict_json import dumps
from .problems.classes import make_class
from .registry import REGISTRY, names
from .target import Target, random_target

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Test-time sampling from approximate density oracles.")
console = Console()
err_console = Console(stderr=True)


def _fail(exc: TtsampleError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
    raise typer.Exit(code=2)


def _progress_bar():
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} samples"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def check_output_folder(out: Path) -> None:
    """Refuse an output path that cannot become a folder, before any work is done."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out} exists and is not a folder; choose a folder path")


def write_outputs(out: Path, files: dict[str, callable]) -> None:
    """Write every file into a temporary folder first, so a failure leaves nothing partial."""
    check_output_folder(out)
    try:
        with staged_folder(out) as tmp:
            for name, write in files.items():
                write(tmp / name)
    except OSError as exc:
        raise ParameterError(f"cannot write the output folder {out}: {exc}") from None


@app.command()
def sample(
    target: Optional[Path] = typer.Option(None, "--target", help="A .npy file of b**n leaf masses (unnormalised, >= 0)."),
    random_target_depth: Optional[int] = typer.Option(None, "--random-target", metavar="DEPTH", help="Use a generated random target of this depth instead of --target."),
    concentration: float = typer.Option(1.0, help="Dirichlet concentration of --random-target: small = peaked, large = near-uniform."),
    class_kind: Optional[str] = typer.Option(None, "--class", help="With --random-target: draw a class F (independent, local or tilt) and sample its true member; needed by mixture-rejection and learned-oracle."),
    class_size: int = typer.Option(16, help="|F| for --class."),
    class_param: float = typer.Option(1.0, help="--class parameter: concentration (independent), spread (local), rho (tilt)."),
    branching: int = typer.Option(2, "--branching", "-b", help="Branching factor b of the tree."),
    oracle: str = typer.Option("exact", help=f"Oracle error model: {', '.join(ORACLES)}."),
    rho: float = typer.Option(1.0, help="Error bound rho >= 1 for random, adversarial, single, signs, decoy and drift (delayed and flat measure theirs)."),
    sampler: str = typer.Option(..., help=f"Sampler: {', '.join(names('tree'))} ({', '.join(s for s in names('tree') if REGISTRY[s].flat_promise)} needs --oracle flat)."),
    n: int = typer.Option(..., "-n", help="Number of samples."),
    seed: int = typer.Option(0, help="Seed of the sampler, the oracle's noise and --random-target."),
    steps: Optional[int] = typer.Option(None, help=f"Walk length T for {', '.join(s for s in names('tree') if REGISTRY[s].walk)} (default: our calibrated schedule)."),
    max_queries: float = typer.Option(1e10, help="Stop with an error once a run has made this many queries."),
    out: Path = typer.Option(..., "--out", help="Output folder for samples.npy and ledger.json."),
) -> None:
    """Draw N samples and write DIR/samples.npy (leaf indices) and DIR/ledger.json (costs, TV)."""
    try:
        check_output_folder(out)
        if seed < 0:
            raise ParameterError(f"--seed must be >= 0, got {seed}")
        if (target is None) == (random_target_depth is None):
            raise ParameterError("give exactly one of --target FILE.npy or --random-target DEPTH")
        target_class = None
        if class_kind is not None:
            if random_target_depth is None:
                raise ParameterError("--class draws its own targets: use it with --random-target DEPTH, not --target")
            target_class = make_class(class_kind, random_target_depth, branching, class_size, class_param, seed)
            tgt = target_class.truth
        elif target is not None:
            tgt = Target.load(target, branching)
        else:
            tgt = random_target(random_target_depth, branching, concentration, seed)
        with _progress_bar() as bar:
            task = bar.add_task(sampler, total=n)
            run = sample_once(
                tgt, sampler, n, oracle=oracle, rho=rho, seed=seed, steps=steps, max_queries=max_queries,
                progress=lambda done, total: bar.update(task, completed=done), target_class=target_class,
            )
    except TtsampleError as exc:
        _fail(exc)
    source = (str(target) if target
              else f"class {target_class.name}, |F| = {class_size}, member {target_class.true_index}" if target_class
              else f"random(depth={random_target_depth}, concentration={concentration})")
    record = {"seed": seed, "target": source, **run.record()}
    try:
        write_outputs(out, {
            "samples.npy": lambda p: np.save(p, run.result.samples.astype(np.int64)),
            "ledger.json": lambda p: p.write_text(dumps(record, indent=2) + "\n"),
        })
    except TtsampleError as exc:
        _fail(exc)
    print_table(console, summary_table([run], f"{n} samples, oracle {run.oracle.describe()}, depth {tgt.tree.depth}, branching {tgt.tree.branching}"))
    console.print(f"wrote {out / 'samples.npy'} and {out / 'ledger.json'}")


def _sweep(spec, out: Path, workers: Optional[int], executor: str, address: Optional[str]) -> None:
    from .experiments.runner import pending, run_spec
    from .experiments.store import ResultStore

    store = ResultStore(out / "results.sqlite")
    try:
        todo = len(pending(spec, store))
        total = len(spec.runs())
        console.print(f"{spec.name}: {total} runs, {total - todo} already in {out / 'results.sqlite'}, {todo} to run")
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True) as bar:
            task = bar.add_task(spec.name, total=todo)
            run_spec(spec, store, workers=workers, executor=executor, address=address,
                     on_result=lambda *_: bar.advance(task))
    finally:
        store.close()


def _report(out: Path, reproduction: Optional[str], command: str) -> None:
    from .eval.report import write_report
    from .eval.verdicts import VERDICTS
    from .experiments.reproductions import SWEEP_REPORT, get_reproduction
    from .experiments.store import ResultStore

    if not (out / "results.sqlite").exists():
        raise ParameterError(f"{out} holds no results.sqlite; run `ttsample sweep SPEC.toml --out {out}` first")
    store = ResultStore(out / "results.sqlite")
    rows = store.rows()
    store.close()
    rep = get_reproduction(reproduction) if reproduction else SWEEP_REPORT
    title = rep.title or f"Sweep report: {out.name}"
    summary = write_report(rows, out, title=title, intro=rep.intro, parts=list(rep.parts),
                           expectations=rep.expectations, caveats=rep.caveats_for(rows), command=command)
    verdicts = [v["verdict"] for v in summary["expectations"]]
    counts = ", ".join(f"{verdicts.count(k)} {k}" for k in VERDICTS)
    shown = f"{len(summary['series'])} series" if summary["series"] or "lm_points" not in summary else (
        f"{len(summary['lm_points'])} configurations")
    console.print(f"wrote {out / 'report.md'} ({shown}; expectations: {counts})")


@app.command()
def sweep(
    spec_file: Path = typer.Argument(..., help="Experiment spec (TOML)."),
    out: Path = typer.Option(..., "--out", help="Folder for results.sqlite (resumable: run again to continue)."),
    workers: Optional[int] = typer.Option(None, help="Worker processes (default: all cores)."),
    executor: str = typer.Option("process", help="process, or ray (optional extra ttsample[ray])."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: a local Ray instance)."),
) -> None:
    """Run a declarative sweep into DIR/results.sqlite; killed sweeps continue where they stopped."""
    from .experiments.spec import load_spec

    try:
        spec = load_spec(spec_file)
        out.mkdir(parents=True, exist_ok=True)
        (out / "spec.toml").write_text(spec_file.read_text())
        _sweep(spec, out, workers, executor, address)
    except TtsampleError as exc:
        _fail(exc)
    console.print(f"done: `ttsample report {out}` writes the report")


app.command("run", hidden=True, help="The former name of `sweep` (kept for scripts that use it).")(sweep)


@app.command()
def report(out: Path = typer.Argument(..., help="A folder written by `ttsample sweep` or `ttsample reproduce`.")) -> None:
    """Write DIR/report.md, PNG plots, DIR/table.csv and DIR/summary.json from DIR/results.sqlite."""
    try:
        marker = out / "reproduction.txt"
        name = marker.read_text().strip() if marker.exists() else None
        _report(out, name, f"ttsample report {out}")
    except TtsampleError as exc:
        _fail(exc)


@app.command()
def reproduce(
    name: str = typer.Argument(..., help="Which reproduction: scaling, ttt, lm (language-model samplers), alignment (AISP against "
                              "best-of-n, SMC, MH and VGB at equal budgets) or reasoning (step-level search and "
                              "sampling with a PRM on multi-step arithmetic)."),
    out: Path = typer.Option(..., "--out", help="Output folder (resumable)."),
    quick: bool = typer.Option(False, "--quick", help="A small grid that runs in about a minute."),
    workers: Optional[int] = typer.Option(None, help="Worker processes (default: all cores)."),
    executor: str = typer.Option("process", help="process, or ray (optional extra ttsample[ray])."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: a local Ray instance)."),
) -> None:
    """Run a shipped reproduction and write its report (report.md, plots, table.csv, summary.json).

    Resumable: a killed run continues where it stopped when run again with the same --out.
    """
    from .experiments.reproductions import get_reproduction

    try:
        rep = get_reproduction(name)
        out.mkdir(parents=True, exist_ok=True)
        (out / "reproduction.txt").write_text(name + "\n")
        _sweep(rep.spec(quick), out, workers, executor, address)
        _report(out, name, f"ttsample reproduce {name} --out {out}" + (" --quick" if quick else ""))
    except TtsampleError as exc:
        _fail(exc)
    console.print(f"open {out / 'report.md'}")


@app.command("train-tiny")
def train_tiny_cmd(
    task: str = typer.Option("dyck", help="dyck (Dyck words with 10% noise), text (characters of local license "
                             "texts), subword (byte-level BPE of 4,096 tokens, context 256, on 4 MB of local license texts), "
                             "arithmetic (step-by-step sums, 20% wrong steps) or arithmetic-prm (its PRM, a causal LM "
                             "that writes + or - after each step's tag)."),
    out: Path = typer.Option(..., "--out", help="Folder for config.json, model.safetensors, tokenizer files, training.json."),
    steps: Optional[int] = typer.Option(None, help="Training steps (default 1500 for dyck and text, "
                                                "1000 for subword, 3000 for arithmetic, 1500 for arithmetic-prm)."),
    seed: int = typer.Option(0),
) -> None:
    """Train a tiny GPT-2-style model on CPU (the models and the PRM shipped in the package came from this)."""
    from .lm.tiny import DEFAULT_STEPS, train_tiny

    try:
        if steps is not None and steps < 1:
            raise ParameterError("steps must be >= 1")
        with Progress(TextColumn(f"training {task}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                      TimeElapsedColumn(), console=err_console, transient=True) as bar:
            job = bar.add_task(task, total=steps if steps is not None else DEFAULT_STEPS.get(task, 1))
            record = train_tiny(task, out, steps=steps, seed=seed, progress=lambda done, total: bar.update(job, completed=done))
    except TtsampleError as exc:
        _fail(exc)
    console.print(f"trained {record['parameters']:,} parameters in {record['seconds']:.0f} s, final loss "
                  f"{record['final_loss']:.3f}; wrote {out} (sha256 {record['sha256'][:12]}…)")


@app.command()
def generate(
    model: str = typer.Option("dyck", help="Embedded model (dyck, text, subword) or a folder saved with save_pretrained."),
    prompt: str = typer.Option("", help="Prompt text (after <bos>)."),
    horizon: int = typer.Option(8, help="Longest response H in tokens (<eos> ends one earlier)."),
    reward: str = typer.Option("dyck", help="A built-in (dyck, dyck-completable, no-e, length, sentiment, arithmetic), "
                               "regex:PATTERN, similarity:TEXT, python:MODULE:FUNCTION, path/to/file.py:FUNCTION or "
                               "hf:DIR[:LABEL] (a sequence-classification reward model)."),
    beta: Optional[float] = typer.Option(None, help="tau = exp(r / beta); omit for a 0/1 constraint (tau = 1{r > 0})."),
    temperature: float = typer.Option(1.0, help="pi_ref is the model's law at this temperature (and so is the target)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="pi_ref keeps only the k most likely tokens at each step."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="pi_ref keeps only the most likely tokens whose mass reaches p."),
    sampler: str = typer.Option(..., help=f"{', '.join(names('generation'))}."),
    values: str = typer.Option("heuristic", help="V_hat for vgb, action-rs, twisted-smc: exact, rollout, heuristic, calibrated (the heuristic scaled per depth by a twisted-SMC pilot), head, or your own: python:MODULE:FUNCTION or path/to/file.py:FUNCTION (V_hat >= 0 of partial text, per text or @batched), hf:DIR[:LABEL] (a classifier read as log V_hat), prm:DIR (a process reward model read at each step: see --prm-*; needs --step-delimiter or --max-step-tokens); head:NAME puts the test-time head on top of NAME."),
    rho: float = typer.Option(1.0, help="Put the lab's random error model on the values: a fixed factor in [1/rho, rho] per node."),
    n: int = typer.Option(10, "-n", help="Number of samples."),
    seed: int = typer.Option(0, help="Seed of the sampler, the values and the noise."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    backend: str = typer.Option("hf", help="hf (transformers with ttsample's KV-cache trie) or vllm (a vLLM engine: "
                                           "the vllm extra; its device is the installed build's)."),
    chat: bool = typer.Option(False, "--chat", help="Lay the prompt out by the tokenizer's chat template, as the user's "
                                                   "turn (the reward receives the prompt as given)."),
    system: Optional[str] = typer.Option(None, help="With --chat: a system turn before the prompt."),
    stop: list[str] = typer.Option([], "--stop", help="A string that ends a response as <eos> does (repeatable); the "
                                                      "text keeps it, and pi* is over the stopped responses."),
    dtype: Optional[str] = typer.Option(None, help="The model's weights and KV cache as float32, bfloat16 or float16 "
                                                   "(default: as saved; the cache's byte budget counts its size)."),
    step_delimiter: list[str] = typer.Option([], "--step-delimiter", help="Move a reasoning step at a time: a step "
                                             "ends after the token whose step text contains this (repeatable; "
                                             "backslash escapes read: '\\n\\n'). The response law is unchanged."),
    max_step_tokens: Optional[int] = typer.Option(None, help="A step ends after this many tokens at most."),
    max_steps: Optional[int] = typer.Option(None, help="A response ends after this many steps (--horizon still "
                                                       "bounds its tokens)."),
    prm_tag: str = typer.Option(" ки", help="With --values prm:DIR: the step tag written after each step, one token "
                                           "of the PRM's tokenizer, where the PRM is read."),
    prm_good: Optional[str] = typer.Option(None, help="With prm:DIR: the good token of a causal PRM (default +) or "
                                                      "the good label of a token classifier (default good)."),
    prm_bad: Optional[str] = typer.Option(None, help="With prm:DIR: the bad token of a causal PRM (default -)."),
    prm_aggregate: str = typer.Option("last", help="With prm:DIR: V_hat of a prefix from its step scores: last, "
                                                   "product or min."),
    option: list[str] = typer.Option([], "--set", metavar="KEY=VALUE",
                                     help="A sampler option, repeatable: e.g. --set particles=64 (smc), --set candidates=16 "
                                          "(best-of-n, aisp), --set sigma=0.7 --set lam=0.3 --set window=8 (aisp)."),
    max_seconds: Optional[float] = typer.Option(None, help="End the run after this many seconds of sampling, with the "
                                                           "samples it has completed (marked partial)."),
    max_queries: Optional[float] = typer.Option(None, help="End the run after this many value queries (vgb, action-rs, "
                                                           "twisted-smc), with the samples it has completed."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts", help="A JSONL file, one {\"prompt\": ..., \"id\": ..., "
                                                "other fields for the reward} per line: N samples for each prompt "
                                                "(prompt i with seed + i); each line of samples.jsonl carries its prompt_id."),
    out: Path = typer.Option(..., "--out", help="Folder for samples.jsonl and ledger.json."),
) -> None:
    """Sample N responses from pi*(y|x) ∝ pi_ref(y|x) tau(x,y); write DIR/samples.jsonl and DIR/ledger.json (aisp: also DIR/aisp_diagnostics.png).

    A run ended by --max-seconds, --max-queries or Ctrl-C writes the samples it completed, marked partial
    (exit code 0 at a budget, 130 after Ctrl-C).
    """
    from .lm.generate import generate as run_generation
    from .lm.generate import generate_prompts
    from .lm.prm import PRMReading, is_prm
    from .lm.prompts import read_prompts
    from .lm.samplers.base import Interrupted

    try:
        check_output_folder(out)
        options = _sampler_options(option)
        own = sorted(set(options) & set(inspect.signature(run_generation).parameters) - {"options"})
        if own:  # generate()'s own settings: passed through --set they would collide with its arguments
            name = own[0]
            flag = "-n" if name == "n" else f"--{name.replace('_', '-')}"
            hint = (f"{flag} N instead of --set {name}=N" if name in inspect.signature(generate).parameters
                    else "ttsample generate --help lists its flags")
            raise ParameterError(f"{name} is a setting of generate itself, not a sampler option: {hint}")
        if rho < 1 or not np.isfinite(rho):
            raise ParameterError(f"--rho must be a finite number >= 1, got {rho}")
        decoding = Decoding(temperature, top_k, top_p)
        if not is_prm(values.removeprefix("head:")) \
                and (prm_tag != PRMReading.tag or prm_good or prm_bad or prm_aggregate != "last"):
            raise ParameterError("the --prm-* flags say how --values prm:DIR is read; these values are not a PRM")
        prompt_list = read_prompts(prompts_file) if prompts_file is not None else [prompt]
        if prompts_file is not None and prompt:
            raise ParameterError("give --prompt or --prompts FILE, not both")
        batched = prompts_file is not None and REGISTRY[sampler].sample_prompts is not None
        settings_of_run = dict(horizon=horizon, reward=reward, sampler=sampler, values=values, rho=rho, beta=beta,
                               decoding=decoding, n=n, device=device, dtype=dtype, backend=backend, chat=chat, system=system,
                               stop=tuple(stop), step_rule=_step_rule(step_delimiter, max_step_tokens, max_steps),
                               prm=PRMReading(prm_tag, prm_good, prm_bad, prm_aggregate),
                               max_seconds=max_seconds, max_queries=max_queries, **options)
        with _progress_bar() as bar:
            job = bar.add_task(sampler, total=n * len(prompt_list))
            report = lambda done, total: bar.update(job, completed=done)  # noqa: E731
            try:
                if prompts_file is None:
                    runs = [run_generation(model, prompt, seed=seed, progress=report, **settings_of_run)]
                else:  # one model for every prompt; best-of-n, plain SMC and AISP decode them together
                    runs = generate_prompts(model, prompt_list, seed=seed, progress=report, **settings_of_run)
            except Interrupted as exc:
                runs = exc.partial if isinstance(exc.partial, list) else [exc.partial]
            except KeyboardInterrupt:  # before the sampler started (loading, the values' set-up): nothing drawn
                err_console.print("interrupted before any sample was drawn; nothing written")
                raise typer.Exit(code=130) from None
        lines, weights = [], []
        for run in runs:
            run_lines, weight = _sample_lines(run, n, prompts_file is not None)
            lines += run_lines
            weights.append(weight)
        run = runs[-1]
        settings = {"model": model, "horizon": horizon, "reward": reward, "beta": beta,
                    "decoding": decoding.as_dict(), "sampler": sampler, "values": run.values, "rho": rho, "n": n,
                    "seed": seed, "device": device, "backend": backend, "dtype": dtype, "chat": chat, "system": system, "stop": list(stop),
                    "step_rule": settings_of_run["step_rule"].as_dict() if settings_of_run["step_rule"] else None,
                    "prm": settings_of_run["prm"].as_dict() if is_prm(values.removeprefix("head:")) else None,
                    "options": options, "max_seconds": max_seconds,
                    "max_queries": max_queries, "weighted": run.result.weighted}
        if prompts_file is None:
            record = {"model": model, "prompt": prompt, **settings, "samples": len(lines), "partial": run.partial,
                      "stopped": run.result.stopped, **run.result.ledger.as_dict(), "info": run.result.info}
        else:  # one record per prompt, and the costs over them (batched: one ledger for all)
            ledgers = [run.result.ledger] if batched else [r.result.ledger for r in runs]
            totals = {k: sum(led.as_dict()[k] for led in ledgers) for k in run.result.ledger.as_dict()}
            record = {**settings, "prompts_file": str(prompts_file), "prompts": len(prompt_list),
                      "batched": batched, "prompts_run": len(runs), "samples": len(lines),
                      "partial": any(r.partial for r in runs) or len(runs) < len(prompt_list), **totals,
                      "runs": [{"id": r.task.prompt_text.id, "prompt": str(r.task.prompt_text),
                                "seed": seed if batched else seed + i, "samples": int(r.result.samples.size),
                                "partial": r.partial, "stopped": r.result.stopped,
                                **({} if batched else r.result.ledger.as_dict()), "info": r.result.info}
                               for i, r in enumerate(runs)]}
        files = {"samples.jsonl": lambda p: p.write_text("".join(line + "\n" for line in lines)),
                 "ledger.json": lambda p: p.write_text(dumps(record, indent=2) + "\n")}
        plot = REGISTRY[sampler].diagnostics_plot
        if plot is not None and lines and len(runs) == 1:
            files[f"{sampler}_diagnostics.png"] = lambda p: plot(run.result, p)
        write_outputs(out, files)
    except TtsampleError as exc:
        _fail(exc)
    weighted = run.result.weighted
    table = Table(title=f"{sampler} on {model}, "
                        + (f"prompt {prompt!r}" if prompts_file is None else f"{len(runs)} prompts of {prompts_file}")
                        + f", H = {horizon}, reward {reward}"
                        + (f", pi_ref at {decoding.describe()}" if not decoding.is_identity else "")
                        + (f", values {run.values}" + (f" within rho = {rho}" if rho > 1 else "") if run.values else "")
                        + (": a weighted set of particles, not draws" if weighted else "")
                        + (f" (partial: {run.result.samples.size} of {n})" if run.partial and len(runs) == 1 else ""))
    columns = ("particles" if weighted else "samples", "distinct", "weighted mean reward" if weighted else "mean reward",
               "forward passes", "tokens", "reward calls", "queries", "seconds")
    for column in (("prompt",) if prompts_file is not None else ()) + columns:
        table.add_column(column, justify="right")
    def costs(led) -> tuple[str, ...]:
        return (f"{led.forward_passes:,}", f"{led.tokens:,}", f"{led.reward_calls:,}", f"{led.queries_total:,}",
                f"{led.seconds:.2f}")

    for r, weight in zip(runs, weights):
        texts, rewards = r.texts(), r.rewards()
        mean_reward = float(weight @ rewards) if weighted else float(np.mean(rewards)) if texts else float("nan")
        table.add_row(*((r.task.prompt_text.id,) if prompts_file is not None else ()), str(len(texts)),
                      str(len(set(texts))), f"{mean_reward:.3f}" if texts else "-",
                      *(("–",) * 5 if batched else costs(r.result.ledger)))
    if batched:  # one batch for every prompt: its costs are shared, shown once
        table.add_row("all prompts", str(sum(r.result.samples.size for r in runs)), "", "", *costs(run.result.ledger))
    print_table(console, table)
    if weighted:
        ess = ", ".join(f"{r.result.ess:.1f} of {w.size}"
                        for r, w in zip(runs, weights) if w is not None)
        console.print(f"each line of samples.jsonl carries its weight (self-normalised per prompt; ESS {ess}): "
                      "weigh by it, or resample, before using the particles as draws from pi*", markup=False)
    for r in runs:
        trace = r.result.diagnostics.get("steps_trace")
        if trace:  # --set steps=auto
            tried = ", ".join(f"{e['steps']:,} (z depth {e['z']:+.1f}, leaf {e['z_leaf']:+.1f})" for e in trace)
            console.print(f"walk length by doubling: T = {r.result.params['steps']:,}; tried {tried}", markup=False)
            if not trace[-1]["mixed"]:
                err_console.print("[bold yellow]warning:[/] the walk still did not look mixed at the longest T "
                                  "allowed (8 times the default), so its output may be far from pi*: better values "
                                  "or a longer --set steps=N", soft_wrap=True, highlight=False)
    for t in runs[0].texts()[:3]:
        console.print(repr(t), markup=False)
    console.print(f"wrote {out / 'samples.jsonl'} and {out / 'ledger.json'}")
    for r in runs:
        if r.partial:
            err_console.print(f"[bold yellow]partial:[/] {r.stop_message()}", soft_wrap=True, highlight=False)
    if len(runs) < len(prompt_list):
        err_console.print(f"[bold yellow]partial:[/] {len(runs)} of the {len(prompt_list)} prompts were run",
                          highlight=False)
    if runs[-1].result.stopped == "interrupted" or len(runs) < len(prompt_list):
        raise typer.Exit(code=130)


def _sample_lines(run, n: int, with_id: bool) -> tuple[list[str], np.ndarray | None]:
    """samples.jsonl's lines of one run, and its self-normalised weights (None: unweighted)."""
    texts, rewards = run.texts(), run.rewards()
    tokens = run.task.tokens(run.result.samples)
    log_w, weighted = run.result.log_weights, run.result.weighted
    weight = normalised_weights(log_w) if log_w is not None else None
    if log_w is not None and weight is None and not run.partial:
        particles = run.result.params.get("particles", n)
        raise ParameterError(
            f"every one of the {particles} particles ended with weight zero (none satisfies the reward), so "
            "there is nothing to write; raise --set particles=N"
            + (" or use twisted-smc, whose values steer the particles" if run.values is None else "")
        )
    prompt_id = {"prompt_id": run.task.prompt_text.id} if with_id else {}
    lines = [dumps({**prompt_id, "text": t, "tokens": list(k), "reward": float(r),
                    **({"log_weight": float(log_w[i])} if log_w is not None else {}),
                    **({"weight": float(weight[i])} if weighted else {})})
             for i, (t, k, r) in enumerate(zip(texts, tokens, rewards))]
    return lines, weight if weighted else None


def _step_rule(delimiters: list[str], max_step_tokens: int | None, max_steps: int | None):
    """The step rule of --step-delimiter (backslash escapes read), --max-step-tokens and --max-steps; None: tokens."""
    from .lm.steps import Steps

    if not delimiters and max_step_tokens is None:
        if max_steps is not None:
            raise ParameterError("--max-steps counts steps: say where a step ends with --step-delimiter or "
                                 "--max-step-tokens")
        return None
    unescaped = tuple(d.encode("latin-1", "backslashreplace").decode("unicode_escape") for d in delimiters)
    return Steps(unescaped, max_step_tokens, max_steps)


def _sampler_options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings as keyword arguments: numbers where they parse as numbers, text otherwise."""
    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ParameterError(f"--set takes KEY=VALUE (e.g. --set particles=64), got {pair!r}")
        for parse in (int, float):
            try:
                options[key.strip()] = parse(text)
                break
            except ValueError:
                continue
        else:
            options[key.strip()] = text
    return options


@app.command("lm-exact")
def lm_exact(
    model: str = typer.Option("dyck", help="Embedded model (dyck, text, subword) or a local model folder."),
    prompt: str = typer.Option("", help="Prompt text (after <bos>)."),
    horizon: int = typer.Option(8, help="Response length H (responses are padded after <eos>)."),
    reward: str = typer.Option("dyck", help="A built-in (dyck, dyck-completable, no-e, length, sentiment, arithmetic), "
                               "regex:PATTERN, similarity:TEXT, python:MODULE:FUNCTION, path/to/file.py:FUNCTION or "
                               "hf:DIR[:LABEL] (a sequence-classification reward model)."),
    beta: Optional[float] = typer.Option(None, help="tau = exp(r / beta); omit for a 0/1 constraint (tau = 1{r > 0})."),
    temperature: float = typer.Option(1.0, help="pi_ref is the model's law at this temperature (and so is the target)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="pi_ref keeps only the k most likely tokens at each step."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="pi_ref keeps only the most likely tokens whose mass reaches p."),
    top: int = typer.Option(10, help="How many of the most likely responses to print."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write pi_star.npy (leaf probabilities), pi_star.jsonl (every response in the support: text, tokens, p) and summary.json here."),
) -> None:
    """Compute pi*(y|x) ∝ pi_ref(y|x) tau(x,y) exactly by enumerating every response."""
    from .lm.backend import LanguageModel
    from .lm.rewards import resolve_reward
    from .lm.targets import tilted_target

    try:
        scorer = resolve_reward(reward)
        decoding = Decoding(temperature, top_k, top_p)
        lm = LanguageModel.load(model)
        exact = tilted_target(lm, prompt, horizon, scorer, beta=beta, decoding=decoding)
    except TtsampleError as exc:
        _fail(exc)
    probs = exact.target.leaf_probs()
    best = np.argsort(probs)[::-1][:top]
    table = Table(title=f"pi* on {model}, prompt {prompt!r}, H = {horizon}, reward {reward}"
                        + (f", pi_ref at {decoding.describe()}" if not decoding.is_identity else ""))
    table.add_column("response")
    table.add_column("pi*", justify="right")
    for i in best:
        table.add_row(repr(exact.text(int(i))), f"{probs[i]:.4f}")
    print_table(console, table)
    summary = {"model": model, "prompt": prompt, "horizon": horizon, "reward": reward, "beta": beta,
               "decoding": decoding.as_dict(), "V_star_root": float(np.exp(exact.log_values()[0])), "leaves": int(probs.size),
               "support": int((probs > 0).sum()), **{k: v for k, v in lm.ledger.as_dict().items() if v}}
    console.print(f"V*(root) = E_pi_ref[tau] = {summary['V_star_root']:.4f}; {summary['support']:,} responses in the support; "
                  f"{lm.ledger.forward_passes} forward passes, {lm.ledger.tokens:,} tokens", markup=False)
    if out is not None:
        try:
            support = np.flatnonzero(probs > 0)
            lines = [dumps({"text": exact.text(int(i)), "tokens": list(exact.tokens(int(i))), "p": float(probs[i])})
                     for i in support[np.argsort(probs[support])[::-1]]]
            write_outputs(out, {"pi_star.npy": lambda p: np.save(p, probs),
                                "pi_star.jsonl": lambda p: p.write_text("\n".join(lines) + "\n"),
                                "summary.json": lambda p: p.write_text(dumps(summary, indent=2) + "\n")})
        except TtsampleError as exc:
            _fail(exc)


@app.command("sat")
def sat_cmd(
    cnf_file: Path = typer.Argument(..., help="A DIMACS CNF file (plain or gzipped); 'c ind ... 0' lines give the sampling set."),
    n: int = typer.Option(..., "-n", help="Number of solutions to draw."),
    counter: str = typer.Option("ganak", help="ganak (exact counts) or approxmc (within 1 + epsilon, with probability 1 - delta)."),
    sampler: str = typer.Option("jvv", help="jvv (exactly uniform with ganak), lifted, walk, walk-boosted or walk-proposal."),
    seed: int = typer.Option(0, help="Seed of the sampler and of ApproxMC's hashes."),
    epsilon: float = typer.Option(0.8, help="ApproxMC's tolerance (--counter approxmc): rho = 1 + epsilon."),
    delta: float = typer.Option(0.2, help="ApproxMC's failure probability per count (--counter approxmc)."),
    order: str = typer.Option("file", help="Variable order of the tree: file (as in the file) or occurrence (most frequent first; the faster on every formula measured, docs/sat.md)."),
    enumerate_below: int = typer.Option(128, help="Enumerate (CryptoMiniSat) a subtree with at most this many solutions instead of counting in it."),
    out: Path = typer.Option(..., "--out", help="Folder for solutions.txt (DIMACS literals, one solution a line) and ledger.json."),
) -> None:
    """Draw N solutions of a CNF formula uniformly, by counting; write DIR/solutions.txt and DIR/ledger.json (needs the SAT extra)."""
    from .sat import read_cnf, sample_cnf

    try:
        check_output_folder(out)
        if seed < 0:
            raise ParameterError(f"--seed must be >= 0, got {seed}")
        formula = read_cnf(cnf_file)
        with _progress_bar() as bar:
            job = bar.add_task(f"{sampler} + {counter}", total=n)
            run = sample_cnf(formula, n, sampler=sampler, counter=counter, seed=seed, epsilon=epsilon, delta=delta,
                             order=order, enumerate_below=enumerate_below,
                             progress=lambda done, total: bar.update(job, completed=done))
        lines = [" ".join(map(str, s)) + " 0" for s in run.solutions]
        record = run.record()
        write_outputs(out, {"solutions.txt": lambda p: p.write_text("\n".join(lines) + "\n"),
                            "ledger.json": lambda p: p.write_text(dumps(record, indent=2) + "\n")})
    except TtsampleError as exc:
        from rich.markup import escape

        _fail(TtsampleError(escape(str(exc))))  # messages name the extra ttsample[sat], which is not markup
    table = Table(title=f"{sampler} + {counter} on {cnf_file.name}: {record['root_count']:,} solutions"
                        f"{'' if record['root_count_exact'] else ' (estimated)'} over {record['sampling_set']} variables")
    for column in ("samples", "distinct", "counter calls", "SAT calls", "enumerated", "queries", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(f"{n:,}", f"{len(set(lines)):,}", f"{record['counter_calls']:,}", f"{record['sat_calls']:,}",
                  f"{record['enumerations']:,}", f"{record['queries_total']:,}", f"{record['wall_seconds']:.2f}")
    print_table(console, table)
    console.print(f"wrote {out / 'solutions.txt'} and {out / 'ledger.json'}")


@app.command()
def demo(
    depth: int = typer.Option(8, help="Depth of the demo's random binary tree."),
    n: int = typer.Option(2000, "-n", help="Samples per sampler."),
    seed: int = typer.Option(0),
) -> None:
    """A short tour: every sampler on a random target, exact and noisy oracles, with costs and TV."""
    from .demo import tour

    try:
        tour(console, depth=depth, n_samples=n, seed=seed)
    except TtsampleError as exc:
        _fail(exc)


if __name__ == "__main__":
    app()
