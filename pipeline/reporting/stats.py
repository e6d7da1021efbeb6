"""Is a table row's difference from the reference row (HyCon) real? Paired tests that compare like with like.

A row is compared with the reference on the seeds both were run with (`shared` seeds), seed by seed: its
seed-k run against the reference's seed-k run, never against an average over the reference's seeds (an
ensemble's averaged predictions have a lower MAE by themselves). Per metric:

- Paired bootstrap (marks the tables): with two or more shared seeds it is two-level: each of 10,000
  resamples draws the shared seeds with replacement and the test videos with replacement, each drawn
  video bringing all its segments (one draw for every seed: they share one test set), scores every drawn
  seed's run of both rows on the drawn segments, and keeps the mean over the drawn seeds of the per-seed
  difference (row minus reference), so that both training randomness and the choice of test videos
  count. Videos, not segments, are the units drawn: a video's segments share its speaker, and errors
  that move together within a video would make a segment bootstrap too narrow. With one shared seed it
  resamples the videos only. Segment ids without a video (`"<video>[<k>]"`) are drawn one by one. The
  statistic on all segments and seeds is the mean over the shared seeds of the per-seed difference, i.e.
  the difference of the rows' means over those seeds. 95% percentile interval; two-sided p
  `min(1, 2 min(#{d <= 0} + 1, #{d >= 0} + 1) / (R + 1))`, below 0.05 essentially exactly when the interval
  excludes 0, and 1 for identical predictions.
- Exact paired permutation (sign-flip) test over the shared seeds: the per-seed differences' mean against
  all 2^k sign assignments; it needs no distribution and is defined when every pair is equal (p = 1) or
  every gap is the same (p = 2 / 2^k, never 0). With k seeds its smallest p is 2 / 2^k (0.25 for 3 seeds).
- Paired t-test over the shared seeds (scipy), for the record: undefined (None) with fewer than two pairs
  or when the differences do not vary (t is 0/0 or x/0).

Every metric of pipeline.metrics (MMSA conventions, has0 and non0) is computed from per-segment columns
and resample weights: a resample is a row of counts W [R, N] (how often each segment was drawn, its
video's draws), so each
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
from scipy.stats import ttest_1samp

from pipeline.errors import DataError
from pipeline.metrics import METRIC_KEYS
from pipeline.reporting.captions import RESAMPLES

BOOTSTRAP_SEED = 0
_CHUNK = 1_000  # resamples drawn and scored at a time (bounds memory on CMU-MOSEI's 4,659 segments)
_SEGMENT_ID = re.compile(r"(.+)\[\d+\]")  # the aligned contract's segment id: "<video>[<k>]"
EXACT_SEEDS = 16  # up to this many shared seeds the permutation test enumerates all 2^k sign assignments
SIGN_DRAWS = 65_536  # beyond it, this many random assignments (seeded) estimate its p-value


@dataclass(frozen=True)
class Comparison:
    """One metric of one row against the reference, in the metric's own unit (fractions, MAE as is).

    `seeds`: the shared seeds compared (empty: nothing to compare, every value None). `diff`: the mean over
    them of the per-seed difference (row minus reference); `low`, `high`, `p_boot`: its 95% interval and
    two-sided p-value in the paired bootstrap (over seeds and segments with two or more seeds, over
    segments with one); `p_perm`: the exact paired permutation test over seeds; `p_ttest`: the paired
    t-test over seeds.
    """

    diff: float | None
    low: float | None
    high: float | None
    p_boot: float | None
    p_perm: float | None
    p_ttest: float | None
    seeds: tuple[int, ...]

    @property
    def pairs(self) -> int:
        """Number of seeds both rows ran, compared pair by pair."""
        return len(self.seeds)

    def scaled(self, factor: float) -> Comparison:
        """The same comparison with the difference and its interval in another unit (e.g. percent)."""
        low, high, diff = (None if v is None else v * factor for v in (self.low, self.high, self.diff))
        return Comparison(diff, low, high, self.p_boot, self.p_perm, self.p_ttest, self.seeds)


@dataclass(frozen=True)
class Segments:
    """Test segments of one run: ids [N], labels [N] and predictions [N]."""

    ids: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray


def sign_flip_test(differences: Sequence[float], seed: int = BOOTSTRAP_SEED) -> float | None:
    """Two-sided p of the exact paired permutation test of per-seed differences [k] (None for k < 2).

    Under the null hypothesis each difference is as likely to have the other sign, so the p-value is the
    share of the 2^k sign assignments whose |sum| is at least the observed |sum| (ties included: p = 1 when
    every difference is 0, 2 / 2^k when all are equal and not 0). Beyond EXACT_SEEDS seeds, SIGN_DRAWS
    random assignments (numpy Generator `seed`) estimate it, the observed one counted in.
    """
    d = np.asarray(differences, dtype=float)
    k = d.size
    if k < 2:
        return None
    if k <= EXACT_SEEDS:
        signs = 1 - 2 * ((np.arange(2**k)[:, None] >> np.arange(k)) & 1)  # row 0: all +1, the observed
    else:
        drawn = np.random.default_rng(seed).choice([-1, 1], size=(SIGN_DRAWS, k))
        signs = np.vstack([np.ones((1, k), dtype=int), drawn])
    sums = np.abs(signs @ d)
    tolerance = 1e-12 * np.abs(d).sum()  # the same |sum| reached in another order of summation
    return float(np.mean(sums >= sums[0] - tolerance))


def paired_t_test(differences: Sequence[float]) -> float | None:
    """Two-sided p of the paired t-test of per-seed differences; None with fewer than two pairs or when the
    differences do not vary (t is 0/0 or x/0: no valid p, the permutation test answers instead). Differences
    equal but for rounding (metrics of shifted predictions) count as equal: their t would be ~1e15."""
    d = np.asarray(differences, dtype=float)
    if d.size < 2 or np.ptp(d) <= 1e-9 * np.abs(d).max():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-constant differences: precision warning
        return float(ttest_1samp(d, 0.0).pvalue)


def seed_values(aggregate: Mapping[str, Any], metric: str) -> dict[int, float | None]:
    """seed -> test value of one metric, from an aggregate JSON (pipeline.reporting.aggregate)."""
    return dict(zip(aggregate["seeds"], aggregate["test"][metric]["values"], strict=True))


def paired_differences(row: Mapping[int, float | None], reference: Mapping[int, float | None]) -> np.ndarray:
    """Per-seed differences [k] (row minus reference) on the seeds where both values are finite."""
    finite = [s for s in row if s in reference and _finite(row[s]) and _finite(reference[s])]
    return np.array([row[s] - reference[s] for s in finite], dtype=float)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def load_segments(path: str | Path, split: str = "test") -> Segments:
    """One run's segments of `split` from its predictions.csv (DataError naming the file when unusable)."""
    try:
        frame = pd.read_csv(path, dtype={"id": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{path}: cannot read predictions ({err})") from None
    missing = {"split", "id", "label", "prediction"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: predictions lack columns {sorted(missing)}")
    frame = frame[frame["split"] == split]
    if frame.empty or frame["id"].duplicated().any():
        raise DataError(f"{path}: no '{split}' rows, or a segment id appears twice")
    return Segments(
        frame["id"].to_numpy(str), frame["label"].to_numpy(float), frame["prediction"].to_numpy(float)
    )


def load_runs(paths: Mapping[int, str | Path]) -> dict[int, Segments]:
    """seed -> one row's test segments, every seed's in the first seed's segment order; the files must
    hold the same segment ids with the same labels (DataError naming both files otherwise)."""
    if not paths:
        raise DataError("no predictions to load")
    seeds = sorted(paths)
    first = load_segments(paths[seeds[0]])
    return {s: align(load_segments(paths[s]), first, str(paths[s]), str(paths[seeds[0]])) for s in seeds}


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


def video_groups(ids: np.ndarray) -> np.ndarray:
    """Group number [N] of each segment: its video, read from the aligned contract's id `"<video>[<k>]"`
    (docs/architecture.md section 2), numbered in order of first appearance. An id of another form is a
    group of its own, so ids without videos resample segment by segment."""
    keys = [("video", m.group(1)) if (m := _SEGMENT_ID.fullmatch(i)) else ("id", i) for i in map(str, ids)]
    return pd.factorize(pd.Series(keys, dtype=object))[0]


def resample_blocks(groups: np.ndarray, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples as counts, in blocks [<= _CHUNK, N]: row r counts how often each of the N
    segments is drawn in resample r. The G groups (`groups` [N], numbers 0..G-1: the videos) are drawn
    with replacement, G per resample, and a segment counts as often as its video was drawn: segments of
    one video share a speaker and are not independent. With every segment its own group (groups
    0..N-1 in order) this is the plain segment bootstrap, draw for draw. Drawn as index matrices from one
    numpy Generator (reproducible)."""
    groups = np.asarray(groups, dtype=np.int64)
    g = int(groups.max()) + 1 if groups.size else 0
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        index = rng.integers(0, g, size=(size, g)) + (np.arange(size) * g)[:, None]
        drawn = np.bincount(index.ravel(), minlength=size * g).reshape(size, g)
        yield drawn[:, groups].astype(float)


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
    """Per row of aligned segments, metric -> [1 + R]: on all segments, then on each of R resamples of
    their videos (`resample_blocks`; the same resamples for every row)."""
    names, _ = _column_matrix(rows[0])
    matrices = [_column_matrix(row)[1] for row in rows]
    sums = [[matrix.sum(axis=0, keepdims=True)] for matrix in matrices]  # [1, K]: all segments
    for counts in resample_blocks(video_groups(rows[0].ids), resamples, seed):
        for parts, matrix in zip(sums, matrices, strict=True):
            parts.append(counts @ matrix)
    return [metrics_from_sums(dict(zip(names, np.concatenate(parts).T, strict=True))) for parts in sums]


def seed_weights(k: int, resamples: int, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """Weights [R, k] of k shared seeds in each of R resamples: how often each seed is drawn (k draws with
    replacement), over k, so a row sums to 1; one seed has weight 1 throughout. Drawn from a generator of
    their own (seeded by `seed` and k), so the segment resamples are the same whatever k is, and rows that
    share as many seeds share the seed draws."""
    if k == 1:
        return np.ones((resamples, 1))
    index = np.random.default_rng([seed, k]).integers(0, k, size=(resamples, k))
    return (index[:, :, None] == np.arange(k)).sum(axis=1) / k


def seed_differences(
    rows: Sequence[Mapping[str, np.ndarray]], references: Sequence[Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """metric -> per-seed differences [k, 1 + R] (row minus reference, on all segments then on each
    resample) from the `scored` metrics of a row's and the reference's runs of the same k seeds, in order."""
    return {
        metric: np.stack([row[metric] - ref[metric] for row, ref in zip(rows, references, strict=True)])
        for metric in METRIC_KEYS
    }


def bootstrap(
    differences: Mapping[str, np.ndarray], weights: np.ndarray
) -> dict[str, tuple[float | None, float | None, float | None, float | None]]:
    """metric -> (mean over the seeds of the per-seed difference on all segments, 95% interval low, high,
    two-sided p), from `seed_differences` and the seed weights [R, k] (`seed_weights`): resample r scores
    every seed on the same resampled segments and weighs each by its draws."""
    return {
        metric: _summarise(float(d[:, 0].mean()), np.einsum("rk,kr->r", weights, d[:, 1:]))
        for metric, d in differences.items()
    }


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
    runs: Mapping[str, Mapping[int, Segments]],
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, dict[str, Comparison]]:
    """experiment -> metric -> Comparison for every row of a table but the reference's.

    `runs` maps experiment -> seed -> that run's test segments. Each row is compared with the reference's
    runs of the seeds both have, seed by seed (no shared seed: every value None). Every run is scored on
    the same segment resamples, so the rows' intervals are comparable.
    """
    experiments = [e for e in dict.fromkeys(entry["experiment"] for entry in rows) if e != reference]
    reference_runs = runs[reference]
    shared = {e: tuple(sorted(set(runs[e]) & set(reference_runs))) for e in experiments}
    order = reference_runs[min(reference_runs)]  # the segment order every scored run is put in
    keys = [(reference, s) for s in sorted(set().union(*shared.values()))]
    keys += [(e, s) for e in experiments for s in shared[e]]
    aligned = [align(runs[e][s], order, f"'{e}' (seed {s})", f"the reference '{reference}'") for e, s in keys]
    scores = dict(zip(keys, scored(aligned, resamples, seed), strict=True)) if keys else {}
    out: dict[str, dict[str, Comparison]] = {}
    for experiment in experiments:
        seeds = shared[experiment]
        if not seeds:
            out[experiment] = {m: Comparison(None, None, None, None, None, None, ()) for m in METRIC_KEYS}
            continue
        differences = seed_differences(
            [scores[experiment, s] for s in seeds], [scores[reference, s] for s in seeds]
        )
        boot = bootstrap(differences, seed_weights(len(seeds), resamples, seed))
        out[experiment] = {
            metric: Comparison(*boot[metric], sign_flip_test(d[:, 0]), paired_t_test(d[:, 0]), seeds)
            for metric, d in differences.items()
        }
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
    runs = {}
    for experiment in dict.fromkeys(row["experiment"] for row in rows):
        paths = predictions.get(experiment, {})
        seeds = aggregates[experiment]["seeds"]
        if sorted(paths) != sorted(seeds):
            raise DataError(
                f"table {table}: the statistics need the predictions.csv of experiment '{experiment}' for "
                f"its aggregated seeds {sorted(seeds)}; given seeds {sorted(paths)}"
            )
        runs[experiment] = load_runs(paths)
    return compare_table(rows, reference, runs)
