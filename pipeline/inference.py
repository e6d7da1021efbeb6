"""Inference helpers shared by training, evaluation, the search and the benchmarks.

The data a run reads (aligned splits plus, in frozen mode, the cached language features) and batched
prediction: nothing here trains, so `evaluate` does not load the trainer.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.data.dataset import check_values, content_digest, load_split, validate_aligned
from pipeline.data.loader import AlignedDataset, WordStates, iterate_batches
from pipeline.data.normalize import Stats, apply_stats, fit_stats, fit_word_stats
from pipeline.device import autocast
from pipeline.errors import DataError, PipelineError
from pipeline.features import compute_features, load_features, open_word_states
from pipeline.models import reads_word_states
from pipeline.settings import feature_settings_of

log = logging.getLogger(__name__)


def load_datasets(
    settings: dict[str, Any],
    data_path: str | Path,
    splits: tuple[str, ...],
    features_path: str | Path | None = None,
    device: torch.device | None = None,
    normalization: Stats | None = None,
) -> tuple[dict[str, AlignedDataset], dict[str, Any]]:
    """Validated datasets of `splits`, with the frozen LM features attached in frozen mode.

    Frozen mode reads `features_path` (ids, LM, token and truncation must match), or, without one, computes
    the features in memory first (the workflow caches them once with the `features` stage instead); a run
    that `reads_word_states` also gets the per-word states, read lazily batch by batch from the file.
    With `data.normalize: zscore` the inputs are z-scored (`pipeline.data.normalize`) with `normalization`
    (a checkpoint's statistics) or, when it is None, with statistics fitted on the train split, which must
    then be among `splits`. Returns the datasets and the file's info (`validate_aligned`) plus `path`,
    `lm_hidden` (None when fine-tuning) and `normalization` (the statistics applied; None without
    normalisation).
    Values a model cannot use are refused as read and, z-scored, as given to the model (`check_values`).
    """
    info = {**validate_aligned(data_path), "path": str(data_path)}
    arrays = {split: load_split(data_path, split) for split in splits}
    model = settings["model"]
    features: dict[str, np.ndarray | None] = dict.fromkeys(splits)
    info["lm_hidden"] = None
    words: dict[str, WordStates] = {}
    if model["lm_mode"] == "frozen":
        args = tuple(feature_settings_of(settings).values())
        texts = {split: a["text"] for split, a in arrays.items()}
        steps = info["seq_len"] if reads_word_states(model) else None
        if features_path is None:
            log.info("frozen mode without --features: computing %s features in memory", args[0])
            computed, word_arrays = compute_features(
                {s: t.tolist() for s, t in texts.items()}, *args, device=device, steps=steps
            )
            features.update(computed)
            words = {s: WordStates(w, arrays[s]["length"]) for s, w in word_arrays.items()}
        else:
            ids = {split: a["id"] for split, a in arrays.items()}
            features.update(load_features(features_path, ids, *args, texts=texts))
        info["lm_hidden"] = int(features[splits[0]].shape[1])
        if steps is not None and features_path is not None:
            lengths = {split: a["length"] for split, a in arrays.items()}
            words = open_word_states(features_path, lengths, steps, info["lm_hidden"])
    elif features_path is not None:
        log.warning(
            "ignoring %s: model.lm_mode is finetune, the language model runs on the text", features_path
        )
    info["normalization"] = None
    if settings["data"]["normalize"] == "zscore":
        if normalization is None:
            if "train" not in splits:
                raise DataError(
                    f"{data_path}: z-score statistics come from the train split, which is not read"
                )
            normalization = fit_stats(arrays["train"], features["train"])
            if words:
                normalization.update(fit_word_stats(words["train"]))
        where = f"{data_path} (z-scored with the train statistics)"
        for split in splits:
            arrays[split], features[split] = apply_stats(arrays[split], features[split], normalization)
            for name in ("audio", "visual"):
                check_values(where, split, arrays[split]["id"], name, arrays[split][name])
            if features[split] is not None:
                check_values(where, split, arrays[split]["id"], "text features", features[split])
            if split in words:
                words[split].stats = normalization
        info["normalization"] = normalization
    datasets = {split: AlignedDataset(arrays[split], features[split], words.get(split)) for split in splits}
    return datasets, info


def input_digests(
    settings: dict[str, Any], data_path: str | Path, features_path: str | Path | None
) -> dict[str, dict[str, str] | None]:
    """What a run reads, by content (`content_digest` per split): the aligned file and, in frozen mode, the
    features file it was given (None otherwise: features computed in memory follow from the texts).
    `train.json` records these; `evaluate` and a resume compare them, so another file of the same
    dimensions, or the same path rebuilt from other data, is told apart from the run's own."""
    frozen = settings["model"]["lm_mode"] == "frozen" and features_path is not None
    return {
        "data": content_digest(data_path),
        "features": content_digest(features_path, "features file") if frozen else None,
    }


def _non_finite(preds: np.ndarray, dataset: AlignedDataset) -> str | None:
    """'non-finite predictions for N segments (first: <id>)', or None when every prediction is finite."""
    bad = np.flatnonzero(~np.isfinite(preds))
    return (
        f"non-finite predictions for {len(bad)} segments (first: {dataset.ids[bad[0]]})" if len(bad) else None
    )


def check_predictions(preds: np.ndarray, dataset: AlignedDataset, what: str) -> None:
    """DataError naming `what` (the run and split) and the first segment whose prediction is not finite."""
    if (problem := _non_finite(preds, dataset)) is not None:
        raise DataError(f"{what}: {problem}")


def check_training_predictions(
    epoch: int, preds: np.ndarray, datasets: dict[str, AlignedDataset], data_path: str
) -> None:
    """The divergence error when an epoch's validation predictions are not all finite, naming the data
    first: the largest input the model is given (split, segment, modality), since a value far out of range
    diverges any learning rate; then train.lr. A PipelineError, not a DataError: the inputs passed their
    checks, so a search counts it as one failed trial."""
    if (problem := _non_finite(preds, datasets["valid"])) is not None:
        split, segment, name, value = _largest_input(datasets)
        raise PipelineError(
            f"training diverged in epoch {epoch}: {problem}; the largest input is {name} of magnitude "
            f"{value:.3g} in {split} segment {segment} of {data_path}: if that value is wrong, fix the data, "
            "else lower train.lr"
        )


def _largest_input(datasets: dict[str, AlignedDataset]) -> tuple[str, str, str, float]:
    """The input value of largest magnitude the model is given (after normalisation): its split, segment,
    modality and value; what to look at first when training diverges."""
    found = ("", "", "", 0.0)
    for split, dataset in datasets.items():
        for name in ("audio", "visual", "lm_features"):
            if name not in dataset.tensors:
                continue
            rows = dataset.tensors[name].reshape(len(dataset), -1).abs().amax(dim=1)
            row = int(rows.argmax())
            if float(rows[row]) > abs(found[3]):
                found = (split, str(dataset.ids[row]), name, float(rows[row]))
    return found


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    dataset: AlignedDataset,
    device: torch.device,
    batch_size: int,
    amp: bool = False,
    keep: Collection[str] = (),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Predictions [N] in dataset order, in eval mode, and the representations named in `keep` that the
    model returns: unimodal 'l', 'a', 'v' [N, d] and 'fused' [N, D] (large for tensor fusion: D = (d + 1)^3).
    Nothing is copied off the device for the representations not kept (validation passes keep none)."""
    model.eval()
    preds: list[torch.Tensor] = []
    reps: dict[str, list[torch.Tensor]] = {}
    for batch in iterate_batches(dataset, batch_size):
        with autocast(device, amp):
            pred, unimodal, f = model(**model.model_inputs(batch, device))
        preds.append(pred.float().cpu())
        for name, rep in {**unimodal, "fused": f}.items():
            if name in keep:
                reps.setdefault(name, []).append(rep.float().cpu())
    return torch.cat(preds).numpy(), {name: torch.cat(parts).numpy() for name, parts in reps.items()}
