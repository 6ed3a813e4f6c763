# Turnout: `make run` starts everything on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HTMX_VERSION := 2.0.11
PYTEST_ARGS ?=

.PHONY: install run test lint worker vendor-htmx clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the web app, the worker and (when REDIS_URL is unset) an embedded Redis.
run: install
	$(PY) -m webapp.devstack

## Install and run the whole test suite (SQLite and PostgreSQL, real Redis).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

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
