# The two front-door commands are `make demo` and `make test`; everything else is a building block.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.lock

.PHONY: venv test lint typecheck demo demo-ui bench faults lock clean

# Only $(PYTHON) and its standard venv module are needed: the virtual environment is made with the standard
# library, uv is installed inside it, and uv syncs the lock there. Nothing is installed into $(PYTHON) itself
# (Debian's and Ubuntu's own python3 refuse that anyway: externally-managed-environment).
$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv

$(VENV)/.synced: $(LOCK) pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync -q --python $(BIN)/python $(LOCK)
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

venv: $(VENV)/.synced

# Keeps the existing pins where pyproject.toml allows them (uv prefers the versions already in the output file).
lock: | $(BIN)/uv
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -o $(LOCK)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: venv lint
	$(BIN)/python -m pytest -q -ra

demo: venv
	$(BIN)/python -m sandbox.demo

demo-ui: venv
	$(BIN)/python -m sandbox.demo --ui

bench: venv
	$(BIN)/python -m bench

# The fault matrix (sandbox/faults/scenarios.py): runs every scenario and rewrites its table in docs/fault-matrix.md.
faults: venv
	$(BIN)/python -m sandbox.fault_matrix

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
