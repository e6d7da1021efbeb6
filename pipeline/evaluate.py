"""Evaluate a trained run (stage `evaluate`): metrics, predictions and test representations.

Reads `model.pt` of a run directory and writes, atomically, `metrics.json`
(`{"valid", "test", "dataset", "experiment", "seed", "best_epoch"}`), `predictions.csv`
(`split, id, label, prediction`) and `embeddings.npz` as docs/architecture.md section 4 specifies:
`labels` [N], `ids` [N] and the unimodal test representations `l`, `a`, `v` [N, d], plus, with `fused`,
the fused ones `embeddings` [N, D] (what the t-SNE figure reads). Representations are stored in float16,
compressed: a tensor-fusion run's fused vectors (D = (d + 1)^3 = 132,651 at d = 50) took 405 MB per run in
float32, so only the runs a figure reads keep them.
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.checkpoint import load_checkpoint, load_weights, run_lock
from pipeline.device import resolve_device, use_amp
from pipeline.errors import DataError
from pipeline.inference import check_predictions, input_digests, load_datasets, predict
from pipeline.io import atomic_path, check_output, write_json, write_npz
from pipeline.losses import MODALITIES
from pipeline.metrics import regression_metrics
from pipeline.models import build_model
from pipeline.settings import resolve_settings

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("valid", "test")


def evaluate_run(
    run_dir: str | Path,
    data_path: str | Path,
    features_path: str | Path | None = None,
    *,
    dataset: str | None = None,
    experiment: str | None = None,
    device: str = "auto",
    fused: bool = False,
) -> dict[str, Any]:
    """Predict the valid and test splits with the run's best checkpoint and write the evaluation outputs.

    `dataset` defaults to the aligned file's `dataset` attribute, `experiment` to the name of the run
    directory's parent (results/runs/<dataset>/<experiment>/seed<k>). Returns the metrics.json content.
    Holds the run folder's lock (`checkpoint.run_lock`) throughout.
    """
    run_dir = Path(run_dir)
    check_output(run_dir / "metrics.json")
    with run_lock(run_dir):
        return _evaluate_locked(run_dir, data_path, features_path, dataset, experiment, device, fused)


def _evaluate_locked(
    run_dir: Path,
    data_path: str | Path,
    features_path: str | Path | None,
    dataset: str | None,
    experiment: str | None,
    device: str,
    fused: bool,
) -> dict[str, Any]:
    checkpoint = load_checkpoint(run_dir)
    settings = resolve_settings(checkpoint["settings"])
    dev = resolve_device(device)
    stats = checkpoint.get("normalization")
    if settings["data"]["normalize"] == "zscore" and stats is None:
        raise DataError(f"{run_dir}/model.pt holds no normalisation statistics (older code): retrain the run")
    datasets, info = load_datasets(settings, data_path, SPLITS, features_path, dev, stats)
    # After the reading checks: a value a model cannot use, or a failed checksum, is named first.
    _check_inputs(run_dir, checkpoint["summary"], input_digests(settings, data_path, features_path))
    for key, value in checkpoint["dims"].items():
        if info.dims[key] != value:
            raise DataError(
                f"{data_path}: {key}={info.dims[key]} but the run at {run_dir} was trained with {value}"
            )
    model = build_model(settings, checkpoint["dims"]).to(dev)
    load_weights(model, checkpoint, run_dir / "model.pt")
    amp = use_amp(settings["train"]["amp"], dev)
    results: dict[str, Any] = {
        "dataset": dataset or info.dataset,
        "experiment": experiment or run_dir.parent.name,
        "seed": checkpoint["seed"],
        "best_epoch": checkpoint["epoch"],
    }
    rows = []
    for split in SPLITS:
        ds = datasets[split]
        # Only the test split's representations are stored; the fused ones only where a figure reads them.
        keep = (*MODALITIES, *(["fused"] if fused else [])) if split == "test" else ()
        preds, reps = predict(model, ds, dev, settings["train"]["batch_size"], amp, keep=keep)
        check_predictions(preds, ds, f"{run_dir}: {split} split")
        labels = ds.tensors["label"].numpy()
        results[split] = regression_metrics(labels, preds)
        rows.extend(zip([split] * len(ds), ds.ids.tolist(), labels.tolist(), preds.tolist(), strict=True))
    write_json(run_dir / "metrics.json", results)
    with atomic_path(run_dir / "predictions.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("split", "id", "label", "prediction"))
        writer.writerows(rows)
    test = datasets["test"]
    stored = {
        ("embeddings" if name == "fused" else name): rep.astype(np.float16) for name, rep in reps.items()
    }
    write_npz(
        run_dir / "embeddings.npz",
        labels=test.tensors["label"].numpy(),
        ids=test.ids.astype(str),
        **stored,
    )
    log.info("test: %s", ", ".join(f"{k} {v:.4f}" for k, v in results["test"].items()))
    return results


def _check_inputs(run_dir: Path, summary: dict[str, Any], inputs: dict[str, dict[str, str] | None]) -> None:
    """DataError unless the aligned file (and the features file, where both runs name one) hold, split by
    split, the content the run was trained on (`train.json`'s `inputs`; `inference.input_digests`)."""
    trained = summary["inputs"]
    for kind, what in (("data", "aligned data"), ("features", "features")):
        if inputs[kind] is None or trained[kind] is None:
            continue  # frozen features computed in memory on either side: they follow from the texts
        for split, digest in trained[kind].items():
            if inputs[kind].get(split) != digest:
                raise DataError(
                    f"{run_dir}: the {what} given differ in content from those the run was trained on "
                    f"(split '{split}': digest {inputs[kind].get(split)}, trained on {digest}; it was "
                    f"trained on {summary[kind]}): evaluate with those, or retrain the run"
                )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI of the `evaluate` stage."""
    parser.add_argument("--run", required=True, help="run directory holding model.pt")
    parser.add_argument("--data", required=True, help="aligned HDF5 the run was trained on")
    parser.add_argument("--features", help="cached frozen LM features (frozen-mode runs)")
    parser.add_argument("--dataset", help="dataset name for metrics.json (default: the HDF5's attribute)")
    parser.add_argument("--experiment", help="experiment name for metrics.json (default: run dir's parent)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--fused",
        action="store_true",
        help="also store the fused test representations (large for tensor fusion; the t-SNE reads them)",
    )


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline evaluate`."""
    evaluate_run(
        args.run,
        args.data,
        args.features,
        dataset=args.dataset,
        experiment=args.experiment,
        device=args.device,
        fused=args.fused,
    )
