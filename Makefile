# The two commands a newcomer needs: `make run` and `make test`.
# Both create/refresh the virtualenv in .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest fast emulator bench schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Test-only: the MongoDB wire-protocol server used by the wire test run.
$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --silent
	touch $(NODE_STAMP)

run: $(STAMP)
	$(BIN)/revenue-engine serve --host $(HOST) --port $(PORT)

emulator: $(STAMP)
	$(BIN)/revenue-engine emulator --port 12111

lint: $(STAMP)
	$(BIN)/ruff check revenue_engine tests scripts
	$(BIN)/ruff format --check revenue_engine tests scripts

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy scripts

pytest: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest --cov --cov-report=term:skip-covered

test: lint typecheck pytest

# Unit tests on mongomock only (skips the wire run): for a quick loop while editing.
fast: $(STAMP)
	$(BIN)/pytest -q -m "not wire and not browser"

# The benchmark (README "Performance"): a few minutes; BENCH_ARGS=--quick for about a minute.
bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

schema: $(STAMP)
	$(BIN)/revenue-engine export-schema > schema.graphql

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage
