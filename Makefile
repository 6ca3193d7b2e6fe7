# Two commands do all the set-up: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: serve test test-pg worker clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/roomrender serve

worker: $(STAMP)
	$(VENV)/bin/roomrender worker

# The suite runs on SQLite, then again on PostgreSQL when one answers at $(PG_TEST_URL)
# (each test in its own fresh schema; .ci/run starts the local cluster).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)
	@if $(PY) -c 'import sys; from tests.databases import reachable; sys.exit(not reachable("$(PG_TEST_URL)"))'; then \
		echo "== again on PostgreSQL ($(PG_TEST_URL))"; \
		ROOMRENDER_TEST_DATABASE_URL='$(PG_TEST_URL)' $(PY) -m pytest $(PYTEST_ARGS); \
	else echo "== PostgreSQL not reachable at $(PG_TEST_URL): skipped the PostgreSQL pass"; fi

test-pg: $(STAMP)
	ROOMRENDER_TEST_DATABASE_URL='$(PG_TEST_URL)' $(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
