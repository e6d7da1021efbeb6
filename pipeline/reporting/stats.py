"""Is a table row's difference from the reference row (HyCon) real? Two paired tests per metric.

- Over seeds: a paired t-test (scipy.stats.ttest_rel) of the row's and the reference's test metrics on
  the seeds both were run with. With fewer than two pairs the p-value is undefined (None); when every
  pair is equal it is 1; when the differences are equal but not zero, t is infinite and p is 0.
- Over test segments: a paired bootstrap of the seed-averaged predictions. Both rows' predictions are
  averaged over their seeds per segment, aligned by segment id, and the same 10,000 resamples of the
  segments (numpy Generator, fixed seed) are scored for both; the metric difference (row minus
  reference) per resample gives the 95% percentile interval and the two-sided p-value
  `min(1, 2 min(#{d <= 0} + 1, #{d >= 0} + 1) / (R + 1))`, which is below 0.05 essentially exactly when
  the interval excludes 0, and is 1 for identical predictions.

Every metric of pipeline.metrics (MMSA conventions, has0 and non0) is computed from per-segment columns
and resample weights: a resample is a row of counts W [R, N] (how often each segment was drawn), so each
metric's sums over a block of resamples are one matrix product W @ columns [N, K]. The metrics here
equal `regression_metrics` on the resampled segments (tests/test_stats.py checks it). The reference
row, the markers and where they show: docs/statistics.md.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel

from pipeline.errors import DataError
from pipeline.metrics import METRIC_KEYS
from pipeline.reporting.captions import RESAMPLES

BOOTSTRAP_SEED = 0
_CHUNK = 1_000  # resamples drawn and scored at a time (bounds memory on CMU-MOSEI's 4,659 segments)


@dataclass(frozen=True)
class Comparison:
    """One metric of one row against the reference, in the metric's own unit (fractions, MAE as is).

    `diff`, `low`, `high`: difference of the seed-averaged predictions' metric and its 95% bootstrap
    interval; `p_boot`: its two-sided bootstrap p-value; `p_seeds`: the paired t-test over `pairs` seeds.
    """

    diff: float | None
    low: float | None
    high: float | None
    p_boot: float | None
    p_seeds: float | None
    pairs: int

    def scaled(self, factor: float) -> Comparison:
        """The same comparison with the difference and its interval in another unit (e.g. percent)."""
        low, high, diff = (None if v is None else v * factor for v in (self.low, self.high, self.diff))
        return Comparison(diff, low, high, self.p_boot, self.p_seeds, self.pairs)


@dataclass(frozen=True)
class Segments:
    """Test segments of one row: ids [N], labels [N] and predictions [N] (averaged over the row's seeds)."""

    ids: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray


def paired_seed_test(
    row: Mapping[int, float | None], reference: Mapping[int, float | None]
) -> tuple[float | None, int]:
    """(p-value of a paired t-test, number of pairs) over the seeds where both values are finite."""
    seeds = [s for s in row if s in reference and _finite(row[s]) and _finite(reference[s])]
    if len(seeds) < 2:
        return None, len(seeds)
    a = np.array([row[s] for s in seeds], dtype=float)
    b = np.array([reference[s] for s in seeds], dtype=float)
    differences = a - b
    if np.ptp(differences) == 0:  # t is 0/0 (all equal: p = 1) or x/0 (a constant gap: p = 0)
        return (1.0 if differences[0] == 0 else 0.0), len(seeds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-constant differences: precision warning
        return float(ttest_rel(a, b).pvalue), len(seeds)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def seed_values(aggregate: Mapping[str, Any], metric: str) -> dict[int, float | None]:
    """seed -> test value of one metric, from an aggregate JSON (pipeline.reporting.aggregate)."""
    return dict(zip(aggregate["seeds"], aggregate["test"][metric]["values"], strict=True))


def load_segments(paths: Sequence[str | Path], split: str = "test") -> Segments:
    """One row's test segments, predictions averaged over its seeds' predictions.csv files.

    Every file must hold the same segment ids with the same labels (DataError naming the file otherwise).
    """
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path, dtype={"id": str})
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise DataError(f"{path}: cannot read predictions ({err})") from None
        missing = {"split", "id", "label", "prediction"} - set(frame.columns)
        if missing:
            raise DataError(f"{path}: predictions lack columns {sorted(missing)}")
        frame = frame[frame["split"] == split].set_index("id")
        if frame.empty or frame.index.has_duplicates:
            raise DataError(f"{path}: no '{split}' rows, or a segment id appears twice")
        if frames:
            first = frames[0]
            if set(frame.index) != set(first.index):
                raise DataError(f"{path}: its {split} segment ids differ from those of {paths[0]}")
            frame = frame.loc[first.index]
            if not np.array_equal(frame["label"].to_numpy(float), first["label"].to_numpy(float)):
                raise DataError(f"{path}: its {split} labels differ from those of {paths[0]}")
        frames.append(frame)
    if not frames:
        raise DataError("no predictions to load")
    predictions = np.mean([f["prediction"].to_numpy(float) for f in frames], axis=0)
    first = frames[0]
    return Segments(first.index.to_numpy(str), first["label"].to_numpy(float), predictions)


def align(row: Segments, reference: Segments, row_name: str, reference_name: str) -> Segments:
    """`row` reordered to the reference's segment order; DataError naming both unless ids and labels agree."""
    if set(row.ids) != set(reference.ids) or len(row.ids) != len(reference.ids):
        only_row = len(set(row.ids) - set(reference.ids))
        only_ref = len(set(reference.ids) - set(row.ids))
        raise DataError(
            f"cannot pair {row_name} with {reference_name}: their test segments differ "
            f"({only_row} ids only in the first, {only_ref} only in the second)"
        )
    order = pd.Index(row.ids).get_indexer(reference.ids)
    aligned = Segments(reference.ids, row.labels[order], row.predictions[order])
    if not np.array_equal(aligned.labels, reference.labels):
        raise DataError(f"cannot pair {row_name} with {reference_name}: their test labels differ")
    return aligned


def segment_columns(labels: np.ndarray, predictions: np.ndarray) -> dict[str, np.ndarray]:
    """Per-segment vectors [N] whose weighted sums give every metric of pipeline.metrics.

    Labels and predictions are centred on the labels' and predictions' means (Pearson's r does not
    change; the sums of squares lose no precision).
    """
    y, p = labels - labels.mean(), predictions - predictions.mean()
    non0 = (labels != 0).astype(float)
    columns = {
        "one": np.ones_like(labels),
        "y": y,
        "yy": y * y,
        "non0": non0,
        "abs_error": np.abs(labels - predictions),
        "hit7": (np.round(np.clip(labels, -3, 3)) == np.round(np.clip(predictions, -3, 3))).astype(float),
        "p": p,
        "pp": p * p,
        "yp": y * p,
    }
    for kind, truth, guess, weight in (
        ("has0", labels >= 0, predictions >= 0, np.ones_like(labels)),
        ("non0", labels > 0, predictions > 0, non0),
    ):
        columns[f"{kind}_tp"] = (truth & guess) * weight
        columns[f"{kind}_fp"] = (~truth & guess) * weight
        columns[f"{kind}_fn"] = (truth & ~guess) * weight
        columns[f"{kind}_tn"] = (~truth & ~guess) * weight
    return columns


def metrics_from_sums(sums: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every metric of pipeline.metrics from the weighted column sums [R] (NaN where undefined)."""
    n = sums["one"]
    out = {"acc7": sums["hit7"] / n, "mae": sums["abs_error"] / n}
    for kind in ("has0", "non0"):
        tp, fp, fn, tn = (sums[f"{kind}_{c}"] for c in ("tp", "fp", "fn", "tn"))
        total = tp + fp + fn + tn
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"acc2_{kind}"] = (tp + tn) / total
            # weighted F1 (sklearn, zero_division=0): support-weighted F1 of the positive and negative class
            f1_pos = np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
            f1_neg = np.where(tn > 0, 2 * tn / (2 * tn + fn + fp), 0.0)
            out[f"f1_{kind}"] = ((tp + fn) * f1_pos + (tn + fp) * f1_neg) / total
    var_y = sums["yy"] - sums["y"] ** 2 / n
    var_p = sums["pp"] - sums["p"] ** 2 / n
    cov = sums["yp"] - sums["y"] * sums["p"] / n
    constant = (var_y <= 1e-12 * sums["yy"]) | (var_p <= 1e-12 * sums["pp"])  # Pearson undefined: 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["corr"] = np.where(constant, 0.0, cov / np.sqrt(var_y * var_p))
    return {key: out[key] for key in METRIC_KEYS}


def resample_blocks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples as counts, in blocks [<= _CHUNK, N]: row r counts how often each of the N
    segments is drawn in resample r. Drawn as index matrices from one numpy Generator (reproducible)."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        index = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(index.ravel(), minlength=size * n).reshape(size, n).astype(float)


def _column_matrix(segments: Segments) -> tuple[list[str], np.ndarray]:
    """Names and matrix [N, K] of the segment columns."""
    columns = segment_columns(segments.labels, segments.predictions)
    return list(columns), np.stack(list(columns.values()), axis=1)


def resampled_metrics(segments: Segments, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of pipeline.metrics [R] for each row of segment weights [R, N] (counts, or ones)."""
    names, matrix = _column_matrix(segments)
    return metrics_from_sums(dict(zip(names, (weights @ matrix).T, strict=True)))


def scored(
    rows: Sequence[Segments], resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> list[dict[str, np.ndarray]]:
    """Per row of aligned segments, metric -> [1 + R]: on all segments, then on each of R resamples (the
    same resamples for every row)."""
    names, _ = _column_matrix(rows[0])
    matrices = [_column_matrix(row)[1] for row in rows]
    sums = [[matrix.sum(axis=0, keepdims=True)] for matrix in matrices]  # [1, K]: all segments
    for counts in resample_blocks(len(rows[0].ids), resamples, seed):
        for parts, matrix in zip(sums, matrices, strict=True):
            parts.append(counts @ matrix)
    return [metrics_from_sums(dict(zip(names, np.concatenate(parts).T, strict=True))) for parts in sums]


def bootstrap(
    row: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
) -> dict[str, tuple[float | None, float | None, float | None, float | None]]:
    """metric -> (difference on all segments, 95% interval low, high, two-sided p) of `row` minus
    `reference`, from their `scored` metrics."""
    differences = {m: row[m] - reference[m] for m in METRIC_KEYS}
    return {m: _summarise(float(d[0]), d[1:]) for m, d in differences.items()}


def _summarise(
    observed: float, resampled: np.ndarray
) -> tuple[float | None, float | None, float | None, float | None]:
    """(observed difference, 2.5% and 97.5% percentiles, two-sided p) of a bootstrap distribution."""
    finite = resampled[np.isfinite(resampled)]
    diff = float(observed) if math.isfinite(observed) else None
    if finite.size == 0:
        return diff, None, None, None
    low, high = np.percentile(finite, [2.5, 97.5])
    tails = min(np.count_nonzero(finite <= 0), np.count_nonzero(finite >= 0)) + 1
    return diff, float(low), float(high), float(min(1.0, 2 * tails / (finite.size + 1)))


def compare_table(
    rows: Sequence[Mapping[str, str]],
    reference: str,
    aggregates: Mapping[str, Mapping[str, Any]],
    segments: Mapping[str, Segments],
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, dict[str, Comparison]]:
    """experiment -> metric -> Comparison for every row of a table but the reference's.

    `aggregates` and `segments` map experiment -> its aggregate JSON and its seed-averaged test segments.
    All rows share the same resamples, so their intervals are comparable.
    """
    experiments = [e for e in dict.fromkeys(entry["experiment"] for entry in rows) if e != reference]
    aligned = [
        align(segments[e], segments[reference], f"'{e}'", f"the reference '{reference}'") for e in experiments
    ]
    ref_scores, *row_scores = scored([segments[reference], *aligned], resamples, seed)
    out: dict[str, dict[str, Comparison]] = {}
    for experiment, scores in zip(experiments, row_scores, strict=True):
        boot = bootstrap(scores, ref_scores)
        out[experiment] = {}
        for metric in METRIC_KEYS:
            p_seeds, pairs = paired_seed_test(
                seed_values(aggregates[experiment], metric), seed_values(aggregates[reference], metric)
            )
            out[experiment][metric] = Comparison(*boot[metric], p_seeds=p_seeds, pairs=pairs)
    return out


def group_predictions(paths: Sequence[str | Path]) -> dict[str, dict[int, Path]]:
    """experiment -> seed -> predictions.csv, from the run layout results/runs/<d>/<experiment>/seed<k>/."""
    grouped: dict[str, dict[int, Path]] = {}
    for path in map(Path, paths):
        match = re.fullmatch(r"seed(\d+)", path.parent.name)
        if match is None:
            raise DataError(f"{path}: not in a run directory <experiment>/seed<k>/")
        grouped.setdefault(path.parent.parent.name, {})[int(match.group(1))] = path
    return grouped


def table_statistics(
    table: str,
    rows: Sequence[Mapping[str, str]],
    reference: str,
    aggregates: Mapping[str, Mapping[str, Any]],
    predictions: Mapping[str, Mapping[int, Path]],
) -> dict[str, dict[str, Comparison]]:
    """compare_table on the rows' predictions.csv files, which must be those of the aggregated seeds."""
    segments = {}
    for experiment in dict.fromkeys(row["experiment"] for row in rows):
        runs = predictions.get(experiment, {})
        seeds = aggregates[experiment]["seeds"]
        if sorted(runs) != sorted(seeds):
            raise DataError(
                f"table {table}: the statistics need the predictions.csv of experiment '{experiment}' for "
                f"its aggregated seeds {sorted(seeds)}; given seeds {sorted(runs)}"
            )
        segments[experiment] = load_segments([runs[seed] for seed in sorted(runs)])
    return compare_table(rows, reference, aggregates, segments)
