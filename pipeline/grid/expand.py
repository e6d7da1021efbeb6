"""Expansion of a validated config into the experiment grid: each experiment's settings and seeds, the
runs `all` trains, the datasets in use and the language-model features they read, and the names under
which searched settings are trained (`searched_name`, `searched_of`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline import presets
from pipeline.errors import ConfigError
from pipeline.settings import AUTO_TEXT_TOKEN, feature_settings_of, resolve_settings
from pipeline.sweeps import active_sweeps, experiment_overrides, sweep_seeds

# Prefix of the experiment names under which each experiment's searched setting is trained (reserved).
SEARCHED_PREFIX = "searched_"


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


def used_datasets(config: Mapping[str, Any]) -> list[str]:
    """The datasets the workflow builds: those of the tables, of the search and of the sweeps, sorted."""
    used = set(dataset_experiments(config)) | {spec["dataset"] for spec in active_sweeps(config).values()}
    return sorted(used | set(search_datasets(config) if config.get("search") else []))


def search_datasets(config: Mapping[str, Any]) -> list[str]:
    """Datasets the random search runs on: `search.datasets`, else those the tables use."""
    search = config.get("search") or {}
    return list(search.get("datasets") or dataset_experiments(config))


def searched_name(experiment: str) -> str:
    """Experiment name under which `experiment`'s searched setting is trained and aggregated."""
    return SEARCHED_PREFIX + experiment


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


def searched_of(config: Mapping[str, Any], experiment: str) -> str | None:
    """The configured experiment whose searched setting `experiment` names (`searched_name`), or None."""
    if not experiment.startswith(SEARCHED_PREFIX):
        return None
    base = experiment[len(SEARCHED_PREFIX) :]
    return base if base in config["experiments"] else None


def run_seeds(config: Mapping[str, Any], experiment: str) -> list[int]:
    """Seeds a run folder exists for: `experiment_seeds` for an experiment or sweep cell, and the search's
    `seeds` for a searched setting."""
    if searched_of(config, experiment):
        return list(config["search"]["seeds"])
    return experiment_seeds(config, experiment)


def run_settings(config: Mapping[str, Any], experiment: str) -> dict[str, Any] | None:
    """Resolved settings of a configured experiment or sweep cell; None for a searched setting, whose
    settings the search writes (its best.json)."""
    if searched_of(config, experiment):
        return None
    return experiment_settings(config, experiment)
