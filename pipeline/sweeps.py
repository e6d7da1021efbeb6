"""Sweeps (`sweeps:` in the workflow config): a grid of values over one or two settings keys, declared once.

    sweeps:
      alpha_lambda:
        dataset: synthetic
        keys: {loss.alpha: [0.5, 0.8, 1.0], loss.lambda_scl: [0, 1]}   # every combination is a cell
        fixed: {model.fusion: concat}                                 # optional, the same for every cell
        seeds: [0, 1]                                                 # optional, default: the config's

Each cell is an experiment named from its values (`alpha_lambda__alpha_0.5__lambda_scl_0`), trained per
seed and aggregated like a configured one (pipeline.grid.experiment_overrides lists both); the
`sweep_report` rule turns a sweep's aggregates into a table and a heatmap (pipeline/reporting/sweep.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.errors import ConfigError
from pipeline.io import digest_json
from pipeline.reporting.captions import dataset_label
from pipeline.settings import resolve_settings


def active_sweeps(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Sweeps that are not disabled (null), by name."""
    return {name: spec for name, spec in (config.get("sweeps") or {}).items() if spec is not None}


def format_value(value: Any) -> str:
    """A settings value as a stable, filesystem-safe name part: 0 and 0.0 are '0', 1e-05 is '1em05'."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, int | float) and float(value).is_integer() and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = repr(value) if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9_.]", "_", text.replace("-", "m").replace("+", ""))


def _short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Dotted key -> its last part (`loss.alpha` -> `alpha`), the whole key with `_` where parts clash."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: short if last.count(short) == 1 else key.replace(".", "_")
        for key, short in zip(keys, last, strict=True)
    }


def sweep_cells(config: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """sweep -> {experiment name: {"values": {key: value}, "overrides": fixed + values}}, in grid order.

    A cell's name is the sweep's and its values' (`alpha_lambda__alpha_0.5__lambda_scl_0`): it does not
    depend on the other values, so adding a value adds cells and leaves the others (and their runs) alone.
    """
    expanded: dict[str, dict[str, dict[str, Any]]] = {}
    for sweep, spec in active_sweeps(config).items():
        keys = list(spec["keys"])
        short = _short_keys(keys)
        cells: dict[str, dict[str, Any]] = {}
        for combination in itertools.product(*(spec["keys"][key] for key in keys)):
            values = dict(zip(keys, combination, strict=True))
            name = "__".join([sweep] + [f"{short[k]}_{format_value(v)}" for k, v in values.items()])
            if name in cells:
                raise ConfigError(
                    f"sweeps.{sweep}: values {values} and {cells[name]['values']} share the name {name}"
                )
            cells[name] = {"values": values, "overrides": {**(spec.get("fixed") or {}), **values}}
        expanded[sweep] = cells
    return expanded


def experiment_overrides(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every experiment's dotted overrides: the configured ones (`experiments`), then every sweep's cells."""
    found = {name: dict(overrides or {}) for name, overrides in config["experiments"].items()}
    for cells in sweep_cells(config).values():
        found.update({name: cell["overrides"] for name, cell in cells.items()})
    return found


def check_sweeps(config: Mapping[str, Any]) -> None:
    """Each sweep fixes no swept key and expands to valid experiment names that nothing else defines, each
    cell other settings than the sweep's other cells (values compared as the settings read them); one
    ConfigError naming the key otherwise. That a sweep's dataset is defined is a cross-reference of the
    whole config, checked with the tables' by pipeline.grid.config.check_config."""
    seen: dict[str, str] = {}
    for sweep, cells in sweep_cells(config).items():
        spec = config["sweeps"][sweep]
        both = sorted(set(spec.get("fixed") or {}) & set(spec["keys"]))
        if both:
            raise ConfigError(f"sweeps.{sweep}: {', '.join(both)} both swept (keys) and fixed")
        by_settings: dict[str, dict[str, Any]] = {}
        for name, cell in cells.items():
            if name in config["experiments"] or name in seen:
                other = "experiments" if name in config["experiments"] else f"sweeps.{seen[name]}"
                raise ConfigError(f"sweeps.{sweep}: cell name {name} is also defined by {other}")
            seen[name] = sweep
            try:
                settings = resolve_settings(config["base"], cell["overrides"])
            except ConfigError as err:
                raise ConfigError(f"sweeps.{sweep} (cell {name}): {err}") from None
            twin = by_settings.setdefault(digest_json(settings), cell)
            if twin is not cell:
                _refuse_twins(sweep, twin["values"], cell["values"], settings)


def _refuse_twins(
    sweep: str, first: Mapping[str, Any], second: Mapping[str, Any], settings: Mapping[str, Any]
) -> None:
    """ConfigError for two cells of one sweep whose values, read as settings, are the same (`1e-3` and
    0.001: YAML 1.1 reads the first as a string, the settings as a number), naming the key."""
    key = next(k for k in first if first[k] != second[k])
    section, name = key.split(".", 1)
    raise ConfigError(
        f"sweeps.{sweep}.keys.{key}: {first[key]!r} and {second[key]!r} are the same value "
        f"({settings[section][name]!r}); list each value once"
    )


def sweep_seeds(config: Mapping[str, Any]) -> dict[str, list[int]]:
    """Experiment name -> seeds, for every sweep cell: its sweep's `seeds`, else the config's."""
    return {
        name: list(config["sweeps"][sweep].get("seeds") or config["seeds"])
        for sweep, cells in sweep_cells(config).items()
        for name in cells
    }


def sweep_spec(config: Mapping[str, Any], sweep: str) -> dict[str, Any]:
    """Everything the sweep report needs (plain JSON, the rule's params): keys, values, cells, seeds."""
    spec = active_sweeps(config)[sweep]
    dataset = spec["dataset"]
    return {
        "name": sweep,
        "dataset": dataset,
        "dataset_label": dataset_label(config["datasets"][dataset], dataset),
        "keys": {key: list(values) for key, values in spec["keys"].items()},
        "fixed": dict(spec.get("fixed") or {}),
        "seeds": list(spec.get("seeds") or config["seeds"]),
        "cells": [
            {"experiment": name, "values": cell["values"]}
            for name, cell in sweep_cells(config)[sweep].items()
        ],
    }
