"""How stage `train` fits a run's model: the SGD epoch loop (`EpochLoop`, one pass `train_epoch`) of HyCon and
the baselines (Adam on MAE, Eq. 2, plus HyCon's hybrid loss, Eqs. 13-14) and the closed-form fit of a family
with a `fit` (the text probe). Each epoch advances a `checkpoint.TrainState`; `pipeline.train` resumes it,
saves it after every epoch and writes the run's outputs from it.

Model selection reads the validation split only: an epoch is the new best when its `train.select` score
beats the best so far (NaN never does); `train.patience` epochs without improvement stop the run.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pipeline.checkpoint import BestEpoch, TrainState, clear_outputs, set_rng_state
from pipeline.data.loader import AlignedDataset, iterate_batches
from pipeline.device import autocast
from pipeline.inference import DataInfo, check_training_predictions, predict
from pipeline.layout import VALID_COLUMNS
from pipeline.losses import class_labels, hybrid_loss
from pipeline.metrics import regression_metrics
from pipeline.models import build_model
from pipeline.models.contract import ModelFamily, ModelOutput
from pipeline.optimizer import make_optimizer, set_scheduled_lr
from pipeline.settings import LOWER_IS_BETTER

log = logging.getLogger(__name__)


def _is_better(score: float, best: float | None, metric: str) -> bool:
    if math.isnan(score):
        return False
    if best is None:
        return True
    return score < best if metric in LOWER_IS_BETTER else score > best


def train_epoch(
    model: ModelFamily,
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
    train_cfg = settings["train"]
    model.train()
    # Accumulated on the device and read once per epoch: a float() per step would stall a GPU every step.
    sums: dict[str, torch.Tensor] = {}
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
            output = model(**model.model_inputs(batch, device))
        losses = _step_losses(output, labels, settings["loss"], generators["loss"])
        _optimizer_step(losses["train_loss"], model, optimizer, scaler, train_cfg["grad_clip"])
        size = len(labels)
        seen += size
        for name, value in losses.items():
            sums[name] = sums.get(name, torch.zeros((), device=device)) + value.detach().float() * size
    return {name: float(total) / max(seen, 1) for name, total in sums.items()}


def _step_losses(
    output: ModelOutput, labels: torch.Tensor, loss_cfg: dict[str, Any], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """A batch's total loss (Eq. 14), prediction loss (Eq. 2, MAE) and hybrid contrastive loss (Eq. 13;
    zero under `loss.contrastive: none`), as 0-d tensors named by their history columns."""
    pred_loss = (output.prediction.float() - labels).abs().mean()  # Eq. 2, MAE
    if loss_cfg["contrastive"] == "none":  # every baseline (settings.contrastive_conflict), an ablation
        hybrid = torch.zeros((), device=labels.device)
    else:
        hybrid, _ = hybrid_loss(
            {m: r.float() for m, r in output.unimodal.items()},
            class_labels(labels, loss_cfg["zero_class"]),
            alpha=loss_cfg["alpha"],
            lambdas=(loss_cfg["lambda_iamcl"], loss_cfg["lambda_iemcl"], loss_cfg["lambda_scl"]),
            refine=loss_cfg["refine"],
            contrastive=loss_cfg["contrastive"],
            generator=generator,
            reduction=loss_cfg["reduction"],
        )
    total = pred_loss + hybrid  # Eq. 14
    return {"train_loss": total, "train_pred_loss": pred_loss, "train_hybrid_loss": hybrid}


def _optimizer_step(
    loss: torch.Tensor,
    model: ModelFamily,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    grad_clip: float,
) -> None:
    """Back-propagate `loss` (scaled under mixed precision), clip the gradient norm at `grad_clip` (0: no
    clipping) and step the optimizer."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def _best_entry(epoch: int, valid: dict[str, float], metric: str, model: ModelFamily) -> BestEpoch:
    """The selected epoch: its number, `train.select` score, validation metrics and weights (on the CPU)."""
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return BestEpoch(epoch, valid[metric], valid, weights)


def fit_closed_form(
    family: type[ModelFamily],
    settings: dict[str, Any],
    datasets: dict[str, AlignedDataset],
    info: DataInfo,
    dev: torch.device,
    out: Path,
) -> TrainState:
    """Fit a family that is not trained by SGD (`family.fit`: the text probe, closed form on train, its
    regularisation chosen on valid); its one history row is 'epoch 1' with the training MAE."""
    clear_outputs(out)  # from here until train.json is written, the folder is an incomplete run
    start = time.perf_counter()
    model, report = family.fit(settings, datasets, info.dims, dev)
    preds, _ = predict(model, datasets["valid"], dev, settings["train"]["batch_size"])
    valid = regression_metrics(datasets["valid"].tensors["label"].numpy(), preds)
    mae = report["train_mae"]
    row = {"epoch": 1, "train_loss": mae, "train_pred_loss": mae, "train_hybrid_loss": 0.0}
    row.update({f"valid_{k}": valid[k] for k in VALID_COLUMNS}, seconds=time.perf_counter() - start)
    log.info("closed-form fit (%s): valid mae %.4f", report["chosen"], valid["mae"])
    best = _best_entry(1, valid, settings["train"]["select"], model)
    return TrainState(epoch=1, best=best, history=[row])


@dataclass
class EpochLoop:
    """What the epoch loop works on: the model, its optimizer and grad scaler, the batch-order ('loader') and
    loss ('loss') RNGs, and the data."""

    settings: dict[str, Any]
    datasets: dict[str, AlignedDataset]
    info: DataInfo
    dev: torch.device
    amp: bool
    model: ModelFamily
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    generators: dict[str, torch.Generator]

    @classmethod
    def build(
        cls,
        settings: dict[str, Any],
        datasets: dict[str, AlignedDataset],
        info: DataInfo,
        dev: torch.device,
        amp: bool,
        seed: int,
    ) -> EpochLoop:
        """A fresh model and optimizer; the loader RNG seeded with `seed`, the loss RNG with seed + 1."""
        model = build_model(settings, info.dims).to(dev)
        generators = {
            "loader": torch.Generator().manual_seed(seed),
            "loss": torch.Generator().manual_seed(seed + 1),
        }
        return cls(
            settings,
            datasets,
            info,
            dev,
            amp,
            model,
            make_optimizer(model, settings["train"]),
            torch.amp.GradScaler(dev.type, enabled=amp),
            generators,
        )

    def resume(self, checkpoint: dict[str, Any]) -> TrainState:
        """Restore the model, optimizer, grad scaler and every RNG from a matching `last.pt`."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        set_rng_state(checkpoint["rng"], self.generators)
        return TrainState.from_checkpoint(checkpoint)

    def run_epoch(self, state: TrainState) -> dict[str, float]:
        """Train epoch `state.epoch + 1`, validate it and advance `state` (best, patience, history, weights);
        return its history row."""
        train_cfg, metric = self.settings["train"], self.settings["train"]["select"]
        epoch = state.epoch + 1
        start = time.perf_counter()
        desc = f"epoch {epoch}/{train_cfg['epochs']}"
        row: dict[str, float] = {"epoch": epoch}
        row.update(
            train_epoch(
                self.model,
                self.datasets["train"],
                self.settings,
                self.optimizer,
                self.scaler,
                self.dev,
                self.amp,
                self.generators,
                desc,
                epoch,
            )
        )
        preds, _ = predict(self.model, self.datasets["valid"], self.dev, train_cfg["batch_size"], self.amp)
        check_training_predictions(epoch, preds, self.datasets, self.info.path)
        valid = regression_metrics(self.datasets["valid"].tensors["label"].numpy(), preds)
        row.update({f"valid_{k}": valid[k] for k in VALID_COLUMNS})
        row["seconds"] = time.perf_counter() - start
        if _is_better(valid[metric], state.best and state.best.score, metric):
            state.best, state.bad_epochs = _best_entry(epoch, valid, metric, self.model), 0
        else:
            state.bad_epochs += 1
        state.stopped = state.bad_epochs >= train_cfg["patience"]
        state.epoch = epoch
        state.history.append(row)
        state.weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        best = " (best)" if state.best is not None and state.best.epoch == epoch else ""
        log.info(
            "epoch %d: loss %.4f (pred %.4f, hybrid %.4f), valid mae %.4f acc2_non0 %.4f%s",
            epoch,
            row["train_loss"],
            row["train_pred_loss"],
            row["train_hybrid_loss"],
            valid["mae"],
            valid["acc2_non0"],
            best,
        )
        return row
