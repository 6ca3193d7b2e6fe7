# Two commands do all the set-up: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The tests also run the diffusers engine on CPU: torch is pinned first so pip never picks a
# multi-GB build on its own (override TORCH for another build).
TORCH ?= torch==2.13.0
TEST_STAMP := $(VENV)/.installed-diffusers

.PHONY: serve test worker clean-venv

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

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q '$(TORCH)'
	$(PY) -m pip install -q -e '.[dev,diffusers]'
	touch $(TEST_STAMP)

serve: $(STAMP)
	$(VENV)/bin/roomrender serve

worker: $(STAMP)
	$(VENV)/bin/roomrender worker

test: $(TEST_STAMP) $(NODE_STAMP)
	NODE_PATH=$(CURDIR)/$(VENV)/node/node_modules $(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
