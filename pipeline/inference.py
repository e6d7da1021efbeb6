"""Inference helpers shared by training, evaluation, the search and the benchmarks.

The data a run reads (aligned splits plus, in frozen mode, the cached language features) and batched
prediction: nothing here trains, so `evaluate` does not load the trainer.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
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
from pipeline.models.contract import ModelFamily
from pipeline.settings import feature_settings_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataInfo:
    """What `load_datasets` read: the aligned file's layout (`validate_aligned`) and what the run derives.

    path: the aligned file; dataset: its dataset name; audio_dim, visual_dim, seq_len: its root dimensions;
    sizes: samples per split; lm_hidden: the cached language features' width H (None when fine-tuning: the
    model knows its language model's width); normalization: the z-score statistics applied (None without
    normalisation, `data.normalize: none`).
    """

    path: str
    dataset: str
    audio_dim: int
    visual_dim: int
    seq_len: int
    sizes: dict[str, int]
    lm_hidden: int | None
    normalization: Stats | None

    @property
    def dims(self) -> dict[str, int | None]:
        """The dimensions a network is built for (`build_model`), as a checkpoint's `dims` stores them."""
        return {
            "audio_dim": self.audio_dim,
            "visual_dim": self.visual_dim,
            "seq_len": self.seq_len,
            "lm_hidden": self.lm_hidden,
        }


@dataclass
class _Language:
    """The language inputs of each split: cached sentence vectors [N, H] (None when fine-tuning) and
    per-word states (only for a run that `reads_word_states`)."""

    features: dict[str, np.ndarray | None]
    words: dict[str, WordStates]
    lm_hidden: int | None


def load_datasets(
    settings: dict[str, Any],
    data_path: str | Path,
    splits: tuple[str, ...],
    features_path: str | Path | None = None,
    device: torch.device | None = None,
    normalization: Stats | None = None,
) -> tuple[dict[str, AlignedDataset], DataInfo]:
    """Validated datasets of `splits`, with the frozen LM features attached in frozen mode.

    Frozen mode reads `features_path` (ids, LM, token and truncation must match), or, without one, computes
    the features in memory first (the workflow caches them once with the `features` stage instead); a run
    that `reads_word_states` also gets the per-word states, read lazily batch by batch from the file.
    With `data.normalize: zscore` the inputs are z-scored (`pipeline.data.normalize`) with `normalization`
    (a checkpoint's statistics) or, when it is None, with statistics fitted on the train split, which must
    then be among `splits`. Returns the datasets and a `DataInfo`.
    Values a model cannot use are refused as read and, z-scored, as given to the model (`check_values`).
    """
    layout = validate_aligned(data_path)
    arrays = {split: load_split(data_path, split) for split in splits}
    if settings["model"]["lm_mode"] == "frozen":
        language = _frozen_language(settings, arrays, layout["seq_len"], features_path, device)
    else:
        if features_path is not None:
            log.warning(
                "ignoring %s: model.lm_mode is finetune, the language model runs on the text", features_path
            )
        language = _Language(dict.fromkeys(splits), {}, None)
    if settings["data"]["normalize"] == "zscore":
        normalization = _zscore(data_path, arrays, language, normalization)
    else:
        normalization = None
    info = DataInfo(
        path=str(data_path),
        dataset=layout["dataset"],
        audio_dim=layout["audio_dim"],
        visual_dim=layout["visual_dim"],
        seq_len=layout["seq_len"],
        sizes=layout["sizes"],
        lm_hidden=language.lm_hidden,
        normalization=normalization,
    )
    datasets = {
        split: AlignedDataset(arrays[split], language.features[split], language.words.get(split))
        for split in splits
    }
    return datasets, info


def _frozen_language(
    settings: dict[str, Any],
    arrays: dict[str, dict[str, np.ndarray]],
    seq_len: int,
    features_path: str | Path | None,
    device: torch.device | None,
) -> _Language:
    """The frozen language model's inputs of each split: read from `features_path` (per-word states lazily),
    or computed in memory without one."""
    args = tuple(feature_settings_of(settings).values())
    texts = {split: a["text"] for split, a in arrays.items()}
    ids = {split: a["id"] for split, a in arrays.items()}
    steps = seq_len if reads_word_states(settings["model"]) else None
    words: dict[str, WordStates] = {}
    if features_path is None:
        log.info("frozen mode without --features: computing %s features in memory", args[0])
        features, word_arrays = compute_features(
            {s: t.tolist() for s, t in texts.items()}, *args, device=device, steps=steps
        )
        words = {s: WordStates(w, arrays[s]["length"]) for s, w in word_arrays.items()}
    else:
        features = load_features(features_path, ids, *args, texts=texts)
    features = {split: features[split] for split in arrays}
    lm_hidden = int(next(iter(features.values())).shape[1])
    if steps is not None and features_path is not None:
        lengths = {split: a["length"] for split, a in arrays.items()}
        words = open_word_states(features_path, lengths, steps, lm_hidden, ids)
    return _Language(features, words, lm_hidden)


def _zscore(
    data_path: str | Path,
    arrays: dict[str, dict[str, np.ndarray]],
    language: _Language,
    normalization: Stats | None,
) -> Stats:
    """Z-score every split's inputs in place (`arrays`, `language`) with `normalization`, or with statistics
    fitted on the train split when it is None; check the values the model is given; return the statistics."""
    if normalization is None:
        if "train" not in arrays:
            raise DataError(f"{data_path}: z-score statistics come from the train split, which is not read")
        normalization = fit_stats(arrays["train"], language.features["train"])
        if language.words:
            normalization.update(fit_word_stats(language.words["train"]))
    where = f"{data_path} (z-scored with the train statistics)"
    for split in arrays:
        arrays[split], language.features[split] = apply_stats(
            arrays[split], language.features[split], normalization
        )
        for name in ("audio", "visual"):
            check_values(where, split, arrays[split]["id"], name, arrays[split][name])
        if language.features[split] is not None:
            check_values(where, split, arrays[split]["id"], "text features", language.features[split])
        if split in language.words:
            language.words[split].stats = normalization
    return normalization


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
    model: ModelFamily,
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
            output = model(**model.model_inputs(batch, device))
        preds.append(output.prediction.float().cpu())
        for name, rep in {**output.unimodal, "fused": output.fused}.items():
            if name in keep:
                reps.setdefault(name, []).append(rep.float().cpu())
    return torch.cat(preds).numpy(), {name: torch.cat(parts).numpy() for name, parts in reps.items()}
