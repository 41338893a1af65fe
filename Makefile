# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-sqlite test-postgres bench chaos install install-test browser clean

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

demo: install
	$(PY) -m demo_project.run

test: install-test browser
	$(PY) scripts/run_tests.py

test-sqlite: install-test
	$(PY) -m pytest

test-postgres: install-test
	D7SMS_TEST_DATABASE=postgres $(PY) -m pytest

bench: install-test
	$(PY) bench/run_all.py

# Kill -9, a 504-answering gateway and 8 callers at once, counted at the sandbox; a few
# minutes. Options: make chaos CHAOS="--quick --only race --seed 42" (see chaos/run.py).
chaos: install-test
	$(PY) -m chaos.run $(CHAOS)

clean:
	rm -rf $(VENV) .demo build dist *.egg-info
