# Quick start: `make run` (whole pipeline) and `make test` (test suite). Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin
CORES ?= 4
SHARED ?= ../shared

.PHONY: run record test test-fast lint bench report sweep gpu-check cluster-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) all
	$(BIN)/snakemake --report results/report.html
	$(MAKE) --no-print-directory record

# Record data/ and results/ as they are in dvc.lock and DVC's cache (`dvc commit`, no job runs): after a
# Snakemake run outside `dvc repro`, dvc.lock does not describe them, and `dvc exp run` (which first
# restores what dvc.lock records) would delete them and rerun the whole grid. `make run` and `make sweep`
# end with it; run it after `snakemake ...` yourself (docs/dvc.md). Then `git add dvc.lock`.
record:
	$(BIN)/dvc commit --force

test: lint
	$(BIN)/python -m pytest -q

# The edit loop: every test but the end-to-end ones marked `slow` (Snakemake, DVC, kills, search_all);
# `make test` (CI) runs them all.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# Style and workflow checks, run before the tests by `make test` (and so by CI).
lint: $(STAMP)
	$(BIN)/ruff format --check pipeline tests benchmarks workflow/scripts
	$(BIN)/ruff check pipeline tests benchmarks workflow/scripts
	$(BIN)/snakefmt --check workflow
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --lint --quiet all

# `run` plus the config's sweeps: every cell per seed, a heatmap and a table per sweep, all in the report
# (a report of both targets needs both built; after `make run` only the sweeps' jobs run).
sweep: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) -- all sweep
	$(BIN)/snakemake --report results/report.html -- all sweep
	$(MAKE) --no-print-directory record

# The CUDA path in one run (benchmarks/gpu.py, under 5 minutes on one GPU); exit status 3 without CUDA.
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu.py

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

bench: $(STAMP)
	$(BIN)/python benchmarks/align.py
	$(BIN)/python benchmarks/train.py --threads 1
	$(BIN)/python benchmarks/workflow.py --cores $(CORES)

# The SLURM profile against a real scheduler (root; docs/cluster.md): a single-node cluster from
# $(SHARED)/tools unless `sinfo` already answers (then stopped again afterwards), then tests/test_slurm.py.
# The script sizes the node with nproc, which OMP_NUM_THREADS=1 would shrink to one CPU, and leaves its
# test job's slurm-N.out in the folder it runs in.
cluster-check: $(STAMP)
	@set -e; started=; \
	if ! sinfo >/dev/null 2>&1; then (cd $${TMPDIR:-/tmp} && env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT bash $(abspath $(SHARED))/tools/slurm-single-node.sh >/dev/null); started=1; sinfo >/dev/null; fi; \
	status=0; $(BIN)/python -m pytest -q -rP tests/test_slurm.py || status=$$?; \
	if [ -n "$$started" ]; then bash $(SHARED)/tools/slurm-single-node-stop.sh; fi; exit $$status
