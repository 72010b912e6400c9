# Set-up contract: `make run` and `make test` are the only two commands a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA_DIR ?= $(HOME)/.teller
CONFIG ?= config.toml

.PHONY: run test test-fast screenshots lint bench tools venv clean

venv: $(VENV)/.installed

# The first install takes a few minutes: say so, and let pip list each package as it goes.
$(VENV)/.installed: pyproject.toml
	@echo "==> creating $(VENV) and installing teller and its test tools (first run only: a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[test]'
	@echo "==> $(VENV) is ready; later runs start at once"
	touch $@

## run: start the teller in dummy mode on loopback with the shipped config.toml
run: venv
	$(BIN)/teller run -c $(CONFIG) -d $(DATA_DIR)

## tools: the external programs the tests drive (litecoind, wrk, chromium, redis-server from
## apt; anvil, solc from npm). The browser tests use Debian's chromium through Playwright.
tools: node_modules/.installed
	@missing=""; for tool in litecoind wrk chromium redis-server; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (apt)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

## test: install everything the tests need, then run the whole suite
test: venv tools
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider

## test-fast: the suite without the slow scenario tests (for working, not for CI)
test-fast: venv
	$(BIN)/python -m pytest -q -m 'not slow'

## screenshots: the browser tests, writing the README's pictures to docs/screenshots/
screenshots: venv tools
	TELLER_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_teller_web_browser.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

## bench: every benchmark script; each prints its figures
bench: venv tools
	$(BIN)/python bench/payout.py
	$(BIN)/python bench/payout.py --max-outputs 10
	$(BIN)/python bench/passthrough.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/core.py
	$(BIN)/python bench/ws.py
	$(BIN)/python bench/addresses.py
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) node_modules *.egg-info
