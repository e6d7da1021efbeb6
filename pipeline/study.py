"""The Optuna study of one search (pipeline/search.py): samplers seeded per draw, the journal, and how workers
claim trials so that a search stopped at any point and resumed tries what an uninterrupted one tries.

Four locks (fcntl, released by the operating system when a process dies, even by kill -9):

- `<out>/study.journal.flock`, held while the journal is written (Optuna's own lock, a lock
  file, would outlive a kill -9 and stall the next worker for its 30-s grace period);
- `<out>/study.lock`, held only while a worker claims a trial, so that claims never interleave;
- `<out>/claims/<number>.lock`, held by the worker training trial `number` from its claim until it tells
  the result: under the study lock, a RUNNING trial whose claim lock is free belongs to a worker that died;
- `<out>/trials/<settings digest>/lock`, held while a trial trains in its folder (two trials may draw the
  same setting; the second then reuses the first's train.json).

A trial of a dead worker is taken up as it is (same number, same parameters, its folder's `last.pt`
resumed), never failed and replaced, and each parameter is drawn from a generator seeded by the search
seed, the trial number and the parameter's name: the trials, their order and their draws are those of an
uninterrupted search however often and wherever it stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import optuna
from optuna.trial import TrialState

from pipeline.choices import check_sampler
from pipeline.io import digest_json
from pipeline.settings import LOWER_IS_BETTER

log = logging.getLogger(__name__)

JOURNAL = "study.journal"
STUDY_LOCK = "study.lock"
CLAIMS = "claims"
# States that count towards the budget of trials (a FAIL, e.g. a diverged run, is replaced by a new trial).
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class _DrawSeeded:
    """Mixin: draw each parameter from a generator seeded by (seed, trial number, parameter name), so a
    trial draws what it would in an uninterrupted search however often the search stops, whichever worker
    draws it and in whatever order its parameters are drawn (Optuna seeds once per process otherwise)."""

    def __init__(self, seed: int, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        blob = f"{self._base_seed}/{trial.number}/{param_name}".encode()
        seed = int.from_bytes(hashlib.sha256(blob).digest()[:4], "little")
        for sampler in (self, getattr(self, "_random_sampler", None)):
            if sampler is not None:
                sampler._rng.rng.seed(seed)  # Optuna's LazyRandomState: the generator each sampler draws from
        return super().sample_independent(study, trial, param_name, param_distribution)


class SeededRandomSampler(_DrawSeeded, optuna.samplers.RandomSampler):
    """The paper's random search, reproducible per draw."""


class SeededTPESampler(_DrawSeeded, optuna.samplers.TPESampler):
    """TPE, reproducible per draw given the same history."""


def make_sampler(
    name: str, seed: int, trials: int
) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    """Sampler and pruner of `search.sampler`. TPE starts from max(2, trials // 5) random trials (10 of the
    paper's 50); the pruner compares from the second epoch on, after as many trials, never at the last."""
    if check_sampler(name) == "random":
        return SeededRandomSampler(seed), optuna.pruners.NopPruner()
    startup = max(2, trials // 5)
    sampler = SeededTPESampler(seed, n_startup_trials=startup)
    return sampler, optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=2)


class _FlockJournalLock:
    """The journal's write lock (Optuna's `acquire`/`release` lock protocol) as an fcntl lock on
    `<out>/study.journal.flock`, which the kernel releases when its holder dies: Optuna's own lock, a lock
    file, outlives a kill -9 and makes every later worker wait its 30-s grace period before forcing it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        handle = open(self._path, "a")  # noqa: SIM115 - held until release()
        fcntl.flock(handle, fcntl.LOCK_EX)
        self._handle = handle
        return True

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def open_study(out: Path, spec: Mapping[str, Any], sampler_name: str, trials: int) -> optuna.Study:
    """The study of `spec` in `<out>/study.journal`, created or resumed. Its name is a digest of what
    defines the trials (settings, space, sampler, seed), so a changed search starts a new study beside the
    old one while a longer one extends it."""
    out.mkdir(parents=True, exist_ok=True)
    lock = _FlockJournalLock(out / f"{JOURNAL}.flock")
    backend = optuna.storages.journal.JournalFileBackend(str(out / JOURNAL), lock_obj=lock)
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
def file_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive lock on `path` (created) for the block, released by the OS if the process dies; yields
    False when `wait` is off and another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def trial_lock(trial_dir: Path, wait: bool = True) -> contextlib.AbstractContextManager[bool]:
    """The lock of a trial folder: one process trains a setting at a time."""
    return file_lock(trial_dir / "lock", wait)


def claim_lock(out: Path, number: int, wait: bool = True) -> contextlib.AbstractContextManager[bool]:
    """The lock a worker holds on trial `number` from its claim until it tells the result."""
    return file_lock(out / CLAIMS / f"{number}.lock", wait)


def counted(study: optuna.Study) -> int:
    """Trials that count towards the budget: finished ones and those being trained (or to be taken up)."""
    return len(study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING)))


def claim_trial(
    study: optuna.Study,
    out: Path,
    dists: Mapping[str, optuna.distributions.BaseDistribution],
    trials: int,
    stack: contextlib.ExitStack,
) -> optuna.Trial | None:
    """The next trial this worker trains, its claim lock held on `stack`; None when the budget is full.

    Under the study lock: the first RUNNING trial whose claim lock is free (its worker died: killed, or
    stopped by an error in its inputs) is taken up as it is; else a new trial is asked for while the budget
    has room. Parameters the trial has not drawn yet are drawn (seeded by number and name).
    """
    with file_lock(out / STUDY_LOCK):
        trial = None
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            held = contextlib.ExitStack()
            if held.enter_context(claim_lock(out, frozen.number, wait=False)):
                stack.enter_context(held)
                log.warning("trial %d was left running by a stopped worker: taken up again", frozen.number)
                trial = optuna.trial.Trial(study, frozen._trial_id)
                break
            held.close()
        if trial is None:
            if counted(study) >= trials:
                return None
            trial = study.ask()
            stack.enter_context(claim_lock(out, trial.number))
        for name, dist in dists.items():  # as study.ask(dists) does; a parameter already drawn is kept
            trial._suggest(name, dist)
        return trial
