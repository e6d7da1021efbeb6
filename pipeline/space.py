"""A search space (`search.space`): its entries, their Optuna distributions, and the check of every value it
can give before the first trial.

Entries: a dotted settings key -> a list of choices, `{uniform: [lo, hi]}`, `{log_uniform: [lo, hi]}` or
`{int_uniform: [lo, hi]}` (bounds inclusive; YAML 1.1 reads `1e-3` as a string, so numeric strings are read
as numbers, as the settings do).

`check_space(space, settings)` takes the space as a plain dict (wherever it comes from: the workflow
config, `--spec`, a per-family preset) and checks it whole with the settings' own validation
(`pipeline.settings.resolve_settings`), so the allowed values of a key are defined once, in settings.py:

- every choice, and both bounds of every range (each settings range is an interval, so if both bounds are
  allowed every value between them is);
- every combination of the discrete values (choices, integer ranges) when there are at most
  `MAX_COMBINATIONS`, the continuous keys at their lower bound: cross-key rules such as `model.heads`
  dividing `model.d` fail here rather than at trial 17.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Mapping
from typing import Any

from pipeline.errors import ConfigError
from pipeline.settings import resolve_settings

RANGE_KINDS: tuple[str, ...] = ("uniform", "log_uniform", "int_uniform")
# Combinations of discrete values checked whole; beyond this each value is still checked on its own.
MAX_COMBINATIONS = 4096


def _number(value: Any) -> Any:
    """A bound as a number: numeric strings (`1e-3` in YAML 1.1) parsed; anything else unchanged."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def parse_entry(key: str, entry: Any) -> tuple[str, list[Any]]:
    """`("choices", values)` or `(kind, [low, high])` of a space entry; ConfigError naming the key."""
    if isinstance(entry, list) and entry:
        return "choices", list(entry)
    if isinstance(entry, Mapping) and len(entry) == 1:
        (kind, bounds), *_ = entry.items()
        if kind in RANGE_KINDS and isinstance(bounds, list | tuple) and len(bounds) == 2:
            low, high = (_number(b) for b in bounds)
            numeric = all(
                isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b)
                for b in (low, high)
            )
            if numeric and low <= high and (kind != "log_uniform" or low > 0):
                if kind != "int_uniform":
                    return kind, [float(low), float(high)]
                if float(low).is_integer() and float(high).is_integer():
                    return kind, [int(low), int(high)]
    raise ConfigError(
        f"search.space.{key}: expected a non-empty list of choices or one of "
        f"{{uniform|log_uniform|int_uniform: [low, high]}} with finite low <= high (log_uniform: low > 0; "
        f"int_uniform: whole numbers); got {entry!r}"
    )


def distribution(key: str, entry: Any) -> Any:
    """The Optuna distribution of a space entry (optuna.distributions.BaseDistribution)."""
    from optuna import distributions  # only a search needs Optuna, not the workflow's config check

    kind, values = parse_entry(key, entry)
    if kind == "choices":
        return distributions.CategoricalDistribution(values)
    if kind == "int_uniform":
        return distributions.IntDistribution(*values)
    return distributions.FloatDistribution(*values, log=kind == "log_uniform")


def _discrete(kind: str, values: list[Any]) -> list[Any] | None:
    """The values a discrete entry can give (choices, an integer range), None for a continuous one."""
    if kind == "choices":
        return values
    if kind == "int_uniform":
        return list(range(values[0], values[1] + 1))
    return None


def check_space(space: Any, settings: Mapping[str, Any], where: str = "search.space") -> None:
    """ConfigError (one line naming the key and the value) unless every value `space` can give is a valid
    setting on top of `settings` (module docstring). An empty or non-mapping space is refused too."""
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(f"{where}: expected a non-empty mapping of settings keys to ranges; got {space!r}")
    parsed = {key: parse_entry(key, space[key]) for key in sorted(space)}
    for key, (kind, values) in parsed.items():
        for value in values:
            try:
                resolve_settings(settings, {key: value})
            except ConfigError as err:
                what = "choice" if kind == "choices" else "bound"
                raise ConfigError(f"{where}.{key}: {what} {value!r}: {err}") from None
    discrete = {key: _discrete(kind, values) for key, (kind, values) in parsed.items()}
    fixed = {key: parsed[key][1][0] for key, values in discrete.items() if values is None}
    grid = {key: values for key, values in discrete.items() if values is not None}
    if len(grid) < 2 or math.prod(len(values) for values in grid.values()) > MAX_COMBINATIONS:
        return
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination, strict=True))
        try:
            resolve_settings(settings, {**fixed, **values})
        except ConfigError as err:
            raise ConfigError(f"{where}: the combination {values}: {err}") from None
