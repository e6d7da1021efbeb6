"""Baseline model families (issue 8): forward shapes on the aligned contract, gradients reaching every
parameter, the settings that each family needs, a short run of the train and evaluate stages beating the
mean predictor, and the text probe equal to a direct scikit-learn fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import DA, DV, TEXTS, H, T, make_batch
from sklearn.linear_model import Ridge

from pipeline.__main__ import main
from pipeline.checkpoint import HISTORY_COLUMNS
from pipeline.choices import ARCHS
from pipeline.errors import ConfigError
from pipeline.evaluate import evaluate_run
from pipeline.inference import load_datasets, predict
from pipeline.models import build_model, model_class
from pipeline.models.contract import ModelFamily, ModelOutput
from pipeline.models.probe import ALPHAS, ridge_path
from pipeline.settings import resolve_settings
from pipeline.train import train_run

BASELINES = tuple(a for a in ARCHS if a != "hycon")
TRAINED = tuple(a for a in BASELINES if not hasattr(model_class(a), "fit"))  # by SGD; the probe is fitted
SLOW = ("tfn", "mfn", "mult", "mag_bert")
FINETUNE = {"model.lm_mode": "finetune", "model.language_model": "tiny"}
CPU = torch.device("cpu")


def arch_settings(arch: str, **overrides) -> dict:
    """Resolved settings that run `arch` (a baseline: no contrastive terms; MAG-BERT fine-tuned)."""
    extra = {"model.lm_mode": "finetune"} if arch == "mag_bert" else {}
    return resolve_settings(None, {"model.arch": arch, "loss.contrastive": "none", **extra, **overrides})


def make_model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    settings = arch_settings(arch, **({"model.language_model": "tiny"} if arch == "mag_bert" else {}))
    return build_model(settings, {"audio_dim": DA, "visual_dim": DV, "seq_len": T, "lm_hidden": H})


@pytest.mark.parametrize("arch", TRAINED)
def test_forward_shapes_on_the_aligned_contract(arch: str) -> None:
    model = make_model(arch).eval()
    batch = make_batch(8)
    pred, reps, fused = model(**model.model_inputs(batch, CPU))
    assert pred.shape == (8,) and torch.isfinite(pred).all()
    assert reps == {}  # no unimodal representations: no contrastive terms
    assert fused.ndim == 2 and fused.shape[0] == 8 and 0 < fused.shape[1] <= 512
    assert (model.language_model is None) == (arch != "mag_bert")
    padded = {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
    padded["audio"][1, 3:] = 100.0  # beyond sample 1's valid steps (length 3): never read
    padded["visual"][0, 1:] = -7.0  # sample 0 has no kept word and reads its first step only
    again, _, _ = model(**model.model_inputs(padded, CPU))
    torch.testing.assert_close(again[:2], pred[:2])


@pytest.mark.parametrize("arch", TRAINED)
def test_gradients_reach_every_parameter(arch: str) -> None:
    model = make_model(arch)
    batch = make_batch(8)
    pred, _, _ = model(**model.model_inputs(batch, CPU))
    ((pred - batch["label"]) ** 2).mean().backward()  # squared error: no sign cancellation in a bias grad
    params = dict(model.named_parameters())
    assert params
    missing = [n for n, p in params.items() if p.grad is None or not torch.isfinite(p.grad).all()]
    dead = [n for n, p in params.items() if p.grad is not None and not p.grad.abs().sum() > 0]
    assert missing == [] and dead == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.arch": "tfn"}, r"model.arch=tfn has no unimodal .* set loss.contrastive=none"),
        ({"model.arch": "mag_bert", "loss.contrastive": "none"}, "needs model.lm_mode=finetune"),
        (
            {"model.arch": "text_probe", "loss.contrastive": "none", "model.lm_mode": "finetune"},
            "needs model.lm_mode=frozen",
        ),
        ({"model.arch": "raven"}, "must be one of hycon, ef_lstm"),
    ],
)
def test_settings_refuse_what_a_family_cannot_run(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_settings(None, overrides)


@pytest.mark.parametrize(("arch", "mode"), [("mag_bert", "frozen"), ("text_probe", "finetune")])
def test_the_modules_refuse_the_other_language_model_mode(arch: str, mode: str) -> None:
    settings = resolve_settings(None, {"model.lm_mode": mode, "model.language_model": "tiny"})  # arch hycon
    with pytest.raises(ConfigError, match=f"model.arch={arch} needs model.lm_mode="):
        model_class(arch)(settings["model"], DA, DV, T, H)


def test_mag_bert_gives_each_word_piece_its_words_features() -> None:
    model = make_model("mag_bert")
    batch = make_batch(4)
    inputs = model.model_inputs(batch, CPU)
    index = inputs["word_index"]
    assert index.shape == inputs["input_ids"].shape
    special = torch.isin(inputs["input_ids"], torch.tensor(model.tokenizer.all_special_ids))
    assert (index[special] == -1).all() and (index[~special] >= 0).all()
    assert int(index[3].max()) == len(TEXTS[3].split()) - 1 and (index[2] == -1).all()
    moved = {**batch, "audio": batch["audio"].clone()}
    moved["audio"][1, 0] += 5.0  # a word of sample 1 within its length changes its prediction only
    model.eval()
    before, _, _ = model(**inputs)
    after, _, _ = model(**model.model_inputs(moved, CPU))
    assert not torch.isclose(before[1], after[1]) and torch.isclose(before[0], after[0])


def _train_and_evaluate(arch: str, synthetic: dict, tmp_path, **overrides) -> dict:  # noqa: F811
    """The train and evaluate stages on the synthetic data; returns metrics.json."""
    settings = arch_settings(arch, **{"train.epochs": 12, "train.patience": 12, **overrides})
    features = None if arch == "mag_bert" else synthetic["features"]
    train_run(settings, synthetic["data"], tmp_path, 0, features)
    return evaluate_run(tmp_path, synthetic["data"], features)


@pytest.mark.parametrize("arch", [a for a in TRAINED if a not in SLOW])
def test_short_run_beats_the_mean_predictor(arch: str, synthetic, tmp_path) -> None:  # noqa: F811
    metrics = _train_and_evaluate(arch, synthetic, tmp_path)
    assert metrics["test"]["mae"] < synthetic["constant_mae"] - 0.1


@pytest.mark.slow
@pytest.mark.parametrize("arch", SLOW)
def test_short_run_of_the_slower_baselines_beats_the_mean_predictor(arch: str, synthetic, tmp_path) -> None:  # noqa: F811
    # MAG-BERT fine-tunes its language model at 1e-5: after 3 epochs its test MAE over seeds 0-2 straddles the
    # bar (1.47, 1.45, 1.63 on the synthetic data before its real-feature scales; 1.66, 1.56, 1.46 after),
    # after 5 it clears it (1.39 for seed 0)
    # TFN's language LSTM over the per-word states needs more steps than its old sentence vector on this
    # small fixture (test MAE against a bar of 1.51: 3 epochs 1.68, 5 epochs 1.50; at batch 16, 5 epochs 1.36,
    # as 10 epochs at batch 32; the sentence vector reached 1.38 in 3).
    epochs = 5 if arch in ("mag_bert", "tfn") else 3
    extra = {"train.batch_size": 16} if arch == "tfn" else {}
    metrics = _train_and_evaluate(
        arch, synthetic, tmp_path, **{"train.epochs": epochs, "train.patience": epochs, **extra}
    )
    assert metrics["test"]["mae"] < synthetic["constant_mae"] - 0.1


@pytest.mark.parametrize("order", [1, -1])
def test_a_baseline_trains_from_the_command_line_with_sets_in_either_order(
    order: int,
    synthetic,  # noqa: F811
    tmp_path,
) -> None:
    # each --set alone conflicts with the defaults (ef_lstm with HyCon's contrastive loss), not together
    sets = ["model.arch=ef_lstm", "loss.contrastive=none"][::order]
    data = ["--data", str(synthetic["data"]), "--features", str(synthetic["features"])]
    run = tmp_path / "ef_lstm" / "seed0"
    args = [arg for item in [*sets, "train.epochs=1"] for arg in ("--set", item)]
    assert main(["train", *data, "--out", str(run), *args]) == 0
    assert main(["evaluate", "--run", str(run), *data]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["experiment"] == "ef_lstm" and np.isfinite(metrics["test"]["mae"])


def test_ridge_path_equals_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)) * [1, 10, 0.1, 1, 1, 3] + 2.0
    y = x @ rng.normal(size=6) + rng.normal(size=40) + 5.0
    for alpha, (weight, bias) in zip(ALPHAS, ridge_path(x, y, ALPHAS), strict=True):
        reference = Ridge(alpha=alpha).fit(x, y)
        np.testing.assert_allclose(weight, reference.coef_, rtol=1e-7, atol=1e-9)
        assert bias == pytest.approx(reference.intercept_, rel=1e-7, abs=1e-9)


def test_text_probe_equals_a_direct_scikit_learn_fit(synthetic, tmp_path) -> None:  # noqa: F811
    tiny = {"model.language_model": "tiny"}  # features computed in memory by a small random BERT: fast
    metrics = _train_and_evaluate("text_probe", {**synthetic, "features": None}, tmp_path, **tiny)
    settings = arch_settings("text_probe", **tiny)
    datasets, info = load_datasets(settings, synthetic["data"], ("train", "valid", "test"))
    probe = build_model(settings, info.dims)
    probe.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=False)["state_dict"])
    assert list(probe.state_dict()) == ["weight", "bias", "alpha"]  # the language model is not saved
    x = {split: probe.features(ds, CPU, 32) for split, ds in datasets.items()}
    y = {split: ds.tensors["label"].numpy() for split, ds in datasets.items()}
    assert x["train"].shape[1] == 2 * 32  # [mean; first token] of the 32-wide tiny model
    valid_mae = {
        a: np.abs(Ridge(alpha=a).fit(x["train"], y["train"]).predict(x["valid"]) - y["valid"]).mean()
        for a in ALPHAS
    }
    assert float(probe.alpha) == min(valid_mae, key=valid_mae.get)  # alpha chosen on validation MAE
    reference = Ridge(alpha=float(probe.alpha)).fit(x["train"], y["train"]).predict(x["test"])
    preds, reps = predict(probe, datasets["test"], CPU, 64, keep=("fused",))
    np.testing.assert_allclose(preds, reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(reps["fused"], x["test"])
    assert metrics["test"]["mae"] == pytest.approx(np.abs(reference - y["test"]).mean(), abs=1e-4)
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert history[0].split(",") == list(HISTORY_COLUMNS) and len(history) == 2  # one closed-form "epoch"


def test_text_probe_fit_is_the_same_for_every_seed(synthetic, tmp_path) -> None:  # noqa: F811
    settings = arch_settings("text_probe", **{"model.language_model": "tiny"})
    for seed in (0, 1):
        train_run(settings, synthetic["data"], tmp_path / str(seed), seed)
    first, second = (torch.load(tmp_path / s / "model.pt", weights_only=False) for s in ("0", "1"))
    torch.testing.assert_close(first["state_dict"], second["state_dict"])


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_name_is_a_family_with_the_shared_interface(arch: str) -> None:
    family = model_class(arch)
    assert callable(family.model_inputs) and callable(family.forward)
    assert ("fit" in dir(family)) == (arch == "text_probe")


@pytest.mark.parametrize("arch", ARCHS)
def test_every_family_returns_a_model_output_of_the_documented_shapes(arch: str) -> None:
    """pipeline/models/contract.py: a `ModelFamily` whose forward gives ModelOutput(prediction [B],
    unimodal {'l', 'a', 'v'} -> [B, d] for HyCon and {} for a baseline, fused [B, D])."""
    tiny = {"model.language_model": "tiny"} if arch in ("mag_bert", "text_probe") else {}
    settings = arch_settings(arch, **tiny)
    model = build_model(settings, {"audio_dim": DA, "visual_dim": DV, "seq_len": T, "lm_hidden": H}).eval()
    assert isinstance(model, ModelFamily)
    with torch.no_grad():
        output = model(**model.model_inputs(make_batch(5), CPU))
    assert isinstance(output, ModelOutput)
    assert output.prediction.shape == (5,)
    d = settings["model"]["d"]
    expected = {m: (5, d) for m in "lav"} if arch == "hycon" else {}
    assert {m: tuple(r.shape) for m, r in output.unimodal.items()} == expected
    assert output.fused.ndim == 2 and output.fused.shape[0] == 5
