"""Input normalisation (`data.normalize`): train-only statistics over valid steps, stored and reapplied."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from helpers import rewrite_model

from pipeline.checkpoint import load_checkpoint
from pipeline.data.dataset import load_split, write_aligned
from pipeline.data.normalize import apply_stats, fit_stats
from pipeline.errors import DataError
from pipeline.evaluate import evaluate_run
from pipeline.features import text_digest
from pipeline.inference import load_datasets
from pipeline.settings import resolve_settings
from pipeline.train import train_run

T, DA, DV, H = 4, 3, 2, 5
SHIFT = {"train": 0.0, "valid": 5.0, "test": -5.0}  # valid/test lie elsewhere: train-only stats show


def _split(rng: np.random.Generator, n: int, shift: float, prefix: str) -> dict[str, np.ndarray]:
    """n segments; audio column 0 Hz-scale, column 2 constant; zero padding after `length` steps."""
    length = rng.integers(1, T + 1, n)
    valid = (np.arange(T)[None, :] < length[:, None])[..., None]
    audio = rng.normal(shift, 1.0, (n, T, DA)) * np.array([100.0, 1.0, 0.0]) + np.array([200.0, 0, 7.0])
    visual = rng.normal(shift, 3.0, (n, T, DV))
    label = np.clip(audio[:, 0, 1] + rng.normal(0, 0.1, n), -3, 3)
    return {
        "id": np.array([f"{prefix}{i}[0]" for i in range(n)], dtype=object),
        "label": label.astype(np.float32),
        "text": np.array(["a b"] * n, dtype=object),
        "audio": (audio * valid).astype(np.float32),
        "visual": (visual * valid).astype(np.float32),
        "length": length.astype(np.int64),
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """A small aligned file with shifted valid/test splits, and a hand-made frozen features file."""
    root = tmp_path_factory.mktemp("normalize")
    rng = np.random.default_rng(0)
    splits = {s: _split(rng, 40, SHIFT[s], s) for s in SHIFT}
    attrs = {"seq_len": T, "audio_dim": DA, "visual_dim": DV, "dataset": "norm", "checksums": "{}"}
    write_aligned(root / "data.h5", splits, attrs)
    with h5py.File(root / "features.h5", "w") as handle:
        handle.attrs.update({"model": "tiny", "token": "mean", "max_tokens": 16, "hidden": H, "data": "x"})
        for split, arrays in splits.items():
            group = handle.create_group(split)
            group.create_dataset("id", data=arrays["id"], dtype=h5py.string_dtype())
            group.create_dataset("features", data=rng.normal(SHIFT[split], 0.2, (40, H)).astype(np.float32))
            group.attrs["texts"] = text_digest(arrays["id"].astype(str), arrays["text"].astype(str))
    return {"data": root / "data.h5", "features": root / "features.h5", "splits": splits}


SETTINGS = {
    "model.language_model": "tiny",
    "model.max_text_tokens": 16,
    "model.d": 4,
    "model.heads": 2,
    "model.ff": 8,
    "model.head_hidden": 8,
    "train.epochs": 2,
    "train.batch_size": 8,
}


def test_statistics_over_valid_steps_constant_columns_and_padding() -> None:
    rng = np.random.default_rng(1)
    arrays = _split(rng, 30, 0.0, "s")
    stats = fit_stats(arrays)
    valid = np.arange(T)[None, :] < arrays["length"][:, None]
    rows = arrays["audio"][valid]
    np.testing.assert_allclose(stats["audio_mean"][:2], rows[:, :2].mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["audio_std"][:2], rows[:, :2].std(0), rtol=1e-5)
    assert stats["audio_mean"][0] > 150  # the zero padding did not drag the Hz column's mean down
    assert stats["audio_std"][2] == 1.0 and stats["audio_mean"][2] == 7.0  # constant: centred only
    out, lm = apply_stats(arrays, None, stats)
    assert lm is None and "text_mean" not in stats
    scaled = out["audio"][valid]
    np.testing.assert_allclose(scaled[:, :2].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(scaled[:, :2].std(0), 1, atol=1e-4)
    assert (scaled[:, 2] == 0).all()
    assert (out["audio"][~valid] == 0).all() and (out["visual"][~valid] == 0).all()  # padding stays 0
    arrays["visual"][0, 0, 0] = np.inf
    assert apply_stats(arrays, None, stats)[0]["visual"][0, 0, 0] == 0  # non-finite -> 0
    assert arrays["audio"] is not out["audio"] and arrays["audio"][valid][:, 0].mean() > 150  # a copy


def test_statistics_come_from_the_train_split_only(data) -> None:
    settings = resolve_settings(None, SETTINGS)
    datasets, info = load_datasets(settings, data["data"], ("train", "valid"), data["features"])
    train = load_split(data["data"], "train")
    with h5py.File(data["features"]) as handle:
        train_lm = handle["train"]["features"][()]
    expected = fit_stats(train, train_lm)
    assert set(info.normalization) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(info.normalization[key], value)
    # valid was shifted by +5 (in units of the train std): normalised with train's statistics it stays off 0
    valid_lm = datasets["valid"].tensors["lm_features"].numpy()
    assert valid_lm.mean() > 10
    assert abs(datasets["train"].tensors["lm_features"].numpy().mean()) < 1e-4
    with pytest.raises(DataError, match="train split"):
        load_datasets(settings, data["data"], ("valid", "test"), data["features"])
    raw, info = load_datasets(
        resolve_settings(None, {**SETTINGS, "data.normalize": "none"}),
        data["data"],
        ("valid",),
        data["features"],
    )
    assert info.normalization is None
    np.testing.assert_array_equal(raw["valid"].tensors["audio"].numpy(), data["splits"]["valid"]["audio"])


def test_evaluate_applies_the_checkpoints_statistics(data, tmp_path) -> None:
    summary = train_run(SETTINGS, data["data"], tmp_path, 0, data["features"], device="cpu")
    checkpoint = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(
        checkpoint["normalization"]["audio_mean"], fit_stats(load_split(data["data"], "train"))["audio_mean"]
    )
    metrics = evaluate_run(tmp_path, data["data"], data["features"], device="cpu")
    assert metrics["valid"] == pytest.approx(summary["best_valid"], rel=1e-6)
    # the same checkpoint evaluated with other statistics predicts differently: evaluate used the stored ones
    checkpoint["normalization"] = {
        k: v * 0 + (1 if k.endswith("std") else 0) for k, v in checkpoint["normalization"].items()
    }
    rewrite_model(tmp_path, checkpoint)
    other = evaluate_run(tmp_path, data["data"], data["features"], device="cpu")
    assert other["valid"]["mae"] != pytest.approx(metrics["valid"]["mae"], rel=1e-3)
    del checkpoint["normalization"]
    rewrite_model(tmp_path, checkpoint)
    with pytest.raises(DataError, match="no normalisation statistics"):
        evaluate_run(tmp_path, data["data"], data["features"], device="cpu")
    assert json.loads((tmp_path / "train.json").read_text())["settings"]["data"]["normalize"] == "zscore"
