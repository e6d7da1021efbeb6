#!/bin/sh
# Run Snakemake for a DVC stage (dvc.yaml): DVC decides *whether* a stage runs (content hashes of its
# deps and params), Snakemake decides *which jobs* of it run (its DAG and its job metadata).
#
# The friction between the two: `dvc checkout`, `dvc pull` and `dvc exp apply` rewrite outputs with
# fresh modification times in arbitrary order, and Snakemake reruns a job whose input is newer than its
# output. Two settings make Snakemake judge by content instead:
#  - --max-checksum-file-size 64GB: Snakemake records the checksum of every input of a finished job
#    (default: only files under 1 MB) and, when an input is newer than the output, reruns only if the
#    checksum differs. Snakemake 9 applies this check even without the mtime trigger, so the HDF5 data
#    and features (well over 1 MB) must be checksummed for a checkout not to retrain everything.
#  - --rerun-triggers without mtime: the documented way to say "timestamps alone are no reason"
#    (newer Snakemake releases may make the mtime trigger ignore checksums).
# Real changes still rerun: every job carries what defines its output in its params (resolved settings,
# data and code fingerprints; workflow/rules/common.smk), and DVC versions Snakemake's job metadata
# (.snakemake/metadata) with the outputs, so that the comparison also works on a fresh clone.
#
# DVC does not activate environments: use the active virtualenv's Snakemake, else the project's .venv,
# else the one on PATH.
set -eu
if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/snakemake" ]; then
    snakemake="$VIRTUAL_ENV/bin/snakemake"
elif [ -x .venv/bin/snakemake ]; then
    snakemake=.venv/bin/snakemake
else
    snakemake=snakemake
fi
exec "$snakemake" "$@" --max-checksum-file-size 64GB --rerun-triggers params input code software-env
