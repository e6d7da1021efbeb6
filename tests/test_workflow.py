"""The Snakemake + DVC workflow: bad configs, profiles, DVC structure, and the tiny config end to end.

The end-to-end tests start from one built project: a copy of this repository whose config/config.yaml is the
tiny config (config/config.yaml overlaid with config/test.yaml), made a git + DVC repository and built from
scratch with `dvc repro`, as on a fresh clone (`built`, once per session). Each test that runs commands in it
gets a copy of its own (`project`), so the tests pass alone and in any order: the outputs, nothing left to do,
a DVC checkout that must not rerun jobs, the per-row search, an edit of one experiment that must rerun only
that experiment and what uses it, the sweeps, and DVC experiments.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import BIN, REPO, TINY, run

from pipeline.choices import ARCHS
from pipeline.data.dataset import validate_aligned
from pipeline.devtools.repository import copy_repository
from pipeline.errors import ConfigError
from pipeline.grid import (
    active_tables,
    dataset_experiments,
    dataset_seq_len,
    experiment_seeds,
    experiment_settings,
    load_config,
    runs,
    search_experiments,
    searched_table_spec,
    table_spec,
    tsne_spec,
)
from pipeline.sweeps import sweep_cells

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from Snakemake's 'Job stats' table (empty when there is nothing to do)."""
    match = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal", output, re.S)
    if not match:
        return {}
    return {name: int(count) for name, count in (line.split() for line in match.group(1).splitlines())}


def dry_run(project: Path, *extra: str) -> dict[str, int]:
    proc = run(["snakemake", "-n", *extra, "--quiet", "rules"], project)
    return job_counts(proc.stdout + proc.stderr)


# ---------------------------------------------------------------- fast checks (dry runs in the repository)


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ("tables:\n  table3: {rows: [{label: X, experiment: nope}]}\n", "names experiment 'nope'"),
        ("tables:\n  table4: {dataset: imdb}\n", "unknown dataset 'imdb'"),
        ("seeds: 3\n", "seeds: 3 is not of type 'array'"),
        ("datasets:\n  imp: {source: import, format: mag}\n", "datasets.imp: source 'import' needs path"),
        ("experiment_seeds: {nope: [0]}\n", "experiment_seeds names experiment 'nope'"),
    ],
)
def test_bad_config_is_one_error_before_any_job(tmp_path, overlay, message):
    path = tmp_path / "bad.yaml"
    path.write_text(overlay)
    proc = run(["snakemake", "-n", "--configfile", "config/config.yaml", str(path)], REPO, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert message in output
    assert "Job stats" not in output and "rule train" not in output


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({"source": "import", "path": "x.pkl"}, r"datasets\.imp: source 'import' needs format \(format: mag"),
        (
            {"source": "import", "format": "cmu", "path": "x.pkl"},
            r"datasets\.imp\.format: 'cmu' is not one of",
        ),
        (
            {"source": "import", "format": "mag", "path": "x.pkl", "clip_base": 0},
            r"datasets\.imp\.clip_base: only",
        ),
        (
            {"source": "synthesize", "path": "x.pkl"},
            r"datasets\.imp\.path: only a dataset with `source: import`",
        ),
    ],
)
def test_import_dataset_errors_name_the_key(tmp_path, dataset, message):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"datasets": {"imp": dataset}}))
    with pytest.raises(ConfigError, match=message):
        load_config([REPO / "config" / "config.yaml", overlay])


def _import_overlay(tmp_path: Path, fmt: str, path: Path) -> Path:
    """An overlay of config/config.yaml whose tables (and search) all read the imported dataset `imp`."""
    default = load_config([REPO / "config" / "config.yaml"])
    overlay = {
        "datasets": {"imp": {"source": "import", "format": fmt, "path": str(path), "seq_len": 6}},
        "tables": {name: {"dataset": "imp"} for name in active_tables(default)},
        "search": {"datasets": ["imp"]},
    }
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    return tmp_path / "overlay.yaml"


def _segments(rng: np.random.Generator, split: str, fmt: str) -> list:
    """Three word-aligned segments of a MAG or MISA split (74-d acoustic, 35-d visual)."""
    out = []
    for k in range(3):
        words, visual, acoustic = (
            [f"w{i}" for i in range(4)],
            rng.normal(size=(4, 35)),
            rng.normal(size=(4, 74)),
        )
        features = (words, visual, acoustic) if fmt == "mag" else (np.arange(4), visual, acoustic, words)
        out.append((features, [[0.5]], f"{split}[{k}]"))
    return out


def test_an_imported_dataset_takes_aligns_place_and_the_grid_is_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    mag = tmp_path / "mosei.pkl"
    mag.write_bytes(pickle.dumps({split: _segments(rng, split, "mag") for split in ("train", "dev", "test")}))
    dry = ["snakemake", "-n", "--forceall", "--quiet", "rules", "--configfile", "config/config.yaml"]
    imported = job_counts(run([*dry, str(_import_overlay(tmp_path, "mag", mag))], REPO).stdout)
    generated = job_counts(run(dry, REPO).stdout)
    assert imported.pop("import_") == 1
    assert generated.pop("synthesize") == generated.pop("align") == 1
    assert imported == generated  # features, training, evaluation and reporting: the same jobs
    misa = tmp_path / "misa"
    misa.mkdir()
    for split in ("train", "dev", "test"):
        (misa / f"{split}.pkl").write_bytes(pickle.dumps(_segments(rng, split, "misa")))
    project, config = tmp_path / "project", str(REPO / "config/config.yaml")
    args = [
        "--cores",
        "1",
        "-s",
        str(REPO / "workflow/Snakefile"),
        "-d",
        str(project),
        "--configfile",
        config,
    ]
    run(["snakemake", "data/aligned/imp.h5", *args, str(_import_overlay(tmp_path, "misa", misa))], REPO)
    info = validate_aligned(project / "data/aligned/imp.h5")
    assert (info["dataset"], info["seq_len"], info["audio_dim"], info["visual_dim"]) == ("imp", 6, 74, 35)
    assert info["sizes"] == {"train": 3, "valid": 3, "test": 3}


def test_default_grid_trains_every_baseline_and_captions_say_what_is_trimmed():
    config = load_config([REPO / "config" / "config.yaml"])
    archs = {experiment_settings(config, e)["model"]["arch"]: e for _, e, _ in runs(config)}
    full_epochs = experiment_settings(config, "hycon")["train"]["epochs"]
    assert set(archs) == set(ARCHS)
    for table in ("table1", "table2"):
        spec = table_spec(config, table)
        measured = {row["experiment"] for row in spec["rows"]}
        assert {e for a, e in archs.items() if a != "hycon"} | {"hycon"} <= measured and not {
            "RAVEN",
            "QMF",
            "ICCN",
        } - set(spec["reported"])
        for row in spec["rows"]:
            seeds = experiment_seeds(config, row["experiment"])
            assert (row["label"] in spec["trimmed"]) == (
                seeds != config["seeds"]
                or experiment_settings(config, row["experiment"])["train"]["epochs"] < full_epochs
            )
        assert "MAG-BERT: seed 0 and at most" in spec["caption"]
    assert len(runs(config)) == sum(
        len(experiment_seeds(config, e)) for e in dataset_experiments(config)["synthetic"]
    )


def test_the_schema_is_the_one_home_of_the_figure_and_sequence_defaults(tmp_path):
    """grid reads the t-SNE settings and seq_len without fallbacks of its own: a config that omits them gets
    the schema's defaults."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    del config["figures"], config["seq_len"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(config))
    bare = load_config([tmp_path / "bare.yaml"])
    expected = {"with": "hycon", "without": "no_contrast", "perplexity": 30, "max_points": 2000}
    assert tsne_spec(bare) == expected
    assert dataset_seq_len(bare, "synthetic") == 50


def test_searched_tables_caption_only_the_epochs_their_rows_trim():
    config = load_config([REPO / "config" / "config.yaml"])
    spec = searched_table_spec(config, "table1")  # every searched row trains with search.seeds
    assert spec["seeds"] == config["search"]["seeds"] and spec["trimmed"]["TFN"] == "at most 3 epochs"
    trimmed = spec["caption"].split("Run with less, for CPU time:")[1]  # the statistics name the probe's seed
    assert "MAG-BERT: at most 2 epochs" in trimmed and "seed 0" not in trimmed


def test_profiles_parse_and_plan_the_jobs():
    default = yaml.safe_load((REPO / "workflow/profiles/default/config.yaml").read_text())
    slurm = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert default["cores"] >= 1
    assert slurm["executor"] == "slurm"
    planned = len(runs(TINY))  # every (dataset, experiment, seed)
    assert planned == sum(len(names) for names in dataset_experiments(TINY).values()) * len(TINY["seeds"])
    for profile in ("default", "slurm"):
        args = ["snakemake", "-n", "--forceall", "--workflow-profile", f"workflow/profiles/{profile}"]
        proc = run([*args, "--configfile", "config/test.yaml"], REPO)
        counts = job_counts(proc.stdout + proc.stderr)
        assert counts["train"] == counts["evaluate"] == planned
        assert counts["tables"] == len(active_tables(TINY))


def test_sweep_target_plans_every_cell_per_seed_outside_all():
    cells = sweep_cells(TINY)["alpha_lambda"]
    seeds = TINY["sweeps"]["alpha_lambda"]["seeds"]
    proc = run(["snakemake", "-n", "--forceall", "--configfile", "config/test.yaml", "--", "sweep"], REPO)
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["train"] == counts["evaluate"] == len(cells) * len(seeds)
    assert counts["aggregate"] == len(cells) and counts["sweep_report"] == 1 and "tables" not in counts
    assert set(re.findall(r"experiment=(alpha_lambda__[\w.]+)", proc.stdout)) == set(cells)
    everything = run(["snakemake", "-n", "--forceall", "--configfile", "config/test.yaml"], REPO).stdout
    assert "alpha_lambda__" not in everything and "sweep_report" not in everything


def test_dvc_pipeline_calls_snakemake_and_does_not_repeat_the_grid():
    text = (REPO / "dvc.yaml").read_text()
    stages = yaml.safe_load(text)["stages"]
    assert list(stages) == ["data", "experiments"]
    for name in list(TINY["experiments"]) + ["synthetic", "table1"]:
        assert name not in text, f"dvc.yaml repeats '{name}' of the config's grid"
    assert stages["data"]["cmd"][-1].split()[1:3] == ["workflow/scripts/dvc-snakemake.sh", "data"]
    assert stages["experiments"]["cmd"][0].split()[1:3] == ["workflow/scripts/dvc-snakemake.sh", "all"]
    outs = {path: spec for stage in stages.values() for item in stage["outs"] for path, spec in item.items()}
    assert {"data/raw", "data/aligned", "results/runs", ".snakemake/metadata"} <= set(outs)
    assert all(spec["persist"] for spec in outs.values())
    params = [next(iter(entry)) for stage in stages.values() for entry in stage["params"]]
    assert set(params) == {"config/config.yaml", "params.yaml"}  # the grid, and what an experiment overrides
    assert all(value is None for value in yaml.safe_load((REPO / "params.yaml").read_text()).values())
    dag = run(["dvc", "dag", "--dot"], REPO).stdout
    assert re.search(r'"data"\s*->\s*"experiments"', dag)


# ---------------------------------------------------------------- end to end on the tiny config


def commit(project: Path, message: str, *paths: str) -> None:
    """Commit `paths` (every change when none) in the project's git repository."""
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    for command in (["add", *(paths or ["-A"])], ["commit", "-q", "-m", message]):
        subprocess.run([*git, *command], cwd=project, check=True, capture_output=True)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """A fresh git + DVC project on the tiny config, built from scratch by `dvc repro`; never changed."""
    root = tmp_path_factory.mktemp("built") / "project"
    root.mkdir()
    copy_repository(REPO, root)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False, allow_unicode=True))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, capture_output=True)
    commit(root, "fresh clone")
    run(["dvc", "repro"], root, timeout=900)
    return root


@pytest.fixture
def project(built, tmp_path) -> Path:
    """A test's own copy of the built project (git, DVC cache, Snakemake metadata and modification times
    included), so that what one test changes no other test sees."""
    root = tmp_path / "project"
    shutil.copytree(built, root, symlinks=True)
    return root


def headline_experiments(keys) -> set[str]:
    """The experiments that keys of results/headline.json name: `<dataset>.<experiment>.<metric>`, where an
    experiment's name may hold dots (alpha_0.5)."""
    return {key.split(".", 1)[1].rsplit(".", 1)[0] for key in keys}


@pytest.mark.slow
def test_every_table_and_figure_is_well_formed(built):
    project = built
    for table, spec in active_tables(TINY).items():
        frame = pd.read_csv(project / f"results/tables/{table}.csv")
        assert list(frame.columns[:4]) == ["Method", "Source", "Seeds", "Acc7"]
        assert {"Acc2", "F1", "MAE", "Corr", "Acc2_std", "MAE_std"} <= set(frame.columns)
        measured = frame[frame["Source"] == "measured"]
        assert measured["Method"].tolist() == [row["label"] for row in spec["rows"]]
        assert (measured["Seeds"] == len(TINY["seeds"])).all()
        values = measured[["Acc7", "Acc2", "F1", "MAE", "Corr", "Acc7_std", "MAE_std"]].to_numpy(float)
        assert all(math.isfinite(v) for v in values.ravel())
        compared = measured[measured["Compared_with"].notna()]  # every row but HyCon's, the reference
        assert len(compared) == len(spec["rows"]) - 1 and {"Acc2_has0", "F1_has0"} <= set(frame.columns)
        assert (
            (compared["MAE_ci_low"] <= compared["MAE_diff"])
            & (compared["MAE_diff"] <= compared["MAE_ci_high"])
        ).all()
        assert (
            compared[["MAE_p_boot", "Acc2_p_boot", "MAE_p_perm"]].apply(lambda p: p.between(0, 1)).all().all()
        )
        assert (compared["Seed_pairs"] == len(TINY["seeds"])).all()
        assert (
            ((measured[["Acc7", "Acc2", "F1"]] >= 0) & (measured[["Acc7", "Acc2", "F1"]] <= 100)).all().all()
        )
        assert len(frame) == len(spec["rows"]) + len(spec.get("reported", []))
        markdown = (project / f"results/tables/{table}.md").read_text()
        assert "| Method | Acc7 | Acc2 | F1 | MAE | Corr |" in markdown and "SYNTHETIC" in markdown
        assert all(
            re.search(rf"\| {re.escape(row['label'])} \| [\d.]+ ± [\d.]+ \|", markdown)
            for row in spec["rows"]
        )
        latex = (project / f"results/tables/{table}.tex").read_text()
        assert latex.count(r"\begin{tabular}") == 1 and latex.rstrip().endswith(r"\end{table}")
        assert (project / f"results/figures/{table}_forest.png").read_bytes()[:8] == PNG_SIGNATURE
    for dataset, experiments in dataset_experiments(TINY).items():
        assert (project / f"results/figures/tsne_{dataset}.png").read_bytes()[:8] == PNG_SIGNATURE
        for experiment in experiments:
            assert (project / f"results/figures/curves/{dataset}/{experiment}.png").read_bytes()[
                :8
            ] == PNG_SIGNATURE
    summaries = sorted(path.stem for path in (project / "results/summary/synthetic").glob("*.json"))
    assert summaries == sorted(dataset_experiments(TINY)["synthetic"])
    report = (project / "results/report.html").read_text()
    assert all(
        name in report for name in ("table1.csv", "table6.csv", "tsne_synthetic.png", "table3_forest.png")
    )


@pytest.mark.slow
def test_a_complete_run_leaves_nothing_to_do(project):
    assert dry_run(project) == {}
    assert "up to date" in run(["dvc", "status"], project).stdout
    repro = run(["dvc", "repro"], project).stdout
    assert "Stage 'data' didn't change" in repro and "Stage 'experiments' didn't change" in repro
    # one row per experiment (results/headline.json, the columns of `dvc exp show`, is left out)
    shown = run(["dvc", "metrics", "show", "results/summary"], project).stdout.splitlines()
    header = shown[0].split()
    assert header[:2] == ["Path", "acc2_non0"] and "mae" in header and "mae_std" in header
    rows = {line.split()[0]: line.split()[1:] for line in shown[1:] if line.strip()}
    assert set(rows) == {
        f"results/summary/synthetic/{e}.json" for e in dataset_experiments(TINY)["synthetic"]
    }
    assert all(len(values) == len(header) - 1 for values in rows.values())
    params = run(["dvc", "params", "diff", "--all"], project).stdout
    assert "experiments" in params or "seeds" in params
    run(["dvc", "plots", "show", "-o", "plots"], project)
    assert "results/curves/synthetic/hycon.csv" in (project / "plots/index.html").read_text()


@pytest.mark.slow
def test_dvc_checkout_rewriting_files_reruns_no_job(project):
    aligned = project / "data/aligned/synthetic.h5"
    model = project / "results/runs/synthetic/hycon/seed0/model.pt"
    table = project / "results/tables/table1.csv"
    aligned.unlink()
    model.unlink()
    run(["dvc", "checkout"], project)
    assert aligned.stat().st_mtime > table.stat().st_mtime and model.is_file()
    assert dry_run(project) == {}  # judged by content: the restored files are the recorded ones
    # The friction it avoids: judged by modification time (checksums only under 1 kB), everything reruns.
    assert dry_run(project, "--max-checksum-file-size", "1000").get("train", 0) > 0


@pytest.mark.slow
def test_search_every_row_then_tables_from_the_chosen_settings(project):
    run(["snakemake", "--cores", "2", "search_all"], project, timeout=900)
    searched = search_experiments(TINY)["synthetic"]
    assert searched == dataset_experiments(TINY)["synthetic"][: len(searched)]
    for experiment in searched:
        folder = project / f"results/search/synthetic/{experiment}"
        best = json.loads((folder / "best.json").read_text())
        trials = pd.read_csv(folder / "trials.csv")
        assert (folder / "study.journal").is_file()
        assert len(trials) == TINY["search"]["trials"] and set(trials["state"]) == {"complete"}
        assert best["trial"] == int(trials.loc[trials["valid_mae"].idxmin(), "trial"])
        assert best["settings"]["train"]["lr"] == pytest.approx(trials.loc[best["trial"], "train.lr"])
        own = TINY["experiments"][experiment] or {}
        assert all(best["settings"][k.split(".")[0]][k.split(".")[1]] == v for k, v in own.items())
        name = f"searched_{experiment}"
        assert (
            yaml.safe_load((project / f"results/settings/synthetic/{name}.yaml").read_text())
            == (best["settings"])
        )
        chosen = json.loads((project / f"results/metrics/synthetic/{name}.json").read_text())
        assert chosen["seeds"] == TINY["search"]["seeds"]
    for table, spec in active_tables(TINY).items():
        frame = pd.read_csv(project / f"results/tables/searched/{table}.csv")
        measured = frame[frame["Source"] == "measured"]
        assert measured["Method"].tolist() == [row["label"] for row in spec["rows"]]
        assert (measured["Seeds"] == len(TINY["search"]["seeds"])).all()
    assert dry_run(project, "search_all") == {}  # the studies are complete: nothing reruns


@pytest.mark.slow
def test_editing_one_experiment_reruns_only_its_jobs(project):
    commit(project, "first results")  # dvc.lock: the baseline
    config_path = project / "config/config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["experiments"]["alpha_0.5"] = {"loss.alpha": 0.6}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    seeds = len(TINY["seeds"])
    assert dry_run(project) == {
        "settings": 1,
        "train": seeds,
        "evaluate": seeds,
        "aggregate": 1,
        "headline": 1,
        "figures_curves": 1,
        "tables": 1,  # table5 only: the one table with an alpha_0.5 row
        "figures_forest": 1,
        "all": 1,
    }
    plan = run(["snakemake", "-n"], project).stdout
    assert re.findall(r"output: results/tables/(\w+)\.md", plan) == ["table5"]
    assert set(re.findall(r"wildcards: dataset=synthetic, experiment=([\w.]+)", plan)) == {"alpha_0.5"}
    status = run(["dvc", "status"], project).stdout
    assert "experiments" in status and "data:" not in status
    untouched = {p: p.stat().st_mtime for p in (project / "results/runs/synthetic/hycon").rglob("model.pt")}
    table3 = (project / "results/tables/table3.csv").stat().st_mtime
    repro = run(["dvc", "repro"], project, timeout=900).stdout
    assert "Stage 'data' didn't change" in repro
    assert {p: p.stat().st_mtime for p in untouched} == untouched
    assert (project / "results/tables/table3.csv").stat().st_mtime == table3
    settings = yaml.safe_load((project / "results/settings/synthetic/alpha_0.5.yaml").read_text())
    assert settings["loss"]["alpha"] == 0.6
    assert dry_run(project) == {}
    moved = json.loads(run(["dvc", "metrics", "diff", "--json", "--all"], project).stdout)
    changed = {
        (path, key)
        for path, metrics in moved.items()
        for key, change in metrics.items()
        if change.get("diff")
    }  # the experiment that moved, by name: its summary, and its keys of the headline metrics
    assert {path for path, _ in changed} == {
        "results/summary/synthetic/alpha_0.5.json",
        "results/headline.json",
    }
    assert headline_experiments(key for path, key in changed if path == "results/headline.json") == {
        "alpha_0.5"
    }


@pytest.mark.slow
def test_sweep_report_then_a_new_value_trains_only_the_new_cells(project):
    run(["snakemake", "--cores", "2", "sweep"], project, timeout=900)
    table = pd.read_csv(project / "results/sweeps/alpha_lambda.csv")
    assert len(table) == len(sweep_cells(TINY)["alpha_lambda"]) and table["valid_best"].sum() == 1
    assert table["MAE_best"].sum() == 1 and (table["Seeds"] == 2).all()
    assert (project / "results/figures/sweep_alpha_lambda.png").read_bytes()[:8] == PNG_SIGNATURE
    config_path = project / "config/config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["sweeps"]["alpha_lambda"]["keys"]["loss.alpha"].append(0.7)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    assert dry_run(project, "sweep") == {
        "settings": 2,  # alpha 0.7 with each lambda_scl value: the new cells only
        "train": 4,
        "evaluate": 4,
        "aggregate": 2,
        "sweep_report": 1,
        "sweep": 1,
    }
    assert dry_run(project) == {}  # `all` does not build the sweeps


# ---------------------------------------------------------------- DVC experiments (docs/dvc.md)


def model_times(project: Path) -> dict[str, float]:
    """Modification time of every run's model, by run folder (a retrained run writes a new one)."""
    runs_dir = project / "results/runs"
    return {str(p.parent.relative_to(runs_dir)): p.stat().st_mtime for p in runs_dir.rglob("model.pt")}


def experiment_data(project: Path, name: str) -> dict:
    """One DVC experiment's entry of `dvc exp show --json` (params, metrics), found by its name."""
    for baseline in json.loads(run(["dvc", "exp", "show", "--json"], project).stdout):
        for branch in baseline.get("experiments") or []:
            for rev in branch["revs"]:
                if rev["name"] == name:
                    return rev["data"]
    raise AssertionError(f"no experiment '{name}' in `dvc exp show`")


@pytest.mark.slow
def test_dvc_exp_run_after_a_snakemake_run_keeps_the_results_and_reruns_one_experiment(project):
    # The state `make run` leaves: results built by Snakemake, no dvc.lock in the commit. Recording them
    # (`make record`, the last step of `make run`) is what keeps `dvc exp run` from deleting them.
    # The built project's commit ("fresh clone") holds no dvc.lock: removing the file leaves exactly that.
    (project / "dvc.lock").unlink()
    subprocess.run(["make", "record", f"BIN={BIN}"], cwd=project, check=True, capture_output=True)
    tables = {p: p.read_bytes() for p in (project / "results/tables").rglob("*") if p.is_file()}
    before = model_times(project)
    exp = run(["dvc", "exp", "run", "-n", "as-is"], project)
    assert "Stage 'experiments' didn't change" in exp.stdout and not job_counts(exp.stdout + exp.stderr)
    assert model_times(project) == before  # no train job ran, nothing was deleted or restored
    assert {p: p.read_bytes() for p in tables} == tables
    headline = experiment_data(project, "as-is")["metrics"]["results/headline.json"]["data"]
    assert set(headline["synthetic"]) == set(dataset_experiments(TINY)["synthetic"])
    assert all(set(metrics) == {"Acc2", "MAE", "Corr"} for metrics in headline["synthetic"].values())
    # One experiment's α, through params.yaml: that experiment's runs (one train job per seed) rerun.
    commit(project, "dvc.lock", "dvc.lock")  # the experiment's baseline
    exp = run(
        ["dvc", "exp", "run", "-n", "alpha-0.4", "-S", "experiments={alpha_0.5: {loss.alpha: 0.4}}"], project
    )
    assert job_counts(exp.stdout + exp.stderr)["train"] == len(TINY["seeds"])
    moved = {run_dir for run_dir, mtime in model_times(project).items() if mtime != before[run_dir]}
    assert moved == {f"synthetic/alpha_0.5/seed{seed}" for seed in TINY["seeds"]}
    settings = yaml.safe_load((project / "results/settings/synthetic/alpha_0.5.yaml").read_text())
    assert settings["loss"]["alpha"] == 0.4
    diff = run(["dvc", "exp", "diff", "as-is", "alpha-0.4", "--json"], project).stdout
    assert headline_experiments(json.loads(diff)["metrics"]["results/headline.json"]) == {"alpha_0.5"}


@pytest.mark.slow
def test_queued_configurations_run_one_after_another(project):
    commit(project, "first results")  # the queue's baseline holds the built results' dvc.lock
    for alpha in (0.6, 0.7):
        overrides = f"experiments={{alpha_0.5: {{loss.alpha: {alpha}}}}}"
        run(["dvc", "exp", "run", "--queue", "-n", f"queued-{alpha}", "-S", overrides], project)
    run(["dvc", "queue", "start", "-j", "1"], project, timeout=900)
    for _ in range(900):  # the worker runs in the background; its output pipes usually outlive it
        if not re.search(r"\b(Queued|Running)\b", run(["dvc", "queue", "status"], project).stdout):
            break
        time.sleep(1)
    for alpha in (0.6, 0.7):
        data = experiment_data(project, f"queued-{alpha}")
        assert data["params"]["params.yaml"]["data"]["experiments"] == {"alpha_0.5": {"loss.alpha": alpha}}
        logs = run(["dvc", "queue", "logs", f"queued-{alpha}"], project).stdout
        assert job_counts(logs)["train"] == len(TINY["seeds"]) and "synthesize" not in job_counts(logs)


def test_conda_environment_lists_the_project_dependencies() -> None:
    """workflow/envs/pipeline.yaml (for `--sdm conda`) installs exactly pyproject.toml's dependencies."""
    import tomllib

    env = yaml.safe_load((REPO / "workflow/envs/pipeline.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert pip == declared
