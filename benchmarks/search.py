"""Benchmark: the paper's random search against TPE + median pruning, same experiment, same budget.

    python benchmarks/search.py --data S/synthetic.h5 --features S/synthetic-minilm.h5 --out S/bench

Runs (or resumes: each study is a journal) the search of experiment `hycon` of config/config.yaml with
`--trials` trials per sampler, in `<out>/random` and `<out>/tpe`, and prints one Markdown table: after each
trial, the best validation MAE reached and the wall time spent so far, per sampler, then the totals (trials
pruned, epochs trained). Wall time is the sum of the trials' own times as the study recorded them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.grid import load_config, search_spec  # noqa: E402
from pipeline.search import SAMPLERS, run_search  # noqa: E402


def progress(trials_csv: Path) -> pd.DataFrame:
    """Per trial (in order): state, epochs trained, best validation MAE so far, cumulative seconds."""
    frame = pd.read_csv(trials_csv).sort_values("trial")
    frame = frame[frame["state"] != "fail"].reset_index(drop=True)
    mae = frame["valid_mae"].where(frame["state"] == "complete")
    return pd.DataFrame(
        {
            "state": frame["state"],
            "epochs": frame["epochs"],
            "best": mae.cummin().ffill(),
            "seconds": frame["seconds"].cumsum(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--features", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--experiment", default="hycon")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = search_spec(load_config([REPO / "config" / "config.yaml"]), args.experiment)
    runs = {}
    for sampler in SAMPLERS:
        out = args.out / sampler
        run_search(spec, args.trials, args.data, out, args.features, sampler=sampler, device="cpu")
        runs[sampler] = progress(out / "trials.csv")
    print("| trial | " + " | ".join(f"{s}: best valid MAE | {s}: time (s)" for s in SAMPLERS) + " |")
    print("|---" * (1 + 2 * len(SAMPLERS)) + "|")
    for k in range(args.trials):
        cells = []
        for sampler in SAMPLERS:
            row = runs[sampler].iloc[k]
            mark = " (pruned)" if row["state"] == "pruned" else ""
            cells += [f"{row['best']:.4f}{mark}", f"{row['seconds']:.0f}"]
        print(f"| {k + 1} | " + " | ".join(cells) + " |")
    for sampler, frame in runs.items():
        pruned = int((frame["state"] == "pruned").sum())
        print(
            f"{sampler}: {len(frame)} trials, {pruned} pruned, {int(frame['epochs'].sum())} epochs, "
            f"{frame['seconds'].iloc[-1]:.0f} s, best validation MAE {frame['best'].iloc[-1]:.4f}"
        )


if __name__ == "__main__":
    main()
