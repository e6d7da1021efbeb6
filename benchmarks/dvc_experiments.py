"""Benchmark: `dvc exp run` after `make run`, against `make run` itself, in a fresh git copy.

    python benchmarks/dvc_experiments.py [--configfile config/test.yaml] [--keep DIR]

Copies the checkout (tracked and untracked, not ignored files) to a temporary folder made a git repository
(config/config.yaml overlaid with the --configfile overlays, as the end-to-end test does), then times, in
this order: `make run` (the grid through Snakemake, the report, `make record`), `dvc exp run` (nothing
changed: seconds, no training), and `dvc exp run -S` on one experiment's α (its runs, one per seed, and
the tables and figures using it). Prints each wall-clock time, its ratio to `make run`, and the run folders
whose model.pt each DVC experiment rewrote. Figures: docs/dvc.md, "Trying configurations with DVC
experiments".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.devtools.repository import copy_repository  # noqa: E402
from pipeline.grid import load_config  # noqa: E402

BIN = Path(sys.executable).parent
ALPHA = "experiments={alpha_0.5: {loss.alpha: 0.6}}"  # one experiment's override, through params.yaml


def timed(command: list[str], root: Path) -> float:
    """Wall-clock seconds of one command in `root` (with the project's environment); raises on failure."""
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def model_times(root: Path) -> dict[Path, float]:
    """Modification time of every run's model.pt."""
    return {path: path.stat().st_mtime for path in (root / "results" / "runs").rglob("model.pt")}


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", action="append", default=[], help="overlay(s) of config/config.yaml")
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="hycon-dvc-exp-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    copy_repository(REPO, root)
    if args.configfile:
        config = load_config([REPO / "config" / "config.yaml", *(REPO / path for path in args.configfile)])
        (root / "config" / "config.yaml").write_text(
            yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        )
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fresh clone"]):
        subprocess.run([*git, *command], cwd=root, check=True, capture_output=True)
    # The venv exists already: `-o` keeps make from (re)installing it; BIN points make at this interpreter's.
    make_run = timed(["make", "-o", ".venv/.installed", "run", f"BIN={BIN}"], root)
    before = model_times(root)
    as_is = timed([str(BIN / "dvc"), "exp", "run", "-n", "as-is"], root)
    unchanged = model_times(root) == before
    for command in (["add", "dvc.lock"], ["commit", "-q", "-m", "results"]):
        subprocess.run([*git, *command], cwd=root, check=True, capture_output=True)
    alpha = timed([str(BIN / "dvc"), "exp", "run", "-n", "alpha-0.6", "-S", ALPHA], root)
    retrained = sorted(
        str(p.parent.relative_to(root / "results/runs"))
        for p, t in model_times(root).items()
        if t != before[p]
    )
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; overlays: {args.configfile or 'none'}"
    )
    print(f"make run:                          {make_run:8.1f} s")
    print(
        f"dvc exp run (nothing changed):     {as_is:8.1f} s  ({as_is / make_run:.3f} of make run)"
        f"; models rewritten: {'none' if unchanged else 'SOME'}"
    )
    print(f"dvc exp run -S '{ALPHA}': {alpha:8.1f} s  ({alpha / make_run:.3f} of make run)")
    print(f"  models rewritten: {', '.join(retrained)}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
