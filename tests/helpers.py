"""Helpers shared by several test modules (no test module imports another).

- `REPO`, `BIN`, `TINY`, `run`: the checkout, the project's environment, the tiny workflow config, and a
  command of that environment run with its output captured (Snakemake, DVC).
- `mosi_folds`: the SDK's standard MOSI folds from ../shared.
- `make_batch` and its sizes: a small model batch for the model and baseline tests.
- `write_predictions`, `render_table`: runs' predictions and a table rendered through the `tables` CLI.
- `rewrite_model`: a run's model.pt replaced deliberately, as `train` writes one.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.__main__ import main
from pipeline.checkpoint import save_model
from pipeline.grid import load_config
from pipeline.metrics import regression_metrics
from pipeline.reporting.aggregate import aggregate_runs

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = load_config([REPO / "config" / "config.yaml", REPO / "config" / "test.yaml"])


def run(args: list[str], cwd: Path, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command of the project's environment (snakemake, dvc) with its output captured."""
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def mosi_folds(shared_dir: Path) -> dict[str, list[str]]:
    """The SDK's standard MOSI folds, parsed from the shared cmu_mosi_std_folds.py without running it."""
    source = (shared_dir / "data" / "mosi" / "cmu_mosi_std_folds.py").read_text()
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    return {split: values[f"standard_{split}_fold"] for split in ("train", "valid", "test")}


T, DA, DV, H = 6, 5, 4, 12
TEXTS = ["a truly good day", "not bad", "", "the worst film I have ever seen"]


def make_batch(b: int = 4, seed: int = 0) -> dict:
    """A batch of `b` samples: audio [b, T, DA], visual [b, T, DV], cached language vectors [b, H] and
    per-word states [b, T, H] (zero beyond each sample's length, as cached), texts."""
    gen = torch.Generator().manual_seed(seed)
    length = torch.tensor([0, 3, T, 1, 2, 4, 5, 6][:b])
    batch = {
        "audio": torch.randn(b, T, DA, generator=gen),
        "visual": torch.randn(b, T, DV, generator=gen),
        "length": length,
        "label": torch.tensor([-2.0, 1.5, 0.0, 0.4, 2.0, -1.0, 0.5, 3.0][:b]),
        "lm_features": torch.randn(b, H, generator=gen),
        "text": (TEXTS * 2)[:b],
    }
    valid = torch.arange(T)[None, :, None] < length[:, None, None]
    return {**batch, "lm_words": torch.randn(b, T, H, generator=gen) * valid}


def write_predictions(path: Path, ids, labels, predictions, valid: bool = True) -> Path:
    """A predictions.csv as `evaluate` writes it: test rows, and with `valid` one valid row before them."""
    frame = pd.DataFrame({"split": "test", "id": ids, "label": labels, "prediction": predictions})
    if valid:
        frame = pd.concat(
            [pd.DataFrame({"split": ["valid"], "id": ["x"], "label": [0.0], "prediction": [9.0]}), frame]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def _run(root: Path, experiment: str, seed: int, labels: np.ndarray, predictions) -> tuple[Path, dict]:
    """A run's predictions.csv (in <experiment>/seed<k>/) and its metrics, as `evaluate` writes them."""
    ids = [f"vid{i // 3}_{i % 3}" for i in range(len(labels))]
    path = write_predictions(root / experiment / f"seed{seed}" / "predictions.csv", ids, labels, predictions)
    metrics = regression_metrics(labels, predictions)
    run = {"dataset": "synthetic", "experiment": experiment, "seed": seed, "valid": metrics, "test": metrics}
    return path, run


def render_table(
    tmp_path: Path,
    spec: dict,
    labels: np.ndarray,
    prediction_of: Callable[[str, int], np.ndarray],
    seeds: dict[str, list[int]] | None = None,
) -> tuple[Path, list[str], list[Path]]:
    """Runs of every row's experiment (`seeds[experiment]`, default 0-2; predictions `prediction_of(
    experiment, seed)`), their aggregates, and the table rendered through the `tables` CLI with the
    statistics; its output prefix, the CLI arguments before `--predictions`, and the predictions files."""
    predictions, aggregates = [], []
    for experiment in dict.fromkeys(row["experiment"] for row in spec["rows"]):
        runs = []
        for seed in (seeds or {}).get(experiment, (0, 1, 2)):
            path, run = _run(tmp_path / "runs", experiment, seed, labels, prediction_of(experiment, seed))
            predictions.append(path)
            runs.append(run)
        aggregates.append(tmp_path / f"{experiment}.json")
        aggregates[-1].write_text(json.dumps(aggregate_runs(runs)))
    prefix = tmp_path / "tables" / spec["name"]
    args = ["tables", "--spec", json.dumps(spec), "--out", str(prefix), *map(str, aggregates)]
    assert main([*args, "--predictions", *map(str, predictions)]) == 0
    return prefix, args, predictions


def rewrite_model(run_dir: Path, checkpoint: dict) -> None:
    """Replace a complete run's model.pt as `train` writes it, train.json recording its weights digest:
    how the tests give `evaluate` a deliberately altered model that it must accept."""
    digest = save_model(run_dir / "model.pt", {k: v for k, v in checkpoint.items() if k != "summary"})
    summary = json.loads((run_dir / "train.json").read_text())
    (run_dir / "train.json").write_text(json.dumps({**summary, "weights_digest": digest}))
