"""Each family's reference training settings (pipeline/presets.py): where they apply, what they yield on
every config, the dropouts the families read, MAG-BERT's schedule, and each family's own search space."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from helpers import DA, DV, H, T

from pipeline import presets, search
from pipeline.errors import ConfigError
from pipeline.grid import (
    experiment_settings,
    load_config,
    search_experiments,
    search_spec,
    searched_table_spec,
    table_spec,
)
from pipeline.models import build_model
from pipeline.optimizer import schedule_factor
from pipeline.settings import resolve_settings

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "default": [REPO / "config" / "config.yaml"],
    "mosi": [REPO / "config" / "config.yaml", REPO / "config" / "mosi.yaml"],
    "mosei": [REPO / "config" / "config.yaml", REPO / "config" / "mosei.yaml"],
}
# The references' rates (MMSA's CMU-MOSI config; MulT's and MAG-BERT's original code), written out here
# rather than read from presets.PRESETS, so that a changed preset fails this test.
REFERENCE_LR = {
    "ef_lstm": 1e-3,
    "lf_lstm": 1e-3,
    "tfn": 1e-3,
    "lmf": 1e-3,
    "mfn": 2e-3,
    "mult": 1e-3,
    "mag_bert": 1e-5,
}
HYCON_ROWS = ("hycon", "no_contrast", "no_iamcl", "alpha_0.5", "fusion_concat", "text_only")


@pytest.mark.parametrize("name", ["mosi", "mosei"])
def test_overlays_train_each_baseline_at_its_reference_rate_and_hycon_at_the_papers(name: str) -> None:
    config = load_config(CONFIGS[name])
    for experiment, lr in REFERENCE_LR.items():
        train = experiment_settings(config, experiment)["train"]
        assert train["lr"] == lr, experiment
        assert train["epochs"] == 20  # the protocol keys still come from base
    for experiment in HYCON_ROWS:
        train = experiment_settings(config, experiment)["train"]
        assert (train["lr"], train["lr_lm"], train["batch_size"]) == (1e-5, 1e-5, 32), experiment
    mag, mult, mfn = (experiment_settings(config, e)["train"] for e in ("mag_bert", "mult", "mfn"))
    assert (mag["schedule"], mag["warmup"], mag["lr_lm"], mag["batch_size"]) == (
        "linear_warmup",
        0.1,
        1e-5,
        48,
    )
    assert (mult["batch_size"], mult["grad_clip"]) == (24, 0.8)
    assert (mfn["batch_size"], mfn["weight_decay"]) == (128, 0.0)
    assert experiment_settings(config, "ef_lstm")["train"]["weight_decay"] == 5e-3
    caption = table_spec(config, "table1" if name == "mosi" else "table2")["caption"]
    assert "MFN: lr 0.002" in caption and "HyCon: lr 1e-05" in caption


def test_every_baseline_preset_sets_every_optimisation_key() -> None:
    for arch, preset in presets.PRESETS.items():
        assert set(presets.PRESET_KEYS) <= set(preset), arch
        assert arch in presets.SOURCES
    assert presets.family_preset("hycon") == presets.family_preset("text_only") == {}


def test_the_experiments_own_overrides_beat_the_preset(tmp_path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        yaml.safe_dump({"experiments": {"mfn": {"train.lr": 0.01, "model.mfn_retain_dropout": 0.1}}})
    )
    config = load_config([*CONFIGS["mosi"], overlay])
    settings = experiment_settings(config, "mfn")
    assert settings["train"]["lr"] == 0.01 and settings["model"]["mfn_retain_dropout"] == 0.1
    assert settings["train"]["batch_size"] == 128  # the rest of the preset still applies
    assert "train.lr" not in search_spec(config, "mfn")["space"]  # a row searches what it leaves free


def _dropouts(model: torch.nn.Module) -> list[float]:
    """Every dropout probability of a network: Dropout layers, LSTM and attention dropouts."""
    found = []
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            found.append(module.p)
        elif isinstance(module, torch.nn.LSTM | torch.nn.MultiheadAttention):
            found.append(module.dropout)
    return found


@pytest.mark.parametrize("arch", sorted(presets.PRESETS))
def test_each_family_reads_its_dropout_settings(arch: str) -> None:
    extra = {"model.lm_mode": "finetune", "model.language_model": "tiny"} if arch == "mag_bert" else {}
    dims = {"audio_dim": DA, "visual_dim": DV, "seq_len": T, "lm_hidden": H}
    for key in presets.MODEL_KEYS[arch]:
        settings = resolve_settings(
            None, {"model.arch": arch, "loss.contrastive": "none", **extra, key: 0.123}
        )
        assert 0.123 in _dropouts(build_model(settings, dims)), key


@pytest.mark.parametrize("arch", sorted(presets.PRESETS))
def test_each_baseline_search_range_contains_its_preset(arch: str) -> None:
    config = load_config(CONFIGS["mosi"])
    spec = search_spec(config, arch)
    preset = presets.family_preset(arch)
    assert "train.lr" in spec["space"]
    for key, entry in spec["space"].items():
        value = preset[key]
        if isinstance(entry, list):
            assert value in entry, key
        else:
            (low, high), *_ = entry.values()
            assert low <= value <= high, key
    presets.check_family_space(spec["settings"], spec["space"])  # only keys the family reads


def test_search_over_a_key_the_family_ignores_is_refused_before_any_trial(tmp_path, monkeypatch) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"search": {"space": {"model.layers": [1, 2]}}}))
    with pytest.raises(ConfigError, match=r"model.layers: model.arch=text_only does not read") as err:
        load_config([*CONFIGS["default"], overlay])
    assert "\n" not in str(err.value)
    config = load_config(CONFIGS["default"])
    spec = {**search_spec(config, "ef_lstm"), "space": {"model.dropout": {"uniform": [0.0, 0.5]}}}
    monkeypatch.setattr("pipeline.train.train_run", lambda *a, **k: pytest.fail("a trial ran"))
    with pytest.raises(ConfigError, match=r"search.space.model.dropout: model.arch=ef_lstm does not read"):
        search.run_search(spec, 2, tmp_path / "data.h5", tmp_path / "out", None)


def test_the_closed_form_text_probe_is_not_searched(tmp_path) -> None:
    config = load_config(CONFIGS["default"])
    assert all("text_probe" not in names for names in search_experiments(config).values())
    spec = searched_table_spec(config, "table1")
    rows = {row["label"]: row["experiment"] for row in spec["rows"]}
    assert rows["Text probe (ridge)"] == "text_probe" and rows["EF-LSTM"] == "searched_ef_lstm"
    assert "Not searched" in spec["caption"] and "Text probe (ridge)" in spec["caption"]
    with pytest.raises(ConfigError, match="model.arch=text_probe is not searched"):
        search.run_search(search_spec(config, "text_probe"), 2, tmp_path / "d.h5", tmp_path / "out", None)


def test_linear_warmup_rises_then_falls_to_zero() -> None:
    train = {"schedule": "linear_warmup", "warmup": 0.1}
    factors = [schedule_factor(train, step, 100) for step in range(101)]
    assert factors[0] == 0.0 and factors[5] == 0.5 and factors[10] == 1.0
    assert factors[55] == pytest.approx(0.5) and factors[100] == 0.0
    assert all(a <= b for a, b in zip(factors[:10], factors[1:11], strict=True))
    assert schedule_factor({"schedule": "none", "warmup": 0.1}, 0, 100) == 1.0
