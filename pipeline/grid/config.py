"""Loading and validation of the workflow config: YAML files merged as Snakemake merges them, the JSON
schema (workflow/schemas/config.schema.yaml, filling its defaults), then the cross-references the schema
cannot express (`check_config`). Each failure is one ConfigError naming the key, before any job is planned.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline import presets
from pipeline.choices import check_sampler
from pipeline.errors import ConfigError
from pipeline.grid.expand import (
    SEARCHED_PREFIX,
    active_tables,
    experiment_settings,
    search_datasets,
    tsne_spec,
)
from pipeline.grid.specs import search_experiments, search_spec
from pipeline.layout import CMU_DATASETS
from pipeline.reporting.captions import reference_experiment
from pipeline.reporting.paper import reported_row
from pipeline.settings import check_search_space, resolve_settings
from pipeline.space import check_space
from pipeline.sweeps import active_sweeps, check_sweeps

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"

# Dataset keys of `source: import` (the `import` stage's arguments).
IMPORT_KEYS = ("format", "path", "clip_base")


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
    for name, spec in config["datasets"].items():
        _check_source(name, spec)
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
    for sweep, spec in active_sweeps(config).items():
        check_dataset(config, spec["dataset"], f"sweeps.{sweep}.dataset")
    check_sweeps(config)
    active = active_tables(config)
    if not active:
        raise ConfigError("tables: every table is disabled (null); nothing to build")
    for table, spec in active.items():
        _check_table(config, f"tables.{table}", spec)
    tsne = tsne_spec(config)
    if tsne:
        for key in ("with", "without"):
            _check_experiment(config, tsne[key], f"figures.tsne.{key}")
    if config.get("search"):
        _check_search(config)


def _check_source(name: str, spec: Mapping[str, Any]) -> None:
    """A downloaded dataset is one of CMU's; an imported one names its format and path."""
    if spec["source"] == "download" and spec.get("name", name) not in CMU_DATASETS:
        raise ConfigError(
            f"datasets.{name}: source 'download' needs `name: mosi` or `name: mosei` "
            f"(or the key mosi/mosei); got '{spec.get('name', name)}'"
        )
    _check_import(name, spec)


def _check_table(config: Mapping[str, Any], where: str, spec: Mapping[str, Any]) -> None:
    """A table's dataset, rows, reference and reported rows name what the config and the paper define."""
    check_dataset(config, spec["dataset"], f"{where}.dataset")
    labels = [row["label"] for row in spec["rows"]] + list(spec.get("reported", []))
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"{where}: row labels appear twice: {', '.join(duplicates)}")
    for row in spec["rows"]:
        _check_experiment(config, row["experiment"], f"{where} row '{row['label']}'")
    reference_experiment(spec["rows"], spec.get("reference"), where)
    if not spec.get("reported"):
        return
    if "paper" not in spec:
        raise ConfigError(f"{where}: `reported` rows need `paper` (the paper's table to take them from)")
    for label in spec["reported"]:
        try:
            reported_row(spec["paper"], label)
        except ConfigError as err:
            raise ConfigError(f"{where}.reported: {err}") from None


def _check_search(config: Mapping[str, Any]) -> None:
    """The sampler is known, the searched datasets exist, and each searched experiment's space fits its
    family and settings."""
    check_sampler(config["search"]["sampler"])
    for dataset in search_datasets(config):
        check_dataset(config, dataset, "search.datasets")
    for name in sorted({e for names in search_experiments(config).values() for e in names}):
        space = search_spec(config, name)["space"]
        settings = experiment_settings(config, name)
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


def check_dataset(config: Mapping[str, Any], name: str, where: str) -> None:
    """ConfigError naming `where` when `name` is not one of the config's datasets."""
    if name not in config["datasets"]:
        known = ", ".join(config["datasets"])
        raise ConfigError(f"{where}: unknown dataset '{name}' (datasets defined: {known})")


def _check_experiment(config: Mapping[str, Any], name: str, where: str) -> None:
    if name not in config["experiments"]:
        known = ", ".join(config["experiments"])
        raise ConfigError(f"{where} names experiment '{name}', which `experiments` does not define ({known})")
