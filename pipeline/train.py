"""Train one run of any model family (stage `train`): HyCon and the SGD-trained baselines with Adam on MAE
(Eq. 2), plus HyCon's hybrid loss (Eqs. 13-14); the text probe in closed form (a ridge path).

Model selection uses the validation split only (the test split is never read here); the best epoch by
`train.select` is restored and written to `model.pt`; training stops after `train.patience` epochs without
improvement. After every epoch `last.pt` holds everything needed to continue bit-for-bit (model, optimizer,
grad scaler, best state, history, every RNG state); a rerun with the same settings, seed and data resumes
from it. `train.epochs` and `train.keep_last` are left out of that match, so a run that completed all its
epochs (not one that stopped early) and was kept with `train.keep_last=true` can be extended by raising
`train.epochs`. The device kind and mixed precision are part of the match.

Determinism: python, numpy and torch are seeded from `seed`; batch order comes from its own
`torch.Generator` (seed) and the loss's random pair choices from another (seed + 1); deterministic
algorithms are switched on for the run. The same seed on the same device gives the same metrics on the CPU;
on CUDA as far as torch allows (an op without a deterministic kernel only warns, it does not stop the run).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pipeline.checkpoint import (
    RESUME_EXCLUDED,
    clear_outputs,
    load_resumable,
    run_lock,
    save_last,
    save_model,
    set_rng_state,
    stored_weights,
    write_history,
)
from pipeline.data.loader import AlignedDataset, iterate_batches
from pipeline.device import autocast, resolve_device, use_amp
from pipeline.errors import ConfigError
from pipeline.inference import check_training_predictions, input_digests, load_datasets, predict
from pipeline.io import check_output, write_json
from pipeline.layout import VALID_COLUMNS
from pipeline.losses import class_labels, hybrid_loss
from pipeline.metrics import regression_metrics
from pipeline.models import build_model, model_class, pretrained_weights
from pipeline.optimizer import make_optimizer, set_scheduled_lr
from pipeline.settings import LOWER_IS_BETTER, load_settings, resolve_settings, settings_hash

log = logging.getLogger(__name__)


EpochCallback = Callable[[int, dict[str, float]], None]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic algorithms for the block (warning, not failing, where an op has none); restored after."""
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def _is_better(score: float, best: float | None, metric: str) -> bool:
    if math.isnan(score):
        return False
    if best is None:
        return True
    return score < best if metric in LOWER_IS_BETTER else score > best


def train_epoch(
    model: torch.nn.Module,
    dataset: AlignedDataset,
    settings: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    amp: bool,
    generators: dict[str, torch.Generator],
    desc: str,
    epoch: int = 1,
) -> dict[str, float]:
    """One pass over the shuffled training split (`generators`: 'loader' and 'loss' RNGs; `epoch`: its
    number, from 1, which places its steps on the `train.schedule`); returns the sample-weighted mean
    losses. Public so that benchmarks/train.py times exactly this loop."""
    loss_cfg, train_cfg = settings["loss"], settings["train"]
    lambdas = (loss_cfg["lambda_iamcl"], loss_cfg["lambda_iemcl"], loss_cfg["lambda_scl"])
    model.train()
    # Accumulated on the device and read once per epoch: a float() per step would stall a GPU every step.
    sums = {
        name: torch.zeros((), device=device)
        for name in ("train_loss", "train_pred_loss", "train_hybrid_loss")
    }
    seen = 0
    n_batches = math.ceil(len(dataset) / train_cfg["batch_size"])
    batches = iterate_batches(dataset, train_cfg["batch_size"], generators["loader"])
    # disable=None: a bar on a terminal only; off one (a job's log file) the epoch's log line is the record,
    # not hundreds of carriage-return frames.
    for step, batch in enumerate(
        tqdm(batches, total=n_batches, desc=desc, unit="batch", leave=False, disable=None)
    ):
        set_scheduled_lr(
            optimizer, train_cfg, (epoch - 1) * n_batches + step, train_cfg["epochs"] * n_batches
        )
        labels = batch["label"].to(device)
        with autocast(device, amp):
            pred, reps, _ = model(**model.model_inputs(batch, device))
        pred_loss = (pred.float() - labels).abs().mean()  # Eq. 2, MAE
        if loss_cfg["contrastive"] == "none":  # every baseline (settings.contrastive_conflict), an ablation
            hybrid = torch.zeros((), device=device)
        else:
            hybrid, _ = hybrid_loss(
                {m: r.float() for m, r in reps.items()},
                class_labels(labels, loss_cfg["zero_class"]),
                alpha=loss_cfg["alpha"],
                lambdas=lambdas,
                refine=loss_cfg["refine"],
                contrastive=loss_cfg["contrastive"],
                generator=generators["loss"],
                reduction=loss_cfg["reduction"],
            )
        loss = pred_loss + hybrid  # Eq. 14
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if train_cfg["grad_clip"] > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        size = len(labels)
        seen += size
        for name, value in (
            ("train_loss", loss),
            ("train_pred_loss", pred_loss),
            ("train_hybrid_loss", hybrid),
        ):
            sums[name] += value.detach().float() * size
    return {name: float(total) / max(seen, 1) for name, total in sums.items()}


def _best_entry(epoch: int, valid: dict[str, float], metric: str, model: torch.nn.Module) -> dict[str, Any]:
    """The selected epoch: its number, `train.select` score, validation metrics and weights (on the CPU)."""
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"epoch": epoch, "score": valid[metric], "metrics": valid, "state_dict": weights}


def fit_closed_form(
    family: type[torch.nn.Module],
    settings: dict[str, Any],
    datasets: dict[str, AlignedDataset],
    info: dict[str, Any],
    dev: torch.device,
    out: Path,
) -> dict[str, Any]:
    """Fit a family that is not trained by SGD (`family.fit`: the text probe, closed form on train, its
    regularisation chosen on valid); its one history row is 'epoch 1' with the training MAE."""
    clear_outputs(out)  # from here until train.json is written, the folder is an incomplete run
    start = time.perf_counter()
    model, report = family.fit(settings, datasets, info, dev)
    preds, _ = predict(model, datasets["valid"], dev, settings["train"]["batch_size"])
    valid = regression_metrics(datasets["valid"].tensors["label"].numpy(), preds)
    mae = report["train_mae"]
    row = {"epoch": 1, "train_loss": mae, "train_pred_loss": mae, "train_hybrid_loss": 0.0}
    row.update({f"valid_{k}": valid[k] for k in VALID_COLUMNS}, seconds=time.perf_counter() - start)
    log.info("closed-form fit (%s): valid mae %.4f", report["chosen"], valid["mae"])
    best = _best_entry(1, valid, settings["train"]["select"], model)
    return {"epoch": 1, "best": best, "bad_epochs": 0, "stopped": False, "history": [row]}


def _train_sgd(
    settings: dict[str, Any],
    datasets: dict[str, AlignedDataset],
    info: dict[str, Any],
    dev: torch.device,
    amp: bool,
    out: Path,
    key: dict[str, Any],
    epoch_callback: EpochCallback | None,
) -> tuple[dict[str, Any], int | None]:
    """The epoch loop, resuming from a matching last.pt (`key`: what must match, the seed included);
    returns the final state and the epoch it resumed from (None: from scratch)."""
    train_cfg, seed = settings["train"], key["seed"]
    model = build_model(settings, info).to(dev)
    optimizer = make_optimizer(model, train_cfg)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    generators = {
        "loader": torch.Generator().manual_seed(seed),
        "loss": torch.Generator().manual_seed(seed + 1),
    }
    state = load_resumable(out / "last.pt", key, train_cfg["epochs"])
    if state is None:
        state = {"epoch": 0, "best": None, "bad_epochs": 0, "stopped": False, "history": []}
        resumed_from = None
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], generators)
        resumed_from = state["epoch"]
        log.info("resuming from %s after epoch %d", out / "last.pt", resumed_from)
        for row in state["history"] if epoch_callback is not None else ():
            epoch_callback(row["epoch"], row)  # a process killed after last.pt, before its callback
    clear_outputs(out)  # from here until train.json is written, the folder is an incomplete run
    metric = train_cfg["select"]
    while state["epoch"] < train_cfg["epochs"] and not state["stopped"]:
        epoch = state["epoch"] + 1
        start = time.perf_counter()
        desc = f"epoch {epoch}/{train_cfg['epochs']}"
        row: dict[str, float] = {"epoch": epoch}
        row.update(
            train_epoch(
                model, datasets["train"], settings, optimizer, scaler, dev, amp, generators, desc, epoch
            )
        )
        preds, _ = predict(model, datasets["valid"], dev, train_cfg["batch_size"], amp)
        check_training_predictions(epoch, preds, datasets, info["path"])
        valid = regression_metrics(datasets["valid"].tensors["label"].numpy(), preds)
        row.update({f"valid_{k}": valid[k] for k in VALID_COLUMNS})
        row["seconds"] = time.perf_counter() - start
        best = state["best"]
        if _is_better(valid[metric], best and best["score"], metric):
            state["best"], state["bad_epochs"] = _best_entry(epoch, valid, metric, model), 0
        else:
            state["bad_epochs"] += 1
        state["stopped"] = state["bad_epochs"] >= train_cfg["patience"]
        state["epoch"] = epoch
        state["history"].append(row)
        log.info(
            "epoch %d: loss %.4f (pred %.4f, hybrid %.4f), valid mae %.4f acc2_non0 %.4f%s",
            epoch, row["train_loss"], row["train_pred_loss"], row["train_hybrid_loss"],
            valid["mae"], valid["acc2_non0"], " (best)" if state["best"]["epoch"] == epoch else "",
        )  # fmt: skip
        save_last(out / "last.pt", state, key, model, optimizer, scaler, generators, dev)
        if epoch_callback is not None:
            epoch_callback(epoch, row)
    return state, resumed_from


def train_run(
    settings: dict[str, Any],
    data_path: str | Path,
    out_dir: str | Path,
    seed: int,
    features_path: str | Path | None = None,
    *,
    device: str = "auto",
    epoch_callback: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train one model and write model.pt, history.csv, timings.json and train.json to `out_dir`; return
    train.json.

    Settings, data, features and the output folder are validated before any training, which holds the
    folder's lock (`checkpoint.run_lock`). `epoch_callback(epoch, history_row)` runs after each epoch's
    checkpoint is saved (tests use it to simulate an interruption) and, on a resume, at once for each epoch
    last.pt holds: a process killed between the checkpoint and the callback never ran it (the search's
    pruner reads every epoch's score).
    """
    check_output(Path(out_dir) / "model.pt")
    with run_lock(Path(out_dir)):
        return _train_locked(settings, data_path, out_dir, seed, features_path, device, epoch_callback)


def _train_locked(
    settings: dict[str, Any],
    data_path: str | Path,
    out_dir: str | Path,
    seed: int,
    features_path: str | Path | None,
    device: str,
    epoch_callback: EpochCallback | None,
) -> dict[str, Any]:
    settings = resolve_settings(settings)
    train_cfg = settings["train"]
    dev = resolve_device(device)
    datasets, info = load_datasets(settings, data_path, ("train", "valid"), features_path, dev)
    out = Path(out_dir)  # made by run_lock
    amp = use_amp(train_cfg["amp"], dev)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    log.info("training on %s (%s), mixed precision %s", dev.type, device_name, "on" if amp else "off")
    inputs = input_digests(settings, data_path, features_path)
    key = {
        "settings_hash": settings_hash(settings, exclude=RESUME_EXCLUDED),
        "seed": seed,
        "data": inputs,
        # A CPU state cannot continue a mixed-precision CUDA run bit for bit (nor the reverse: its grad
        # scaler state is empty), so the device kind and AMP are part of what must match.
        "device": dev.type,
        "amp": amp,
    }
    with deterministic(dev):
        seed_everything(seed)
        family = model_class(settings["model"]["arch"])
        if hasattr(family, "fit"):
            state, resumed_from = fit_closed_form(family, settings, datasets, info, dev, out), None
        else:
            state, resumed_from = _train_sgd(settings, datasets, info, dev, amp, out, key, epoch_callback)
    metric = train_cfg["select"]
    if state["best"] is None:
        # Every validation score was NaN (e.g. corr of constant predictions): keep the last epoch.
        state["best"] = {
            "epoch": state["epoch"],
            "score": float("nan"),
            "metrics": {},
            "state_dict": state["model"],
        }
    best = state["best"]
    weights, rows = stored_weights(
        best["state_dict"], train_cfg["checkpoint_dtype"], pretrained_weights(settings)
    )
    checkpoint = {
        "state_dict": weights,
        "pretrained_rows": rows,
        "settings": settings,
        "seed": seed,
        "epoch": best["epoch"],
        "dims": {k: info[k] for k in ("audio_dim", "visual_dim", "seq_len", "lm_hidden")},
        "normalization": info["normalization"],
    }
    digest = save_model(out / "model.pt", checkpoint)
    write_history(out / "history.csv", state["history"])
    seconds = [row["seconds"] for row in state["history"]]
    write_json(out / "timings.json", {"seconds": sum(seconds), "epoch_seconds": seconds})
    summary = {
        "best_epoch": best["epoch"],
        "best_valid": best["metrics"],
        "select": metric,
        "device": dev.type,
        "device_name": device_name,
        "amp": amp,
        "epochs_run": state["epoch"],
        "stopped_early": state["stopped"],
        "resumed_from_epoch": resumed_from,
        "seed": seed,
        "settings_hash": settings_hash(settings),
        "settings": settings,
        "n_train": len(datasets["train"]),
        "n_valid": len(datasets["valid"]),
        "data": str(data_path),
        "features": None if features_path is None else str(features_path),
        "inputs": inputs,  # by content: evaluate refuses other data (checkpoint.load_checkpoint's caller)
        "weights_digest": digest,  # load_checkpoint refuses a model.pt that no longer matches it
    }
    write_json(out / "train.json", summary)  # last: it marks the folder a complete run
    if not train_cfg["keep_last"]:
        (out / "last.pt").unlink(missing_ok=True)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI of the `train` stage."""
    parser.add_argument("--config", help="settings file (YAML or JSON); defaults when omitted")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. loss.alpha=0.5",
    )
    parser.add_argument("--data", required=True, help="aligned HDF5 (data/aligned/<dataset>.h5)")
    parser.add_argument(
        "--out", required=True, help="run directory (results/runs/<dataset>/<experiment>/seed<k>)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", help="cached frozen LM features (data/features/<dataset>-<lm>.h5)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline train`."""
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    settings = load_settings(args.config, args.sets)
    summary = train_run(settings, args.data, args.out, args.seed, args.features, device=args.device)
    log.info("best epoch %d of %d; wrote %s", summary["best_epoch"], summary["epochs_run"], args.out)
