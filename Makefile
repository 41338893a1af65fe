# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-sqlite test-postgres bench chaos install install-test browser screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(PY)
	$(PIP) install --quiet -e ".[redis,postgres]"

install-test: $(PY)
	$(PIP) install --quiet -e ".[test,bench]"

# Debian's Chromium for the browser tests; they skip with one clear line where it cannot be had.
browser:
	@scripts/ensure-chromium

# Ports and everything else the demo reads from the environment: README, "The demo".
demo: install
	$(PY) -m demo_project.run

# Leaves the work tree as it found it (the suite fails if a test changes a tracked file).
test: install-test browser
	$(PY) scripts/run_tests.py

test-sqlite: install-test
	$(PY) -m pytest

test-postgres: install-test
	D7SMS_TEST_DATABASE=postgres $(PY) -m pytest

# Refreshes the README's screenshots (docs/screenshots/); `make test` writes its own to artifacts/.
screenshots: install-test browser
	D7SMS_SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest -m browser tests/test_browser*.py

# wrk drives the webhook benchmark; ensure-wrk installs it or says up front what is used instead.
bench: install-test
	@scripts/ensure-wrk
	$(PY) bench/run_all.py

# Kill -9, a 504-answering gateway and 8 callers at once, counted at the sandbox; a few
# minutes. Options: make chaos CHAOS="--quick --only race --seed 42" (see chaos/run.py).
chaos: install-test
	$(PY) -m chaos.run $(CHAOS)

clean:
	rm -rf $(VENV) .demo build dist *.egg-info artifacts
