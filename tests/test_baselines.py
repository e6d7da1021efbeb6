"""Baseline model families (issue 8): forward shapes on the aligned contract, gradients reaching every
parameter, a short training run beating the mean predictor, and the text probe equal to scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from test_model import DA, DV, TEXTS, H, T, make_batch
from test_training import synthetic  # noqa: F401 - the shared synthetic-data fixture

from pipeline.config import resolve_settings
from pipeline.data.dataset import iterate_batches
from pipeline.errors import ConfigError
from pipeline.metrics import regression_metrics
from pipeline.models.baselines import BASELINES, TRAINED
from pipeline.models.probe import ALPHAS, TextProbe, ridge_path
from pipeline.training import load_datasets, predict

FINETUNE = {"model.lm_mode": "finetune", "model.language_model": "tiny"}
CPU = torch.device("cpu")


def make_model(arch: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    extra = FINETUNE if arch == "mag_bert" else {}
    settings = resolve_settings(None, {"model.dropout": 0.0, **extra, **overrides})
    return BASELINES[arch](settings, DA, DV, T, H)


@pytest.mark.parametrize("arch", TRAINED)
def test_forward_shapes_on_the_aligned_contract(arch: str) -> None:
    model = make_model(arch).eval()
    batch = make_batch(8)
    pred, reps, fused = model(**model.model_inputs(batch, CPU))
    assert pred.shape == (8,) and torch.isfinite(pred).all()
    assert reps == {}  # no contrastive terms for baselines
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


def test_mag_bert_refuses_frozen_mode() -> None:
    settings = resolve_settings(None, {"model.language_model": "tiny"})
    with pytest.raises(ConfigError, match="model.lm_mode=finetune"):
        BASELINES["mag_bert"](settings, DA, DV, T, H)


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
    moved["audio"][1, 0] += 5.0  # a word of sample 1 within its length changes its prediction
    model.eval()
    before, _, _ = model(**inputs)
    after, _, _ = model(**model.model_inputs(moved, CPU))
    assert not torch.isclose(before[1], after[1]) and torch.isclose(before[0], after[0])


def _train_briefly(arch: str, synthetic: dict, epochs: int, lr: float = 1e-3) -> float:  # noqa: F811
    """Adam on MAE for `epochs`; returns the test MAE of the last epoch."""
    settings = resolve_settings(None, FINETUNE if arch == "mag_bert" else {})
    features = None if arch == "mag_bert" else synthetic["features"]
    datasets, info = load_datasets(settings, synthetic["data"], ("train", "test"), features)
    torch.manual_seed(0)
    model = BASELINES[arch](
        settings, info["audio_dim"], info["visual_dim"], info["seq_len"], info["lm_hidden"]
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for batch in iterate_batches(datasets["train"], 32, generator):
            pred, _, _ = model(**model.model_inputs(batch, CPU))
            loss = (pred - batch["label"]).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    preds, _ = predict(model, datasets["test"], CPU, 64)
    return regression_metrics(datasets["test"].tensors["label"].numpy(), preds)["mae"]


FAST_TRAINED = [a for a in TRAINED if a not in ("mag_bert", "mult", "mfn")]


@pytest.mark.parametrize("arch", FAST_TRAINED)
def test_short_run_beats_the_mean_predictor(arch: str, synthetic) -> None:  # noqa: F811
    assert _train_briefly(arch, synthetic, epochs=12) < synthetic["constant_mae"] - 0.1


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mfn", "mult", "mag_bert"])
def test_short_run_of_the_slower_baselines_beats_the_mean_predictor(arch: str, synthetic) -> None:  # noqa: F811
    assert _train_briefly(arch, synthetic, epochs=12) < synthetic["constant_mae"] - 0.1


def test_ridge_path_equals_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)) * [1, 10, 0.1, 1, 1, 3] + 2.0
    y = x @ rng.normal(size=6) + rng.normal(size=40) + 5.0
    for alpha, (weight, bias) in zip(ALPHAS, ridge_path(x, y, ALPHAS), strict=True):
        reference = Ridge(alpha=alpha).fit(x, y)
        np.testing.assert_allclose(weight, reference.coef_, rtol=1e-7, atol=1e-9)
        assert bias == pytest.approx(reference.intercept_, rel=1e-7, abs=1e-9)


def test_text_probe_equals_a_direct_scikit_learn_fit(synthetic) -> None:  # noqa: F811
    settings = resolve_settings(None, {})
    datasets, info = load_datasets(
        settings, synthetic["data"], ("train", "valid", "test"), synthetic["features"]
    )
    probe, scores = TextProbe.fit(settings, datasets, info, CPU)
    x = {split: probe.features(ds, CPU, 32) for split, ds in datasets.items()}
    y = {split: ds.tensors["label"].numpy() for split, ds in datasets.items()}
    assert x["train"].shape[1] == 2 * 384 and set(scores) == set(ALPHAS)
    valid_mae = {
        a: np.abs(Ridge(alpha=a).fit(x["train"], y["train"]).predict(x["valid"]) - y["valid"]).mean()
        for a in ALPHAS
    }
    assert float(probe.alpha) == min(valid_mae, key=valid_mae.get)  # alpha chosen on validation MAE
    reference = Ridge(alpha=float(probe.alpha)).fit(x["train"], y["train"])
    preds, fused = predict(probe, datasets["test"], CPU, 64)
    np.testing.assert_allclose(preds, reference.predict(x["test"]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused, x["test"])
    assert list(probe.state_dict()) == ["weight", "bias", "alpha"]  # the language model is not saved


def test_text_probe_refuses_finetune_mode() -> None:
    with pytest.raises(ConfigError, match="model.lm_mode=frozen"):
        BASELINES["text_probe"](resolve_settings(None, FINETUNE), DA, DV, T, H)
