# Zaplecze — the two quick-start commands are `make demo` and `make test`.
# Both build the environment in .venv/ from the lock file first; nothing needs installing by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-deep bench lint env lock clean system-deps vendor

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

env: $(STAMP) vendor

# The pages' browser libraries (htmx, AG Grid Community, Chart.js), pinned in package-lock.json,
# copied into static/vendor/ (gitignored). Without npm the pages still render, without them.
VENDOR := src/zaplecze/interfaces/web/static/vendor
VENDOR_STAMP := $(VENDOR)/.installed

vendor: $(VENDOR_STAMP)

$(VENDOR_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && \
	  mkdir -p $(VENDOR) && \
	  cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js && \
	  cp node_modules/ag-grid-community/dist/ag-grid-community.min.js $(VENDOR)/ag-grid-community.min.js && \
	  cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/chart.umd.min.js && \
	  touch $(VENDOR_STAMP); \
	else echo "note: npm is not installed; the pages will work without htmx, AG Grid and Chart.js"; fi

# The `ledger` program checks our general-ledger export in the tests (Debian package `ledger`);
# Debian's `chromium` runs the browser tests (through Playwright's executable_path).
system-deps:
	@command -v ledger >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq ledger >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq ledger >/dev/null)) \
	      || echo "note: could not install 'ledger'; the ledger cross-check test will be skipped"; \
	  else echo "note: 'ledger' is not installed; the ledger cross-check test will be skipped"; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)) \
	      || echo "note: could not install 'chromium'; the browser tests will be skipped"; \
	  else echo "note: 'chromium' is not installed; the browser tests will be skipped"; fi; }

demo: env
	$(BIN)/zaplecze demo

test: env system-deps
	$(BIN)/python tests/run_suite.py

test-deep: env system-deps
	ZAPLECZE_DEEP=1 $(BIN)/python tests/run_suite.py

# The sources are compiled to bytecode first, as an installed (not editable) package would be:
# where PYTHONDONTWRITEBYTECODE is set, every command would otherwise compile them again at its
# start (about 0.15 s a command here).
bench: env system-deps
	$(BIN)/python -m compileall -q src
	$(BIN)/python bench/run.py

lint: env
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

lock:
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev --strip-extras -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info zaplecze.db zaplecze.db-wal zaplecze.db-shm demo-book \
	  node_modules src/zaplecze/interfaces/web/static/vendor test-artifacts
