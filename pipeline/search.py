"""Random hyper-parameter search as in the paper (Section 4.4): N sampled settings, chosen on validation.

The space is declared in the config (`search.space`): each dotted settings key maps to a list of choices,
or to `{uniform: [lo, hi]}`, `{log_uniform: [lo, hi]}` or `{int_uniform: [lo, hi]}` (inclusive). All
trials are sampled up front from one seeded generator, so the same config gives the same trials, a longer
search extends a shorter one, and every sampled setting is validated before the first trial trains.

Each trial trains with the search seed on the training set and is scored on the validation set with the
base settings' selection metric (`train.select`, MAE by default; the test set is never looked at). A
trial whose `train.json` already holds the same settings is reused, so an interrupted search resumes.
Trial checkpoints are deleted after scoring (only the chosen setting is retrained, with `search.seeds`),
which keeps a 50-trial search of a fine-tuned BERT from filling the disk.

Writes `<out>/trials.csv` (one row per trial: sampled values, validation metrics) and `<out>/best.json`
(`trial`, `overrides`, full `settings`, `select`, `score`, `valid`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import grid
from pipeline.errors import ConfigError
from pipeline.io import atomic_path, write_json
from pipeline.layout import ALIGNED, FEATURES
from pipeline.settings import LOWER_IS_BETTER, check_search_space, resolve_settings

log = logging.getLogger(__name__)


def sample_value(key: str, choice: Any, rng: np.random.Generator) -> Any:
    """One draw from a search-space entry (module docstring); ConfigError naming the key if malformed."""
    if isinstance(choice, list) and choice:
        return choice[int(rng.integers(len(choice)))]
    if isinstance(choice, Mapping) and len(choice) == 1:
        (kind, bounds), *_ = choice.items()
        if (
            isinstance(bounds, list | tuple)
            and len(bounds) == 2
            and all(isinstance(b, int | float) for b in bounds)
        ):
            low, high = float(bounds[0]), float(bounds[1])
            if low <= high:
                if kind == "uniform":
                    return float(rng.uniform(low, high))
                if kind == "log_uniform" and low > 0:
                    return float(math.exp(rng.uniform(math.log(low), math.log(high))))
                if kind == "int_uniform":
                    return int(rng.integers(int(low), int(high) + 1))
    raise ConfigError(
        f"search.space.{key}: expected a non-empty list of choices or one of "
        f"{{uniform|log_uniform|int_uniform: [low, high]}} with low <= high (log_uniform: low > 0); "
        f"got {choice!r}"
    )


def sample_trials(space: Mapping[str, Any], trials: int, seed: int) -> list[dict[str, Any]]:
    """`trials` override dicts drawn from `space` with a generator seeded by `seed` (keys in sorted order)."""
    if trials < 1:
        raise ConfigError(f"search.trials must be >= 1, got {trials}")
    if not space:
        raise ConfigError("search.space is empty: nothing to search")
    rng = np.random.default_rng(seed)
    return [{key: sample_value(key, space[key], rng) for key in sorted(space)} for _ in range(trials)]


def _score(valid: Mapping[str, Any], metric: str) -> float:
    """A comparable score (lower is better); an undefined metric ranks last."""
    value = valid.get(metric)
    if value is None or not math.isfinite(value):
        return math.inf
    return value if metric in LOWER_IS_BETTER else -value


def run_search(
    base: Mapping[str, Any],
    space: Mapping[str, Any],
    trials: int,
    seed: int,
    data_path: str | Path,
    out_dir: str | Path,
    features_path: str | Path | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Run (or resume) the search; write trials.csv and best.json under `out_dir`; return best.json."""
    from pipeline.train import train_run  # the trainer loads torch: only when a search runs

    check_search_space(space)
    samples = sample_trials(space, trials, seed)
    settings_list = []
    for index, overrides in enumerate(samples):
        try:
            settings_list.append(resolve_settings(base, overrides))
        except ConfigError as err:
            raise ConfigError(f"search trial {index} ({overrides}): {err}") from None
    metric = settings_list[0]["train"]["select"]
    out = Path(out_dir)
    rows, summaries = [], []
    for index, (overrides, settings) in enumerate(zip(samples, settings_list, strict=True)):
        trial_dir = out / "trials" / f"trial{index:03d}"
        summary = _finished_trial(trial_dir, settings)
        if summary is None:
            log.info("trial %d/%d: %s", index + 1, trials, overrides)
            summary = train_run(settings, data_path, trial_dir, seed, features_path, device=device)
            (trial_dir / "model.pt").unlink(missing_ok=True)
        else:
            log.info("trial %d/%d: reused %s", index + 1, trials, trial_dir / "train.json")
        summaries.append(summary)
        valid = summary.get("best_valid") or {}
        rows.append(
            {
                "trial": index,
                **overrides,
                **{f"valid_{k}": v for k, v in valid.items()},
                "best_epoch": summary.get("best_epoch"),
                "seconds": _trial_seconds(trial_dir),
                "score": _score(valid, metric),
            }
        )
    frame = pd.DataFrame(rows)
    best_index = int(frame["score"].idxmin())
    if not math.isfinite(frame.loc[best_index, "score"]):
        raise ConfigError(f"search: no trial has a finite validation {metric}; see {out / 'trials.csv'}")
    with atomic_path(out / "trials.csv") as tmp:
        frame.drop(columns="score").to_csv(tmp, index=False, float_format="%.6g")
    best_summary = summaries[best_index]
    best = {
        "trial": best_index,
        "trials": trials,
        "seed": seed,
        "select": metric,
        "score": best_summary["best_valid"][metric],
        "overrides": samples[best_index],
        "settings": settings_list[best_index],
        "valid": best_summary["best_valid"],
    }
    write_json(out / "best.json", best)
    log.info("best: trial %d, validation %s %.4f, %s", best_index, metric, best["score"], best["overrides"])
    return best


def _trial_seconds(trial_dir: Path) -> float | None:
    """The trial's training time (timings.json), None when it was not recorded."""
    path = trial_dir / "timings.json"
    return json.loads(path.read_text())["seconds"] if path.is_file() else None


def _finished_trial(trial_dir: Path, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The trial's train.json when it finished with exactly these settings, else None."""
    path = trial_dir / "train.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return summary if summary.get("settings") == settings else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `search --config config/config.yaml --dataset D [--trials N] --out results/search/D`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config",
        action="append",
        type=Path,
        help="workflow config (repeat to overlay, e.g. config/mosi.yaml)",
    )
    source.add_argument("--spec", help="JSON {base, space, trials, seed} (what the Snakemake rule passes)")
    parser.add_argument("--dataset", required=True, help="dataset name of the config")
    parser.add_argument("--trials", type=int, help="number of trials (default: search.trials)")
    parser.add_argument("--data", type=Path, help="aligned HDF5 (default: data/aligned/<dataset>.h5)")
    parser.add_argument("--features", type=Path, help="cached features (default: from the base settings)")
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder, e.g. results/search/<dataset>"
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline search`."""
    if args.config:
        config = grid.load_config(args.config)
        if not config.get("search"):
            raise ConfigError(
                f"{args.config[-1]}: no `search` section (search.space declares what to sample)"
            )
        grid.check_dataset(config, args.dataset, "--dataset")
        spec = {
            "base": config["base"],
            "space": config["search"]["space"],
            "trials": config["search"]["trials"],
            "seed": config["search"]["seed"],
        }
    else:
        try:
            spec = json.loads(args.spec)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--spec is not valid JSON ({err})") from None
    data = args.data or Path(ALIGNED.format(dataset=args.dataset))
    features = args.features
    if features is None:
        key = grid.features_key(resolve_settings(spec["base"]))
        features = None if key is None else Path(FEATURES.format(dataset=args.dataset, lm=key))
    run_search(
        spec["base"],
        spec["space"],
        args.trials or spec["trials"],
        spec["seed"],
        data,
        args.out,
        features,
        device=args.device,
    )
