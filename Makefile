# callwatch — every target sets itself up: the virtualenv is created and filled on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= .callwatch-demo
# Debian packages the tests use as real peers (SIPp is packaged as sip-tester).
DEBIAN_TEST_PACKAGES := sip-tester baresip-core

.PHONY: install test demo serve bench lint debian-deps clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Installs the Debian peers when they are missing and we may (root with apt-get).
debian-deps:
	@missing=""; command -v sipp >/dev/null 2>&1 || missing="$$missing sip-tester"; \
	command -v baresip >/dev/null 2>&1 || missing="$$missing baresip-core"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
	  else echo "warning: missing$$missing (interop tests will be skipped)"; fi; \
	fi

test: install debian-deps
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/callwatch demo --data-dir $(DATA)

serve: install
	$(BIN)/callwatch serve --demo-tenant --data-dir $(DATA) --http-port 0 --sip-port 0 --sip-tls-port 0

bench: install
	$(BIN)/python -m bench.run

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache
