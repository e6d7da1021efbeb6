"""The per-experiment Optuna search: budget, resume, orphaned trials, pruning, and the space rule.

Training is replaced by a fake `train_run` whose validation MAE is a known function of the sampled learning
rate, so these tests run in seconds; tests/test_workflow.py runs the real search end to end.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import h5py
import optuna
import pandas as pd
import pytest
import yaml

import pipeline.train
from pipeline import search
from pipeline import study as study_module
from pipeline.errors import ConfigError, DataError, PipelineError
from pipeline.grid import experiment_settings, load_config, search_spec

REPO = Path(__file__).resolve().parents[1]
CONFIG = load_config([REPO / "config" / "config.yaml"])


class FakeTrainer:
    """Stands in for train_run: valid MAE per epoch = |log10(lr) + 2.5| + 1/epoch; counts its calls."""

    def __init__(self, crash_on_call: int | None = None) -> None:
        self.calls: list[dict] = []
        self.crash_on_call = crash_on_call

    def __call__(self, settings, data, out, seed, features=None, *, device="auto", epoch_callback=None):
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.calls.append({"lr": settings["train"]["lr"], "resumed": (out / "last.pt").exists()})
        base = abs(math.log10(settings["train"]["lr"]) + 2.5)
        best = None
        for epoch in range(1, settings["train"]["epochs"] + 1):
            (out / "last.pt").write_text(str(epoch))
            if len(self.calls) == self.crash_on_call:
                raise KeyboardInterrupt  # the worker is killed mid-trial
            mae = base + 1 / epoch
            best = mae if best is None else min(best, mae)
            if epoch_callback is not None:
                epoch_callback(epoch, {"epoch": epoch, "valid_mae": mae})
        summary = {"settings": settings, "best_valid": {"mae": best, "corr": 0.5}, "best_epoch": epoch}
        (out / "train.json").write_text(json.dumps(summary))
        (out / "last.pt").unlink()
        return summary


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTrainer:
    trainer = FakeTrainer()
    monkeypatch.setattr(pipeline.train, "train_run", trainer)
    return trainer


def spec(epochs: int = 2) -> dict:
    out = search_spec(CONFIG, "hycon")
    out["settings"]["train"]["epochs"] = epochs
    out["space"] = {"train.lr": {"log_uniform": [1e-4, 1e-1]}, "model.dropout": [0.0, 0.1]}
    return out


def run(out: Path, trials: int, **kwargs) -> dict:
    data = out.parent / "data.h5"  # the fake trainer does not read it; the search checks that it is HDF5
    if not data.exists():
        h5py.File(data, "w").close()
    return search.run_search(spec(kwargs.pop("epochs", 2)), trials, data, out, **kwargs)


def test_search_keeps_the_budget_resumes_and_draws_by_trial_number(fake, tmp_path) -> None:
    best = run(tmp_path / "a", 3)
    assert len(fake.calls) == 3
    frame = pd.read_csv(tmp_path / "a" / "trials.csv")
    assert frame["state"].tolist() == ["complete"] * 3
    assert best["trial"] == int(frame.loc[frame["valid_mae"].idxmin(), "trial"])
    assert best["settings"]["train"]["lr"] == pytest.approx(frame.loc[best["trial"], "train.lr"], rel=1e-5)
    assert run(tmp_path / "a", 3) == best and len(fake.calls) == 3  # resumed: nothing left to train
    run(tmp_path / "a", 5)  # a longer search extends the shorter one
    assert len(fake.calls) == 5
    fresh = FakeTrainer()
    pipeline.train.train_run = fresh
    run(tmp_path / "b", 5)  # uninterrupted: the same five trials
    assert [c["lr"] for c in fresh.calls] == [c["lr"] for c in fake.calls]


def test_trial_of_a_killed_worker_is_taken_up_under_its_number_and_resumes(monkeypatch, tmp_path) -> None:
    trainer = FakeTrainer(crash_on_call=2)
    monkeypatch.setattr(pipeline.train, "train_run", trainer)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "a", 3)
    trainer.crash_on_call = None
    run(tmp_path / "a", 3)
    assert [c["resumed"] for c in trainer.calls] == [False, False, True, False]
    assert trainer.calls[2]["lr"] == trainer.calls[1]["lr"]
    frame = pd.read_csv(tmp_path / "a" / "trials.csv")
    assert frame["state"].tolist() == ["complete"] * 3 and frame["trial"].tolist() == [0, 1, 2]
    fresh = FakeTrainer()
    monkeypatch.setattr(pipeline.train, "train_run", fresh)
    run(tmp_path / "b", 3)
    straight = pd.read_csv(tmp_path / "b" / "trials.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(frame.drop(columns="seconds"), straight)


def test_diverged_trials_are_replaced_and_bad_inputs_stop_the_search(monkeypatch, tmp_path) -> None:
    trainer = FakeTrainer()

    def diverging(settings, *args, **kwargs):
        if settings["train"]["lr"] > 3e-3:
            trainer.calls.append({"lr": settings["train"]["lr"], "resumed": False})
            raise PipelineError("training diverged in epoch 1")
        return trainer(settings, *args, **kwargs)

    monkeypatch.setattr(pipeline.train, "train_run", diverging)
    run(tmp_path / "a", 4)
    frame = pd.read_csv(tmp_path / "a" / "trials.csv")
    assert (frame["state"] == "complete").sum() == 4 and (frame["state"] == "fail").sum() >= 1
    assert (frame.loc[frame["state"] == "fail", "train.lr"] > 3e-3).all()
    monkeypatch.setattr(pipeline.train, "train_run", lambda *a, **k: diverging({"train": {"lr": 1.0}}))
    with pytest.raises(PipelineError, match="3 trials failed"):
        run(tmp_path / "b", 3)

    def missing(*args, **kwargs):
        raise DataError("features.h5: missing")

    monkeypatch.setattr(pipeline.train, "train_run", missing)
    with pytest.raises(DataError):
        run(tmp_path / "c", 3)


def test_a_running_trial_whose_claim_is_held_is_left_alone(fake, tmp_path) -> None:
    study = search.open_study(tmp_path, spec(), "random", 3)
    dists = {"train.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    with contextlib.ExitStack() as first:
        busy = study_module.claim_trial(study, tmp_path, dists, 3, first)  # another worker trains it
        with contextlib.ExitStack() as second:
            other = study_module.claim_trial(study, tmp_path, dists, 3, second)
            assert (busy.number, other.number) == (0, 1)
    with contextlib.ExitStack() as third:  # both workers died: trial 0 is taken up first, as it was
        again = study_module.claim_trial(study, tmp_path, dists, 3, third)
        assert again.number == 0 and again.params == busy.params
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING] * 2


def test_tpe_prunes_trials_behind_the_median_per_epoch(fake, tmp_path) -> None:
    run(tmp_path, 10, epochs=4, sampler="tpe")
    frame = pd.read_csv(tmp_path / "trials.csv")
    assert len(frame) == 10 and "pruned" in frame["state"].tolist()
    assert frame["state"].iloc[:2].tolist() == ["complete", "complete"]  # the pruner's startup trials
    assert not list(tmp_path.glob("trials/*/last.pt"))


def test_space_may_not_vary_a_key_the_experiment_sets(tmp_path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"search": {"space": {"loss.alpha": [0.5, 0.8]}}}))
    with pytest.raises(ConfigError, match="varies loss.alpha, which experiment 'alpha_0.5' sets"):
        load_config([REPO / "config" / "config.yaml", overlay])
    assert "loss.alpha" not in CONFIG["search"]["space"]  # the default space leaves α and λ to the paper
    assert not {"loss.alpha", "loss.lambda_iamcl"} & set(CONFIG["search"]["space"])
    assert experiment_settings(CONFIG, "alpha_0.5")["loss"]["alpha"] == 0.5


def test_the_sampler_has_one_default_and_one_list_of_names(tmp_path) -> None:
    """The default sampler is the schema's (a spec without one is refused, not defaulted again in code);
    an unknown name is one line naming the key, from the config and from a spec alike."""
    assert CONFIG["search"]["sampler"] == "random"  # filled from workflow/schemas/config.schema.yaml
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"search": {"sampler": "grid"}}))
    with pytest.raises(ConfigError, match=r"^search.sampler: 'grid' is not one of random, tpe$"):
        load_config([REPO / "config" / "config.yaml", overlay])
    without = {key: value for key, value in spec().items() if key != "sampler"}
    with pytest.raises(ConfigError, match=r"^search spec: missing sampler$"):
        search.check_spec(without)
    assert search.check_spec(without, sampler="tpe")["sampler"] == "tpe"


def test_space_entries_become_optuna_distributions() -> None:
    dist = optuna.distributions
    assert search.distribution("model.d", {"int_uniform": [8, 9]}) == dist.IntDistribution(8, 9)
    assert search.distribution("train.lr", {"log_uniform": [1e-4, 1e-2]}) == dist.FloatDistribution(
        1e-4, 1e-2, log=True
    )
    assert search.distribution("train.batch_size", [16, 32]) == dist.CategoricalDistribution([16, 32])


@pytest.mark.parametrize(
    "entry", [[], {"uniform": [1, 0]}, {"log_uniform": [0, 1]}, {"normal": [0, 1]}, {"uniform": [0]}]
)
def test_bad_space_entry_is_a_config_error(entry) -> None:
    with pytest.raises(ConfigError, match="search.space.train.lr"):
        search.distribution("train.lr", entry)
