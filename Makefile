# Turnout: `make run` starts everything on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HTMX_VERSION := 2.0.11
PYTEST_ARGS ?=
# Two pytest workers (xdist); tests that start gunicorn share one of them (tests/conftest.py).
PYTEST_WORKERS ?= 2

.PHONY: install run test lint worker vendor-htmx clean bench chaos

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

BENCH_STAMP := $(VENV)/.installed-bench
BENCH_ARGS ?=

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

## Measure on this machine: gunicorn + nginx + PostgreSQL + Redis + worker, the rush and the
## ratios, invariants checked in SQL; report in bench-results/<timestamp>/ (BENCH_ARGS=--help).
bench: $(BENCH_STAMP)
	@if ! command -v wrk >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing wrk and nginx (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null; \
	  else echo "make bench needs wrk and nginx: sudo apt-get install -y wrk nginx"; exit 1; fi; \
	fi
	$(PY) -m loadtests.bench $(BENCH_ARGS)

CHAOS_ARGS ?=

## The fault campaign: rushes over the JSON API while web workers, the worker, Redis,
## PostgreSQL and SMTP fail; a table of what broke; chaos-results/<timestamp>/ (CHAOS_ARGS=--help).
chaos: install
	$(PY) -m loadtests.chaos $(CHAOS_ARGS)

## Start the web app, the worker and (when REDIS_URL is unset) an embedded Redis.
run: install
	$(PY) -m webapp.devstack

## Install and run the whole test suite (SQLite and PostgreSQL, real Redis), with line and
## branch coverage of webapp/ and workers/ (subprocesses too; [tool.coverage.*] in pyproject.toml).
test: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --cov --cov-report=term $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check webapp workers tests loadtests migrations wsgi.py

worker: install
	$(PY) -m workers

## Refresh the vendored htmx from the npm registry (pinned version).
vendor-htmx:
	cd /tmp && npm pack htmx.org@$(HTMX_VERSION) && tar xzf htmx.org-$(HTMX_VERSION).tgz
	cp /tmp/package/dist/htmx.min.js webapp/static/vendor/htmx-$(HTMX_VERSION).min.js
	cp /tmp/package/LICENSE webapp/static/vendor/htmx-LICENSE.txt

clean:
	rm -rf $(VENV) instance .pytest_cache
