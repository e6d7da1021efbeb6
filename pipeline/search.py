"""Per-experiment hyper-parameter search on Optuna (Section 4.4): N trials chosen on validation, resumable.

The paper searches each algorithm (each table row) with fifty random trials, then trains the chosen setting
with five seeds. Here one study searches one experiment: its resolved settings are the starting point and
the row's space says what varies (`grid.search_spec`: a baseline's family space from `pipeline.presets`,
HyCon's family `search.space`); the space may not vary a key the experiment itself sets
(`settings.check_search_space`: alpha_0.5 cannot search `loss.alpha`) nor one its family does not read
(`presets.check_family_space`, which also refuses the closed-form text probe).

Space entries: a dotted settings key -> a list of choices, `{uniform: [lo, hi]}`, `{log_uniform: [lo, hi]}`
or `{int_uniform: [lo, hi]}` (inclusive). Samplers (`search.sampler`):

- `random` (default): Optuna's RandomSampler, the paper's random search; every trial trains to the end.
- `tpe`: the TPE sampler with a median pruner on the validation metric per epoch (`train_run`'s epoch
  callback): a trial whose validation score is worse than the median of earlier trials at the same epoch
  stops there. Fewer epochs spent, and later trials sample where earlier ones did well.

Trials are seeded by their number (`search.seed` + number), so a search gives the same trials however often
it is interrupted. Each trial trains with the search seed on the training set and is scored on the
validation set with `train.select` (the test set is never read). The study lives in an Optuna journal
(`<out>/study.journal`, file-locked): a rerun resumes where the last one stopped, and several workers (e.g.
Snakemake jobs on cluster nodes sharing the folder) can run the same study at once. A trial's folder is
named by its settings and locked while it trains: a trial left RUNNING by a killed worker is failed and
queued again, and its rerun continues from the trial's `last.pt`.

Writes `<out>/trials.csv` (one row per finished trial: state, sampled values, validation metrics, seconds)
and `<out>/best.json` (`trial`, `overrides`, full `settings`, `select`, `score`, `valid`, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from pipeline import grid
from pipeline.errors import ConfigError, DataError, PipelineError
from pipeline.io import atomic_path, digest_json, write_json
from pipeline.layout import ALIGNED, FEATURES
from pipeline.presets import check_family_space
from pipeline.settings import LOWER_IS_BETTER, check_search_space, resolve_settings

log = logging.getLogger(__name__)

SAMPLERS: tuple[str, ...] = ("random", "tpe")
JOURNAL = "study.journal"
# States that count towards the budget of trials (a FAIL, e.g. a diverged run, is replaced by a new trial).
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def distribution(key: str, entry: Any) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of a search-space entry (module docstring); ConfigError naming the key."""
    dist = optuna.distributions
    if isinstance(entry, list) and entry:
        return dist.CategoricalDistribution(entry)
    if isinstance(entry, Mapping) and len(entry) == 1:
        (kind, bounds), *_ = entry.items()
        if (
            isinstance(bounds, list | tuple)
            and len(bounds) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            and bounds[0] <= bounds[1]
        ):
            low, high = bounds
            if kind == "uniform":
                return dist.FloatDistribution(float(low), float(high))
            if kind == "log_uniform" and low > 0:
                return dist.FloatDistribution(float(low), float(high), log=True)
            if kind == "int_uniform":
                return dist.IntDistribution(int(low), int(high))
    raise ConfigError(
        f"search.space.{key}: expected a non-empty list of choices or one of "
        f"{{uniform|log_uniform|int_uniform: [low, high]}} with low <= high (log_uniform: low > 0); "
        f"got {entry!r}"
    )


class _TrialSeeded:
    """Mixin: reseed the sampler's generators from (seed, trial number) before each trial, so a resumed or
    parallel search draws what an uninterrupted one would (Optuna seeds once per process otherwise)."""

    def __init__(self, seed: int, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seed = (self._base_seed * 1_000_003 + trial.number) % 2**32
        for sampler in (self, getattr(self, "_random_sampler", None)):
            if sampler is not None:
                sampler._rng.rng.seed(seed)  # Optuna's LazyRandomState: the generator each sampler draws from
        super().before_trial(study, trial)


class SeededRandomSampler(_TrialSeeded, optuna.samplers.RandomSampler):
    """The paper's random search, reproducible per trial."""


class SeededTPESampler(_TrialSeeded, optuna.samplers.TPESampler):
    """TPE, reproducible per trial given the same history."""


def make_sampler(
    name: str, seed: int, trials: int
) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    """Sampler and pruner of `search.sampler`. TPE starts from max(2, trials // 5) random trials (10 of the
    paper's 50); the pruner compares from the second epoch on, after as many trials, never at the last."""
    if name == "random":
        return SeededRandomSampler(seed), optuna.pruners.NopPruner()
    if name == "tpe":
        startup = max(2, trials // 5)
        sampler = SeededTPESampler(seed, n_startup_trials=startup)
        return sampler, optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=2)
    raise ConfigError(f"search.sampler: {name!r} is not one of {', '.join(SAMPLERS)}")


def open_study(out: Path, spec: Mapping[str, Any], sampler_name: str, trials: int) -> optuna.Study:
    """The study of `spec` in `<out>/study.journal`, created or resumed. Its name is a digest of what
    defines the trials (settings, space, sampler, seed), so a changed search starts a new study beside the
    old one while a longer one extends it."""
    out.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(out / JOURNAL))
    storage = optuna.storages.JournalStorage(backend)
    key = {k: spec[k] for k in ("settings", "space", "seed")} | {"sampler": sampler_name}
    metric = spec["settings"]["train"]["select"]
    sampler, pruner = make_sampler(sampler_name, spec["seed"], trials)
    return optuna.create_study(
        storage=storage,
        study_name=f"search-{digest_json(key)}",
        sampler=sampler,
        pruner=pruner,
        direction="minimize" if metric in LOWER_IS_BETTER else "maximize",
        load_if_exists=True,
    )


@contextlib.contextmanager
def trial_lock(trial_dir: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive lock on a trial folder for the block (released by the OS if the process dies); yields
    False when `wait` is off and another process holds it."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    with open(trial_dir / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def requeue_orphans(study: optuna.Study) -> None:
    """Fail and queue again the RUNNING trials whose worker died (their folder's lock is free)."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        folder = trial.user_attrs.get("dir")
        if folder is None:
            continue
        with trial_lock(Path(folder), wait=False) as free:
            if not free:
                continue
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})
            log.warning("trial %d was left running by a stopped worker: queued again", trial.number)


def run_search(
    spec: Mapping[str, Any],
    trials: int,
    data_path: str | Path,
    out_dir: str | Path,
    features_path: str | Path | None = None,
    *,
    sampler: str = "random",
    device: str = "auto",
) -> dict[str, Any]:
    """Run (or resume, or join) the search of `spec` = {settings, space, seed}: train trials until `trials`
    have finished (completed or pruned); write trials.csv and best.json under `out_dir`; return best.json."""
    from pipeline.train import train_run  # the trainer loads torch: only when a search runs

    if trials < 1:
        raise ConfigError(f"search.trials must be >= 1, got {trials}")
    space = spec["space"]
    if not space:
        raise ConfigError("search.space is empty: nothing to search")
    check_search_space(space)
    base = resolve_settings(spec["settings"])
    check_family_space(base, space)
    dists = {key: distribution(key, space[key]) for key in sorted(space)}
    metric = base["train"]["select"]
    out = Path(out_dir)
    study = open_study(out, spec, sampler, trials)
    requeue_orphans(study)
    done = study.get_trials(deepcopy=False, states=FINISHED)
    log.info(
        "search: %d trials (%s sampler) of %s, %d already finished, in %s",
        trials, sampler, metric, len(done), out / JOURNAL,
    )  # fmt: skip
    seconds = [t.user_attrs["seconds"] for t in done if "seconds" in t.user_attrs]
    if seconds:
        _log_cost(trials - len(done), sum(seconds) / len(seconds), "the finished trials' mean")
    first, failed = True, 0
    while _counted(study) < trials:
        trial = study.ask(dists)
        overrides = dict(trial.params)
        try:
            settings = resolve_settings(base, overrides)
        except ConfigError as err:
            study.tell(trial, state=TrialState.FAIL)
            raise ConfigError(f"search trial {trial.number} ({overrides}): {err}") from None
        trial_dir = out / "trials" / digest_json(settings, 12)
        start = time.perf_counter()
        with trial_lock(trial_dir):
            trial.set_user_attr("dir", str(trial_dir))
            log.info("trial %d: %s", trial.number, overrides)
            try:
                summary = _finished_trial(trial_dir, settings) or train_run(
                    settings,
                    data_path,
                    trial_dir,
                    spec["seed"],
                    features_path,
                    device=device,
                    epoch_callback=_pruning_callback(trial, metric, settings["train"]["epochs"]),
                )
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
        study.tell(trial, value, state=state)
        failed += state == TrialState.FAIL
        if failed >= trials and first:  # as many failures as the budget, and not one trial completed
            raise PipelineError(f"search: {failed} trials failed (diverged or no finite score); see the log")
        log.info("trial %d: %s after %.1f s", trial.number, state.name.lower(), elapsed)
        if first and state == TrialState.COMPLETE:
            _log_cost(trials, elapsed, f"trial {trial.number}")
            first = False
    return write_results(study, base, out, trials, sampler, spec["seed"])


def _log_cost(trials: int, seconds: float, source: str) -> None:
    log.info(
        "search cost: %d trials x %.1f s per trial (%s) = %.1f min",
        trials, seconds, source, trials * seconds / 60,
    )  # fmt: skip


def _counted(study: optuna.Study) -> int:
    """Trials that count towards the budget: finished ones and those other workers are training."""
    return len(study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING)))


def _pruning_callback(trial: optuna.Trial, metric: str, epochs: int) -> Callable[[int, dict], None]:
    """Epoch callback reporting the validation score and raising TrialPruned when the pruner says so (not
    after the last epoch: the trial has then cost all it will)."""

    def report(epoch: int, row: dict[str, float]) -> None:
        value = row.get(f"valid_{metric}")
        if value is None or not math.isfinite(value):
            return
        trial.report(value, epoch)
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
    data = args.data or Path(ALIGNED.format(dataset=args.dataset))
    features = args.features
    if features is None:
        key = grid.features_key(resolve_settings(spec["settings"]))
        features = None if key is None else Path(FEATURES.format(dataset=args.dataset, lm=key))
    run_search(
        spec,
        args.trials or spec["trials"],
        data,
        args.out,
        features,
        sampler=args.sampler or spec.get("sampler", "random"),
        device=args.device,
    )
