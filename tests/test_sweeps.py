"""Sweeps: expansion into experiments named from their values, validation, the paired test, the report."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.__main__ import main
from pipeline.errors import ConfigError
from pipeline.grid import DEFAULT_CONFIG, experiment_settings, load_config, validate_config
from pipeline.reporting.aggregate import aggregate_runs
from pipeline.sweeps import format_value, sweep_cells, sweep_seeds, sweep_spec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT = load_config([DEFAULT_CONFIG])


def with_sweep(**spec) -> dict:
    """The default config with one sweep `s` instead of its own."""
    config = copy.deepcopy(DEFAULT)
    config["sweeps"] = {"s": {"dataset": "synthetic", **spec}}
    return config


def test_cells_are_named_from_their_values_and_resolve_to_settings():
    cells = sweep_cells(DEFAULT)["alpha_lambda"]
    assert len(cells) == 18
    name = "alpha_lambda__alpha_0.6__lambda_scl_0.5"
    assert cells[name]["values"] == {"loss.alpha": 0.6, "loss.lambda_scl": 0.5}
    settings = experiment_settings(DEFAULT, name)
    assert settings["loss"]["alpha"] == 0.6 and settings["loss"]["lambda_scl"] == 0.5
    assert settings["model"]["d"] == DEFAULT["base"]["model"]["d"]  # the rest is `base`
    assert sweep_seeds(DEFAULT)[name] == DEFAULT["seeds"]


def test_adding_a_value_keeps_every_other_cell_name():
    small = with_sweep(keys={"loss.alpha": [0.5, 1.0], "loss.lambda_scl": [0, 1]}, seeds=[3])
    larger = with_sweep(keys={"loss.alpha": [0.5, 0.7, 1.0], "loss.lambda_scl": [0, 1]}, seeds=[3])
    before, after = set(sweep_cells(small)["s"]), set(sweep_cells(larger)["s"])
    assert before < after and after - before == {"s__alpha_0.7__lambda_scl_0", "s__alpha_0.7__lambda_scl_1"}
    assert all(seeds == [3] for seeds in sweep_seeds(larger).values())


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (0, "0"),
        (0.0, "0"),
        (1.0, "1"),
        (0.5, "0.5"),
        (1e-05, "1em05"),
        (-2, "m2"),
        (True, "true"),
        ("a/b c", "a_b_c"),
    ],
)
def test_values_give_stable_filesystem_safe_names(value, name):
    assert format_value(value) == name


def test_fixed_overrides_and_clashing_keys():
    config = with_sweep(keys={"loss.alpha": [0.5], "model.d": [8]}, fixed={"model.fusion": "concat"})
    (cell,) = sweep_cells(validate_config(config))["s"].values()
    assert cell["overrides"] == {"model.fusion": "concat", "loss.alpha": 0.5, "model.d": 8}
    config = with_sweep(keys={"loss.alpha": [0.5], "train.alpha": [1]})  # not a setting, and a clash
    with pytest.raises(ConfigError, match=r"sweeps\.s \(cell s__loss_alpha_0.5__train_alpha_1\)"):
        validate_config(config)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"keys": {"loss.alpha": [0.5]}, "fixed": {"loss.alpha": 0.7}}, "both swept"),
        ({"keys": {"loss.alpah": [0.5]}}, "loss.alpah"),
        ({"keys": {"loss.alpha": [0.5]}, "dataset": "imdb"}, "unknown dataset 'imdb'"),
        ({"keys": {"a.b": [1], "c.d": [1], "e.f": [1]}}, "sweeps.s.keys: "),
        ({"keys": {"loss.alpha": []}}, "sweeps.s.keys.loss.alpha: "),
    ],
)
def test_bad_sweeps_are_one_error_naming_the_key(spec, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(with_sweep(**spec))


def test_a_cell_named_like_an_experiment_is_an_error():
    config = with_sweep(keys={"loss.alpha": [0.5]})
    config["experiments"]["s__alpha_0.5"] = {}
    with pytest.raises(ConfigError, match="also defined by experiments"):
        validate_config(config)


def run_metrics(seed: int, experiment: str, mae: float, acc2: float, valid_mae: float) -> dict:
    split = {"acc7": 0.4, "acc2_has0": acc2, "f1_has0": acc2, "acc2_non0": acc2, "f1_non0": acc2, "corr": 0.5}
    return {
        "dataset": "synthetic",
        "experiment": experiment,
        "seed": seed,
        "valid": {**split, "mae": valid_mae},
        "test": {**split, "mae": mae},
    }


def test_report_marks_best_not_significant_and_validation_optimum(tmp_path):
    config = with_sweep(keys={"loss.alpha": [0.5, 1.0], "loss.lambda_scl": [0, 1]}, seeds=[0, 1, 2])
    spec = sweep_spec(validate_config(config), "s")
    noise = np.array([0.0, 0.05, -0.04])
    means = {  # cell -> (test MAE per seed, Acc2, valid MAE)
        "s__alpha_0.5__lambda_scl_0": (0.70 + noise, 0.80, 0.72),  # best test MAE
        "s__alpha_0.5__lambda_scl_1": (0.71 + noise[::-1], 0.70, 0.70),  # noise apart: not significant
        "s__alpha_1__lambda_scl_0": (0.90 + noise, 0.81, 0.90),  # 0.2 worse on every seed: significant
        "s__alpha_1__lambda_scl_1": (0.95 + noise, 0.60, 0.95),
    }
    paths = []
    for name, (mae, acc2, valid) in means.items():
        runs = [run_metrics(seed, name, mae[seed], acc2 + 0.01 * seed, valid) for seed in range(3)]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(aggregate_runs(runs)))
        paths.append(str(path))
    figure = tmp_path / "sweep.png"
    args = ["sweep", "--spec", json.dumps(spec), "--out", str(tmp_path / "s"), "--figure", str(figure)]
    assert main([*args, *paths]) == 0
    table = pd.read_csv(tmp_path / "s.csv").set_index("Experiment")
    assert table["MAE_best"].idxmax() == "s__alpha_0.5__lambda_scl_0"
    assert table["MAE_ns"].to_dict() == {
        "s__alpha_0.5__lambda_scl_0": False,
        "s__alpha_0.5__lambda_scl_1": True,
        "s__alpha_1__lambda_scl_0": False,
        "s__alpha_1__lambda_scl_1": False,
    }
    assert table["Acc2_best"].idxmax() == "s__alpha_1__lambda_scl_0"
    assert table["valid_best"].idxmax() == "s__alpha_0.5__lambda_scl_1"
    assert table.loc["s__alpha_0.5__lambda_scl_0", "MAE"] == pytest.approx(0.70 + noise.mean())
    assert table.loc["s__alpha_1__lambda_scl_0", "Acc2"] == pytest.approx(82.0)  # percent, as the tables
    markdown = (tmp_path / "s.md").read_text()
    assert "| loss.alpha | loss.lambda_scl | Acc7 |" in markdown and " ≈ |" in markdown
    assert figure.read_bytes()[:8] == PNG_SIGNATURE
    assert main([*args, *paths[:3]]) == 2  # a cell without aggregate: one error
