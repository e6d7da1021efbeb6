"""Aggregate the runs of one experiment over seeds: mean and standard deviation of every metric.

The standard deviation is the sample one (ddof=1), the spread a reader expects from "mean ± std over 5
runs"; with a single seed it is reported as 0 (not NaN) so that tables stay printable, and `n` in the
output says how many seeds it rests on. A metric that is undefined for one run (NaN, e.g. non0 accuracy
when every label is 0) is left out of that metric's mean; `n` per metric says how many values remain.

Outputs: `results/metrics/<dataset>/<experiment>.json` per experiment, the learning curve averaged over
seeds (`results/curves/<dataset>/<experiment>.csv`, registered as DVC plots) and, with `--summary`, the
experiment's test means and stds of the paper's five metrics as one flat JSON
(`results/summary/<dataset>/<experiment>.json`): DVC's metrics, one file and so one row per experiment
in `dvc metrics show`, and `dvc metrics diff` names the experiment that moved.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import DataError
from pipeline.io import atomic_path, check_output, write_json
from pipeline.layout import CURVE_COLUMNS
from pipeline.metrics import METRIC_KEYS  # the run metrics every aggregate carries (metrics.json contract)

SPLITS: tuple[str, ...] = ("valid", "test")
# The paper's metrics (its Acc2/F1 are the non0 ones): the DVC metrics summary.
SUMMARY_KEYS: tuple[str, ...] = ("acc7", "acc2_non0", "f1_non0", "mae", "corr")


def mean_std(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean and sample std (ddof=1; 0.0 for one value) of the finite values; None when there are none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0  # exact arithmetic: equal values give 0.0
    return {"mean": statistics.fmean(finite), "std": std, "n": len(finite)}


def load_run_metrics(path: str | Path) -> dict[str, Any]:
    """Read one run's metrics.json and check it carries both splits and every metric (DataError otherwise)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: metrics file does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    for key in ("dataset", "experiment", "seed", *SPLITS):
        if key not in data:
            raise DataError(f"{path}: missing key '{key}'")
    for split in SPLITS:
        missing = [m for m in METRIC_KEYS if m not in data[split]]
        if missing:
            raise DataError(f"{path}: '{split}' lacks metrics {', '.join(missing)}")
        bad = [m for m in METRIC_KEYS if not isinstance(data[split][m], int | float | type(None))]
        if bad:
            raise DataError(f"{path}: '{split}' metrics {', '.join(bad)} are not numbers")
    return data


def aggregate_runs(runs: Sequence[dict[str, Any]], sources: Sequence[str] | None = None) -> dict[str, Any]:
    """Aggregate the metrics dicts of one (dataset, experiment) over its seeds.

    All runs must share dataset and experiment and have distinct seeds (DataError naming the file otherwise).
    """
    if not runs:
        raise DataError("no run metrics to aggregate")
    names = list(sources or [f"run {i}" for i in range(len(runs))])
    first = runs[0]
    seeds: list[int] = []
    for run, name in zip(runs, names, strict=True):
        for key in ("dataset", "experiment"):
            if run[key] != first[key]:
                raise DataError(f"{name}: {key} '{run[key]}' differs from '{first[key]}' of {names[0]}")
        if run["seed"] in seeds:
            raise DataError(f"{name}: seed {run['seed']} appears twice")
        seeds.append(run["seed"])
    out: dict[str, Any] = {
        "dataset": first["dataset"],
        "experiment": first["experiment"],
        "seeds": seeds,
        "n": len(runs),
        "std": "sample (ddof=1); 0 for a single seed",
    }
    for split in SPLITS:
        out[split] = {}
        for metric in METRIC_KEYS:
            values = [_finite_or_none(run[split][metric]) for run in runs]
            out[split][metric] = {**mean_std(values), "values": values}
    out["best_epoch"] = mean_std(run.get("best_epoch") for run in runs)
    return out


def _finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: an undefined metric is stored as null."""
    return None if value is None or not math.isfinite(value) else float(value)


def mean_curve(histories: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per-epoch mean and std over seeds of the learning-curve columns (runs may stop at different epochs)."""
    frames = []
    for seed_index, history in enumerate(histories):
        columns = [c for c in CURVE_COLUMNS if c in history.columns]
        frames.append(history[["epoch", *columns]].assign(run=seed_index))
    stacked = pd.concat(frames, ignore_index=True)
    grouped = stacked.drop(columns="run").groupby("epoch")
    mean = grouped.mean()
    std = grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    curve = pd.concat([mean, std, grouped.size().rename("runs")], axis=1).reset_index()
    return curve


def load_history(path: str | Path) -> pd.DataFrame:
    """Read one run's history.csv (DataError when missing or without an epoch column)."""
    path = Path(path)
    try:
        history = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read history ({err})") from None
    if "epoch" not in history.columns or history.empty:
        raise DataError(f"{path}: history has no 'epoch' column or no rows")
    return history


def summarize(aggregate: dict[str, Any]) -> dict[str, Any]:
    """{metric: test mean, metric_std: test std, seeds}: one experiment's DVC metrics file (flat: one row).

    Only the paper's five metrics (Acc2/F1 the non0 ones), as fractions like the run metrics.
    """
    entry: dict[str, Any] = {}
    for metric in SUMMARY_KEYS:
        stats = aggregate["test"][metric]
        entry[metric] = stats["mean"]
        entry[f"{metric}_std"] = stats["std"]
    entry["seeds"] = aggregate["n"]
    return entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `aggregate --out A.json [--curve C.csv] [--summary S.json] METRICS.json...`."""
    parser.add_argument("inputs", nargs="+", type=Path, help="run metrics.json files (one per seed)")
    parser.add_argument("--out", required=True, type=Path, help="output JSON")
    parser.add_argument(
        "--curve", type=Path, help="also write the mean learning curve (history.csv beside each)"
    )
    parser.add_argument("--summary", type=Path, help="also write the flat test summary (DVC metrics)")


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline aggregate`."""
    check_output(*filter(None, (args.out, args.curve, args.summary)))  # outputs before inputs
    runs = [load_run_metrics(path) for path in args.inputs]
    aggregate = aggregate_runs(runs, [str(p) for p in args.inputs])
    if args.curve:
        curve = mean_curve([load_history(path.parent / "history.csv") for path in args.inputs])
        with atomic_path(args.curve) as tmp:
            curve.to_csv(tmp, index=False, float_format="%.10g")
    if args.summary:
        write_json(args.summary, summarize(aggregate))
    write_json(args.out, aggregate)
