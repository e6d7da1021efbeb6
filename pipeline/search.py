"""Per-experiment hyper-parameter search on Optuna (Section 4.4): N trials chosen on validation, resumable.

The paper searches each algorithm (each table row) with fifty random trials, then trains the chosen setting
with five seeds. Here one study searches one experiment: its resolved settings are the starting point and
the row's space says what varies (`grid.search_spec`: a baseline's family space from `pipeline.presets`,
HyCon's family `search.space`; entries and their checks: pipeline/space.py); the space may not vary a key
the experiment itself sets (`settings.check_search_space`: alpha_0.5 cannot search `loss.alpha`) nor one
its family does not read (`presets.check_family_space`, which also refuses the closed-form text probe).
Every value the space can give is checked before the first trial (`space.check_space`), and so are the
arguments: a bad spec, `--trials` below 1, a missing data file are one line, and no trial is created.

Samplers (`search.sampler`):

- `random` (default): Optuna's RandomSampler, the paper's random search; every trial trains to the end.
- `tpe`: the TPE sampler with a median pruner on the validation metric per epoch (`train_run`'s epoch
  callback): a trial whose validation score is worse than the median of earlier trials at the same epoch
  stops there. Fewer epochs spent, and later trials sample where earlier ones did well.

Each trial trains with the search seed on the training set and is scored on the validation set with
`train.select` (the test set is never read). The study lives in an Optuna journal (`<out>/study.journal`,
file-locked): a rerun resumes where the last one stopped, and several workers (e.g. Snakemake jobs on
cluster nodes sharing the folder) can run the same study at once. A search stopped at any point (kill -9
included) and rerun tries exactly the trials an uninterrupted one tries, in the same order, with the same
values and the same best (pipeline/study.py: a stopped trial is taken up under its own number, with its
own parameters, from its folder's `last.pt`; every draw is seeded by seed, trial number and key). With
one worker this holds for both samplers; with several, TPE's draws depend on which trials have finished
when each is drawn (random search's do not).

Writes `<out>/trials.csv` (one row per finished trial: state, sampled values, validation metrics, seconds)
and `<out>/best.json` (`trial`, `overrides`, full `settings`, `select`, `score`, `valid`, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from pipeline import grid
from pipeline.choices import SAMPLERS, check_sampler
from pipeline.errors import ConfigError, DataError, PipelineError
from pipeline.io import atomic_path, check_output, digest_json, write_json
from pipeline.layout import ALIGNED, FEATURES
from pipeline.presets import check_family_space
from pipeline.settings import check_search_space, resolve_settings
from pipeline.space import check_space, distribution
from pipeline.study import FINISHED, JOURNAL, claim_trial, open_study, trial_lock

log = logging.getLogger(__name__)

SPEC_KEYS: tuple[str, ...] = ("settings", "space", "trials", "seed", "sampler")


def check_spec(spec: Any, trials: int | None = None, sampler: str | None = None) -> dict[str, Any]:
    """A search spec {settings, space, trials, seed, sampler} checked whole, with `trials` and `sampler`
    (the command line's) replacing the spec's when given; ConfigError naming the key otherwise."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"search spec: expected a mapping {{{', '.join(SPEC_KEYS)}}}; got {spec!r}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(
            f"search spec: unknown keys {', '.join(map(str, unknown))} (known: {', '.join(SPEC_KEYS)})"
        )
    merged = dict(spec) | {k: v for k, v in (("trials", trials), ("sampler", sampler)) if v is not None}
    missing = [key for key in SPEC_KEYS if key not in merged]
    if missing:
        raise ConfigError(f"search spec: missing {', '.join(missing)}")
    for key in ("trials", "seed"):
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "trials" else 0):
            wanted = "an integer >= 1" if key == "trials" else "a non-negative integer"
            raise ConfigError(f"search.{key}: must be {wanted}; got {value!r}")
    check_sampler(merged["sampler"])
    merged["settings"] = settings = resolve_settings(merged["settings"])
    if isinstance(merged["space"], Mapping):  # which keys may vary, then (check_space) every value
        check_family_space(settings, merged["space"])
        check_search_space(merged["space"])
    check_space(merged["space"], settings)
    return merged


def _check_inputs(data_path: Path, features_path: Path | None, out: Path) -> None:
    """The outputs writable, then the input files present and HDF5 (the trainer's own wording), before the
    study is opened: a start that fails on them makes no trial."""
    from pipeline.data.dataset import open_hdf5  # h5py: only when a search runs

    check_output(out / "trials.csv", out / "best.json", out / JOURNAL)
    open_hdf5(data_path).close()
    if features_path is not None:
        open_hdf5(features_path, "features file").close()


def run_search(
    spec: Mapping[str, Any],
    trials: int,
    data_path: str | Path,
    out_dir: str | Path,
    features_path: str | Path | None = None,
    *,
    sampler: str | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Run (or resume, or join) the search of `spec` = {settings, space, seed, sampler} (`sampler`, when
    given, replacing the spec's): train trials until `trials` have finished (completed or pruned); write
    trials.csv and best.json under `out_dir`; return best.json."""
    from pipeline.train import train_run  # the trainer loads torch: only when a search runs

    spec = check_spec(spec, trials, sampler)
    space, base, sampler, out = spec["space"], spec["settings"], spec["sampler"], Path(out_dir)
    data_path, features_path = Path(data_path), features_path and Path(features_path)
    _check_inputs(data_path, features_path, out)
    dists = {key: distribution(key, space[key]) for key in sorted(space)}
    metric = base["train"]["select"]
    study = open_study(out, spec, sampler, trials)
    done = study.get_trials(deepcopy=False, states=FINISHED)
    log.info(
        "search: %d trials (%s sampler) of %s, %d already finished, in %s",
        trials,
        sampler,
        metric,
        len(done),
        out / JOURNAL,
    )
    seconds = [t.user_attrs["seconds"] for t in done if "seconds" in t.user_attrs]
    if seconds:
        _log_cost(trials - len(done), sum(seconds) / len(seconds), "the finished trials' mean")

    def train(settings: dict[str, Any], trial_dir: Path, trial: optuna.Trial) -> dict[str, Any]:
        return train_run(
            settings,
            data_path,
            trial_dir,
            spec["seed"],
            features_path,
            device=device,
            epoch_callback=_pruning_callback(trial, metric, settings["train"]["epochs"]),
        )

    _train_trials(study, out, dists, trials, lambda trial: _run_trial(trial, base, out, metric, train))
    return write_results(study, base, out, trials, sampler, spec["seed"])


def _train_trials(
    study: optuna.Study,
    out: Path,
    dists: Mapping[str, Any],
    trials: int,
    run_trial: Callable[[optuna.Trial], tuple[TrialState, float]],
) -> None:
    """Claim and train trials until the study has `trials` finished ones (other workers may train some).

    The first trial this process completes gives the search's cost estimate; as many failures as the
    budget with none completed is a PipelineError (every setting diverges: the search cannot succeed).
    """
    completed, failed = 0, 0
    while True:
        with contextlib.ExitStack() as claim:
            trial = claim_trial(study, out, dists, trials, claim)
            if trial is None:
                return
            state, elapsed = run_trial(trial)
        failed += state == TrialState.FAIL
        if failed >= trials and not completed:
            raise PipelineError(f"search: {failed} trials failed (diverged or no finite score); see the log")
        log.info("trial %d: %s after %.1f s", trial.number, state.name.lower(), elapsed)
        if state == TrialState.COMPLETE:
            completed += 1
            if completed == 1:
                _log_cost(trials, elapsed, f"trial {trial.number}")


def _run_trial(
    trial: optuna.Trial,
    base: Mapping[str, Any],
    out: Path,
    metric: str,
    train: Callable[[dict[str, Any], Path, optuna.Trial], dict[str, Any]],
) -> tuple[TrialState, float]:
    """Train one claimed trial in its folder and tell the study its state; returns (state, seconds).

    Bad inputs (ConfigError, DataError: every trial would fail) propagate and leave the trial RUNNING,
    unclaimed: the rerun after the fix takes it up under the same number. A diverged run is a FAIL.
    """
    overrides = dict(trial.params)
    try:
        settings = resolve_settings(base, overrides)
    except ConfigError as err:
        raise ConfigError(f"search trial {trial.number} ({overrides}): {err}") from None
    trial_dir = out / "trials" / digest_json(settings, 12)
    start = time.perf_counter()
    with trial_lock(trial_dir):
        trial.set_user_attr("dir", str(trial_dir))
        log.info("trial %d: %s", trial.number, overrides)
        try:
            summary = _finished_trial(trial_dir, settings) or train(settings, trial_dir, trial)
            value = float((summary.get("best_valid") or {}).get(metric, math.nan))
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            summary, state, value = None, TrialState.PRUNED, None
        except (ConfigError, DataError):
            raise  # the inputs are wrong: every trial would fail
        except PipelineError as err:  # e.g. a diverged run: a failed trial, replaced by another
            log.warning("trial %d failed: %s", trial.number, err)
            summary, state, value = None, TrialState.FAIL, None
        for name in ("model.pt", "last.pt"):
            (trial_dir / name).unlink(missing_ok=True)
    elapsed = time.perf_counter() - start
    trial.set_user_attr("seconds", elapsed)
    if summary is not None:
        trial.set_user_attr("valid", summary["best_valid"])
        trial.set_user_attr("best_epoch", summary["best_epoch"])
    if state == TrialState.COMPLETE and not math.isfinite(value):
        state, value = TrialState.FAIL, None
    trial.study.tell(trial, value, state=state)
    return state, elapsed


def _log_cost(trials: int, seconds: float, source: str) -> None:
    """One line of what the whole search will cost, from one trial's (or the finished ones' mean) seconds."""
    log.info(
        "search cost: %d trials x %.1f s per trial (%s) = %.1f min",
        trials,
        seconds,
        source,
        trials * seconds / 60,
    )


def _pruning_callback(trial: optuna.Trial, metric: str, epochs: int) -> Callable[[int, dict], None]:
    """Epoch callback reporting the validation score and raising TrialPruned when the pruner says so (not
    after the last epoch: the trial has then cost all it will). A trial taken up from a dead worker replays
    the epochs its last.pt holds: those already reported are not reported again, but the pruner is asked
    again, as it was (or would have been) after that epoch."""
    frozen = trial.study.get_trials(deepcopy=False)[trial.number]
    reported = set(frozen.intermediate_values)

    def report(epoch: int, row: dict[str, float]) -> None:
        value = row.get(f"valid_{metric}")
        if value is None or not math.isfinite(value):
            return
        if epoch not in reported:
            trial.report(value, epoch)
            reported.add(epoch)
        if epoch < epochs and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")

    return report


def write_results(
    study: optuna.Study, base: Mapping[str, Any], out: Path, trials: int, sampler: str, seed: int
) -> dict[str, Any]:
    """trials.csv and best.json of the study's finished trials; ConfigError when none completed."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.FAIL)):
        valid = t.user_attrs.get("valid") or {}
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                **t.params,
                **{f"valid_{k}": v for k, v in valid.items()},
                "epochs": len(t.intermediate_values) or t.user_attrs.get("best_epoch"),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "seconds": t.user_attrs.get("seconds"),
            }
        )
    with atomic_path(out / "trials.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6g")
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ConfigError(
            f"search: no trial completed with a finite validation score; see {out / 'trials.csv'}"
        )
    best_trial = study.best_trial
    best = {
        "trial": best_trial.number,
        "trials": trials,
        "sampler": sampler,
        "seed": seed,
        "select": base["train"]["select"],
        "score": best_trial.value,
        "overrides": best_trial.params,
        "settings": resolve_settings(base, best_trial.params),
        "valid": best_trial.user_attrs["valid"],
        "seconds": sum(t.user_attrs.get("seconds", 0.0) for t in study.get_trials(deepcopy=False)),
    }
    write_json(out / "best.json", best)
    log.info(
        "best: trial %d, validation %s %.4f, %s",
        best["trial"],
        best["select"],
        best["score"],
        best["overrides"],
    )
    return best


def _finished_trial(trial_dir: Path, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The trial folder's train.json when it finished with exactly these settings, else None."""
    path = trial_dir / "train.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return summary if summary.get("settings") == settings else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `search --config config/config.yaml --dataset D --experiment E --out results/search/D/E`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config",
        action="append",
        type=Path,
        help="workflow config (repeat to overlay, e.g. config/mosi.yaml)",
    )
    source.add_argument("--spec", help="JSON {settings, space, trials, seed, sampler} (what the rule passes)")
    parser.add_argument("--dataset", required=True, help="dataset name of the config")
    parser.add_argument("--experiment", default="hycon", help="experiment to search (with --config)")
    parser.add_argument("--trials", type=int, help="number of trials (default: search.trials)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="default: search.sampler (random)")
    parser.add_argument("--data", type=Path, help="aligned HDF5 (default: data/aligned/<dataset>.h5)")
    parser.add_argument("--features", type=Path, help="cached features (default: from the settings)")
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder, e.g. results/search/<dataset>/<experiment>"
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
        spec = grid.search_spec(config, args.experiment)
    else:
        try:
            spec = json.loads(args.spec)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--spec is not valid JSON ({err})") from None
    spec = check_spec(spec, args.trials, args.sampler)
    data = args.data or Path(ALIGNED.format(dataset=args.dataset))
    features = args.features
    if features is None:
        key = grid.features_key(spec["settings"])
        features = None if key is None else Path(FEATURES.format(dataset=args.dataset, lm=key))
    run_search(spec, spec["trials"], data, args.out, features, sampler=spec["sampler"], device=args.device)
