# trainset: `make run` starts the whole local system; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-deps
TEST_STAMP := $(VENV)/.test-deps

.PHONY: run test lint bench setup clean-local help synth deploy chromium screenshot axe

help:
	@echo "make run    - set up and start trainset locally (API + page on http://127.0.0.1:8000)"
	@echo "make test   - set up and run the whole test suite"
	@echo "make lint   - ruff"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make synth  - synthesize the AWS environment (ENV=dev|prod) with the CDK"
	@echo "make deploy - deploy it (needs AWS credentials; see infra_cdk/README.md)"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt layers/core/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(TEST_STAMP): $(RUN_STAMP) tests/requirements.txt
	$(PY) -m pip install --quiet -r tests/requirements.txt
	touch $@

setup: $(RUN_STAMP)

run: $(RUN_STAMP)
	$(PY) -m trainset run

lint: $(TEST_STAMP)
	$(PY) -m ruff check .

test: $(TEST_STAMP) chromium axe
	$(PY) -m ruff check .
	$(PY) -m pytest

screenshot: $(TEST_STAMP) chromium
	TRAINSET_UPDATE_SCREENSHOT=1 $(PY) -m pytest -q tests/browser -k screenshot

# The browser tests drive Debian's chromium (no browser download); install it when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# axe-core for the accessibility tests, from npm into .venv/node (test-only, never served).
axe: $(TEST_STAMP)
	$(PY) tests/browser/vendor_axe.py

bench: $(TEST_STAMP) chromium
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) bench/assign.py
	$(PY) bench/page.py
	$(PY) bench/ingest.py
	$(PY) bench/imports.py
	$(PY) bench/sampling.py
	$(PY) bench/quality.py
	$(PY) bench/export.py
	$(PY) bench/scale.py
	$(PY) bench/augment.py
	$(PY) bench/study.py

clean-local:
	rm -rf .trainset

ENV ?= dev
synth: $(TEST_STAMP)
	cd infra_cdk && PATH=$(CURDIR)/$(VENV)/bin:$$PATH npx --yes aws-cdk@2 synth -c env=$(ENV)

deploy: $(TEST_STAMP)
	cd infra_cdk && PATH=$(CURDIR)/$(VENV)/bin:$$PATH npx --yes aws-cdk@2 deploy -c env=$(ENV)
