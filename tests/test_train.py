"""Training and evaluation on the synthetic dataset: learning, validation-only selection, seeded
reproducibility, resume equivalence, the frozen-feature cache, run-directory outputs and CLI errors."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pipeline.__main__ import main
from pipeline.checkpoint import HISTORY_COLUMNS, load_checkpoint, load_weights, stored_weights, tensor_digest
from pipeline.data import dataset as dataset_module
from pipeline.data.dataset import load_split
from pipeline.errors import DataError
from pipeline.evaluate import evaluate_run
from pipeline.features import load_features, write_features
from pipeline.metrics import regression_metrics
from pipeline.models import build_model, language, pretrained_weights
from pipeline.models.hycon import HyConModel
from pipeline.models.language import tokenize
from pipeline.optimizer import make_optimizer
from pipeline.settings import resolve_settings
from pipeline.train import train_run

FAST = {"train.epochs": 3, "model.ff": 32, "model.head_hidden": 32}


def _history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("contrastive", ["hycon", "none"])
def test_short_run_beats_the_mean_predictor(synthetic, tmp_path, contrastive) -> None:
    run_dir = tmp_path / "syn" / contrastive / "seed0"
    summary = train_run(
        {"loss.contrastive": contrastive, "train.epochs": 12},
        synthetic["data"],
        run_dir,
        0,
        synthetic["features"],
    )
    metrics = evaluate_run(run_dir, synthetic["data"], synthetic["features"])
    assert metrics["test"]["mae"] < synthetic["constant_mae"] - 0.15
    assert metrics["test"]["acc2_non0"] >= 0.6
    assert metrics["experiment"] == contrastive and metrics["seed"] == 0
    assert metrics["best_epoch"] == summary["best_epoch"]
    history = _history(run_dir)
    hybrid = [float(row["train_hybrid_loss"]) for row in history]
    assert any(h != 0 for h in hybrid) == (contrastive == "hycon")  # the supervised ratios make it negative


def test_run_outputs_follow_the_contract(synthetic, tmp_path, monkeypatch) -> None:
    read_splits = []
    real_load = dataset_module.load_split

    def spy(path, split):
        read_splits.append(split)
        return real_load(path, split)

    monkeypatch.setattr("pipeline.inference.load_split", spy)
    run_dir = tmp_path / "run"
    summary = train_run({**FAST, "train.epochs": 4}, synthetic["data"], run_dir, 3, synthetic["features"])
    assert "test" not in read_splits  # model selection never sees the test split
    outputs = {"model.pt", "history.csv", "timings.json", "train.json"}
    assert {p.name for p in run_dir.iterdir()} == outputs  # last.pt and the lock removed
    history = _history(run_dir)
    assert list(history[0]) == list(HISTORY_COLUMNS) and len(history) == summary["epochs_run"]
    maes = [float(row["valid_mae"]) for row in history]
    assert summary["best_epoch"] == 1 + int(np.argmin(maes))
    assert summary["device"] == "cpu" and summary["amp"] is False
    assert json.loads((run_dir / "train.json").read_text())["best_epoch"] == summary["best_epoch"]
    checkpoint = torch.load(run_dir / "model.pt", weights_only=False)
    assert {"state_dict", "settings", "seed", "epoch"} <= set(checkpoint) and checkpoint["seed"] == 3

    metrics = evaluate_run(run_dir, synthetic["data"], synthetic["features"], dataset="syn", experiment="exp")
    assert metrics["valid"]["mae"] == pytest.approx(min(maes))  # the restored best checkpoint
    assert {"dataset": "syn", "experiment": "exp", "seed": 3}.items() <= metrics.items()
    with open(run_dir / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["split", "id", "label", "prediction"]
    test_rows = [r for r in rows if r["split"] == "test"]
    recomputed = regression_metrics(
        [float(r["label"]) for r in test_rows], [float(r["prediction"]) for r in test_rows]
    )
    assert recomputed == pytest.approx(metrics["test"])
    test = load_split(synthetic["data"], "test")
    with np.load(run_dir / "embeddings.npz") as stored:  # by default, no fused vectors: unimodal ones only
        assert set(stored.files) == {"labels", "ids", "l", "a", "v"}
        assert stored["l"].shape == (len(test["id"]), 50) and stored["l"].dtype == np.float16
        np.testing.assert_array_equal(stored["ids"], test["id"])
        np.testing.assert_array_equal(stored["labels"], test["label"])
    evaluate_run(run_dir, synthetic["data"], synthetic["features"], fused=True)  # what the t-SNE reads
    with np.load(run_dir / "embeddings.npz") as stored:
        assert stored["embeddings"].shape == (len(test["id"]), 50)
        assert stored["embeddings"].dtype == np.float16 and np.isfinite(stored["embeddings"]).all()


def test_early_stopping_after_patience(synthetic, tmp_path) -> None:
    summary = train_run(
        {**FAST, "train.epochs": 30, "train.patience": 1, "train.lr": 0.02},
        synthetic["data"],
        tmp_path,
        0,
        synthetic["features"],
    )
    assert summary["stopped_early"] and summary["epochs_run"] == summary["best_epoch"] + 1 < 30


def test_same_seed_same_metrics_other_seed_differs(synthetic, tmp_path) -> None:
    settings = {**FAST, "loss.contrastive": "triplet"}  # random pair choices must be seeded too
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        train_run(settings, synthetic["data"], tmp_path / name, seed, synthetic["features"])
        runs[name] = _without_seconds(_history(tmp_path / name))
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_half_precision_checkpoint_halves_the_file_and_keeps_the_predictions(synthetic, tmp_path) -> None:
    settings = {**FAST, "model.fusion": "tensor"}  # the largest HyCon head: (d + 1)^3 x head_hidden
    runs = {}
    for dtype in ("float32", "float16"):
        run_dir = tmp_path / dtype
        train_run(
            {**settings, "train.checkpoint_dtype": dtype},
            synthetic["data"],
            run_dir,
            0,
            synthetic["features"],
        )
        evaluate_run(run_dir, synthetic["data"], synthetic["features"])
        runs[dtype] = run_dir
    assert _history(runs["float32"]) == _history(runs["float16"])  # the same trajectory: storage only
    state = {d: torch.load(runs[d] / "model.pt", weights_only=False)["state_dict"] for d in runs}
    assert {v.dtype for v in state["float16"].values() if v.is_floating_point()} == {torch.float16}
    for name, exact in state["float32"].items():
        assert exact.dtype != torch.float16
        torch.testing.assert_close(state["float16"][name].float(), exact, rtol=1e-3, atol=1e-4)
    sizes = {d: (runs[d] / "model.pt").stat().st_size for d in runs}
    assert 0.45 < sizes["float16"] / sizes["float32"] < 0.55
    predictions = {}
    for dtype, run_dir in runs.items():
        with open(run_dir / "predictions.csv", newline="") as handle:
            predictions[dtype] = np.array([float(r["prediction"]) for r in csv.DictReader(handle)])
    assert not np.array_equal(predictions["float16"], predictions["float32"])  # the stored weights are used
    np.testing.assert_allclose(predictions["float16"], predictions["float32"], atol=2e-2)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_fine_tuned_language_model_is_stored_as_the_rows_training_changed(
    synthetic, tmp_path, monkeypatch, dtype
) -> None:
    settings = {**FAST, "train.epochs": 2, "model.lm_mode": "finetune", "model.language_model": "tiny"}
    settings.update({"model.max_text_tokens": 16, "train.keep_last": True, "train.checkpoint_dtype": dtype})
    train_run(settings, synthetic["data"], tmp_path, 0)
    best = torch.load(tmp_path / "last.pt", weights_only=False)["best"]["state_dict"]  # float32, in memory
    checkpoint = load_checkpoint(tmp_path)
    name = "language_model.embeddings.word_embeddings.weight"
    pretrained = pretrained_weights(resolve_settings(None, settings))[name]
    index = checkpoint["pretrained_rows"][name]["index"]
    assert 0 < len(index) < len(pretrained) / 10  # the word pieces of 30 videos' texts, not the vocabulary
    assert checkpoint["state_dict"][name].shape == (len(index), pretrained.shape[1])
    model = build_model(checkpoint["settings"], checkpoint["dims"])
    load_weights(model, checkpoint, tmp_path / "model.pt")
    for key, restored in model.state_dict().items():
        expected = best[key].clone()
        rounded = expected.half().float() if dtype == "float16" else expected
        if key in checkpoint["pretrained_rows"]:  # the rows not stored are the pretrained ones, exact
            rows = checkpoint["pretrained_rows"][key]["index"]
            expected[rows] = rounded[rows]
        else:
            expected = rounded
        assert torch.equal(restored, expected), key

    real = language.load_language_model

    def other_version(model_name: str):
        model, tokenizer = real(model_name)
        with torch.no_grad():
            model.embeddings.word_embeddings.weight[-1] += 1e-3  # a row the run never changed
        return model, tokenizer

    monkeypatch.setattr("pipeline.models.base.load_language_model", other_version)
    with pytest.raises(DataError, match=rf"model\.pt: {re.escape(name)} as loaded now differs"):
        evaluate_run(tmp_path, synthetic["data"])


def test_stored_weights_keep_what_half_precision_cannot_hold() -> None:
    state = {
        "big": torch.tensor([1.0, 7e4]),
        "small": torch.tensor([1.0, 2.0]),
        "alpha": torch.tensor(1e-3).double(),
    }
    weights, rows = stored_weights(state, "float16", {})
    assert {k: v.dtype for k, v in weights.items()} == {
        "big": torch.float32,  # 7e4 > float16's 65,504: kept exact, not turned into inf
        "small": torch.float16,
        "alpha": torch.float64,
    }
    assert rows == {} and torch.equal(weights["big"], state["big"])
    bf16 = torch.arange(6.0).reshape(3, 2).to(torch.bfloat16)  # hub models may load in bfloat16
    assert tensor_digest(bf16) == tensor_digest(bf16.clone()) != tensor_digest(bf16.float())


class Interrupted(Exception):
    """Raised by the test hook to simulate a crash after an epoch."""


def test_interrupted_run_resumes_to_the_same_result(synthetic, tmp_path, caplog) -> None:
    settings = {**FAST, "train.epochs": 4, "loss.contrastive": "triplet", "train.patience": 10}
    straight = train_run(settings, synthetic["data"], tmp_path / "straight", 1, synthetic["features"])

    def crash_after_two(epoch: int, _row: dict) -> None:
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_run(
            settings,
            synthetic["data"],
            tmp_path / "resumed",
            1,
            synthetic["features"],
            epoch_callback=crash_after_two,
        )
    assert (tmp_path / "resumed" / "last.pt").is_file() and not (tmp_path / "resumed" / "model.pt").exists()
    with caplog.at_level("INFO", logger="pipeline"):
        resumed = train_run(settings, synthetic["data"], tmp_path / "resumed", 1, synthetic["features"])
    assert "resuming from" in caplog.text and resumed["resumed_from_epoch"] == 2
    assert _without_seconds(_history(tmp_path / "resumed")) == _without_seconds(
        _history(tmp_path / "straight")
    )
    assert resumed["best_valid"] == straight["best_valid"] and resumed["best_epoch"] == straight["best_epoch"]
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "resumed" / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_last_checkpoint_of_other_settings_is_not_resumed(synthetic, tmp_path, caplog) -> None:
    keep = {**FAST, "train.epochs": 2, "train.keep_last": True}
    train_run(keep, synthetic["data"], tmp_path, 0, synthetic["features"])
    assert (tmp_path / "last.pt").is_file()
    with caplog.at_level("INFO", logger="pipeline"):
        summary = train_run(
            {**keep, "loss.alpha": 0.5}, synthetic["data"], tmp_path, 0, synthetic["features"]
        )
    assert summary["resumed_from_epoch"] is None and "differ" in caplog.text
    extended = train_run(
        {**keep, "loss.alpha": 0.5, "train.epochs": 3}, synthetic["data"], tmp_path, 0, synthetic["features"]
    )
    assert extended["resumed_from_epoch"] == 2 and extended["epochs_run"] == 3


def test_checkpoint_of_another_device_is_not_resumed(synthetic, tmp_path, caplog) -> None:
    """A last.pt written on CUDA with mixed precision (its grad-scaler state) cannot continue on the CPU."""
    keep = {**FAST, "train.epochs": 2, "train.keep_last": True}
    train_run(keep, synthetic["data"], tmp_path, 0, synthetic["features"])
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert (state["device"], state["amp"]) == ("cpu", False)
    torch.save({**state, "device": "cuda", "amp": True}, tmp_path / "last.pt")
    with caplog.at_level("INFO", logger="pipeline"):
        summary = train_run(
            {**keep, "train.epochs": 3}, synthetic["data"], tmp_path, 0, synthetic["features"]
        )
    assert summary["resumed_from_epoch"] is None and "differ" in caplog.text


def test_feature_cache_round_trip_matches_the_finetune_branch(synthetic, tmp_path) -> None:
    out = write_features(synthetic["data"], tmp_path / "tiny.h5", "tiny", "mean", max_tokens=16)
    valid = load_split(synthetic["data"], "valid")
    ids, valid_texts = {"valid": valid["id"]}, {"valid": valid["text"]}
    cached = load_features(out, ids, "tiny", "mean", 16, texts=valid_texts)["valid"]
    settings = resolve_settings(
        None,
        {
            "model.lm_mode": "finetune",
            "model.language_model": "tiny",
            "model.text_token": "mean",
            "model.max_text_tokens": 16,
        },
    )
    model = HyConModel(settings["model"], 74, 47, 20).eval()
    texts = load_split(synthetic["data"], "valid")["text"][:5].tolist()
    with torch.no_grad():
        direct = model.language_vector(None, **tokenize(model.tokenizer, texts, 16))
    np.testing.assert_allclose(cached[:5], direct.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(DataError, match=r"tiny\.h5: features were made with token='mean'.*'last'"):
        load_features(out, ids, "tiny", "last", 16, texts=valid_texts)
    with pytest.raises(DataError, match=r"tiny\.h5: features were made with model='tiny'.*'minilm'"):
        load_features(out, ids, "minilm", "mean", 16, texts=valid_texts)
    with pytest.raises(DataError, match=r"tiny\.h5: 'valid/id' differs"):
        load_features(out, {"valid": ids["valid"][::-1].copy()}, "tiny", "mean", 16, texts=valid_texts)


def test_finetune_mode_trains_the_language_model_at_its_own_rate(synthetic, tmp_path) -> None:
    settings = {
        **FAST,
        "train.epochs": 1,
        "model.lm_mode": "finetune",
        "model.language_model": "tiny",
        "train.lr_lm": 1e-3,
    }
    summary = train_run(settings, synthetic["data"], tmp_path, 0)
    state = torch.load(tmp_path / "model.pt", weights_only=False)["state_dict"]
    fresh = HyConModel(resolve_settings(settings)["model"], 74, 47, 20)
    name = "language_model.encoder.layer.0.attention.self.query.weight"
    assert state[name].shape == fresh.state_dict()[name].shape  # a whole tensor, not stored rows
    assert not torch.equal(state[name], fresh.state_dict()[name])
    groups = make_optimizer(fresh, resolve_settings(settings)["train"]).param_groups
    assert [(g["name"], g["lr"]) for g in groups] == [("rest", 1e-3), ("language_model", 1e-3)]
    assert sum(len(g["params"]) for g in groups) == len(list(fresh.parameters()))
    assert summary["epochs_run"] == 1
    metrics = evaluate_run(tmp_path, synthetic["data"])
    assert np.isfinite(metrics["test"]["mae"])


def test_cli_train_and_evaluate(synthetic, tmp_path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("model:\n  fusion: concat\ntrain:\n  epochs: 2\n")
    run_dir = tmp_path / "runs" / "syn" / "concat" / "seed2"
    common = ["--data", str(synthetic["data"]), "--features", str(synthetic["features"])]
    assert (
        main(
            [
                "train",
                "--config",
                str(config),
                "--set",
                "loss.alpha=1",
                "--out",
                str(run_dir),
                "--seed",
                "2",
                *common,
            ]
        )
        == 0
    )
    train = json.loads((run_dir / "train.json").read_text())
    assert train["settings"]["model"]["fusion"] == "concat" and train["settings"]["loss"]["alpha"] == 1.0
    assert main(["evaluate", "--run", str(run_dir), *common]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["experiment"] == "concat" and metrics["seed"] == 2


def test_cli_errors_before_training(synthetic, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    data = ["--data", str(synthetic["data"]), "--features", str(synthetic["features"]), "--out", str(out)]
    cases = [
        (["--set", "loss.alpha=1.5"], "loss.alpha"),
        (["--set", "model.fusion=attention"], "model.fusion"),
        (["--set", "loss.lamda_scl=0"], "did you mean 'loss.lambda_scl'"),
        (["--set", "model.text_token=cls"], "features were made with token='mean'"),
        (["--set", "model.language_model=tiny"], "features were made with model='minilm'"),
    ]
    for extra, message in cases:
        assert main(["train", *data, *extra]) == 2
        assert message in capsys.readouterr().err
    broken = tmp_path / "broken.h5"
    with h5py.File(synthetic["data"]) as src, h5py.File(broken, "w") as dst:
        for split in ("train", "valid"):
            src.copy(src[split], dst, split)
        dst.attrs.update(src.attrs)
    assert main(["train", "--data", str(broken), "--out", str(out)]) == 2
    assert f"{broken}: missing group 'test'" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(out), "--data", str(synthetic["data"])]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert not out.exists()  # nothing was started


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_bars_on_a_terminal_one_line_per_epoch_off_one(
    synthetic, tmp_path, capsys, caplog, monkeypatch
) -> None:
    settings = {**FAST, "train.epochs": 2, "train.patience": 5}
    with caplog.at_level("INFO", logger="pipeline"):
        train_run(settings, synthetic["data"], tmp_path / "log", 0, synthetic["features"])
    assert "\r" not in capsys.readouterr().err  # a log file gets no bar frames...
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1", "epoch 2"]  # ...but one line per epoch
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train_run(settings, synthetic["data"], tmp_path / "tty", 0, synthetic["features"])
    assert "\r" in terminal.getvalue() and "epoch 2/2" in terminal.getvalue()
