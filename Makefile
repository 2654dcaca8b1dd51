# The two commands a newcomer needs:
#   make run    set everything up and run the bot with the local Teams (Agents Playground)
#   make test   set everything up and run every test
# Other targets: make setup, make lint, make screenshots, make package, make bench, make clean.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Whom the playground signs in as. (make predefines AS as the assembler, hence the origin test.)
ifeq ($(origin AS),default)
AS := alexw@example.com
endif
PLAYGROUND_PORT ?= 56150

.PHONY: run test setup lint screenshots clean package bench

$(BIN)/pqf-bot: pyproject.toml constraints.txt
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(BIN)/pqf-bot node_modules/.package-lock.json

run: setup
	$(BIN)/pqf-bot migrate
	$(BIN)/pqf-bot demo-data --playground-config .m365agentsplayground.yml --as $(AS)
	PLAYGROUND_PORT=$(PLAYGROUND_PORT) SIGNED_IN_AS=$(AS) scripts/run-local.sh

test: setup
	scripts/ensure-chromium.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest

lint: $(BIN)/pqf-bot
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

screenshots: setup
	scripts/ensure-chromium.sh --pdf
	$(BIN)/python scripts/docs_screenshots.py

# The Teams app package to upload in the Teams admin centre (reads MICROSOFT_APP_ID and
# PQF_PUBLIC_URL from the environment or .env).
package: $(BIN)/pqf-bot
	$(BIN)/pqf-bot package --out build/pqf-audit-bot.zip

# The benchmarks (turn latency, dispatch, reports, memory); writes docs/PERFORMANCE.md.
bench: $(BIN)/pqf-bot
	PQF_BENCH_POSTGRES_URL=$$(scripts/ensure-postgres.sh || true) $(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) node_modules test-output .pytest_cache .mypy_cache .ruff_cache *.egg-info
