"""Per-dimension z-scoring of the model's fixed inputs (`data.normalize: zscore`, the default).

Raw COVAREP mixes columns in Hz (F0 up to a few hundred), binary voicing flags and cepstra; FACET evidence
columns have their own offsets and spreads. Fed raw to a linear layer, the Hz-scale columns dominate (MISA
z-normalises; MMSA's maintainers report that unnormalised features may not converge). Cached frozen
language-model vectors are fixed inputs too and are z-scored the same way (measured on real CMU-MOSI text:
docs/language-vector.md); a fine-tuned language model's states are not touched.

The statistics are each dimension's mean and standard deviation over the TRAIN split only: for `audio` and
`visual` over the valid time steps (`t < length`; the zero padding is not data), for the language vectors over
the segments, for the per-word language states (the word-sequential baselines') over the valid words, streamed
from the features file a chunk of segments at a time (`fit_word_stats`). The same transform is then applied to
every split: valid steps become `(x - mean) / std`, padding stays 0. A constant column (std below `EPS`, a
column of zeros included) gets std 1, so it is only centred; a value that comes out non-finite becomes 0, as
the aligner does for non-finite frames. Training stores the statistics in `model.pt`, so `evaluate` applies
exactly the transform the model was trained with.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

SEQUENCES: tuple[str, ...] = ("audio", "visual")  # [N, T, D] arrays of a split, z-scored at valid steps
TEXT = "text"  # the statistics' name for the cached language vectors [N, H]
WORD_STATES = "words"  # the statistics' name for the cached per-word language states [N, T, H]
EPS = 1e-6  # a standard deviation below this is a constant column

Stats = dict[str, np.ndarray]


class StatesByRow(Protocol):
    """Per-word states read by rows (`pipeline.data.loader.WordStates`): `read(rows) -> [b, T, H]`."""

    length: np.ndarray  # [N] valid word counts

    def __len__(self) -> int: ...

    def read(self, rows: np.ndarray) -> np.ndarray: ...


def _valid(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Valid-step mask [N, T] of a split (`t < length`)."""
    steps = arrays[SEQUENCES[0]].shape[1]
    return np.arange(steps)[None, :] < arrays["length"][:, None]


def _mean_std(values: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std [dim] (float32, accumulated in float64) of rows [M, dim]; constant -> std 1."""
    if len(values) == 0:
        return np.zeros(dim, np.float32), np.ones(dim, np.float32)
    mean = values.mean(axis=0, dtype=np.float64)
    std = values.std(axis=0, dtype=np.float64)
    return mean.astype(np.float32), np.where(std < EPS, 1.0, std).astype(np.float32)


def fit_stats(arrays: dict[str, np.ndarray], lm_features: np.ndarray | None = None) -> Stats:
    """The z-score statistics of the train split: `{audio,visual,text}_{mean,std}`, float32 [D] each.

    `arrays` is the split as `load_split` returns it (`audio` [N, T, Da], `visual` [N, T, Dv], `length`
    [N]); `lm_features` [N, H] its cached language vectors (frozen mode), else no `text_*` statistics.
    """
    valid = _valid(arrays)
    stats: Stats = {}
    for name in SEQUENCES:
        stats[f"{name}_mean"], stats[f"{name}_std"] = _mean_std(arrays[name][valid], arrays[name].shape[2])
    if lm_features is not None:
        stats[f"{TEXT}_mean"], stats[f"{TEXT}_std"] = _mean_std(lm_features, lm_features.shape[1])
    return stats


def _scale(values: np.ndarray, stats: Stats, name: str) -> np.ndarray:
    """(values - mean) / std over the last axis, non-finite results 0 (float32)."""
    mean, std = stats[f"{name}_mean"], stats[f"{name}_std"]
    if mean.shape != values.shape[-1:]:
        raise ValueError(f"{name}: statistics of {mean.shape[0]} dims for {values.shape[-1]}-d features")
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = (values - mean) / std
    return np.where(np.isfinite(scaled), scaled, np.float32(0)).astype(np.float32, copy=False)


def apply_stats(
    arrays: dict[str, np.ndarray], lm_features: np.ndarray | None, stats: Stats
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """A split's arrays (a copy) and language vectors, z-scored with `stats` (padding stays 0).

    Language vectors are scaled when `stats` has `text_*` statistics (a frozen run's), else returned as is.
    """
    valid = _valid(arrays)[..., None]
    out = dict(arrays)
    for name in SEQUENCES:
        out[name] = np.where(valid, _scale(arrays[name], stats, name), np.float32(0))
    if lm_features is not None and f"{TEXT}_mean" in stats:
        lm_features = _scale(lm_features, stats, TEXT)
    return out, lm_features


def fit_word_stats(words: StatesByRow, chunk: int = 256) -> Stats:
    """`words_{mean,std}` [H] of a train split's per-word states over its valid words (`t < length`),
    accumulated in float64 over chunks of `chunk` segments (the split is never read whole); a constant
    column gets std 1, as in `fit_stats`."""
    moments, count = 0.0, 0
    for start in range(0, len(words), chunk):
        rows = np.arange(start, min(start + chunk, len(words)))
        values = words.read(rows)
        valid = values[np.arange(values.shape[1])[None, :] < words.length[rows][:, None]].astype(np.float64)
        moments = moments + np.stack([valid.sum(0), (valid**2).sum(0)])
        count += len(valid)
    mean = moments[0] / max(count, 1)
    std = np.sqrt(np.maximum(moments[1] / max(count, 1) - mean**2, 0.0))
    return {
        f"{WORD_STATES}_mean": mean.astype(np.float32),
        f"{WORD_STATES}_std": np.where(std < EPS, 1.0, std).astype(np.float32),
    }


def scale_words(values: np.ndarray, length: np.ndarray, stats: Stats) -> np.ndarray:
    """Per-word states [b, T, H] z-scored with `stats`' `words_*` at their valid steps; padding stays 0.
    Returned unchanged when `stats` has no `words_*` statistics."""
    if f"{WORD_STATES}_mean" not in stats:
        return values
    valid = (np.arange(values.shape[1])[None, :] < np.asarray(length)[:, None])[..., None]
    return np.where(valid, _scale(values, stats, WORD_STATES), np.float32(0))
