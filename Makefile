# The two commands of the README:
#   make reproduce   # set up .venv, then run every experiment and build the report
#   make test        # set up .venv, then lint and run the test suite
# Both work on a fresh machine that has Python 3.11 (or newer) and nothing else.
# Before and after a change:
#   make snapshot NAME=before   # keep the current results (small files; weights by hash)
#   make compare                # the newest snapshot against results/ (or A=... B=...)
#   make runs                   # list the runs, parameters and headline metrics (DIR=...)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= all
SNAKEMAKE_ARGS ?=
NAME ?=
A ?=
B ?=
DIR ?=
COMPARE_ARGS ?=

.PHONY: reproduce test venv lint dryrun report bench clean-venv snapshot compare runs

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[workflow,test]'
	touch $@

reproduce: venv
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) $(SNAKEMAKE_ARGS)
	$(BIN)/snakemake --profile profiles/default --report results/report.html

lint: venv
	$(BIN)/ruff check src tests workflow/scripts benchmarks

dryrun: venv
	$(BIN)/snakemake -n --quiet rules

test: lint
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python benchmarks/run.py

snapshot: venv
	$(BIN)/python -m nnflow snapshot $(NAME)

compare: venv
	$(BIN)/python -m nnflow compare $(A) $(B) $(COMPARE_ARGS)

runs: venv
	$(BIN)/python -m nnflow runs $(DIR)

clean-venv:
	rm -rf $(VENV)
