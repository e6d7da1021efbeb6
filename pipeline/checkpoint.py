"""Run-folder state of a training run: the resumable `last.pt`, the final outputs, and the folder's lock.

`last.pt` holds everything needed to continue bit-for-bit after any epoch (model, optimizer, grad scaler,
best state, history, every RNG state) together with the key a resume must match (settings hash without
`RESUME_EXCLUDED`, seed, the content digests of the aligned and features files, device kind, mixed
precision). `model.pt` holds the selected
epoch's weights (in `train.checkpoint_dtype`, a fine-tuned language model's as the rows training changed:
`stored_weights`; read them with `load_weights`) with the settings, seed and data dimensions that rebuild
the network for `evaluate`, and the input normalisation statistics it was trained with (`normalization`,
see pipeline/data/normalize.py).

Both hold tensors and plain data only (dicts, lists, numbers, strings; numpy arrays and RNG states as
tensors) and are read with torch's weights-only unpickler (`read_checkpoint`): a pickle names functions
that loading calls (`os.system` included), and run folders are shared and downloaded. A file that asks for
any other global is refused, naming the globals, before anything in it runs; so is one written before this
format (`CHECKPOINT_FORMAT`; it held numpy arrays), with the command that rebuilds it. `train.json` records
`weights_digest` of the `model.pt` it describes, and `load_checkpoint` recomputes it: flipped bytes inside a
tensor (the archive stores tensors raw, and torch checks no CRC on reading) are refused, not used.

A run folder is always in one of two states, so a kill at any moment leaves nothing that passes for a
result of other settings:
- complete: `train.json` is present, written last, after `model.pt`, `history.csv` and `timings.json`,
  and names the settings hash, seed and epoch of that `model.pt` (`load_checkpoint` checks all three);
- incomplete: no `train.json`. Before its first epoch `train` deletes the folder's outputs
  (`clear_outputs`: each state on the way is one of these two), and the history lives in `last.pt` until
  the run completes, so a killed run leaves at most `last.pt`, which `evaluate` does not read.
Every write is atomic; `model.pt` is written through a file object, so that the archive's top folder is
always `archive` (not the temporary file's random name) and the same weights give the same bytes. Times
go to `timings.json` alone: every other output of a seed on a device is byte-identical across runs.
One process at a time trains or evaluates a folder (`run_lock`, an flock on `.lock` in the folder).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import logging
import os
import pickle
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import DataError, PipelineError
from pipeline.io import atomic_path, digest_json
from pipeline.layout import HISTORY_COLUMNS
from pipeline.settings import settings_hash

log = logging.getLogger(__name__)


# A run folder's outputs (module docstring): train's, train.json last, then evaluate's.
TRAIN_OUTPUTS: tuple[str, ...] = ("model.pt", "history.csv", "timings.json", "train.json")
EVALUATE_OUTPUTS: tuple[str, ...] = ("metrics.json", "predictions.csv", "embeddings.npz")
LOCK = ".lock"


# Settings that do not change the trajectory of the epochs already run (see the module docstring).
RESUME_EXCLUDED: tuple[str, ...] = ("train.epochs", "train.keep_last", "train.checkpoint_dtype")
# The layout of model.pt and last.pt: 2 holds no numpy object (module docstring); 1 (unmarked) did.
CHECKPOINT_FORMAT = 2


@dataclass
class BestEpoch:
    """The selected epoch: its number, `train.select` score (NaN when no epoch had a finite one), validation
    metrics and weights (on the CPU)."""

    epoch: int
    score: float
    metrics: dict[str, float]
    state_dict: dict[str, torch.Tensor]

    def to_dict(self) -> dict[str, Any]:
        """As `last.pt` stores it (plain data for the weights-only unpickler)."""
        return {
            "epoch": self.epoch,
            "score": self.score,
            "metrics": self.metrics,
            "state_dict": self.state_dict,
        }


@dataclass
class TrainState:
    """Where a training run stands after `epoch` epochs: what `last.pt` stores besides the optimizer, the
    grad scaler, the RNG states and the resume key, and what the run's outputs are written from.

    best: the selected epoch so far (None while no epoch had a finite `train.select` score); bad_epochs:
    epochs since it improved; stopped: early stopping hit `train.patience`; history: one row per epoch
    (`HISTORY_COLUMNS` plus `seconds`); weights: the model's weights after `epoch` (None before the first
    epoch, and in a closed-form fit, whose `best` is always set).
    """

    epoch: int = 0
    best: BestEpoch | None = None
    bad_epochs: int = 0
    stopped: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    weights: dict[str, torch.Tensor] | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> TrainState:
        """The state a `last.pt` (as `load_resumable` returns it) holds."""
        best = checkpoint["best"]
        return cls(
            epoch=checkpoint["epoch"],
            best=None if best is None else BestEpoch(**best),
            bad_epochs=checkpoint["bad_epochs"],
            stopped=checkpoint["stopped"],
            history=checkpoint["history"],
            weights=checkpoint["model"],
        )

    def to_checkpoint(self) -> dict[str, Any]:
        """The state's part of `last.pt` (its on-disk keys: the weights under `model`)."""
        return {
            "epoch": self.epoch,
            "best": None if self.best is None else self.best.to_dict(),
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "history": self.history,
            "model": self.weights,
        }

    def selected(self) -> BestEpoch:
        """The epoch whose weights `model.pt` stores: `best`, or, when every validation score was NaN (e.g.
        corr of constant predictions), the last epoch."""
        if self.best is not None:
            return self.best
        if self.weights is None:
            raise PipelineError("no epoch was trained: nothing to select")
        return BestEpoch(self.epoch, float("nan"), {}, self.weights)


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Every RNG state of the process and of `generators`, in types the weights-only unpickler reads
    (numpy's MT19937 key as an int64 tensor)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    state.update({name: g.get_state() for name, g in generators.items()})
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Restore what `rng_state` saved."""
    kind, key, pos, has_gauss, cached = state["numpy"]
    random.setstate(state["python"])
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, g in generators.items():
        g.set_state(state[name])


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock for the block; PipelineError at once when another process holds it.

    An flock on `run_dir/.lock`, released by the kernel when the process dies however it dies; the file is
    removed on release (a lock taken on a file just removed by its holder is taken again on the new one),
    and so is the folder when the lock created it and the block left it empty (an input error).
    """
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PipelineError(
                f"{run_dir}: another process is training or evaluating this run (it holds {path}); "
                "wait for it to finish"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()


def clear_outputs(run_dir: Path) -> None:
    """Delete the folder's outputs before a (re)training: evaluate's, then `train.json` (the mark of a
    complete run), then the rest."""
    for name in reversed((*TRAIN_OUTPUTS, *EVALUATE_OUTPUTS)):
        (run_dir / name).unlink(missing_ok=True)


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """history.csv: one row per epoch, `HISTORY_COLUMNS` (times go to timings.json)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def read_checkpoint(path: Path, remedy: str) -> dict[str, Any]:
    """A checkpoint's content, read without running code (module docstring).

    Raises DataError naming the file and `remedy` (how to rebuild it) when it asks for a global the
    weights-only unpickler refuses (code, or the numpy arrays of format 1) or is of another format; other
    read errors (not a torch archive, truncated) propagate as they are, for the caller to word.
    """
    if not zipfile.is_zipfile(path):  # a raw pickle is never handed to an unpickler, even a restricted one
        raise ValueError("not a torch checkpoint archive")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        wanted = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(path)) or "unknown"
        raise DataError(
            f"{path}: refused, not loaded: it asks for the globals {wanted}; checkpoints hold tensors and "
            f"plain data only (a pickled object can run code; older checkpoints held numpy arrays): {remedy}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path}: not a checkpoint of format {CHECKPOINT_FORMAT} (older code?): {remedy}")
    return state


def load_resumable(path: Path, key: dict[str, Any], epochs: int) -> dict[str, Any] | None:
    """last.pt's state when it matches `key` (settings hash, seed, data) and has not run past `epochs`.

    An unreadable file is ignored with a warning (training starts afresh and replaces it); one refused by
    `read_checkpoint` stops the run with DataError, untouched, so that its owner sees what it is.
    """
    if not path.is_file():
        return None
    try:
        state = read_checkpoint(path, "delete it to train from scratch")
    except DataError:
        raise
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
    state: TrainState,
    key: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    generators: dict[str, torch.Generator],
    device: torch.device,
) -> None:
    """Write the resumable state atomically (see the module docstring); `state.weights` must be set."""
    payload = {
        **state.to_checkpoint(),
        **key,
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(generators),
        "device": device.type,
    }
    _save(path, payload)


def _save(path: Path, checkpoint: dict[str, Any]) -> None:
    """torch.save in `CHECKPOINT_FORMAT`, atomically, through a file object: the same checkpoint gives the
    same bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save({**checkpoint, "format": CHECKPOINT_FORMAT}, handle)


def save_model(path: Path, checkpoint: dict[str, Any]) -> str:
    """Write `model.pt` (`_save`), its `normalization` statistics, given as numpy arrays, as tensors;
    return its `weights_digest`, which `train.json` records."""
    stats = checkpoint.get("normalization")
    if stats is not None:
        checkpoint = {**checkpoint, "normalization": {k: torch.as_tensor(v) for k, v in stats.items()}}
    _save(path, checkpoint)
    return weights_digest(checkpoint)


def weights_digest(checkpoint: dict[str, Any]) -> str:
    """Digest of what `evaluate` computes with: the stored weights, the index of the pretrained rows they
    replace and the normalisation statistics (all as tensors, as `model.pt` holds them)."""
    return digest_json(
        {
            "state_dict": {name: tensor_digest(t) for name, t in checkpoint["state_dict"].items()},
            "pretrained_rows": {
                name: [tensor_digest(rows["index"]), rows["base"]]
                for name, rows in checkpoint.get("pretrained_rows", {}).items()
            },
            "normalization": {
                name: tensor_digest(t) for name, t in (checkpoint.get("normalization") or {}).items()
            },
        }
    )


def tensor_digest(tensor: torch.Tensor) -> str:
    """Digest of a tensor's dtype, shape and bytes (on the CPU, any dtype, bfloat16 included, 0-d too): the
    pretrained rows a checkpoint leaves out must match it, and `weights_digest` is made of these."""
    digest = hashlib.sha256(f"{tensor.dtype} {tuple(tensor.shape)}".encode())
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def stored_weights(
    state_dict: dict[str, torch.Tensor], dtype: str, pretrained: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """The selected weights as `model.pt` stores them, and the index of the rows stored of pretrained ones.

    float32 tensors are cast to `train.checkpoint_dtype` (float16 halves the file), except one with a value
    beyond the dtype's range (a running variance of raw features, say), kept in float32. A tensor of the
    fine-tuned language model (`pretrained`: its weights as loaded, by name) is stored as the rows that
    training changed when that is smaller: `rows[name]` = {"index": [K] row numbers, "base": the digest of
    the pretrained tensor they go over}. Fine-tuning leaves most of the word-piece embedding table as it
    was (a word piece absent from the data gets no gradient, with no weight decay), and that table is half
    of MiniLM. Rows are compared by value: whatever the optimiser did, the rows not stored are exact.
    """
    target = getattr(torch, dtype)
    weights, rows = {}, {}
    for name, exact in state_dict.items():
        fits = exact.dtype == torch.float32 and not (exact.abs() > torch.finfo(target).max).any()
        value = exact.to(target) if fits else exact
        base = pretrained.get(name)
        if base is not None and value.dim() > 0 and base.shape == value.shape:
            changed = (exact.cpu() != base).reshape(len(value), -1).any(dim=1).nonzero().squeeze(1)
            row_bytes = value[0].numel() * value.element_size()
            if len(changed) * (row_bytes + changed.element_size()) < len(value) * row_bytes:
                rows[name] = {"index": changed, "base": tensor_digest(base)}
                value = value[changed]
        weights[name] = value
    return weights, rows


def load_weights(model: torch.nn.Module, checkpoint: dict[str, Any], path: Path) -> None:
    """Load `model.pt`'s weights into `model`, freshly built by `build_model` (in the model's own dtypes).

    Rows stored of a pretrained tensor (`stored_weights`) go over that tensor as the model loaded it from
    the language model's files, after checking that those are the weights the run was fine-tuned from;
    DataError otherwise.
    """
    built = model.state_dict()
    full = {}
    for name, value in checkpoint["state_dict"].items():
        base = built[name].detach().cpu()
        value = value.to(base.dtype)
        if (stored := checkpoint.get("pretrained_rows", {}).get(name)) is not None:
            if tensor_digest(base) != stored["base"]:
                raise DataError(
                    f"{path}: {name} as loaded now differs from the weights the run was fine-tuned from "
                    "(another version of model.language_model?); load that version or retrain the run"
                )
            value = base.clone().index_copy_(0, stored["index"], value)
        full[name] = value
    model.load_state_dict(full)


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """The `model.pt` of a complete run (state_dict, settings, seed, epoch, dims; `normalization` as numpy
    arrays), with `train.json` as `summary`; DataError if it is missing, unreadable, refused
    (`read_checkpoint`), its weights differ from the digest `train.json` recorded, or the folder is
    incomplete or mixed (module docstring)."""
    path = Path(run_dir) / "model.pt"
    if not path.is_file():
        raise DataError(f"{path}: no checkpoint (train the run first with `python -m pipeline train`)")
    summary_path = Path(run_dir) / "train.json"
    if not summary_path.is_file():
        raise DataError(
            f"{run_dir}: incomplete run, no train.json beside model.pt (training was interrupted?); "
            "rerun `python -m pipeline train` into it"
        )
    retrain = f"retrain the run (`python -m pipeline train ... --out {run_dir}`)"
    try:
        checkpoint = read_checkpoint(path, retrain)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many types for a corrupt file
        raise DataError(f"{path}: unreadable checkpoint ({err})") from err
    missing = {"state_dict", "settings", "seed", "epoch", "dims"} - set(checkpoint)
    if missing:
        raise DataError(f"{path}: checkpoint lacks {sorted(missing)}")
    try:
        summary = json.loads(summary_path.read_text())
    except ValueError as err:
        raise DataError(f"{summary_path}: not valid JSON ({err}); retrain the run") from None
    mine = {"settings_hash": settings_hash(checkpoint["settings"]), "seed": checkpoint["seed"]}
    theirs = {"settings_hash": summary.get("settings_hash"), "seed": summary.get("seed")}
    if mine != theirs or summary.get("best_epoch") != checkpoint["epoch"]:
        raise DataError(
            f"{run_dir}: model.pt (settings {mine['settings_hash']}, seed {mine['seed']}) is not the one "
            f"train.json describes ({theirs['settings_hash']}, seed {theirs['seed']}); retrain the run"
        )
    if (digest := weights_digest(checkpoint)) != summary.get("weights_digest"):
        raise DataError(
            f"{path}: its weights differ from those train.json recorded (weights digest {digest}, recorded "
            f"{summary.get('weights_digest')}): the file was damaged or replaced; {retrain}"
        )
    stats = checkpoint.get("normalization")
    if stats is not None:
        checkpoint["normalization"] = {name: t.numpy() for name, t in stats.items()}
    return {**checkpoint, "summary": summary}
