"""Benchmark: the whole default workflow from scratch, `snakemake --cores 4 all` in a fresh copy.

    python benchmarks/workflow.py [--cores 4] [--configfile config/test.yaml] [--keep DIR]

Copies the checkout (tracked and untracked, not ignored files) to a temporary folder, so nothing cached
here (data, features, runs, Snakemake metadata) is reused, runs the target, and prints the wall-clock
minutes, the number of jobs, the summed job seconds per rule from the rules' benchmark files
(results/benchmarks/), and the size of `results/` by kind of file. The requirements it checks: under 20
minutes on a 2-core CPU machine, `results/` under 150 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.devtools.repository import copy_repository  # noqa: E402

BIN = Path(sys.executable).parent


def seconds_per_rule(root: Path) -> dict[str, tuple[int, float]]:
    """rule -> (jobs, summed wall seconds) from Snakemake's benchmark files."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for path in (root / "results" / "benchmarks").rglob("*.tsv"):
        rule = path.relative_to(root / "results" / "benchmarks").parts[0]
        totals[rule][0] += 1
        totals[rule][1] += float(pd.read_csv(path, sep="\t")["s"].iloc[-1])
    return {rule: (int(n), s) for rule, (n, s) in sorted(totals.items())}


def results_size(root: Path) -> dict[str, tuple[int, float]]:
    """File name (model.pt, embeddings.npz, ...; "other" for the rest) -> (files, MB) under results/."""
    kinds = {"model.pt", "embeddings.npz", "predictions.csv"}
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for path in (root / "results").rglob("*"):
        if path.is_file():
            kind = path.name if path.name in kinds else "other"
            totals[kind][0] += 1
            totals[kind][1] += path.stat().st_size / 1e6
    return {kind: (int(n), mb) for kind, (n, mb) in sorted(totals.items())}


def main() -> int:
    """Run the benchmark and print its figures; non-zero exit when the workflow fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--configfile", action="append", default=[], help="overlay(s) of config/config.yaml")
    parser.add_argument("--target", default="all")
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="hycon-workflow-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    copy_repository(REPO, root)
    command = [str(BIN / "snakemake"), args.target, "--cores", str(args.cores), "--quiet", "rules"]
    for overlay in args.configfile:
        command += ["--configfile", str((REPO / overlay).resolve())]
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    minutes = (time.perf_counter() - start) / 60
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        print(f"workflow FAILED after {minutes:.1f} min (folder kept: {root})")
        return 1
    cpus = os.cpu_count()
    print(f"snakemake {args.target} --cores {args.cores} from scratch, {cpus} CPUs: {minutes:.1f} min")
    print(f"{'rule':<16}{'jobs':>6}{'job seconds':>14}")
    for rule, (jobs, seconds) in seconds_per_rule(root).items():
        print(f"{rule:<16}{jobs:>6}{seconds:>14.1f}")
    sizes = results_size(root)
    print(f"results/: {sum(mb for _, mb in sizes.values()):.1f} MB")
    print(f"{'file':<16}{'files':>6}{'MB':>14}")
    for kind, (files, mb) in sizes.items():
        print(f"{kind:<16}{files:>6}{mb:>14.1f}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
