# The two commands of the README:
#   make reproduce   # set up .venv, then run every experiment and build the report
#   make test        # set up .venv, then lint and run the test suite
# Both work on a fresh machine that has Python 3.11 (or newer) and nothing else.
# .venv holds exactly the locked environment (requirements/lock.txt, every file checked
# against its sha256) plus nnflow itself from this checkout; `make venv LOCK=` installs
# from pyproject.toml's ranges instead. `make lock` recompiles the lock (see README).
# Before and after a change:
#   make snapshot NAME=before   # keep the current results (small files; weights by hash)
#   make compare                # the newest snapshot against results/ (or A=... B=...)
#   make runs                   # list the runs, parameters and headline metrics (DIR=...)
# While `make reproduce` runs, each job prints progress lines to the terminal (run, epoch
# i/N, metric, ETA; NNFLOW_PROGRESS=0 silences them, =1 keeps them when output is not a
# terminal; NNFLOW_PROGRESS_INTERVAL=seconds); it ends with the report's path and the
# headline numbers (`python -m nnflow headline`).

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

LOCK   ?= requirements/lock.txt
# `make lock` only: uv compiles the lock; it lives in its own venv, never in .venv.
UV_VERSION ?= 0.13.9
LOCK_TOOLS ?= .venv-lock
UPGRADE ?=
# `make container` only: the Apptainer image of requirements/lock.txt, named by its digest.
CONTAINER = $(shell PYTHONPATH=src $(PYTHON) -m nnflow.lockfile image)
APPTAINER_BUILD_ARGS ?=

.PHONY: reproduce test venv lint dryrun report bench clean-venv lock container snapshot compare runs

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK) requirements/install-locked.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(strip $(LOCK)),)
	@echo "installing from pyproject.toml's ranges, NOT the lock: whatever versions are newest today"
	$(BIN)/python -m pip install --quiet -e '.[workflow,test]'
else
	sh requirements/install-locked.sh $(BIN)/python $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
endif
	touch $@

reproduce: venv
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) $(SNAKEMAKE_ARGS)
	$(BIN)/snakemake --profile profiles/default --report results/report.html
	$(BIN)/python -m nnflow headline --report results/report.html

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

# Recompile requirements/lock.txt from pyproject.toml: keeps every pin that still fits
# (uv prefers the versions already in the lock); `make lock UPGRADE=1` moves every
# distribution to its newest release. Then stamps the digest of the requirements into
# the lock and checks the two agree.
$(LOCK_TOOLS)/.uv-$(UV_VERSION):
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION) packaging==25.0
	touch $@

lock: $(LOCK_TOOLS)/.uv-$(UV_VERSION)
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra workflow --extra test \
	    --universal --python-version 3.11 --generate-hashes \
	    --custom-compile-command 'make lock' --quiet $(if $(UPGRADE),--upgrade) --output-file $(LOCK)
	PYTHONPATH=src $(LOCK_TOOLS)/bin/python -m nnflow.lockfile stamp $(LOCK)

# Build the Apptainer image of the locked environment (needs apptainer and debootstrap,
# and root: `sudo make container`, or APPTAINER_BUILD_ARGS=--fakeroot); the Snakefile's
# `container:` names this file.
container:
	apptainer build $(APPTAINER_BUILD_ARGS) $(CONTAINER) container/nnflow.def
