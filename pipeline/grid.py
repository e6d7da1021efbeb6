"""The workflow's configuration (config/*.yaml): loading, validation and expansion of the experiment grid.

One place for the grid: the Snakefile, the reporting stages and the search read it through this module;
DVC tracks config/config.yaml as params, and params.yaml, the overlay `dvc exp run -S` writes (docs/dvc.md).

- `load_config(paths)` merges YAML files the way Snakemake merges `--configfile` onto the Snakefile's
  `configfile:` (mappings recursively, everything else replaced), then validates.
- `validate_config(config)` checks the JSON schema (workflow/schemas/config.schema.yaml, filling its
  defaults) and then `check_config`: every table names a defined dataset and defined experiments, every
  reported row exists in the paper, every experiment's overrides are valid settings, every imported
  dataset names its format and path. Each failure is one ConfigError naming the key, raised before any
  job is planned.
- `runs`, `experiment_settings`, `table_spec`, `features_key` expand the grid for the Snakefile;
  `search_experiments`, `search_spec`, `searched_table_spec` the per-row search of `search_all`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline import presets
from pipeline.errors import ConfigError
from pipeline.layout import CMU_DATASETS
from pipeline.reporting.captions import dataset_label, reference_experiment, table_caption
from pipeline.reporting.paper import paper_table, reported_row
from pipeline.settings import AUTO_TEXT_TOKEN, check_search_space, feature_settings_of, resolve_settings
from pipeline.space import check_space
from pipeline.sweeps import active_sweeps, check_sweeps, experiment_overrides, sweep_seeds

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"

# Dataset keys of `source: import` (the `import` stage's arguments).
IMPORT_KEYS = ("format", "path", "clip_base")
# Prefix of the experiment names under which each experiment's searched setting is trained (reserved).
SEARCHED_PREFIX = "searched_"


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `update` onto `base`, mappings merged recursively, other values replaced (as Snakemake)."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_config_file(path: str | Path) -> Mapping[str, Any]:
    """One YAML config file as a mapping; a syntax error is a ConfigError `path:line: problem`."""
    path = Path(path)
    try:
        layer = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = " ".join(filter(None, (getattr(err, "context", None), getattr(err, "problem", None))))
        raise ConfigError(f"{where}: not valid YAML: {problem or err}") from None
    if not isinstance(layer, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(layer).__name__}")
    return layer


def load_config(paths: Sequence[str | Path] = (DEFAULT_CONFIG,)) -> dict[str, Any]:
    """Read and merge YAML config files in order (later ones overlay earlier ones), then validate."""
    config: dict[str, Any] = {}
    for path in paths:
        config = deep_merge(config, read_config_file(path))
    return validate_config(config)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check `config` against the JSON schema (filling its defaults in place) and its cross-references.

    The first schema violation becomes one ConfigError naming the key path; Snakemake's own `validate`
    (which the Snakefile also calls) then fills the schema's defaults.
    """
    import jsonschema
    from snakemake.utils import validate

    schema = yaml.safe_load(SCHEMA.read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {error.message} (schema {SCHEMA.relative_to(REPO)})")
    validate(config, str(SCHEMA), set_default=True)
    check_config(config)
    return config


def check_config(config: Mapping[str, Any]) -> None:
    """Cross-reference checks the schema cannot express; one ConfigError naming the key, or None."""
    datasets = config["datasets"]
    for name, spec in datasets.items():
        if spec["source"] == "download" and spec.get("name", name) not in CMU_DATASETS:
            raise ConfigError(
                f"datasets.{name}: source 'download' needs `name: mosi` or `name: mosei` "
                f"(or the key mosi/mosei); got '{spec.get('name', name)}'"
            )
        _check_import(name, spec)
    try:
        resolve_settings(config["base"])
    except ConfigError as err:
        raise ConfigError(f"base: {err}") from None
    for name in config["experiments"]:
        if name.startswith(SEARCHED_PREFIX):
            raise ConfigError(
                f"experiments.{name}: the prefix '{SEARCHED_PREFIX}' is reserved for the searched settings"
            )
        experiment_settings(config, name)
    for name in config.get("experiment_seeds") or {}:
        _check_experiment(config, name, "experiment_seeds")
    check_sweeps(config, check_dataset)
    active = active_tables(config)
    if not active:
        raise ConfigError("tables: every table is disabled (null); nothing to build")
    for table, spec in active.items():
        where = f"tables.{table}"
        check_dataset(config, spec["dataset"], f"{where}.dataset")
        labels = [row["label"] for row in spec["rows"]] + list(spec.get("reported", []))
        if duplicates := sorted({label for label in labels if labels.count(label) > 1}):
            raise ConfigError(f"{where}: row labels appear twice: {', '.join(duplicates)}")
        for row in spec["rows"]:
            _check_experiment(config, row["experiment"], f"{where} row '{row['label']}'")
        reference_experiment(spec["rows"], spec.get("reference"), where)
        if spec.get("reported"):
            if "paper" not in spec:
                raise ConfigError(f"{where}: `reported` rows need `paper` (the paper's table of them)")
            for label in spec["reported"]:
                try:
                    reported_row(spec["paper"], label)
                except ConfigError as err:
                    raise ConfigError(f"{where}.reported: {err}") from None
    if tsne := tsne_spec(config):
        for key in ("with", "without"):
            _check_experiment(config, tsne[key], f"figures.tsne.{key}")
    search = config.get("search")
    if search:
        for dataset in search_datasets(config):
            check_dataset(config, dataset, "search.datasets")
        for name in sorted({e for names in search_experiments(config).values() for e in names}):
            space, settings = search_spec(config, name)["space"], experiment_settings(config, name)
            own = presets.fixed_overrides(settings["model"]["arch"], config["experiments"][name] or {})
            check_search_space(space, name, own)
            presets.check_family_space(settings, space, f"search.space (experiment {name})")
            try:
                check_space(space, settings)
            except ConfigError as err:
                raise ConfigError(f"{err} (searching experiment {name})") from None


def _check_import(name: str, spec: Mapping[str, Any]) -> None:
    """An imported dataset names its pickles' format and path; no other dataset takes import keys."""
    if spec["source"] == "import":
        missing = [key for key in ("format", "path") if key not in spec]
        if missing:
            raise ConfigError(
                f"datasets.{name}: source 'import' needs {' and '.join(missing)} "
                "(format: mag | mmsa | misa; path: the pickle, or MISA's folder)"
            )
        if "clip_base" in spec and spec["format"] != "mmsa":
            raise ConfigError(f"datasets.{name}.clip_base: only the mmsa format numbers clips")
        return
    for key in IMPORT_KEYS:
        if key in spec:
            raise ConfigError(f"datasets.{name}.{key}: only a dataset with `source: import` takes it")


def used_datasets(config: Mapping[str, Any]) -> list[str]:
    """The datasets the workflow builds: those of the tables, of the search and of the sweeps, sorted."""
    used = set(dataset_experiments(config)) | {spec["dataset"] for spec in active_sweeps(config).values()}
    return sorted(used | set(search_datasets(config) if config.get("search") else []))


def check_dataset(config: Mapping[str, Any], name: str, where: str) -> None:
    """ConfigError naming `where` when `name` is not one of the config's datasets."""
    if name not in config["datasets"]:
        known = ", ".join(config["datasets"])
        raise ConfigError(f"{where}: unknown dataset '{name}' (datasets defined: {known})")


def _check_experiment(config: Mapping[str, Any], name: str, where: str) -> None:
    if name not in config["experiments"]:
        known = ", ".join(config["experiments"])
        raise ConfigError(f"{where} names experiment '{name}', which `experiments` does not define ({known})")


def active_tables(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Tables that are not disabled (a null table is switched off, e.g. by config/mosi.yaml)."""
    return {name: spec for name, spec in config["tables"].items() if spec is not None}


def tsne_spec(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The t-SNE figure's experiments (with and without contrastive learning), perplexity and point cap, or
    None when switched off (`tsne: null`). Of a validated config: the schema fills the defaults."""
    tsne = config["figures"]["tsne"]
    return None if tsne is None else dict(tsne)


def experiment_settings(config: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """Settings of an experiment or a sweep cell: `base`, then its family's preset (`presets.family_preset`:
    a baseline's reference training settings), then its own overrides (ConfigError naming both)."""
    if experiment not in (overrides := experiment_overrides(config)):
        raise ConfigError(f"unknown experiment '{experiment}'")
    own = overrides[experiment]
    try:
        arch = resolve_settings(config["base"], own)["model"]["arch"]
        return resolve_settings(config["base"], {**presets.family_preset(arch), **own})
    except ConfigError as err:
        raise ConfigError(f"experiments.{experiment}: {err}") from None


def dataset_experiments(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Dataset -> the experiments its tables (and the t-SNE figure) need, in first-use order."""
    grid: dict[str, list[str]] = {}
    tsne = tsne_spec(config)
    for spec in active_tables(config).values():
        wanted = grid.setdefault(spec["dataset"], [])
        for name in [row["experiment"] for row in spec["rows"]] + (
            [tsne["with"], tsne["without"]] if tsne else []
        ):
            if name not in wanted:
                wanted.append(name)
    return grid


def experiment_seeds(config: Mapping[str, Any], experiment: str) -> list[int]:
    """Seeds an experiment runs with: its `experiment_seeds` entry, a sweep cell's sweep's, else `seeds`."""
    explicit = {**sweep_seeds(config), **(config.get("experiment_seeds") or {})}
    return list(explicit.get(experiment, config["seeds"]))


def runs(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset, experiment, seed) that `all` trains and evaluates."""
    return [
        (d, e, s)
        for d, names in dataset_experiments(config).items()
        for e in names
        for s in experiment_seeds(config, e)
    ]


def trimmed_rows(
    config: Mapping[str, Any], rows: Sequence[Mapping[str, str]], searched: bool = False
) -> dict[str, str]:
    """Row label -> how its experiment is run with less than the others (fewer seeds or epochs than the
    global `seeds` and `base`), for the caption; rows run in full are left out. `searched`: the rows'
    searched settings, which all run the table's `search.seeds`, so only epochs can be fewer."""
    base_epochs = resolve_settings(config["base"])["train"]["epochs"]
    notes = {}
    for row in rows:
        seeds = experiment_seeds(config, row["experiment"])
        epochs = experiment_settings(config, row["experiment"])["train"]["epochs"]
        parts = []
        if not searched and seeds != list(config["seeds"]):
            parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
        if epochs < base_epochs:
            parts.append(f"at most {epochs} epochs")
        if parts:
            notes[row["label"]] = " and ".join(parts)
    return notes


def features_key(settings: Mapping[str, Any]) -> str | None:
    """File-name key of the cached language features a run reads, or None when the encoder is fine-tuned.

    The defaults (the `mean` token, which `auto` resolves to for a frozen model, and 128 word pieces) give
    just the model's slug (`minilm`), as in docs/architecture.md (`data/features/<dataset>-<lm>.h5`); other
    choices append the resolved token and the truncation, so `auto` and `mean` share one cache.
    """
    model = settings["model"]
    if model["lm_mode"] != "frozen":
        return None
    lm = feature_settings_of(settings)
    key = re.sub(r"[^A-Za-z0-9_]+", "_", Path(lm["language_model"]).name.lower()).strip("_") or "lm"
    if (lm["text_token"], lm["max_text_tokens"]) != (AUTO_TEXT_TOKEN["frozen"], 128):
        key += f"_{lm['text_token']}{lm['max_text_tokens']}"
    return key


def feature_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """features key -> the language-model settings that produce it, over `base` and every experiment."""
    found: dict[str, dict[str, Any]] = {}
    candidates = [resolve_settings(config["base"])]
    candidates += [experiment_settings(config, name) for name in experiment_overrides(config)]
    for settings in candidates:
        key = features_key(settings)
        if key is not None:
            found[key] = feature_settings_of(settings)
    return found


def is_synthetic(config: Mapping[str, Any], dataset: str) -> bool:
    """True when the dataset is generated by `python -m pipeline synthesize` rather than downloaded."""
    return config["datasets"][dataset]["source"] == "synthesize"


def dataset_seq_len(config: Mapping[str, Any], dataset: str) -> int:
    """Word-level sequence length of a dataset: its own `seq_len`, else the global one (its default: the
    schema)."""
    return int(config["datasets"][dataset].get("seq_len", config["seq_len"]))


def table_spec(config: Mapping[str, Any], table: str) -> dict[str, Any]:
    """Everything the tables stage needs for one table, as plain JSON (passed to the rule as params)."""
    spec = active_tables(config)[table]
    paper = spec.get("paper")
    number_match = re.fullmatch(r"table(\d+)", table)
    dataset = spec["dataset"]
    out = {
        "name": table,
        "number": int(number_match.group(1)) if number_match else None,
        "title": spec.get("title") or (paper_table(paper).title if paper else table),
        "dataset": dataset,
        "dataset_label": dataset_label(config["datasets"][dataset], dataset),
        "synthetic": is_synthetic(config, dataset),
        "seeds": list(config["seeds"]),
        "paper": paper,
        "paper_dataset": paper_table(paper).dataset if paper else None,
        "reported": list(spec.get("reported", [])),
        "rows": [{"label": row["label"], "experiment": row["experiment"]} for row in spec["rows"]],
        "reference": reference_experiment(spec["rows"], spec.get("reference"), f"tables.{table}"),
        "trimmed": trimmed_rows(config, spec["rows"]),
        "row_seeds": {row["experiment"]: experiment_seeds(config, row["experiment"]) for row in spec["rows"]},
        "training": presets.training_notes(spec["rows"], lambda e: experiment_settings(config, e)),
    }
    out["caption"] = table_caption(out)
    return out


def search_datasets(config: Mapping[str, Any]) -> list[str]:
    """Datasets the random search runs on: `search.datasets`, else those the tables use."""
    search = config.get("search") or {}
    return list(search.get("datasets") or dataset_experiments(config))


def search_experiments(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Dataset -> the experiments searched on it: every row of the active tables on the search datasets
    whose family is searched (not the closed-form text probe: `presets.searched`)."""
    wanted = set(search_datasets(config))
    found: dict[str, list[str]] = {}
    for spec in active_tables(config).values():
        if spec["dataset"] in wanted:
            names = found.setdefault(spec["dataset"], [])
            names += [row["experiment"] for row in spec["rows"] if row["experiment"] not in names]
    return {dataset: [e for e in names if _searched(config, e)] for dataset, names in found.items()}


def _searched(config: Mapping[str, Any], experiment: str) -> bool:
    return presets.searched(experiment_settings(config, experiment)["model"]["arch"])


def searched_name(experiment: str) -> str:
    """Experiment name under which `experiment`'s searched setting is trained and aggregated."""
    return SEARCHED_PREFIX + experiment


def search_spec(config: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """What defines one experiment's search: its settings, its space (`presets.row_space`: a baseline's
    family space, else `search.space`), trials, sampling seed and sampler."""
    search, settings = config["search"], experiment_settings(config, experiment)
    own = config["experiments"].get(experiment) or {}
    return {
        "settings": settings,
        "space": presets.row_space(settings["model"]["arch"], search["space"], own),
        **{key: search[key] for key in ("trials", "seed", "sampler")},
    }


def searched_table_spec(config: Mapping[str, Any], table: str) -> dict[str, Any]:
    """`table_spec` with each row's experiment replaced by its searched setting, trained with search.seeds."""
    spec = table_spec(config, table)
    spec["trimmed"] = trimmed_rows(config, spec["rows"], searched=True)
    spec["training"] = {}  # each row trains with its own searched setting (its settings file says which)
    spec["unsearched"] = presets.unsearched_rows(spec["rows"], lambda e: experiment_settings(config, e))
    spec["rows"] = [
        row if row["label"] in spec["unsearched"] else {**row, "experiment": searched_name(row["experiment"])}
        for row in spec["rows"]
    ]
    spec["reference"] = spec["reference"] and searched_name(spec["reference"])
    spec["seeds"] = list(config["search"]["seeds"])
    spec["row_seeds"] = {  # an unsearched row keeps its own runs and seeds
        row["experiment"]: spec["row_seeds"][row["experiment"]]
        if row["label"] in spec["unsearched"]
        else spec["seeds"]
        for row in spec["rows"]
    }
    spec["title"] += " (searched settings)"
    spec["caption"] = table_caption(spec)
    return spec


def searched_tables(config: Mapping[str, Any]) -> list[str]:
    """Active tables whose rows are searched (their dataset is a search dataset)."""
    datasets = set(search_datasets(config)) if config.get("search") else set()
    return [name for name, spec in active_tables(config).items() if spec["dataset"] in datasets]
