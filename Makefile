# The two commands of the README: `make run` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
QUERY ?= how do I parse command line arguments
# torch==2.13.0 is the CPU build these machines carry; the constraint keeps pip from choosing a CUDA build.
PIP_INSTALL := $(BIN)/pip install --quiet -c .ci/constraints.txt

.PHONY: setup setup-demo browser run search lint test test-fast bench

# `make run` and `make search` install the core and the demo only; `make test` adds every extra
# (fine-tuning, service, Ray, OpenVINO, the test and benchmark tools).
$(VENV)/.installed-demo: pyproject.toml .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[demo]'
	touch $@

$(VENV)/.installed: pyproject.toml .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[finetune,demo,serve,test,bench,ray,openvino]'
	touch $@ $(VENV)/.installed-demo

setup-demo: $(VENV)/.installed-demo

setup: $(VENV)/.installed

# Debian's Chromium for the browser tests (Playwright drives it; no browser download at run time), and
# curl for the README's service example, which a test runs.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium curl >/dev/null; }

# Build (first time) or reuse the index of the Python standard library docs, and serve the demo on
# http://127.0.0.1:7860/ (Ctrl+C stops it).
run: setup-demo
	$(BIN)/dualsearch demo

# The same index, one query answered in the terminal.
search: setup-demo
	$(BIN)/dualsearch search default "$(QUERY)" -k 5

# Style gates: ruff's lint rules and its formatter (pyproject.toml [tool.ruff]).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Lint, then every test: unit, docstring examples, real towers, BEIR data, browser.
test: setup browser lint
	$(BIN)/python -m pytest

# Every benchmark but fine-tuning (about 1-2 hours on 2 cores), then docs/benchmarks.md from results/*.json.
bench: setup
	$(BIN)/python -m bench all --skip finetune

# Unit tests only (under a minute): nothing marked slow (real towers, training, exports, Ray, servers,
# wheels), data or browser.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not data and not browser"
