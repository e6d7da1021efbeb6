"""What the reporting and search stages receive as plain JSON: a table's spec (rows, reference, seeds, what
each row trims, its caption from pipeline/reporting/captions.py), the searched table's, and one
experiment's search spec."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline import presets
from pipeline.grid.expand import (
    active_tables,
    experiment_seeds,
    experiment_settings,
    is_synthetic,
    search_datasets,
    searched_name,
)
from pipeline.reporting.captions import dataset_label, reference_experiment, table_caption
from pipeline.reporting.paper import paper_table
from pipeline.settings import resolve_settings


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
