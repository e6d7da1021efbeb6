"""Regression metrics of multimodal sentiment analysis, with the conventions of MMSA (the MSA literature's).

- acc7: accuracy of ``np.round(np.clip(x, -3, 3))`` of prediction against label. ``np.round`` rounds halves
  to the nearest even integer (0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0), exactly as MMSA does.
- has0 (acc2_has0, f1_has0): over all samples, ``label >= 0`` against ``prediction >= 0``.
- non0 (acc2_non0, f1_non0, the paper's Acc2 / F1): samples whose *true* label is 0 are dropped, then
  ``label > 0`` against ``prediction > 0`` (a zero prediction counts as negative). When every label is 0
  these two are NaN (undefined), not a misleading number.
- F1 is sklearn's ``f1_score(average='weighted')`` (``zero_division=0``, its default value without the
  warning); mae and corr (Pearson, ``np.corrcoef``) are over all samples. corr is 0.0 when the labels or the
  predictions are constant (Pearson's r is undefined there and ``np.corrcoef`` would give NaN).
"""

from __future__ import annotations

from typing import Any

import numpy as np

METRIC_KEYS: tuple[str, ...] = ("acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "mae", "corr")


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Acc7, has0/non0 Acc2 and weighted F1, MAE and Pearson correlation of predicted sentiment scores.

    Inputs are array-likes (lists, numpy arrays, torch tensors) of equal size, flattened; the values are
    plain Python floats (fractions, not percentages). Raises ValueError for empty, mismatched or
    non-finite inputs.
    """
    truth, pred = _as_vector(y_true, "y_true"), _as_vector(y_pred, "y_pred")
    if truth.size != pred.size:
        raise ValueError(f"y_true has {truth.size} values but y_pred has {pred.size}")
    acc7 = np.mean(np.round(np.clip(truth, -3, 3)) == np.round(np.clip(pred, -3, 3)))
    acc2_has0, f1_has0 = _binary_scores(truth >= 0, pred >= 0)
    non0 = truth != 0
    if non0.any():
        acc2_non0, f1_non0 = _binary_scores(truth[non0] > 0, pred[non0] > 0)
    else:
        acc2_non0 = f1_non0 = float("nan")
    constant = np.ptp(truth) == 0 or np.ptp(pred) == 0
    corr = 0.0 if constant else np.corrcoef(truth, pred)[0, 1]
    return {
        "acc7": float(acc7),
        "acc2_has0": acc2_has0,
        "f1_has0": f1_has0,
        "acc2_non0": acc2_non0,
        "f1_non0": f1_non0,
        "mae": float(np.mean(np.abs(truth - pred))),
        "corr": float(corr),
    }


def _binary_scores(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Accuracy and weighted F1 of two boolean vectors."""
    from sklearn.metrics import f1_score  # here: the reporting stages import METRIC_KEYS, not sklearn (1 s)

    accuracy = float(np.mean(truth == pred))
    return accuracy, float(f1_score(truth, pred, average="weighted", zero_division=0))


def _as_vector(values: Any, name: str) -> np.ndarray:
    """Flatten an array-like (a torch tensor included) to a finite, non-empty float64 vector."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} is not numeric: {err}") from err
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has {int((~np.isfinite(array)).sum())} non-finite values (NaN or inf)")
    return array
