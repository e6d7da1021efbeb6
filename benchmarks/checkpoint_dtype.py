"""Benchmark: `model.pt` in float32 against float16 on the same runs: file size and what the metrics lose.

    python benchmarks/checkpoint_dtype.py --data data/aligned/synthetic.h5 \
        --features data/features/synthetic-minilm.h5 --out /tmp/dtype [--experiments hycon fusion_tensor ...]

Trains each experiment of config/config.yaml (its settings as the workflow resolves them, its seeds unless
`--seeds`) once per `train.checkpoint_dtype`. CPU training is deterministic and the key does not enter
training, so both runs follow one trajectory (checked: same history) and differ only in how `model.pt`
stores the selected weights. Both are evaluated as the workflow does, and one Markdown table is printed:
the file sizes, the test MAE and Acc2 of each, and the largest change of a test prediction.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.evaluate import evaluate_run  # noqa: E402
from pipeline.grid import experiment_seeds, experiment_settings, features_key, load_config  # noqa: E402
from pipeline.train import train_run  # noqa: E402

DTYPES = ("float32", "float16")


def run_pair(settings: dict, data: Path, features: Path | None, out: Path, seed: int) -> dict:
    """Train and evaluate one seed per dtype; the row of the table."""
    row: dict = {}
    for dtype in DTYPES:
        run_dir = out / dtype
        settings["train"]["checkpoint_dtype"] = dtype
        train_run(settings, data, run_dir, seed, features, device="cpu")
        metrics = evaluate_run(run_dir, data, features)
        row[dtype] = {
            "mb": (run_dir / "model.pt").stat().st_size / 1e6,
            "mae": metrics["test"]["mae"],
            "acc2": 100 * metrics["test"]["acc2_non0"],
            "history": (run_dir / "history.csv").read_text(),
            "predictions": pd.read_csv(run_dir / "predictions.csv").query("split == 'test'")["prediction"],
        }
    exact, half = row["float32"], row["float16"]
    if exact["history"] != half["history"]:
        raise SystemExit(f"{out}: the two runs trained differently; the comparison is void")
    return {
        "MB float32": exact["mb"],
        "MB float16": half["mb"],
        "MAE float32": exact["mae"],
        "MAE float16": half["mae"],
        "Acc2 float32": exact["acc2"],
        "Acc2 float16": half["acc2"],
        "max |Δ prediction|": float((exact["predictions"] - half["predictions"]).abs().max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--features", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--experiments", nargs="+", default=["hycon", "fusion_tensor", "tfn", "mfn", "mag_bert"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, help="default: each experiment's seeds in the config")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = load_config([REPO / "config" / "config.yaml"])
    rows = {}
    for experiment in args.experiments:
        for seed in args.seeds or experiment_seeds(config, experiment):
            settings = experiment_settings(config, experiment)
            out = args.out / experiment / f"seed{seed}"
            features = args.features if features_key(settings) else None  # fine-tuned: no cache
            rows[f"{experiment} seed {seed}"] = run_pair(settings, args.data, features, out, seed)
    table = pd.DataFrame(rows).T
    print(table.to_markdown(floatfmt=".4f"))
    worst = (table["MAE float16"] - table["MAE float32"]).abs().max()
    acc = (table["Acc2 float16"] - table["Acc2 float32"]).abs().max()
    size = table["MB float16"].sum() / table["MB float32"].sum()
    print(f"largest |Δ MAE| {worst:.4f}, largest |Δ Acc2| {acc:.2f} points, float16/float32 size {size:.3f}")


if __name__ == "__main__":
    main()
