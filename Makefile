# One command for the figures (`make figures`), one for the tests (`make test`); both set up .venv first.
#
#   make setup          create or reuse $(VENV), install torch ($(TORCH_SPEC)), then the project with all extras
#   make test           ruff check, ruff format --check, pytest without `slow` tests
#   make test-all       the same, slow tests included
#   make figures        regenerate every figure and table into paper_figs/out/
#   make figures-quick  the same at reduced size (smoke run)
#   make bench          the vector-feature benchmarks
#   make notebooks      execute notebooks/*.ipynb
#   make lint / format  ruff check + format check / ruff fix + format
#   make clean          remove $(VENV) and caches (results are kept)
#
# CPU-only machine, avoiding the multi-GB CUDA download:
#   make setup TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
TORCH_INDEX_URL ?=
PIP_FLAGS ?= --progress-bar off
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUFF := $(VENV)/bin/ruff

# pip must never wait for an answer (CI has no stdin).
export PIP_NO_INPUT := 1

# The stamp's name changes whenever pyproject.toml or the torch request changes, so setup reruns exactly then. The
# rule has no file prerequisites on purpose: a fresh clone (new file dates) pointed at a set-up VENV= is up to date.
SETUP_HASH := $(shell { cat pyproject.toml; echo '$(TORCH_SPEC)|$(TORCH_INDEX_URL)'; } | sha256sum | cut -c1-16)
STAMP := $(VENV)/.wtflow-setup-$(SETUP_HASH)

NOTEBOOKS := $(wildcard notebooks/*.ipynb)

# Runs pytest; exit code 5 (nothing collected) is a failure, because a CI that ran no test is broken.
define run_pytest
	rc=0; $(PY) -m pytest -q $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [ "$$rc" -eq 5 ]; then \
		echo "ERROR: pytest collected no tests (exit code 5); a run without tests counts as a failure." >&2; \
		exit 1; \
	fi; \
	exit "$$rc"
endef

.PHONY: help setup test test-all figures figures-quick bench notebooks lint format clean

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

setup: $(STAMP)

$(STAMP):
	@if ! "$(PY)" -c "" >/dev/null 2>&1; then \
		echo "Creating virtual environment $(VENV) with $(PYTHON_BOOTSTRAP)"; \
		$(PYTHON_BOOTSTRAP) -m venv "$(VENV)"; \
	fi
	@$(PY) -c "import sys; sys.exit(sys.version_info < (3, 11))" || { \
		echo "ERROR: $(VENV) runs Python $$($(PY) -c 'import platform; print(platform.python_version())'); need >= 3.11." \
			"Run 'make clean' and retry with PYTHON_BOOTSTRAP=python3.11 (or newer)." >&2; exit 1; }
	$(PIP) install $(PIP_FLAGS) $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) $(TORCH_SPEC)
	$(PIP) install $(PIP_FLAGS) -e ".[all]"
	@rm -f $(VENV)/.wtflow-setup-*
	@touch $@
	@echo "Setup complete: $(VENV) (stamp $(notdir $@))"

lint: setup
	$(RUFF) check .
	$(RUFF) format --check .

format: setup
	$(RUFF) check --fix .
	$(RUFF) format .

test: lint
	@$(call run_pytest,)

test-all: lint
	@$(call run_pytest,-m "slow or not slow")

figures: setup
	$(PY) -m paper_figs

figures-quick: setup
	$(PY) -m paper_figs --quick

bench: setup
	$(PY) -m benchmarks.vectors

notebooks: setup
	@if [ -z "$(NOTEBOOKS)" ]; then echo "ERROR: no notebooks/*.ipynb to execute." >&2; exit 1; fi
	@export MPLBACKEND=Agg; $(call run_pytest,--nbmake $(NOTEBOOKS))

clean:
	rm -rf "$(VENV)" .pytest_cache .ruff_cache build dist *.egg-info .hypothesis
	find . -path ./.git -prune -o -type d \( -name __pycache__ -o -name .ipynb_checkpoints \) -prune -exec rm -rf {} +
