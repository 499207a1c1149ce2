# graphaudit: `make test` and `make demo` set up what they need on a fresh machine:
#   - a virtualenv in $(VENV) with graphaudit installed editable with its dev extras
#     (re-installed only when pyproject.toml changes): JAX, torch, and PyMC with the
#     PyTensor it pins (2.38 today),
#   - for `make test`, a second virtualenv in $(VENV_PYTENSOR3) with the newest PyTensor 3
#     and no other framework, where the PyTensor tests run again ($(PYTENSOR3_TESTS)):
#     the PyTensor front-end must work on both lines users have (PyMC pins 2.x), and
#   - Graphviz's `dot` (apt-get, when we are root or sudo works without a password;
#     otherwise a note on how to install it: JSON and DOT output work without it,
#     and the tests that render pictures skip), and
#   - Chromium, the same way: the tests that open the HTML report in a headless browser
#     (through Playwright, a dev extra) skip without it, and `make demo` writes its reports
#     without the screenshots, says so in one line, and succeeds.

PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV_PYTENSOR3 ?= .venv-pytensor3
STAMP_PYTENSOR3 := $(VENV_PYTENSOR3)/.installed
PYTENSOR3 ?= pytensor>=3,<4
PYTENSOR3_TESTS ?= tests/frontends/pytensor tests/cli
DEMO_ARGS ?=
DEMO_OUT ?= graphaudit-out
ZOO_ARGS ?=
PYTEST_ARGS ?=
# What `make test-fast` runs: every test but those marked slow, subprocess or browser (markers: pyproject.toml).
FAST_TIER := not slow and not subprocess and not browser

# apt-get waits up to two minutes for the package lock another install holds, instead of giving up at once.
# (The lock of the package lists is not waited for: when another 'apt-get update' holds it, ours fails,
# and the install goes on with the lists that are there.)
APT_GET := env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120
GRAPHVIZ_HINT := install it with 'apt-get install graphviz' (Debian/Ubuntu) or 'brew install graphviz' (macOS)

.DEFAULT_GOAL := help
.PHONY: help test test-fast demo bench zoo venv graphviz chromium clean

help:
	@echo "make test   set up .venv, .venv-pytensor3, Graphviz and Chromium if needed, then the test suite, and its PyTensor tests again on PyTensor 3"
	@echo "make test-fast  set up .venv and Graphviz if needed, then the tests not marked slow, subprocess or browser (-m '$(FAST_TIER)')"
	@echo "make demo   set up .venv, Graphviz and Chromium if needed, then run 'graphaudit demo' (writes $(DEMO_OUT)/:"
	@echo "            report.html and its screenshots, a 50k-node report, the growth plot of a deep chain)"
	@echo "make zoo    set up .venv, then audit the PyTorch model zoo (benchmarks/zoo.py; ZOO_ARGS='--models bert,resnet')"
	@echo "make clean  remove .venv, .venv-pytensor3, graphaudit-out/ and caches"
	@echo "variables: PYTHON=$(PYTHON)  PYTEST_ARGS=...  DEMO_ARGS=...  DEMO_OUT=$(DEMO_OUT)  PYTENSOR3='$(PYTENSOR3)'"

test: $(STAMP) $(STAMP_PYTENSOR3) graphviz chromium
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)
	@echo "--- the PyTensor tests again, with the newest PyTensor 3 ($(VENV_PYTENSOR3)):"
	$(VENV_PYTENSOR3)/bin/python -m pytest $(PYTEST_ARGS) $(PYTENSOR3_TESTS)

# The same .venv; no PyTensor-3 rerun, and no Chromium: the browser tests are left out.
test-fast: $(STAMP) graphviz
	$(VENV_PYTHON) -m pytest -m "$(FAST_TIER)" $(PYTEST_ARGS)

# Without a browser to drive, bench_html.py still writes the reports and says in one line what it skipped.
demo: $(STAMP) graphviz chromium
	$(VENV)/bin/graphaudit demo --out $(DEMO_OUT) $(DEMO_ARGS)
	$(VENV)/bin/graphaudit growth deep_chain --depths 4,8,16,32,64 --png $(DEMO_OUT)/growth.png --quiet
	$(VENV_PYTHON) benchmarks/bench_html.py --out $(DEMO_OUT) --runs 1

bench: $(STAMP) graphviz
	$(VENV_PYTHON) benchmarks/run_all.py

zoo: $(STAMP)
	$(VENV_PYTHON) benchmarks/zoo.py $(ZOO_ARGS)

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install the venv module (apt-get install python3-venv), or pass PYTHON=/path/to/python3" >&2; \
	  rm -rf $(VENV); exit 1; }
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@

$(STAMP_PYTENSOR3): pyproject.toml
	@test -x $(VENV_PYTENSOR3)/bin/python || $(PYTHON) -m venv $(VENV_PYTENSOR3) || { \
	  echo "error: '$(PYTHON) -m venv' failed (see above)" >&2; rm -rf $(VENV_PYTENSOR3); exit 1; }
	$(VENV_PYTENSOR3)/bin/python -m pip install --disable-pip-version-check -e . pytest hypothesis '$(PYTENSOR3)'
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
	  $$sudo $(APT_GET) update -qq || echo "note: apt-get update failed; installing from the package lists there are"; \
	  $$sudo $(APT_GET) install -y -qq graphviz >/dev/null || \
	  echo "note: installing Graphviz failed; PNG/SVG output and the tests that render will be skipped ($(GRAPHVIZ_HINT))"; \
	else \
	  echo "note: Graphviz 'dot' not found; PNG/SVG output and the tests that render will be skipped; $(GRAPHVIZ_HINT)"; \
	fi

# Chromium, for the browser tests and the report's screenshots: installed like Graphviz.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else sudo=none; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$sudo" != none ]; then \
	  echo "Chromium not found: installing it with apt-get"; \
	  $$sudo $(APT_GET) update -qq || echo "note: apt-get update failed; installing from the package lists there are"; \
	  $$sudo $(APT_GET) install -y -qq chromium >/dev/null || \
	  echo "note: installing Chromium failed; the browser tests and the demo's screenshots will be skipped (apt-get install chromium)"; \
	else \
	  echo "note: Chromium not found; the browser tests and the demo's screenshots will be skipped; install chromium, or run '$(VENV_PYTHON) -m playwright install chromium'"; \
	fi

clean:
	rm -rf $(VENV) $(VENV_PYTENSOR3) graphaudit-out .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
