"""Statistics of the tables on hand-made cases whose answer is known (pipeline/reporting/stats.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import render_table, write_predictions

from pipeline.__main__ import main
from pipeline.errors import ConfigError, DataError
from pipeline.grid import DEFAULT_CONFIG, load_config, reference_experiment, table_spec
from pipeline.metrics import METRIC_KEYS, regression_metrics
from pipeline.reporting.stats import (
    Segments,
    align,
    bootstrap,
    compare_table,
    load_segments,
    paired_seed_test,
    resample_blocks,
    resampled_metrics,
    scored,
)


def _segments(n: int = 60, seed: int = 0, noise: float = 0.8) -> Segments:
    """MOSI-like labels (multiples of 1/3 in [-3, 3], some exactly 0) and noisy predictions."""
    rng = np.random.default_rng(seed)
    labels = np.round(rng.uniform(-3, 3, n) * 3) / 3
    labels[:5] = 0.0
    predictions = labels + rng.normal(0, noise, n)
    return Segments(np.array([f"v{i}_{i % 4}" for i in range(n)]), labels, predictions)


def test_resampled_metrics_are_regression_metrics_of_the_resampled_segments():
    segments = _segments()
    counts = np.concatenate(list(resample_blocks(len(segments.ids), 4, seed=3)))
    weights = np.vstack([np.ones(len(segments.ids)), counts])
    resampled = resampled_metrics(segments, weights)
    for r, row in enumerate(weights.astype(int)):
        picked = np.repeat(np.arange(len(segments.ids)), row)
        expected = regression_metrics(segments.labels[picked], segments.predictions[picked])
        for metric in METRIC_KEYS:
            assert resampled[metric][r] == pytest.approx(expected[metric], abs=1e-12), (r, metric)


def test_constant_predictions_have_zero_correlation_like_regression_metrics():
    segments = _segments()
    constant = Segments(segments.ids, segments.labels, np.full(len(segments.ids), 0.25))
    metrics = resampled_metrics(constant, np.ones((1, len(segments.ids))))
    assert metrics["corr"][0] == 0.0
    assert metrics["f1_non0"][0] == pytest.approx(
        regression_metrics(constant.labels, constant.predictions)["f1_non0"]
    )


def test_resamples_are_the_index_matrix_of_a_seeded_generator():
    counts = np.concatenate(list(resample_blocks(7, 5, seed=11)))
    index = np.random.default_rng(11).integers(0, 7, size=(5, 7))
    assert counts.shape == (5, 7) and (counts.sum(axis=1) == 7).all()
    for row, drawn in zip(counts, index, strict=True):
        assert (row == np.bincount(drawn, minlength=7)).all()
    assert (np.concatenate(list(resample_blocks(7, 5, seed=11))) == counts).all()
    blocks = [block.shape for block in resample_blocks(7, 2500, seed=0)]  # drawn 1,000 at a time
    assert blocks == [(1000, 7), (1000, 7), (500, 7)]


def test_scored_rows_share_the_resamples():
    a, b = _segments(seed=3), _segments(seed=4)
    (alone,) = scored([a], 300, seed=2)
    together = scored([b, a], 300, seed=2)[1]
    assert all((alone[m] == together[m]).all() for m in METRIC_KEYS) and alone["mae"].shape == (301,)


def test_identical_predictions_give_p_one_and_a_zero_interval():
    segments = _segments()
    result = bootstrap(*scored([segments, segments], 500))
    for metric in METRIC_KEYS:
        assert result[metric] == (0.0, 0.0, 0.0, 1.0), metric


def test_a_constant_shift_above_the_labels_is_the_mae_difference_and_the_interval_centre():
    segments = _segments()
    above = Segments(
        segments.ids, segments.labels, segments.labels + np.abs(segments.predictions - segments.labels)
    )
    shifted = Segments(above.ids, above.labels, above.predictions + 0.3)
    resamples = 1000
    diff, low, high, p = bootstrap(*scored([shifted, above], resamples))["mae"]
    assert diff == pytest.approx(0.3, abs=1e-12)
    assert (low + high) / 2 == pytest.approx(0.3, abs=1e-12)
    assert high - low == pytest.approx(0.0, abs=1e-12)
    assert p == pytest.approx(2 / (resamples + 1))  # every resample is above 0: the smallest p the test gives


def test_interval_is_the_percentiles_of_the_resampled_mae_difference():
    reference, row = _segments(seed=1), _segments(seed=1, noise=0.5)
    resamples = 300
    index = np.random.default_rng(5).integers(0, len(row.ids), size=(resamples, len(row.ids)))
    row_error, ref_error = (
        np.abs(row.predictions - row.labels),
        np.abs(reference.predictions - reference.labels),
    )
    differences = row_error[index].mean(axis=1) - ref_error[index].mean(axis=1)
    diff, low, high, p = bootstrap(*scored([row, reference], resamples, seed=5))["mae"]
    assert diff == pytest.approx(row_error.mean() - ref_error.mean())
    assert (low, high) == pytest.approx(tuple(np.percentile(differences, [2.5, 97.5])))
    tails = min((differences <= 0).sum(), (differences >= 0).sum()) + 1
    assert p == pytest.approx(min(1.0, 2 * tails / (resamples + 1)))
    assert diff < 0 and high < 0 and p < 0.05  # less noise: a clearly smaller MAE


def test_paired_seed_test_by_hand():
    # differences 1, 2, 3: t = 2 / (1 / sqrt 3) = sqrt 12 with 2 degrees of freedom, p = 1 - t / sqrt(t^2 + 2)
    p, pairs = paired_seed_test({0: 2.0, 1: 4.0, 2: 6.0, 9: 1.0}, {0: 1.0, 1: 2.0, 2: 3.0, 5: 0.0})
    assert pairs == 3  # seeds 0-2 only: the pairs both rows have
    assert p == pytest.approx(1 - math.sqrt(12) / math.sqrt(14))
    assert paired_seed_test({0: 0.7, 1: 0.8}, {0: 0.7, 1: 0.8}) == (1.0, 2)
    assert paired_seed_test({0: 0.75, 1: 1.0}, {0: 0.5, 1: 0.75}) == (0.0, 2)  # a constant gap: t infinite
    assert paired_seed_test({0: 0.7, 1: None, 2: float("nan")}, {0: 0.5, 1: 0.4, 2: 0.3}) == (None, 1)
    assert paired_seed_test({}, {}) == (None, 0)


def test_reference_defaults_to_the_hycon_row_and_is_validated():
    rows = [{"label": "A", "experiment": "no_scl"}, {"label": "HyCon", "experiment": "hycon"}]
    assert reference_experiment(rows, None, "tables.table3") == "hycon"
    assert reference_experiment(rows, "no_scl", "tables.table3") == "no_scl"
    assert reference_experiment(rows[:1], None, "tables.table3") is None
    with pytest.raises(
        ConfigError, match=r"tables\.table3\.reference: 'npair' is not the experiment of a row"
    ):
        reference_experiment(rows, "npair", "tables.table3")


def test_load_segments_averages_seeds_by_segment_id(tmp_path):
    ids, labels = ["a_1", "b_2", "c_3"], [1.0, -2.0, 0.0]
    seed0 = write_predictions(tmp_path / "seed0.csv", ids, labels, [0.5, -1.0, 0.2])
    seed1 = write_predictions(tmp_path / "seed1.csv", ids[::-1], labels[::-1], [0.4, -3.0, 1.5])  # reversed
    segments = load_segments([seed0, seed1])
    assert list(segments.ids) == ids and list(segments.labels) == labels
    assert segments.predictions == pytest.approx([1.0, -2.0, 0.3])
    other = write_predictions(tmp_path / "other.csv", ["a_1", "b_2", "d_4"], labels, [0.0, 0.0, 0.0])
    with pytest.raises(
        DataError, match=r"other\.csv: its test segment ids differ from those of .*seed0\.csv"
    ):
        load_segments([seed0, other])
    relabelled = write_predictions(tmp_path / "relabelled.csv", ids, [1.0, -2.0, 0.5], [0.0, 0.0, 0.0])
    with pytest.raises(DataError, match=r"relabelled\.csv: its test labels differ"):
        load_segments([seed0, relabelled])


def test_align_reorders_by_id_and_refuses_other_segments():
    reference = Segments(np.array(["a", "b", "c"]), np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 0.0]))
    row = Segments(np.array(["c", "a", "b"]), np.array([3.0, 1.0, 2.0]), np.array([30.0, 10.0, 20.0]))
    aligned = align(row, reference, "run X", "run Y")
    assert list(aligned.predictions) == [10.0, 20.0, 30.0]
    other = Segments(np.array(["c", "a", "d"]), row.labels, row.predictions)
    with pytest.raises(DataError, match="cannot pair run X with run Y: their test segments differ"):
        align(other, reference, "run X", "run Y")


def _aggregate(seeds, mae):
    return {"seeds": seeds, "test": {m: {"values": list(mae)} for m in METRIC_KEYS}}


def test_compare_table_compares_every_other_row_with_the_reference():
    reference, row = _segments(seed=2), _segments(seed=2, noise=0.5)
    shuffled = np.random.default_rng(0).permutation(len(row.ids))  # the row's predictions in another order
    row = Segments(row.ids[shuffled], row.labels[shuffled], row.predictions[shuffled])
    rows = [{"label": "B", "experiment": "b"}, {"label": "HyCon", "experiment": "hycon"}]
    aggregates = {
        "b": _aggregate([0, 1, 2], [0.7, 0.8, 0.9]),
        "hycon": _aggregate([1, 2, 3], [0.8, 0.9, 1.0]),
    }
    result = compare_table(rows, "hycon", aggregates, {"b": row, "hycon": reference}, resamples=200)
    assert set(result) == {"b"}
    mae = result["b"]["mae"]
    assert (mae.pairs, mae.p_seeds) == (2, 1.0)  # seeds 1 and 2 only, equal values
    expected = (
        np.abs(row.predictions - row.labels).mean() - np.abs(reference.predictions - reference.labels).mean()
    )
    assert mae.diff == pytest.approx(expected)
    assert mae.low <= mae.diff <= mae.high


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_tables_cli_marks_significant_rows_and_writes_the_statistics(tmp_path):
    config = load_config([DEFAULT_CONFIG])
    spec = table_spec(config, "table5")  # rows alpha_0.5, alpha_0.7, hycon (the reference), alpha_0.9
    assert spec["reference"] == "hycon"
    assert (
        "Marked * (MAE) and ‡ (Acc2): the difference from HyCon (α = 0.8) is significant" in spec["caption"]
    )
    assert "the difference from HyCon is significant" in table_spec(config, "table2")["caption"]  # baselines
    rng = np.random.default_rng(0)
    labels = rng.choice([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0], 90)  # |label| >= 1: a 0.3 shift keeps signs
    flipped = np.where(np.arange(90) % 2 == 0, -labels, labels)

    def prediction_of(experiment: str, seed: int) -> np.ndarray:
        base = labels + 0.1 + 0.05 * seed  # every prediction above its label
        return {"alpha_0.5": base + 0.3, "alpha_0.7": base, "hycon": base, "alpha_0.9": flipped + 0.1}[
            experiment
        ]

    prefix, args, predictions = render_table(tmp_path, spec, labels, prediction_of)
    frame = pd.read_csv(prefix.with_suffix(".csv")).set_index("Method")
    shifted, same, reference, worse = (frame.loc[r["label"]] for r in spec["rows"])
    assert frame["Compared_with"].isna().tolist() == [False, False, True, False]
    assert set(frame["Compared_with"].dropna()) == {"HyCon (α = 0.8)"}
    assert (shifted["MAE_diff"], shifted["MAE_ci_low"], shifted["MAE_ci_high"]) == pytest.approx((0.3,) * 3)
    assert shifted["MAE_p_boot"] < 0.05 and shifted["MAE_p_seeds"] < 0.05 and shifted["Seed_pairs"] == 3
    assert (shifted["Acc2_diff"], shifted["Acc2_p_boot"]) == (0.0, 1.0)  # no sign changed
    assert (same["MAE_diff"], same["MAE_ci_low"], same["MAE_ci_high"], same["MAE_p_boot"]) == (0, 0, 0, 1)
    assert same["MAE_p_seeds"] == 1.0
    assert worse["Acc2_diff"] < -20 and worse["Acc2_ci_high"] < 0 and worse["Acc2_p_boot"] < 0.05  # points
    assert worse["Acc2_has0_diff"] < -20 and "F1_has0_p_seeds" in frame.columns
    assert reference[["MAE_diff", "MAE_p_boot", "Seed_pairs"]].isna().all()
    markdown = prefix.with_suffix(".md").read_text().split("Reported in the paper")[0]  # the measured table
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1:]
        for line in markdown.splitlines()
        if "HyCon (α" in line
    }
    assert rows["HyCon (α = 0.5)"][3].endswith("*") and not rows["HyCon (α = 0.5)"][1].endswith("‡")
    assert rows["HyCon (α = 0.9)"][1].endswith("‡") and rows["HyCon (α = 0.9)"][3].endswith("*")
    assert not any(
        cell.endswith(("*", "‡", "* |", "‡ |")) for cell in rows["HyCon (α = 0.7)"] + rows["HyCon (α = 0.8)"]
    )
    assert (
        "$^{*}$" in prefix.with_suffix(".tex").read_text()
        and "$^\\ddagger$" in prefix.with_suffix(".tex").read_text()
    )
    forest = tmp_path / "forest.png"
    assert main(["figures", "forest", "--table", str(prefix.with_suffix(".csv")), "--out", str(forest)]) == 0
    assert forest.read_bytes()[:8] == PNG_SIGNATURE
    assert main([*args, "--predictions", *map(str, predictions[1:])]) == 2  # alpha_0.5 lacks seed 0's file
    assert main(args) == 2  # no predictions at all: the statistics cannot be computed
