# Two commands do all the set-up: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# `make serve` installs what serving needs (the package, `pip install -e .`); the tests and
# checks install the dev extras (and the diffusers one) on top.
SERVE_STAMP := $(VENV)/.installed-serve
STAMP := $(VENV)/.installed
# The tests also run the diffusers engine on CPU: torch is pinned first so pip never picks a
# multi-GB build on its own (override TORCH for another build).
TORCH ?= torch==2.13.0
TEST_STAMP := $(VENV)/.installed-diffusers

.PHONY: serve test test-fast test-pg check checkov worker clean-venv

$(SERVE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(SERVE_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The vendors' own Node example clients are run by the tests when node is present.
NODE_STAMP := $(VENV)/node/.installed
$(NODE_STAMP):
	mkdir -p $(VENV)/node
	if command -v npm >/dev/null; then npm install --prefix $(VENV)/node --no-audit --no-fund --silent axios@1 || true; fi
	touch $(NODE_STAMP)

# open_clip is installed for its copy of CLIP's BPE vocabulary only (the long-prompt tests read
# it; its code is never imported): without its dependencies, which would pull torchvision and
# another torch build.
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q '$(TORCH)'
	$(PY) -m pip install -q -e '.[dev,diffusers]'
	$(PY) -m pip install -q --no-deps 'open_clip_torch>=2.20'
	touch $(TEST_STAMP)

# ROOMRENDER_PORT=8001 make serve: another port (ROOMRENDER_HOST: another address).
serve: $(SERVE_STAMP)
	$(VENV)/bin/roomrender serve

worker: $(SERVE_STAMP)
	$(VENV)/bin/roomrender worker

# The suite runs on SQLite, then again on PostgreSQL when one answers at $(PG_TEST_URL)
# (each test in its own fresh schema; .ci/run starts the local cluster). The PostgreSQL pass leaves
# out the engine tests (marked `torch`): they prove pipelines, which read no SQL of their own.
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
TEST_ENV := NODE_PATH=$(CURDIR)/$(VENV)/node/node_modules

test: $(TEST_STAMP) $(NODE_STAMP)
	@$(MAKE) -s checkov || echo "== checkov could not be installed: the manifests' policy scan is skipped"
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)
	@if $(PY) -c 'import sys; from tests.databases import reachable; sys.exit(not reachable("$(PG_TEST_URL)"))'; then \
		echo "== again on PostgreSQL ($(PG_TEST_URL))"; \
		$(TEST_ENV) ROOMRENDER_TEST_DATABASE_URL='$(PG_TEST_URL)' $(PY) -m pytest -m "not torch" $(PYTEST_ARGS); \
	else echo "== PostgreSQL not reachable at $(PG_TEST_URL): skipped the PostgreSQL pass"; fi

# The inner loop: no torch install, slow and torch tests left out, on two processes (pytest-xdist):
# under 2 minutes on a 2-core machine. FAST_WORKERS=0 runs it in one process.
FAST_WORKERS ?= 2
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not torch" -n $(FAST_WORKERS) $(PYTEST_ARGS)

# Lint and import order (ruff), strict types (mypy), which way imports point (import-linter).
# Needs the diffusers extra so that mypy sees torch and diffusers as CI does.
check: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test-pg: $(TEST_STAMP) $(NODE_STAMP)
	$(TEST_ENV) ROOMRENDER_TEST_DATABASE_URL='$(PG_TEST_URL)' $(PY) -m pytest $(PYTEST_ARGS)

# checkov (the Kubernetes manifests' policy scan, tests/test_kubernetes_manifests.py) in a venv of
# its own: its pins (boto3, packaging...) clash with the dev extra's.
checkov: .venv-checkov/bin/checkov
.venv-checkov/bin/checkov:
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q 'checkov>=3.2'

clean-venv:
	rm -rf $(VENV)
