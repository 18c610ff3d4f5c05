# The README's two commands: `make experiment` (the main job) and `make test` (all the tests).
# Each sets up what it needs on first use: a virtual environment in $(VENV), torch, then the package with its dev extras.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
# torch is installed first and explicitly: an unpinned torch pulled in by another package is a multi-GB CUDA build
TORCH ?= torch==2.13.0
OUT ?= runs/default
BIN := $(VENV)/bin
STAMP := $(VENV)/.soft_grounding-installed

.PHONY: setup experiment test docs readme clean-docs

setup: $(STAMP)

$(STAMP): setup.py settings.ini pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else f"soft_grounding needs Python >= 3.11, found {sys.version.split()[0]} at {sys.executable}")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c 'import torch' 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@# git hooks: nbdev_clean + nbdev_export before each commit, nbdev's merge driver for notebooks
	-hooks=$$(git rev-parse --git-path hooks 2>/dev/null) && mkdir -p $$hooks && cp .githooks/pre-commit $$hooks/pre-commit && $(BIN)/nbdev_install_hooks >/dev/null
	touch $(STAMP)

experiment: $(STAMP)
	$(BIN)/soft-grounding experiment --out $(OUT)

# every notebook first (one pytest test each, honouring tst_flags; see tests/conftest.py), then the rest of tests/, in one pytest run
test: $(STAMP)
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

docs: $(STAMP)
	if command -v quarto >/dev/null; then $(BIN)/nbdev_docs; else $(BIN)/python tools/build_docs.py --out _site; fi

readme: $(STAMP)
	$(BIN)/python tools/build_docs.py --readme-only

clean-docs:
	rm -rf _site _proc _docs
