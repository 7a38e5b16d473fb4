# The project's commands. Every target sets up .venv itself, so a fresh clone needs only
# Python 3.11+ (and, for synth, Node.js).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# jsii (under aws-cdk-lib) prints a banner on Node 20; it works, so keep the output quiet.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

EXAMPLES := --catalog examples/catalog.yaml --accounts examples/accounts.yaml --events examples/events.jsonl

.PHONY: demo examples test lint typecheck unit integration infra e2e bench format clean

$(STAMP): pyproject.toml layers/billing/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[local,cdk,dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/billing demo --out out/demo

examples: $(STAMP)
	$(BIN)/billing run $(EXAMPLES) --period 2026-11 --out out/examples

test: lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit integration infra e2e: $(STAMP)
	$(BIN)/pytest -m $@

bench: $(STAMP)
	$(BIN)/python bench/rater.py --json
	$(BIN)/python bench/invoicing.py --json
	$(BIN)/python bench/e2e.py --json

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
