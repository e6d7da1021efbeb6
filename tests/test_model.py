"""HyCon model: shapes per fusion, the language token choice, non-negative representations, last valid
time step of the acoustic/visual encoders, gradient flow into every encoder, and language-model loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import DA, DV, TEXTS, H, T, make_batch

from pipeline.errors import ConfigError
from pipeline.losses import class_labels, hybrid_loss
from pipeline.models.hycon import HyConModel, SequenceEncoder
from pipeline.models.language import load_language_model, select_token, tokenize
from pipeline.settings import resolve_settings


def make_model(**overrides) -> HyConModel:
    torch.manual_seed(0)
    settings = resolve_settings(None, {"model.dropout": 0.0, **overrides})
    return HyConModel(settings["model"], DA, DV, T, lm_hidden=H)


@pytest.mark.parametrize(
    ("fusion", "out_dim"), [("add", 50), ("concat", 150), ("tensor", None), ("graph", None)]
)
def test_forward_shapes_for_each_fusion(fusion: str, out_dim: int | None) -> None:
    model = make_model(**{"model.fusion": fusion})
    pred, reps, fused = model(**model.model_inputs(make_batch(), torch.device("cpu")))
    assert pred.shape == (4,) and torch.isfinite(pred).all()
    assert set(reps) == {"l", "a", "v"} and all(r.shape == (4, 50) for r in reps.values())
    assert fused.shape == (4, model.fusion.out_dim)
    if out_dim is not None:
        assert model.fusion.out_dim == out_dim


def test_select_token_last_cls_mean_by_hand() -> None:
    hidden = torch.arange(2 * 4 * 2, dtype=torch.float32).reshape(2, 4, 2)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    torch.testing.assert_close(select_token(hidden, mask, "last"), torch.tensor([[4.0, 5.0], [14.0, 15.0]]))
    torch.testing.assert_close(select_token(hidden, mask, "cls"), torch.tensor([[0.0, 1.0], [8.0, 9.0]]))
    torch.testing.assert_close(select_token(hidden, mask, "mean"), torch.tensor([[2.0, 3.0], [11.0, 12.0]]))
    with pytest.raises(ConfigError, match="text_token"):
        select_token(hidden, mask, "first")


def test_last_token_is_sep_and_truncation_keeps_it() -> None:
    _, tokenizer = load_language_model("tiny")
    tokens = tokenize(tokenizer, TEXTS, max_tokens=5)
    last = tokens["attention_mask"].sum(1) - 1
    picked = tokens["input_ids"][torch.arange(len(TEXTS)), last]
    assert (picked == tokenizer.sep_token_id).all()
    assert tokens["input_ids"].shape[1] == 5  # the long text is truncated, [SEP] still last


@pytest.mark.parametrize("nonneg", ["relu", "softplus"])
def test_representations_are_non_negative_so_cosines_lie_in_0_1(nonneg: str) -> None:
    model = make_model(**{"model.nonneg": nonneg})
    _, reps, _ = model(**model.model_inputs(make_batch(8), torch.device("cpu")))
    z = torch.cat([F.normalize(r, dim=-1) for r in reps.values()])
    assert (torch.cat(list(reps.values())) >= 0).all()
    sims = z @ z.T
    assert sims.min() >= 0 and sims.max() <= 1 + 1e-5


def test_without_nonneg_projections_can_be_negative() -> None:
    model = make_model(**{"model.nonneg": "none"})
    _, reps, _ = model(**model.model_inputs(make_batch(8), torch.device("cpu")))
    assert min(float(r.detach().min()) for r in reps.values()) < 0


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_sequence_encoder_reads_the_last_valid_step(positional: str) -> None:
    settings = resolve_settings(None, {"model.dropout": 0.0, "model.positional": positional})["model"]
    torch.manual_seed(0)
    encoder = SequenceEncoder(DA, settings, T).eval()
    x = torch.randn(3, T, DA)
    length = torch.tensor([3, 0, T])
    out = encoder(x, length)
    assert out.shape == (3, 50) and torch.isfinite(out).all()  # length 0 is finite (reads position 0)
    padded = x.clone()
    padded[0, 3:] = 100.0  # beyond the valid steps of sample 0
    padded[1, 1:] = -7.0  # sample 1 (length 0) only ever sees position 0
    torch.testing.assert_close(encoder(padded, length)[:2], out[:2])
    moved = x.clone()
    moved[0, 2] += 1.0  # the last valid step of sample 0 changes its representation
    assert not torch.allclose(encoder(moved, length)[0], out[0])
    assert encoder(x, torch.tensor([3, 1, T]))[1].allclose(out[1])  # length 0 behaves as length 1
    assert any(n == "positions" for n, _ in encoder.named_parameters()) == (positional == "learned")


def _loss(model: HyConModel, batch: dict) -> torch.Tensor:
    pred, reps, _ = model(**model.model_inputs(batch, torch.device("cpu")))
    hybrid, _ = hybrid_loss(reps, class_labels(batch["label"]), alpha=0.8)
    return (pred - batch["label"]).abs().mean() + hybrid


def test_gradients_reach_every_encoder_frozen_mode() -> None:
    model = make_model(**{"model.fusion": "graph"})
    _loss(model, make_batch(8)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert model.language_model is None and model.lm_hidden == H


def test_gradients_reach_the_language_model_when_finetuning() -> None:
    model = make_model(**{"model.lm_mode": "finetune", "model.language_model": "tiny"})
    assert model.lm_hidden == 32
    _loss(model, make_batch(8)).backward()
    lm = [p for n, p in model.named_parameters() if n.startswith("language_model.")]
    assert len(lm) > 10
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []  # the unused pooler is removed, so every LM weight learns


def test_frozen_language_branch_uses_the_cached_vector() -> None:
    model = make_model()
    batch = make_batch()
    torch.testing.assert_close(model.language_vector(batch["lm_features"]), batch["lm_features"])
    with pytest.raises(ValueError, match="lm_features"):
        model.language_vector()


def test_language_model_from_local_path_and_offline_hub_error(tmp_path, monkeypatch) -> None:
    tiny, tokenizer = load_language_model("tiny")
    tiny.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    loaded, _ = load_language_model(str(tmp_path / "tiny"))
    for name, value in tiny.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ConfigError, match=r"'no-such-org/no-such-bert' could not be loaded offline.*'minilm'"
    ):
        load_language_model("no-such-org/no-such-bert")
    with pytest.raises(ConfigError, match="from the local path"):
        load_language_model(str(tmp_path))  # a folder without a model
