# Two commands a new user needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARTIFACTS ?= artifacts
PORT ?= 8501

.PHONY: demo demo-train dashboard test setup setup-dev clean-demo gpu-prepare

# The package (editable) and its dependencies at the exact versions CI tested (constraints.txt).
$(VENV)/.runtime: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

## Generate the demo data, train the demo zoo on the CPU, then open the dashboard on it.
demo: demo-train dashboard

# The demo recipe (2 models, 8 epochs at 64 px: bt_core.cli.actions.DEMO_DEFAULTS) keeps training to a few minutes on 2 CPU cores (docs/performance.md).
demo-train: setup
	$(PY) train_all.py --demo --out $(ARTIFACTS)

## The dashboard listens on this machine only; `make dashboard ADDRESS=0.0.0.0` exposes it to the network.
ADDRESS ?= localhost
dashboard: setup
	$(VENV)/bin/streamlit run dashboard/app.py --server.address $(ADDRESS) --server.port $(PORT) -- --artifacts $(ARTIFACTS)

## Set up from nothing and run the whole test suite.
test: setup-dev
	$(PY) -m pytest -q

## Before a GPU session: the wheels and the dataset tar that benchmarks/gpu_run.sh needs there.
gpu-prepare: setup
	PYTHON=$(PY) bash benchmarks/gpu_prepare.sh

clean-demo:
	rm -rf data/demo
