"""Run-folder state of a training run: the resumable `last.pt`, the final `model.pt` and `history.csv`.

`last.pt` holds everything needed to continue bit-for-bit after any epoch (model, optimizer, grad scaler,
best state, history, every RNG state) together with the key a resume must match (settings hash without
`RESUME_EXCLUDED`, seed, data digest, device kind, mixed precision). `model.pt` holds the selected
epoch's weights with the settings, seed and data dimensions that rebuild the network for `evaluate`.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.data.loader import AlignedDataset
from pipeline.errors import DataError
from pipeline.io import atomic_path

log = logging.getLogger(__name__)


HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "train_pred_loss",
    "train_hybrid_loss",
    "valid_mae",
    "valid_corr",
    "valid_acc7",
    "valid_acc2_non0",
    "valid_f1_non0",
    "seconds",
)


# Settings that do not change the trajectory of the epochs already run (see the module docstring).
RESUME_EXCLUDED: tuple[str, ...] = ("train.epochs", "train.keep_last")


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    state.update({name: g.get_state() for name, g in generators.items()})
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, g in generators.items():
        g.set_state(state[name])


def data_digest(datasets: dict[str, AlignedDataset]) -> str:
    """Digest of the training inputs (ids, labels, features), so a resume never mixes two datasets."""
    digest = hashlib.sha256()
    for split in sorted(datasets):
        ds = datasets[split]
        digest.update("\n".join(ds.ids.tolist()).encode())
        for name in sorted(ds.tensors):
            digest.update(ds.tensors[name].numpy().tobytes())
    return digest.hexdigest()[:16]


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(history)


def load_resumable(path: Path, key: dict[str, Any], epochs: int) -> dict[str, Any] | None:
    """last.pt's state when it matches `key` (settings hash, seed, data) and has not run past `epochs`."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint means "start afresh"
        log.warning("ignoring unreadable %s (%s); training from scratch", path, err)
        return None
    mismatched = [name for name, value in key.items() if state.get(name) != value]
    if mismatched:
        log.warning("ignoring %s: its %s differ from this run's; training from scratch", path, mismatched)
        return None
    if state["epoch"] > epochs:
        log.warning("ignoring %s: it ran %d epochs, more than train.epochs=%d", path, state["epoch"], epochs)
        return None
    return state


def save_last(
    path: Path,
    state: dict[str, Any],
    key: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    generators: dict[str, torch.Generator],
    device: torch.device,
) -> None:
    """Write the resumable state atomically (see the module docstring)."""
    state["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        **state,
        **key,
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(generators),
        "device": device.type,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def save_model(path: Path, checkpoint: dict[str, Any]) -> None:
    """Write the selected epoch's checkpoint (state_dict, settings, seed, epoch, dims) atomically."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """The run's `model.pt` (state_dict, settings, seed, epoch, dims); DataError if missing or unreadable."""
    path = Path(run_dir) / "model.pt"
    if not path.is_file():
        raise DataError(f"{path}: no checkpoint (train the run first with `python -m pipeline train`)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a corrupt file
        raise DataError(f"{path}: unreadable checkpoint ({err})") from err
    missing = {"state_dict", "settings", "seed", "epoch", "dims"} - set(checkpoint)
    if missing:
        raise DataError(f"{path}: checkpoint lacks {sorted(missing)}")
    return checkpoint
