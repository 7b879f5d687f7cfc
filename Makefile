# Scaling-sweep orchestrator: `make help` lists the commands.
# Every target that runs code depends on `setup`, so on a fresh clone each is a single command.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The torch requirement: the CPU wheel on machines without an NVIDIA GPU (and in CI), the normal
# (CUDA) build on GPU nodes. Override, e.g.: make setup TORCH='torch==2.5.1'
TORCH  ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch>=2.4,torch==2.13.0)
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help setup sweep analysis test test-all lint clean

help: ## list the commands
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo '  Hydra overrides go through ARGS, e.g. make sweep ARGS="grid=tiny results_dir=/data/res"'

$(VENV)/.installed: pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

setup: $(VENV)/.installed ## create .venv and install the project (skipped when up to date)

sweep: setup ## train and evaluate the grid, then analyse it (ARGS: Hydra overrides)
	$(PY) -m sweep $(ARGS)

analysis: setup ## rerun the analysis offline (ARGS: sweep dir, default results/default)
	$(PY) -m analysis $(or $(ARGS),results/default)

test: setup ## the default test suite (what CI runs)
	$(PY) -m pytest -q --durations=25 $(ARGS)

test-all: setup ## every test, slow ones included (GPU tests skip without a GPU)
	$(PY) -m pytest -q -m "" $(ARGS)

lint: setup ## ruff
	$(PY) -m ruff check sweep analysis tests

clean: ## remove the virtualenv, caches and results/
	rm -rf $(VENV) results .pytest_cache .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
