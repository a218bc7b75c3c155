# Two entry points a fresh machine needs (see README):
#   make demo   sets everything up, then runs the main job: `zerocopy demo`, the ECG
#               pipeline both ways (report in out/demo); `zerocopy doctor` and
#               `zerocopy matrix` stay available as their own commands
#   make test   sets everything up, then runs the whole test suite (CPU; GPU tests skip)
# Everything installs from requirements/*.txt and pyproject.toml, nothing by hand.

PYTHON ?= python3
VENV   ?= .venv
MXVENV ?= .venv-mxnet
BIN    := $(VENV)/bin
MXBIN  := $(MXVENV)/bin
PYTEST_ARGS ?=

.PHONY: setup setup-mxnet demo test test-main test-mxnet bench lint docs clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements/cpu.txt pyproject.toml setup.py src/zerocopy/_speedups.c src/zerocopy/_pool.c src/zerocopy/_lane.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/cpu.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# MXNet 1.9.1 needs NumPy < 1.24, so it lives in its own environment.
setup-mxnet: $(MXVENV)/.installed

$(MXVENV)/.installed: requirements/mxnet.txt pyproject.toml
	$(PYTHON) -m venv $(MXVENV)
	$(MXBIN)/python -m pip install -q --upgrade pip
	$(MXBIN)/python -m pip install -q -r requirements/mxnet.txt
	$(MXBIN)/python -m pip install -q --no-deps -e .
	touch $@

demo: setup
	$(BIN)/zerocopy demo --out out/demo

test: lint docs test-main test-mxnet

# The documentation site from docs/ (MkDocs, built-in theme, offline), warnings as errors.
$(VENV)/.docs-installed: requirements/docs.txt $(VENV)/.installed
	$(BIN)/python -m pip install -q -r requirements/docs.txt
	touch $@

docs: setup $(VENV)/.docs-installed
	$(BIN)/python -m mkdocs build --strict -q

# The DLPack and memory-statistics tests once more on the pure-Python path (the C extension
# zerocopy._speedups is the default where `pip install` found a compiler): both must behave
# the same.
PURE_PYTHON_TESTS := tests/exchange/test_dlpack_backends.py tests/exchange/test_pairs.py \
	tests/exchange/test_polars_objects.py tests/exchange/test_pandas_objects.py \
	tests/exchange/test_issue8_regressions.py tests/memory/test_ledger.py \
	tests/memory/test_memory_adaptors.py tests/exchange/test_jax_importer.py

test-main: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	ZEROCOPY_PURE_PYTHON=1 $(BIN)/python -m pytest -q $(PURE_PYTHON_TESTS)

test-mxnet: setup-mxnet
	$(MXBIN)/python -m pytest -p no:cacheprovider -o addopts="-ra" tests/mxnet_env $(PYTEST_ARGS)

bench: setup
	$(BIN)/zerocopy bench exchange
	$(BIN)/zerocopy bench layout
	$(BIN)/zerocopy bench memory

# The checked boundaries: ruff (in-function imports only for what keeps frameworks
# optional), the import rule (only a framework's own modules name it; no private name
# crosses modules) and mypy on the package. A second or two each.
lint: setup
	$(BIN)/python -m ruff check src tests scripts
	$(BIN)/python scripts/check_imports.py
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) $(MXVENV) build src/*.egg-info src/zerocopy/_speedups*.so
