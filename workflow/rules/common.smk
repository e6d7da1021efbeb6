# Shared helpers: config cross-checks, the expanded grid, paths, resources and rerun fingerprints.
import json
import re
import shlex
import sys
from pathlib import Path

REPO_ROOT = Path(workflow.basedir).resolve().parent  # the Snakefile put it first on sys.path

from pipeline import fingerprints, grid, layout, sweeps
from pipeline.errors import ConfigError
from pipeline.reporting.captions import dataset_label, tested_reference
from pipeline.workflow import (
    check_workflow_config,
    exit_on_config_error,
    import_sources,
    merged_files,
)

try:  # the files Snakemake merged: the Snakefile's configfile, params.yaml, then each --configfile
    check_workflow_config(config, merged_files(workflow.overwrite_configfiles))
except ConfigError as err:
    exit_on_config_error(err)

# The interpreter running Snakemake runs the stages too: its environment's bin folder goes first on the
# jobs' PATH, so that `python -m pipeline` is the project's even when the environment is not activated.
# Jobs never reach the Hugging Face hub (compute nodes often have no network): a hub language model is
# fetched once into data/models by rule `fetch`, which runs on the submitting host and restores its
# HF_HUB_OFFLINE from SUBMIT_HF_HUB_OFFLINE.
shell.prefix(
    f'set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; '
    'export SUBMIT_HF_HUB_OFFLINE="${{HF_HUB_OFFLINE:-}}" HF_HUB_OFFLINE=1; '
)
RUN_DIR = layout.RUN_DIR
RAW_DIR = layout.RAW_DIR
RAW_FILES = [f"{RAW_DIR}/{name}" for name in layout.RAW_FILES]
GRID = grid.dataset_experiments(config)
USED_DATASETS = grid.used_datasets(config)
FEATURES = grid.feature_settings(config)
CODE = {group: fingerprints.code_digest(group, REPO_ROOT) for group in fingerprints.CODE_GROUPS}
# Hub language models of the experiments, by project folder name (rule `fetch`).
HUB_MODELS = {}
for _experiment in config["experiments"]:
    _name = grid.experiment_settings(config, _experiment)["model"]["language_model"]
    if layout.hub_model_dir(_name):
        HUB_MODELS[layout.hub_model_dir(_name).name] = _name


def _alternatives(names):
    """A wildcard regex matching exactly `names` (never matching when there are none)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!x)x"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    experiment=r"[A-Za-z0-9_.]+",
    seed=r"\d+",
    table=r"[A-Za-z0-9_]+",
    lm=r"[A-Za-z0-9_]+",


SYNTHETIC = [d for d in USED_DATASETS if config["datasets"][d]["source"] == "synthesize"]
DOWNLOADED = [d for d in USED_DATASETS if config["datasets"][d]["source"] == "download"]
IMPORTED = [d for d in USED_DATASETS if config["datasets"][d]["source"] == "import"]


def dataset_spec(wildcards):
    """The config entry of the job's dataset."""
    return config["datasets"][wildcards.dataset]


def synthesize_options(spec):
    """CLI options of `synthesize` from a dataset entry; unset keys keep the stage's defaults."""
    options = [f"--{key} {spec[key]}" for key in ("videos", "seed") if key in spec]
    return " ".join(options + ([] if spec.get("faults", True) else ["--no-faults"]))


# The one software environment of every rule. Snakemake has no workflow-wide default for the `conda`
# directive, so each rule names it; the path, relative to this folder, is written once here. (`snakemake
# --lint` takes a line with the word rule, a space and later a colon for a rule: these comments avoid that.)
PIPELINE_ENV = "../envs/pipeline.yaml"


def benchmark_file(job):
    """Where Snakemake writes a job's time and memory: results/benchmarks/<rule>/<job>.tsv (layout.py)."""
    return f"{layout.BENCHMARKS_DIR}/{job}.tsv"


def res(rule_name, key, default):
    """A rule's resource from config `resources`: its own entry, else `resources.default`, else `default`."""
    resources = config.get("resources") or {}
    return resources.get(rule_name, {}).get(key, resources.get("default", {}).get(key, default))


def placement(rule_name):
    """Where a rule's SLURM jobs go: the config's slurm_partition and slurm_account (its own entry, else
    `resources.default`) and, for a GPU job, gpu_model; only those set (unset: the cluster's defaults)."""
    keys = ["slurm_partition", "slurm_account"] + (["gpu_model"] if res(rule_name, "gpu", 0) > 0 else [])
    return {key: res(rule_name, key, None) for key in keys if res(rule_name, key, None) is not None}


def rule_resources(rule_name, mem_mb, runtime, gpu=None):
    """The `resources` of a computing rule, the one block they all share. It holds mem_mb, runtime and, for
    a rule that can use one, gpu, each from config `resources` (`res`) with the given default, then its
    placement."""
    resources = {"mem_mb": res(rule_name, "mem_mb", mem_mb), "runtime": res(rule_name, "runtime", runtime)}
    if gpu is not None:
        resources["gpu"] = res(rule_name, "gpu", gpu)
    return {**resources, **placement(rule_name)}


def language_model_input(name):
    """The project copy (its config.json) of a hub language model, for the jobs that load it; none for a
    bundled model or a local path."""
    folder = layout.hub_model_dir(name)
    return [f"{folder}/config.json"] if folder else []


def run_language_model(experiment):
    """The hub model copy a run's jobs load: fine-tuned encoders only (frozen runs read cached features). A
    searched setting loads its experiment's (the space cannot vary the language model)."""
    model = grid.experiment_settings(config, grid.searched_of(config, experiment) or experiment)["model"]
    return language_model_input(model["language_model"]) if model["lm_mode"] == "finetune" else []


def data_fp(dataset):
    """Fingerprint of a dataset's aligned data (source settings, seq_len, data code)."""
    return fingerprints.data_fingerprint(config, dataset, REPO_ROOT)


SWEEPS = sweeps.sweep_cells(config)


def sweep_dataset(sweep):
    """The dataset a sweep trains on."""
    return config["sweeps"][sweep]["dataset"]


def features_path(dataset, experiment):
    """The cached language features a run reads, or None when its encoder is fine-tuned. A searched
    setting reads its experiment's (the space cannot vary the feature keys)."""
    settings = grid.experiment_settings(config, grid.searched_of(config, experiment) or experiment)
    key = grid.features_key(settings)
    return None if key is None else layout.FEATURES.format(dataset=dataset, lm=key)


def features_input(dataset, experiment):
    """The run's features file as an input list (empty when fine-tuning)."""
    path = features_path(dataset, experiment)
    return [path] if path else []


def features_arg(dataset, experiment):
    """`--features PATH` for the stage CLIs, or an empty string."""
    path = features_path(dataset, experiment)
    return f"--features {path}" if path else ""


def run_fingerprint(wildcards):
    """What defines a run's outputs: its settings, its data's definition and the model code.

    Snakemake's code trigger sees only a rule's shell command, not the Python modules it runs; as a param,
    this digest is compared by value with the job metadata, so editing the model code (or settings, or
    the data's definition) reruns the runs, whatever the files' modification times.
    """
    return fingerprints.fingerprint(
        grid.run_settings(config, wildcards.experiment), data_fp(wildcards.dataset), CODE["model"]
    )


def run_file(dataset, experiment, name):
    """Paths of one file of every seed's run directory."""
    return [
        f"{RUN_DIR}/{name}".format(dataset=dataset, experiment=experiment, seed=s)
        for s in grid.run_seeds(config, experiment)
    ]


def aggregate_path(dataset, experiment):
    """The aggregated metrics (mean ± std over seeds) of one experiment."""
    return layout.AGGREGATE.format(dataset=dataset, experiment=experiment)


def summary_targets():
    """Every experiment's flat test summary (DVC metrics)."""
    return [
        layout.SUMMARY.format(dataset=d, experiment=e) for d, experiments in GRID.items() for e in experiments
    ]


def all_targets():
    """Everything `all` builds: every run's model and metrics, every experiment's summary and the headline
    metrics of them all (DVC metrics), the tables in three formats and the figures. Runs are listed so that
    a deleted model is retrained (it is a product that DVC versions), not only what the tables need."""
    targets = [
        f"{RUN_DIR}/{name}".format(dataset=dataset, experiment=experiment, seed=seed)
        for dataset, experiment, seed in grid.runs(config)
        for name in ("model.pt", "metrics.json")
    ]
    targets += summary_targets()
    targets.append(layout.HEADLINE)
    for table in grid.active_tables(config):
        targets += [f"{layout.TABLE}.{ext}".format(table=table) for ext in ("md", "tex", "csv")]
        targets.append(layout.FOREST_FIGURE.format(table=table))
    for dataset, experiments in GRID.items():
        targets += [layout.CURVES_FIGURE.format(dataset=dataset, experiment=e) for e in experiments]
        if grid.tsne_spec(config):
            targets.append(layout.TSNE_FIGURE.format(dataset=dataset))
    return targets


def data_targets():
    """Aligned data of every dataset in use, and the features its frozen-encoder runs read."""
    targets = set()
    for dataset in GRID:
        targets.add(layout.ALIGNED.format(dataset=dataset))
        for experiment in GRID[dataset]:
            path = features_path(dataset, experiment)
            if path:
                targets.add(path)
    return sorted(targets)


def table_inputs(wildcards, spec_of=grid.table_spec):
    """The aggregates of a table's measured rows (`spec_of`: grid.table_spec or grid.searched_table_spec)."""
    spec = spec_of(config, wildcards.table)
    return [aggregate_path(spec["dataset"], row["experiment"]) for row in spec["rows"]]


def table_predictions(wildcards, spec_of=grid.table_spec):
    """Every seed's predictions.csv of a table's measured rows, when it tests rows against a reference."""
    spec = spec_of(config, wildcards.table)
    if tested_reference(spec) is None:
        return []
    experiments = dict.fromkeys(row["experiment"] for row in spec["rows"])
    return [path for e in experiments for path in run_file(spec["dataset"], e, "predictions.csv")]


def tsne_inputs(wildcards):
    """First-seed embeddings of the runs with (with_cl) and without (without_cl) contrastive learning."""
    tsne = grid.tsne_spec(config)
    seed = grid.run_seeds(config, tsne["with"])[0]
    path = f"{RUN_DIR}/embeddings.npz"
    return {
        f"{key}_cl": path.format(dataset=wildcards.dataset, experiment=tsne[key], seed=seed)
        for key in ("with", "without")
    }


def fused_experiments():
    """Experiments whose evaluation keeps the fused test vectors: those the t-SNE figure reads."""
    tsne = grid.tsne_spec(config)
    return {tsne["with"], tsne["without"]} if tsne else set()


# Search (rules/search.smk): the command of a search job and of its extra workers on the same study.
SEARCH_SHELL = (
    "python -m pipeline search --spec {params.spec:q} --dataset {wildcards.dataset} --data {input.data}"
    " {params.features} --out {params.out_dir} > {log} 2>&1"
)


def search_workers(wildcards):
    """Markers of the `search.workers` extra processes training the same study (none when it is 1)."""
    count = config["search"]["workers"]
    folder = f"{layout.SEARCH_DIR}/workers".format(dataset=wildcards.dataset, experiment=wildcards.experiment)
    return [f"{folder}/{k}.done" for k in range(count)] if count > 1 else []
