# The two commands a newcomer needs: `make run` and `make test`.
# Both create/refresh the virtualenv in .venv from pyproject.toml: `make run` installs the
# runtime and the embedded extra, the Stripe emulator of stripe-emulator/ (RUN_STAMP);
# `make test` and the other development targets add the dev extra (STAMP: tests, linters, type
# checker, Playwright). pip installs the emulator from this repository in the same command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-runtime
NODE_STAMP := node_modules/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest fast chromium screenshot emulator bench schema clean

EMULATOR := stripe-emulator

# The runtime: what `revenue-engine serve` needs, the embedded default (its emulator) included.
$(RUN_STAMP): pyproject.toml $(EMULATOR)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e './$(EMULATOR)' -e '.[embedded]'
	touch $(RUN_STAMP)

# The runtime and the development tools (a superset: it satisfies RUN_STAMP too).
$(STAMP): pyproject.toml $(EMULATOR)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e './$(EMULATOR)' -e '.[dev,embedded]'
	touch $(STAMP) $(RUN_STAMP)

# Test-only: the MongoDB wire-protocol server used by the wire test run. Without npm the wire
# tests are skipped with the reason (and fail under CI, which must run them).
$(NODE_STAMP): package.json
	@if command -v npm >/dev/null 2>&1; then \
		npm install --no-audit --no-fund --silent && touch $(NODE_STAMP); \
	else \
		echo "npm not found: the wire tests will be skipped (set MONGODB_URI to use a server)"; \
	fi

# Test-only: Debian's Chromium for the browser tests (tests/browser), installed when missing and
# apt-get can (as root, or through password-less sudo). If it cannot, those tests are skipped
# with the reason (failed under CI).
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
		else SUDO=none; fi; \
		if [ "$$SUDO" != none ]; then \
			echo "installing Debian's chromium for the browser tests"; \
			{ $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
				&& $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null \
				|| echo "chromium could not be installed: the browser tests will say why"; \
		fi; \
	fi

# Checkout success/cancel URLs and the emulator's pages follow the address served here.
run: $(RUN_STAMP)
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} $(BIN)/revenue-engine serve --host $(HOST) --port $(PORT)

emulator: $(RUN_STAMP)
	$(BIN)/revenue-engine emulator --port 12111

lint: $(STAMP)
	$(BIN)/ruff check revenue_engine tests scripts $(EMULATOR)
	$(BIN)/ruff format --check revenue_engine tests scripts $(EMULATOR)
	$(BIN)/lint-imports --no-logo  # the import contracts in pyproject.toml (docs/architecture.md)

typecheck: $(STAMP)
	$(BIN)/mypy  # the engine and the emulator ([tool.mypy] in pyproject.toml)
	$(BIN)/mypy scripts

pytest: $(STAMP) $(NODE_STAMP) chromium
	$(BIN)/pytest --cov --cov-report=term:skip-covered

test: lint typecheck pytest

# Unit tests on mongomock only (skips the wire run): for a quick loop while editing.
fast: $(STAMP)
	$(BIN)/pytest -q -m "not wire and not browser"

# Retake docs/demo.png (the README's picture) with the browser test.
screenshot: $(STAMP) chromium
	UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/browser -k readme_shows

# The benchmark (docs/performance.md): about 30 minutes; BENCH_ARGS=--quick for about 15.
bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

schema: $(RUN_STAMP)
	$(BIN)/revenue-engine export-schema > schema.graphql

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage .import_linter_cache
