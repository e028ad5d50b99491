# mienne-ops — the obvious targets. Two commands do everything on a fresh machine:
#   make dev    set up .venv, start the sandbox + demo traffic + webhook receiver + Dagster UI (:3000)
#   make test   set up .venv, start the services tests need, lint, type-check, validate, run pytest
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup dev test lint format typecheck validate pytest services bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

dev: setup
	$(BIN)/mienne-ops dev

test: setup services lint typecheck validate pytest

lint: setup
	$(BIN)/ruff check
	$(BIN)/ruff format --check

format: setup
	$(BIN)/ruff check --fix
	$(BIN)/ruff format

typecheck: setup
	$(BIN)/mypy

validate: setup
	MIENNE_STATE_DIR=$$(mktemp -d) $(BIN)/dagster definitions validate -w workspace.yaml

# worksteal: an idle worker takes queued tests from a busy one (the end-to-end tests run for tens of
# seconds each; a fixed split left one worker idle for minutes).
pytest: setup
	$(BIN)/pytest -n 2 --dist worksteal -p no:cacheprovider

services:
	bash scripts/ensure-services.sh

bench: setup
	$(BIN)/python bench/order_to_cash.py

clean:
	rm -rf $(VENV) .mienne .dagster_home .pytest_cache .ruff_cache .mypy_cache
