# hwnas: one entry point for set-up, the book and the tests (GNU make).
#
#   make book    create .venv if needed, install, execute every chapter once, build _build/html
#   make test    same set-up, then lint (ruff), unit/property tests, notebooks (nbval), book build and
#                browser test (skips when Chromium is absent: `make browser` installs it, as root)
#   make lab     open the course in JupyterLab (jupytext pairing: a chapter's .py opens as a notebook)
#   make clean   remove build outputs and caches (keeps .venv; `make distclean` removes it)

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

PYTHON ?= python3.11
VENV ?= $(ROOT)/.venv
BIN := $(VENV)/bin
# Written after a successful install; redone when requirements.txt, constraints.txt or
# pyproject.toml change. constraints.txt pins every package of the test environment.
STAMP := $(VENV)/.hwnas-installed
CONSTRAINTS := $(ROOT)/constraints.txt

# ---------------------------------------------------------------- data & environment
# Recorded real Bybit klines: use ../shared/data/bybit when it exists (a checkout next
# to the shared folder, and CI); a value from the environment or the command line wins.
HWNAS_BYBIT_DIR ?= $(abspath $(wildcard $(ROOT)/../shared/data/bybit))
ifneq ($(strip $(HWNAS_BYBIT_DIR)),)
export HWNAS_BYBIT_DIR
endif

# On CI never try the network; elsewhere the loaders may fetch live data.
ifdef CI
HWNAS_OFFLINE ?= 1
endif
ifdef HWNAS_OFFLINE
export HWNAS_OFFLINE
endif

# Unit tests draw off-screen. Notebook kernels must NOT inherit MPLBACKEND: ipykernel
# only selects its inline backend when MPLBACKEND is unset, and with Agg the executed
# notebooks (and so the book) would contain no figures.
TEST_ENV := MPLBACKEND=Agg PATH="$(BIN):$$PATH"
KERNEL_ENV := env -u MPLBACKEND PATH="$(BIN):$$PATH"

# Extra arguments: make test PYTEST_ARGS="-x -k flops"; XDIST="" runs unit tests serially.
PYTEST_ARGS ?=
XDIST ?= -n 2
NOTEBOOKS := $(sort $(wildcard $(ROOT)/notebooks/*.ipynb))

# Prints what runs and how many seconds it took: $(call timed,label,command)
timed = @start=$$(date +%s); echo "==> $(1)"; $(2); echo "==> $(1): done in $$(( $$(date +%s) - start )) s"

.PHONY: help install book test lint test-unit test-notebooks test-book browser lab sync execute clean distclean env

help:
	@echo "make book        build the book into _build/html (creates .venv on first use)"
	@echo "make test        lint, unit + property tests, notebooks (nbval), book build and browser test"
	@echo "make lint        ruff (lint rules and import order; pyproject.toml [tool.ruff])"
	@echo "make browser     install Chromium for the browser test (Debian, as root; CI runs it)"
	@echo "make lab         open the course in JupyterLab (.py twins open as notebooks)"
	@echo "make sync        jupytext --sync every notebook with its .py twin"
	@echo "make execute     re-execute every notebook in place (refreshes committed outputs)"
	@echo "make clean       remove _build and caches; make distclean also removes .venv"
	@echo "make env         show the data settings the targets export"

# ---------------------------------------------------------------- set-up
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(ROOT)/requirements.txt $(CONSTRAINTS) $(ROOT)/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -c $(CONSTRAINTS) -r $(ROOT)/requirements.txt -e $(ROOT)
	@touch $@

install: $(STAMP)

env:
	@echo "HWNAS_BYBIT_DIR=$${HWNAS_BYBIT_DIR-}"
	@echo "HWNAS_OFFLINE=$${HWNAS_OFFLINE-}"
	@echo "HWNAS_CACHE_DIR=$${HWNAS_CACHE_DIR-} (empty: ~/.cache/hwnas/klines)"

# ---------------------------------------------------------------- book
# tools/build_book.py executes each chapter once (nbclient, timed: the table of
# per-chapter times is printed and kept in _build/chapter_times.txt), then builds
# with Sphinx's own execution off and `-W -n --keep-going`, so a warning fails it.
book: $(STAMP)
	$(call timed,book (executes every chapter once),cd $(ROOT) && $(KERNEL_ENV) $(BIN)/python tools/build_book.py --fresh)
	@echo "Book: $(ROOT)/_build/html/index.html"

# ---------------------------------------------------------------- JupyterLab
lab: $(STAMP)
	cd $(ROOT) && $(KERNEL_ENV) $(BIN)/jupyter lab --notebook-dir=$(ROOT) $(if $(filter 0,$(shell id -u)),--allow-root,)

# ---------------------------------------------------------------- tests
test: $(STAMP)
	@# --keep-going: every phase reports even when an earlier one (lint included) failed;
	@# make still exits non-zero. Nothing here installs system packages (see `make browser`).
	$(MAKE) --no-print-directory --keep-going lint test-unit test-notebooks test-book

# ruff: pycodestyle, pyflakes, import order, bugbear, pyupgrade over hwnas/, tests/, the
# chapters' .py twins, benchmarks/ and tools/ (the .ipynb are checked through their twins).
lint: $(STAMP)
	$(call timed,1/4 lint (ruff),cd $(ROOT) && $(BIN)/ruff check --output-format concise .)

test-unit: $(STAMP)
	$(call timed,2/4 unit and property tests,cd $(ROOT) && $(TEST_ENV) $(BIN)/python -m pytest tests/ $(XDIST) $(PYTEST_ARGS))

# nbval executes each chapter; tests/nbval_capture.py keeps the executed copies in
# _build/executed/ so that the book build of phase 4 does not execute them again.
test-notebooks: $(STAMP)
ifeq ($(NOTEBOOKS),)
	@echo "==> 3/4 notebooks: no notebooks/*.ipynb yet, nothing to execute"
else
	$(call timed,3/4 notebooks (nbval-lax),cd $(ROOT) && $(KERNEL_ENV) PYTHONPATH=$(ROOT)/tests $(BIN)/python -m pytest --nbval-lax notebooks/ -p nbval_capture $(PYTEST_ARGS))
endif

test-book: $(STAMP)
	$(call timed,4/4 book build and browser test,cd $(ROOT) && $(KERNEL_ENV) HWNAS_RUN_BOOK=1 $(BIN)/python -m pytest tests/test_book_build.py -m book $(PYTEST_ARGS))

# The browser test drives Debian's chromium with chromedriver. `make browser` installs
# them when missing and we are root with apt-get (CI runs it before `make test`); `make
# test` never installs system packages: without Chromium the browser test skips and says why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "==> browser: $$(chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "==> browser: installing chromium and chromium-driver (Debian packages)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "==> browser: install failed; the browser test will skip"; \
	else \
	  echo "==> browser: no chromium and no root apt-get; the browser test will skip"; \
	fi

# ---------------------------------------------------------------- notebooks
sync: $(STAMP)
	cd $(ROOT) && for f in notebooks/*.py; do [ -e "$$f" ] || continue; $(BIN)/jupytext --sync "$$f"; done

# tools/stamp.py: sync each .py twin into its .ipynb, execute it in place and record the
# sha256 of the chapter's .py and of hwnas/**/*.py in its metadata (tests/test_outputs.py
# checks the committed stamps against the sources). CHAPTERS="04_latency_lut" limits it.
CHAPTERS ?=
execute: $(STAMP)
	cd $(ROOT) && $(KERNEL_ENV) $(BIN)/python tools/stamp.py $(CHAPTERS)

# ---------------------------------------------------------------- cleaning
clean:
	rm -rf $(ROOT)/_build $(ROOT)/.jupyter_cache $(ROOT)/.pytest_cache $(ROOT)/.hypothesis $(ROOT)/.ruff_cache $(ROOT)/.mypy_cache
	find $(ROOT) -path $(VENV) -prune -o -type d \( -name __pycache__ -o -name .ipynb_checkpoints -o -name '*.egg-info' \) -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV)
