# The two front-door commands are `make demo` and `make test`; everything else is a building block.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.lock

.PHONY: venv test lint typecheck demo demo-ui bench faults lock clean

$(BIN)/python: $(LOCK) pyproject.toml
	$(PYTHON) -m pip install -q uv
	$(PYTHON) -m uv venv -q --allow-existing --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip sync -q --python $(BIN)/python $(LOCK)
	$(PYTHON) -m uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(BIN)/python

venv: $(BIN)/python

lock:
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 \
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

# The fault matrix (tests/faults/scenarios.py): runs every scenario and rewrites its table in README.md.
faults: venv
	$(BIN)/python -m sandbox.fault_matrix

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
