"""Train one run of any model family (stage `train`): HyCon and the SGD-trained baselines with Adam on MAE
(Eq. 2), plus HyCon's hybrid loss (Eqs. 13-14); the text probe in closed form (a ridge path). The epoch loop
and the closed-form fit are `pipeline.fitting`; this module resumes, checkpoints and writes the outputs.

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
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.checkpoint import (
    RESUME_EXCLUDED,
    BestEpoch,
    TrainState,
    clear_outputs,
    load_resumable,
    run_lock,
    save_last,
    save_model,
    stored_weights,
    write_history,
)
from pipeline.data.loader import AlignedDataset
from pipeline.device import resolve_device, use_amp
from pipeline.errors import ConfigError
from pipeline.fitting import EpochLoop, fit_closed_form
from pipeline.inference import (
    DataInfo,
    input_digests,
    load_datasets,
)
from pipeline.io import check_output, write_json
from pipeline.models import model_class, pretrained_weights
from pipeline.settings import load_settings, resolve_settings, settings_hash

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


def _train_sgd(
    settings: dict[str, Any],
    datasets: dict[str, AlignedDataset],
    info: DataInfo,
    dev: torch.device,
    amp: bool,
    out: Path,
    key: dict[str, Any],
    epoch_callback: EpochCallback | None,
) -> tuple[TrainState, int | None]:
    """The epoch loop, resuming from a matching last.pt (`key`: what must match, the seed included);
    returns the final state and the epoch it resumed from (None: from scratch)."""
    train_cfg = settings["train"]
    trainer = EpochLoop.build(settings, datasets, info, dev, amp, key["seed"])
    checkpoint = load_resumable(out / "last.pt", key, train_cfg["epochs"])
    if checkpoint is None:
        state, resumed_from = TrainState(), None
    else:
        state = trainer.resume(checkpoint)
        resumed_from = state.epoch
        log.info("resuming from %s after epoch %d", out / "last.pt", resumed_from)
        for row in state.history if epoch_callback is not None else ():
            epoch_callback(row["epoch"], row)  # a process killed after last.pt, before its callback
    clear_outputs(out)  # from here until train.json is written, the folder is an incomplete run
    while state.epoch < train_cfg["epochs"] and not state.stopped:
        row = trainer.run_epoch(state)
        save_last(out / "last.pt", state, key, trainer.optimizer, trainer.scaler, trainer.generators, dev)
        if epoch_callback is not None:
            epoch_callback(state.epoch, row)
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
    """`train_run` inside the folder's lock: load the data, train or fit, write the outputs."""
    settings = resolve_settings(settings)
    dev = resolve_device(device)
    datasets, info = load_datasets(settings, data_path, ("train", "valid"), features_path, dev)
    out = Path(out_dir)  # made by run_lock
    amp = use_amp(settings["train"]["amp"], dev)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    log.info("training on %s (%s), mixed precision %s", dev.type, device_name, "on" if amp else "off")
    inputs = input_digests(settings, data_path, features_path)
    key = _resume_key(settings, seed, inputs, dev, amp)
    with deterministic(dev):
        seed_everything(seed)
        family = model_class(settings["model"]["arch"])
        if hasattr(family, "fit"):
            state, resumed_from = fit_closed_form(family, settings, datasets, info, dev, out), None
        else:
            state, resumed_from = _train_sgd(settings, datasets, info, dev, amp, out, key, epoch_callback)
    best = state.selected()
    digest = _write_outputs(out, settings, seed, info, state, best)
    summary = {
        "best_epoch": best.epoch,
        "best_valid": best.metrics,
        "select": settings["train"]["select"],
        "device": dev.type,
        "device_name": device_name,
        "amp": amp,
        "epochs_run": state.epoch,
        "stopped_early": state.stopped,
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
    if not settings["train"]["keep_last"]:
        (out / "last.pt").unlink(missing_ok=True)
    return summary


def _resume_key(
    settings: dict[str, Any], seed: int, inputs: dict[str, Any], dev: torch.device, amp: bool
) -> dict[str, Any]:
    """What a `last.pt` must match to be resumed (`checkpoint.load_resumable`)."""
    return {
        "settings_hash": settings_hash(settings, exclude=RESUME_EXCLUDED),
        "seed": seed,
        "data": inputs,
        # A CPU state cannot continue a mixed-precision CUDA run bit for bit (nor the reverse: its grad
        # scaler state is empty), so the device kind and AMP are part of what must match.
        "device": dev.type,
        "amp": amp,
    }


def _write_outputs(
    out: Path, settings: dict[str, Any], seed: int, info: DataInfo, state: TrainState, best: BestEpoch
) -> str:
    """Write model.pt (the `best` epoch's weights), history.csv and timings.json; return model.pt's
    weights digest (train.json records it)."""
    weights, rows = stored_weights(
        best.state_dict, settings["train"]["checkpoint_dtype"], pretrained_weights(settings)
    )
    checkpoint = {
        "state_dict": weights,
        "pretrained_rows": rows,
        "settings": settings,
        "seed": seed,
        "epoch": best.epoch,
        "dims": info.dims,
        "normalization": info.normalization,
    }
    digest = save_model(out / "model.pt", checkpoint)
    write_history(out / "history.csv", state.history)
    seconds = [row["seconds"] for row in state.history]
    write_json(out / "timings.json", {"seconds": sum(seconds), "epoch_seconds": seconds})
    return digest


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
