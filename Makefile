# meterhub: `make demo` runs the hub on the embedded SQLite default; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test lint bench clean browser screenshots

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/meterhub demo

CHROMIUM ?= /usr/bin/chromium

# The dashboard's tests drive Debian's chromium; install it when it is missing and we may.
browser:
	@if [ -x "$(CHROMIUM)" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the dashboard's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "the dashboard's browser tests need chromium: run 'sudo apt-get install chromium', then make test" >&2; \
		exit 1; \
	fi

test: $(STAMP) browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Pictures of the dashboard for the README, taken by its browser tests.
screenshots: $(STAMP) browser
	METERHUB_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q $(wildcard tests/web/test_*browser*.py)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
