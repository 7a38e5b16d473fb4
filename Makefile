# The project's commands. Every target sets up .venv itself, so a fresh clone needs only
# Python 3.11+ (and, for synth, Node.js).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# jsii (under aws-cdk-lib) prints a banner on Node 20; it works, so keep the output quiet.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

EXAMPLES := --catalog examples/catalog.yaml --accounts examples/accounts.yaml --events examples/events.jsonl
# An upgrade mid-period, a discount and prepaid credits (CONTRACT.md 2a), on the same catalog.
SUBSCRIPTIONS := --catalog examples/catalog.yaml --accounts examples/subscriptions/accounts.yaml \
	--events examples/subscriptions/events.jsonl

# The CDK command line comes from package-lock.json (aws-cdk@2, pinned exactly).
NODE_STAMP := node_modules/.installed
CDK := npx --no-install cdk
TEMPLATE := cdk.out/UsageBilling-dev.template.json


.PHONY: lock demo examples test lint typecheck synth cfn-lint unit integration infra e2e fuzz bench chaos format openapi portal-screenshot clean

# Every distribution comes from the hash-pinned lock (requirements/dev.lock: the extras,
# with the layer's runtime requirements at exactly the versions the layer ships); the
# project itself is installed on top, without dependencies.
LAYER_LOCK := layers/billing/requirements.lock
DEV_LOCK := requirements/dev.lock
# --refresh-package: the project's dependencies are read from requirements.txt, which uv would
# otherwise take from its cache of the project's metadata.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --no-header --quiet \
	--refresh-package usage-billing

$(STAMP): pyproject.toml layers/billing/requirements.txt $(LAYER_LOCK) $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# After a change to layers/billing/requirements.txt or to the extras in pyproject.toml:
# the two locks again (uv keeps every pin it can; `UPGRADE=--upgrade` moves them all).
lock: $(STAMP)
	$(BIN)/uv pip compile layers/billing/requirements.txt $(LOCK_FLAGS) $(UPGRADE) -o $(LAYER_LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra local --extra cdk --extra dev \
		-c $(LAYER_LOCK) $(LOCK_FLAGS) $(UPGRADE) -o $(DEV_LOCK)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

demo: $(STAMP)
	$(BIN)/billing demo --out out/demo --serve

examples: $(STAMP)
	$(BIN)/billing run $(EXAMPLES) --period 2026-11 --out out/examples
	$(BIN)/billing run $(SUBSCRIPTIONS) --period 2026-11 --out out/examples-subscriptions

# The portal's browser test drives Debian's Chromium (Playwright's Python API with
# executable_path; no browser is downloaded). A machine without it gets it from Debian.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium || \
		{ $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# The suite runs on every core (pytest-xdist); each test owns its moto backend and tmp_path,
# so none shares state with another worker. worksteal keeps both cores busy to the end.
PARALLEL := -n auto --dist worksteal

test: lint typecheck cfn-lint $(CHROMIUM)
	$(BIN)/pytest $(PARALLEL)


# `cdk synth` through the CLI as `cdk deploy` runs it: bundles the layer, runs cdk-nag
# (an unacknowledged finding fails), writes cdk.out/.
synth: $(STAMP) $(NODE_STAMP)
	$(CDK) synth --quiet

# W3005 (redundant DependsOn) is ignored: CDK makes each function depend on its role and the
# role's policy explicitly, so the policy exists before the function first runs; the role
# half is also implied by the Role GetAtt, which is all W3005 points out.
cfn-lint: synth
	$(BIN)/cfn-lint --ignore-checks W3005 -- $(TEMPLATE)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit integration infra e2e: $(STAMP)
	$(BIN)/pytest $(PARALLEL) -m $@

# The fuzz tests' long run (docs/fuzzing.md): tens of thousands of examples per target, the
# failures kept in .hypothesis/ to replay. `make test` runs them with the short CI profile.
fuzz: $(STAMP)
	BILLING_FUZZ_PROFILE=fuzz-long $(BIN)/pytest $(PARALLEL) -p no:cacheprovider \
		--hypothesis-show-statistics tests/fuzz

# One table of the benchmarks' headline figures (bench/table.py, docs/performance.md): the
# rater, re-rate, invoicing (without its 5,000-account run), end-to-end and stream-cost
# benchmarks run once each (BENCH_RUNS=3: medians of three), the soak's figures from its
# last saved run. By hand: `python bench/soak.py` (10 minutes), bench/numbering.py, and
# bench/invoicing.py with its 5,000-account run.
BENCH_RUNS ?= 1
bench: $(STAMP)
	$(BIN)/python bench/table.py --runs $(BENCH_RUNS)

# The chaos run at full size (docs/chaos.md): 200,000 records over 1,000 accounts through the
# rater and the invoice workflow on the local runtime while faults are injected, checked
# against an independent oracle; a one-screen report, exit 1 on any mismatch. `make test`
# runs it at CI size (tests/chaos/test_chaos_ci.py).
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.runner $(CHAOS_ARGS)

# The usage API's (its operator routes apart) and the customer API's OpenAPI documents,
# generated from their routes and models (unit tests fail when a committed one is stale).
openapi: $(STAMP)
	$(BIN)/python -c 'import functions.usage_api.app as api, pathlib; \
		pathlib.Path("docs/openapi.json").write_text(api.openapi_document())'
	$(BIN)/python -c 'import functions.operator_api.app as api, pathlib; \
		pathlib.Path("docs/operator-openapi.json").write_text(api.openapi_document())'
	$(BIN)/python -c 'import functions.customer_api.app as api, pathlib; \
		pathlib.Path("docs/customer-openapi.json").write_text(api.openapi_document())'

# The portal's screenshot in docs/, taken by its browser test once the November invoice is
# adjusted and voided, after the test that sends December's usage (a unit test fails when
# the page has changed since the screenshot was taken).
portal-screenshot: $(STAMP) $(CHROMIUM)
	PORTAL_SCREENSHOT=docs/portal.png $(BIN)/pytest -q -p no:cacheprovider \
		tests/e2e/test_portal_browser.py -k "exact_charge or credit_note"

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
