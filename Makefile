# graphaudit: `make test` and `make demo` set up what they need on a fresh machine:
#   - a virtualenv in $(VENV) with graphaudit installed editable with its dev extras
#     (re-installed only when pyproject.toml changes), and
#   - Graphviz's `dot` (apt-get, when we are root or sudo works without a password;
#     otherwise a note on how to install it: JSON and DOT output work without it,
#     and the tests that render pictures skip).

PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_ARGS ?=
PYTEST_ARGS ?=

GRAPHVIZ_HINT := install it with 'apt-get install graphviz' (Debian/Ubuntu) or 'brew install graphviz' (macOS)

.DEFAULT_GOAL := help
.PHONY: help test demo bench venv graphviz clean

help:
	@echo "make test   set up .venv and Graphviz if needed, then run the test suite"
	@echo "make demo   set up .venv and Graphviz if needed, then run 'graphaudit demo' (writes graphaudit-out/)"
	@echo "make clean  remove .venv, graphaudit-out/ and caches"
	@echo "variables: PYTHON=$(PYTHON)  PYTEST_ARGS=...  DEMO_ARGS=..."

test: $(STAMP) graphviz
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

demo: $(STAMP) graphviz
	$(VENV)/bin/graphaudit demo $(DEMO_ARGS)

bench: $(STAMP) graphviz
	$(VENV_PYTHON) benchmarks/run_all.py

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install the venv module (apt-get install python3-venv), or pass PYTHON=/path/to/python3" >&2; \
	  rm -rf $(VENV); exit 1; }
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@

# Graphviz is a system package: install it when we can, say how when we cannot, and go on.
graphviz:
	@if command -v dot >/dev/null 2>&1; then \
	  exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else sudo=none; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$sudo" != none ]; then \
	  echo "Graphviz 'dot' not found: installing it with apt-get"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null || \
	  echo "note: installing Graphviz failed; PNG/SVG output and the tests that render will be skipped ($(GRAPHVIZ_HINT))"; \
	else \
	  echo "note: Graphviz 'dot' not found; PNG/SVG output and the tests that render will be skipped; $(GRAPHVIZ_HINT)"; \
	fi

clean:
	rm -rf $(VENV) graphaudit-out .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
