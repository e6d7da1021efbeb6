"""Reporting stages on hand-made metrics: aggregation by hand, table formatting, LaTeX, config errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import render_table

from pipeline.__main__ import main
from pipeline.errors import ConfigError, DataError
from pipeline.grid import DEFAULT_CONFIG, load_config, table_spec
from pipeline.reporting.aggregate import aggregate_runs, load_run_metrics, mean_std, summarize
from pipeline.reporting.paper import PAPER_TABLES, reported_row
from pipeline.reporting.tables import (
    Row,
    build_rows,
    format_cell,
    latex_escape,
    render_latex,
    render_markdown,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_metrics(
    seed: int, mae: float, acc2: float, experiment: str = "hycon", dataset: str = "synthetic"
) -> dict:
    """A metrics.json as `evaluate` writes it; every metric but mae and acc2_non0 fixed."""
    split = {
        "acc7": 0.40,
        "acc2_has0": 0.80,
        "f1_has0": 0.79,
        "acc2_non0": acc2,
        "f1_non0": acc2 - 0.01,
        "mae": mae,
        "corr": 0.70,
    }
    return {
        "dataset": dataset,
        "experiment": experiment,
        "seed": seed,
        "best_epoch": 3 + seed,
        "valid": dict(split),
        "test": dict(split),
    }


def write_run(root: Path, metrics: dict, valid_mae: list[float]) -> Path:
    """A run directory with metrics.json and a history.csv of len(valid_mae) epochs."""
    run_dir = root / f"seed{metrics['seed']}"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    epochs = np.arange(1, len(valid_mae) + 1)
    pd.DataFrame({"epoch": epochs, "train_loss": 1.0 / epochs, "valid_mae": valid_mae}).to_csv(
        run_dir / "history.csv", index=False
    )
    return run_dir / "metrics.json"


def test_mean_std_is_the_sample_std_and_zero_for_one_value():
    stats = mean_std([0.5, 0.7, 0.9])
    assert stats["mean"] == pytest.approx(0.7)
    assert stats["std"] == pytest.approx(0.2)  # sqrt(((-.2)^2 + 0 + .2^2) / (3 - 1))
    assert mean_std([0.42]) == {"mean": 0.42, "std": 0.0, "n": 1}
    assert mean_std([1.0, float("nan"), 3.0]) == {"mean": 2.0, "std": pytest.approx(math.sqrt(2)), "n": 2}
    assert mean_std([None, float("nan")])["mean"] is None


def test_aggregate_runs_by_hand():
    runs = [run_metrics(0, 0.70, 0.84), run_metrics(1, 0.74, 0.86), run_metrics(2, 0.75, 0.85)]
    agg = aggregate_runs(runs)
    assert agg["seeds"] == [0, 1, 2] and agg["n"] == 3
    assert agg["test"]["mae"]["mean"] == pytest.approx(0.73)
    # deviations -0.03, 0.01, 0.02 -> (0.0009 + 0.0001 + 0.0004) / 2 = 0.0007
    assert agg["test"]["mae"]["std"] == pytest.approx(math.sqrt(0.0007))
    assert agg["test"]["acc2_non0"]["mean"] == pytest.approx(0.85)
    assert agg["test"]["acc2_non0"]["std"] == pytest.approx(0.01)
    assert agg["test"]["corr"]["std"] == 0.0
    assert agg["best_epoch"]["mean"] == pytest.approx(4.0)
    summary = summarize(agg)  # flat: one row per experiment in `dvc metrics show`
    assert set(summary) == {"acc7", "acc2_non0", "f1_non0", "mae", "corr", "seeds"} | {
        f"{m}_std" for m in ("acc7", "acc2_non0", "f1_non0", "mae", "corr")
    }
    assert summary["mae"] == pytest.approx(0.73) and summary["mae_std"] == pytest.approx(math.sqrt(0.0007))
    assert summary["seeds"] == 3


def test_aggregate_rejects_mixed_experiments_and_repeated_seeds():
    with pytest.raises(DataError, match="experiment 'no_contrast' differs"):
        aggregate_runs([run_metrics(0, 0.7, 0.8), run_metrics(1, 0.7, 0.8, experiment="no_contrast")])
    with pytest.raises(DataError, match="seed 0 appears twice"):
        aggregate_runs([run_metrics(0, 0.7, 0.8), run_metrics(0, 0.7, 0.8)])


def test_load_run_metrics_names_file_and_missing_metric(tmp_path):
    metrics = run_metrics(0, 0.7, 0.8)
    del metrics["test"]["corr"]
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    with pytest.raises(DataError, match=r"metrics\.json: 'test' lacks metrics corr"):
        load_run_metrics(path)


def test_aggregate_cli_writes_aggregate_and_mean_curve(tmp_path):
    paths = [
        write_run(tmp_path / "runs", run_metrics(0, 0.70, 0.84), [1.0, 0.8, 0.9]),
        write_run(tmp_path / "runs", run_metrics(1, 0.74, 0.86), [1.2, 0.6]),
    ]
    out, curve, summary = tmp_path / "agg.json", tmp_path / "curve.csv", tmp_path / "summary.json"
    args = ["--out", str(out), "--curve", str(curve), "--summary", str(summary)]
    assert main(["aggregate", *args, *map(str, paths)]) == 0
    assert json.loads(out.read_text())["test"]["mae"]["mean"] == pytest.approx(0.72)
    assert json.loads(summary.read_text())["mae"] == pytest.approx(0.72)
    frame = pd.read_csv(curve)
    assert frame["epoch"].tolist() == [1, 2, 3]
    assert frame["valid_mae"].tolist() == pytest.approx([1.1, 0.7, 0.9])  # epoch 3: only seed 0 ran
    assert frame["valid_mae_std"].tolist() == pytest.approx([math.sqrt(0.02), math.sqrt(0.02), 0.0])
    assert frame["runs"].tolist() == [2, 2, 1]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["aggregate", "--out", str(tmp_path / "x.json"), str(bad)]) == 2
    assert not (tmp_path / "x.json").exists()


def measured(label: str, acc2: float, mae: float, std_acc2: float, std_mae: float) -> Row:
    values = {"acc7": 46.0, "acc2": acc2, "f1": acc2, "mae": mae, "corr": 0.79}
    stds = {"acc7": 1.0, "acc2": std_acc2, "f1": std_acc2, "mae": std_mae, "corr": 0.01}
    return Row(label, "measured", values, stds, seeds=3)


def test_cell_formatting_mean_plus_minus_std_and_reported_values():
    row = measured("HyCon", acc2=85.12, mae=0.71349, std_acc2=1.234, std_mae=0.0121)
    assert format_cell(row, "acc2") == "85.1 ± 1.2"
    assert format_cell(row, "mae") == "0.713 ± 0.012"
    imr = Row("IMR", "reported", dict(reported_row("table2", "IMR")))
    assert format_cell(imr, "acc7") == "48.7"
    assert format_cell(imr, "mae") == "–"


def test_latex_escape():
    assert latex_escape("HyCon (α = 0.5) & 50% of x_1 #2 $") == (
        r"HyCon ($\alpha$ = 0.5) \& 50\% of x\_1 \#2 \$"
    )
    assert latex_escape("0.713 ± 0.012 †") == r"0.713 $\pm$ 0.012 $^\dagger$"
    assert latex_escape("run `python -m x_y`") == r"run \texttt{python -m x\_y}"
    assert latex_escape(r"a\b{c}~^") == r"a\textbackslash{}b\{c\}\textasciitilde{}\textasciicircum{}"


def _table_runs(spec: dict, root: Path) -> tuple[dict[str, dict], list[str]]:
    """The same two-seed aggregate for every measured row of a table (as each experiment's own), and the
    runs' predictions.csv files (test split, predictions = labels) the statistics read."""
    aggregates, predictions = {}, []
    labels = [-2.0, -1.0, 1.0, 2.0, 3.0]
    for row in spec["rows"]:
        experiment = row["experiment"]
        aggregates[experiment] = aggregate_runs(
            [run_metrics(0, 0.70, 0.84, experiment), run_metrics(1, 0.74, 0.86, experiment)]
        )
        for seed in (0, 1):
            path = root / experiment / f"seed{seed}" / "predictions.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame = {
                "split": "test",
                "id": [f"v{i}" for i in range(5)],
                "label": labels,
                "prediction": labels,
            }
            pd.DataFrame(frame).to_csv(path, index=False)
            predictions.append(str(path))
    return aggregates, predictions


def test_rendered_table_has_reported_and_measured_rows(tmp_path):
    config = load_config([DEFAULT_CONFIG])
    spec = table_spec(config, "table2")
    aggregates, predictions = _table_runs(spec, tmp_path)
    rows = build_rows(spec, aggregates, predictions)
    assert [r.source for r in rows] == ["reported"] * 4 + ["measured"] * len(spec["rows"])
    assert [r.label for r in rows[:4]] == ["RAVEN", "IMR", "QMF", "ICCN"]  # the baselines we do not train
    markdown = render_markdown(spec, rows)
    assert "| IMR † | 48.7 | 80.6 | 81.0 | – | – |" in markdown
    # measured: acc2 85.0 ± 1.4 (0.84, 0.86), mae 0.720 ± 0.028
    assert "| HyCon | 40.0 ± 0.0 | 85.0 ± 1.4 | 84.0 ± 1.4 | 0.720 ± 0.028 | 0.700 ± 0.000 |" in markdown
    assert "| EF-LSTM | 40.0 ± 0.0 | 85.0 ± 1.4 |" in markdown  # a trained baseline, not marked †
    assert rows[4 + 2].paper == PAPER_TABLES["table2"].rows["EF-LSTM"]  # the paper's numbers beside it
    assert "SYNTHETIC" in spec["caption"] and "seeds (0, 1, 2)" in spec["caption"]
    assert "CMU-MOSEI" in spec["caption"]
    latex = render_latex(spec, rows)
    assert r"IMR $^\dagger$ & 48.7 & 80.6 & 81.0 & -- & -- \\" in latex
    assert latex.count(r"\midrule") == 2  # after the header, between reported and measured rows
    one_seed = {**aggregates, "tfn": aggregate_runs([run_metrics(0, 0.7, 0.84, "tfn")])}
    one_seed = build_rows(spec, one_seed, [p for p in predictions if "tfn/seed1" not in p])
    assert "| TFN | 40.0 | 84.0 | 83.0 | 0.700 | 0.700 |" in render_markdown(spec, one_seed)  # no "± 0.0"
    with pytest.raises(DataError, match="no aggregated metrics for experiment 'text_probe'"):
        build_rows(spec, {})


def test_table_beyond_the_paper_renders_without_paper_numbers(tmp_path):
    config = load_config([DEFAULT_CONFIG])
    spec = table_spec(config, "table7")
    assert spec["paper"] is None and spec["reported"] == [] and spec["number"] == 7
    assert "beyond the paper" in spec["caption"] and "†" not in spec["caption"]
    assert spec["reference"] == "hycon"  # the default's mean row: cls and last are compared with it
    labels = np.random.default_rng(0).choice([-2.0, -1.0, 1.0, 2.0], 30)
    shifts = dict(zip((r["experiment"] for r in spec["rows"]), (0.1, 0.5, 0.9), strict=True))
    prefix, _, _ = render_table(tmp_path, spec, labels, lambda experiment, _seed: labels + shifts[experiment])
    frame = pd.read_csv(prefix.with_suffix(".csv"))
    assert frame["Method"].tolist() == [r["label"] for r in spec["rows"]]
    assert (frame["Source"] == "measured").all() and frame["MAE"].tolist() == pytest.approx([0.1, 0.5, 0.9])
    markdown = prefix.with_suffix(".md").read_text()
    assert markdown.startswith("**Table 7: Language vector, beyond the paper")
    assert "Reported in the paper" not in markdown and "| First token ([CLS]) |" in markdown
    assert r"\end{table}" in prefix.with_suffix(".tex").read_text()
    mosi = table_spec(load_config([DEFAULT_CONFIG, Path("config/mosi.yaml")]), "table7")
    assert mosi["dataset"] == "mosi"
    assert [r["experiment"] for r in mosi["rows"]] == ["text_mean", "text_cls", "hycon"]


def test_paper_numbers_are_the_papers():
    assert {name: len(t.rows) for name, t in PAPER_TABLES.items()} == {
        "table1": 11,
        "table2": 12,
        "table3": 7,
        "table4": 4,
        "table5": 4,
        "table6": 5,
    }
    assert reported_row("table1", "HyCon") == {
        "acc7": 46.6,
        "acc2": 85.2,
        "f1": 85.1,
        "mae": 0.713,
        "corr": 0.790,
    }
    mosei = PAPER_TABLES["table2"].rows
    assert [mosei[label]["mae"] for label in mosei if label != "IMR"] == [
        0.665, 0.625, 0.610, 0.608, 0.618, 0.605, 0.638, 0.640, 0.565, 0.602, 0.601,
    ]  # fmt: skip
    assert [mosei[label]["corr"] for label in mosei if label != "IMR"] == [
        0.621, 0.655, 0.671, 0.677, 0.670, 0.680, 0.659, 0.658, 0.713, 0.778, 0.776,
    ]  # fmt: skip
    assert mosei["IMR"]["mae"] is None and mosei["IMR"]["corr"] is None
    assert reported_row("table3", "HyCon (W/O Contrast Learning)")["acc7"] == 43.2
    assert reported_row("table6", "Hard-triplet Mining")["mae"] == 0.753
    with pytest.raises(ConfigError, match="paper table2 has no row 'BERT'"):
        reported_row("table2", "BERT")


def overlay(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overlay.yaml"
    path.write_text(text)
    return path


def test_config_errors_name_the_key(tmp_path):
    cases = {
        "tables:\n  table3:\n    dataset: synthetic\n    rows: [{label: X, experiment: nope}]\n": (
            r"tables\.table3 row 'X' names experiment 'nope', which `experiments` does not define"
        ),
        "tables:\n  table4: {dataset: mosi, rows: [{label: X, experiment: hycon}]}\n": (
            r"tables\.table4\.dataset: unknown dataset 'mosi'"
        ),
        "experiments:\n  hycon: {loss.alpah: 0.5}\n": (
            r"experiments\.hycon: unknown settings key 'loss\.alpah'"
        ),
        "seeds: [0, zero]\n": r"config does not match .* at 'seeds/1': 'zero' is not of type 'integer'",
        "tables:\n  table1: {reported: [BERT]}\n": (
            r"tables\.table1\.reported: paper table1 has no row 'BERT'"
        ),
        "tables:\n  table6: {reference: no_scl}\n": (
            r"tables\.table6\.reference: 'no_scl' is not the experiment of a row of the table"
        ),
        "search:\n  space: {model.lm_mode: [frozen, finetune]}\n": (
            r"search\.space cannot vary model\.lm_mode"
        ),
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config([DEFAULT_CONFIG, overlay(tmp_path, text)])


def test_config_overlays_merge_like_snakemake(tmp_path):
    config = load_config([DEFAULT_CONFIG, Path("config/test.yaml")])
    assert config["seeds"] == [0, 1]  # lists are replaced
    assert config["datasets"]["synthetic"] == {
        "source": "synthesize",
        "videos": 12,
        "seed": 0,
        "faults": True,
    }
    assert config["base"]["model"]["language_model"] == "tiny"
    assert config["base"]["loss"]["alpha"] == 0.8  # mappings are merged
    mosi = load_config([DEFAULT_CONFIG, Path("config/mosi.yaml")])
    assert set(table_spec(mosi, name)["dataset"] for name in ("table1", "table3")) == {"mosi"}
    assert mosi["tables"]["table2"] is None


def test_figures_cli_forest_and_tsne(tmp_path, capsys):
    config = load_config([DEFAULT_CONFIG])
    spec = table_spec(config, "table2")
    aggregates, predictions = _table_runs(spec, tmp_path / "runs")
    paths = []
    for experiment, agg in aggregates.items():
        paths.append(str(tmp_path / f"{experiment}.json"))
        Path(paths[-1]).write_text(json.dumps(agg))
    prefix = tmp_path / "table2"
    tables = ["tables", "--spec", json.dumps(spec), "--out", str(prefix), *paths]
    assert main([*tables, "--predictions", *predictions]) == 0
    forest = tmp_path / "forest.png"
    assert main(["figures", "forest", "--table", str(prefix.with_suffix(".csv")), "--out", str(forest)]) == 0
    assert forest.read_bytes()[:8] == PNG_SIGNATURE
    rng = np.random.default_rng(0)
    labels = rng.uniform(-3, 3, 60)
    for name, signal in (("with", 3.0), ("without", 0.0)):
        embeddings = rng.normal(size=(60, 8)) + signal * np.sign(labels)[:, None]
        np.savez_compressed(  # as `evaluate --fused` stores them: float16, compressed
            tmp_path / f"{name}.npz",
            embeddings=embeddings.astype(np.float16),
            labels=labels,
            ids=np.arange(60).astype(str),
        )
    tsne = tmp_path / "tsne.png"
    args = [
        "figures",
        "tsne",
        "--with",
        str(tmp_path / "with.npz"),
        "--without",
        str(tmp_path / "without.npz"),
    ]
    assert main([*args, "--perplexity", "10", "--out", str(tsne)]) == 0
    assert tsne.read_bytes()[:8] == PNG_SIGNATURE
    np.savez(tmp_path / "broken.npz", embeddings=np.zeros((3, 2)))
    broken = [
        "figures",
        "tsne",
        "--with",
        str(tmp_path / "broken.npz"),
        "--without",
        str(tmp_path / "with.npz"),
    ]
    assert main([*broken, "--out", str(tmp_path / "none.png")]) == 2
    assert not (tmp_path / "none.png").exists()
    np.savez_compressed(tmp_path / "broken.npz", labels=labels, l=np.zeros((60, 8), np.float16))
    assert main([*broken, "--out", str(tmp_path / "none.png")]) == 2
    assert "no fused embeddings" in capsys.readouterr().err
