"""Settings: defaults, dotted overrides, validation errors naming the key, files and `key=value` overrides."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import ConfigError
from pipeline.grid import features_key
from pipeline.settings import (
    DEFAULTS,
    feature_settings_of,
    load_settings,
    resolve_settings,
    settings_hash,
    text_token_of,
)


def test_defaults_follow_the_architecture_contract() -> None:
    settings = resolve_settings(None)
    assert settings == DEFAULTS
    assert settings is not DEFAULTS and settings["model"] is not DEFAULTS["model"]
    assert settings["model"]["d"] == 50 and settings["loss"]["alpha"] == 0.8
    assert settings["train"]["lr_lm"] == 1e-5 and settings["model"]["fusion"] == "add"


def test_nested_base_then_dotted_overrides() -> None:
    settings = resolve_settings(
        {"model": {"fusion": "concat"}, "loss.alpha": 0.5}, {"loss.alpha": 1, "train.amp": False}
    )
    assert settings["model"]["fusion"] == "concat"
    assert settings["loss"]["alpha"] == 1.0 and isinstance(settings["loss"]["alpha"], float)
    assert settings["train"]["amp"] is False
    assert settings["model"]["d"] == 50  # untouched keys keep their defaults
    resolve_settings(settings, {"loss.alpha": 0.3})
    assert settings["loss"]["alpha"] == 1.0  # inputs are not mutated


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"loss.alpha": 0.0}, "loss.alpha"),
        ({"loss.alpha": 1.5}, "loss.alpha"),
        ({"loss.lambda_scl": -0.1}, "loss.lambda_scl"),
        ({"train.lr": 0}, "train.lr"),
        ({"train.batch_size": 1}, "train.batch_size"),
        ({"model.fusion": "attention"}, "model.fusion"),
        ({"loss.contrastive": "supcon"}, "loss.contrastive"),
        ({"model.lm_mode": "adapter"}, "model.lm_mode"),
        ({"model.text_token": "first"}, "model.text_token"),
        ({"model.nonneg": "abs"}, "model.nonneg"),
        ({"loss.zero_class": "positive"}, "loss.zero_class"),
        ({"model.heads": 3}, "model.heads"),  # 3 does not divide d = 50
        ({"model.dropout": 1.0}, "model.dropout"),
        ({"train.epochs": 2.5}, "train.epochs"),  # int key given a float
        ({"train.amp": "yes"}, "train.amp"),  # bool key given a string
        ({"model.d": True}, "model.d"),  # a bool is not an int here
        ({"loss.alpha": float("nan")}, "loss.alpha"),
        ({"model.language_model": ""}, "model.language_model"),
    ],
)
def test_bad_values_name_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve_settings(None, overrides)


def test_unknown_key_suggests_the_close_match() -> None:
    with pytest.raises(ConfigError, match=r"unknown settings key 'loss\.alpah'.*'loss\.alpha'"):
        resolve_settings(None, {"loss.alpah": 0.5})
    with pytest.raises(ConfigError, match=r"unknown settings key 'optimizer\.momentum'"):
        resolve_settings({"optimizer": {"momentum": 0.9}})


def test_load_settings_from_yaml_and_json_with_sets(tmp_path) -> None:
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("model:\n  fusion: tensor\nloss:\n  refine: false\n")
    settings = load_settings(yaml_file, ["loss.alpha=1", "train.amp=false", "model.language_model=tiny"])
    assert settings["model"]["fusion"] == "tensor" and settings["loss"]["refine"] is False
    assert settings["loss"]["alpha"] == 1.0 and settings["train"]["amp"] is False
    assert settings["model"]["language_model"] == "tiny"
    json_file = tmp_path / "run.json"
    json_file.write_text(json.dumps({"train": {"batch_size": 16}}))
    assert load_settings(json_file)["train"]["batch_size"] == 16
    assert load_settings(None, ["train.epochs=3"])["train"]["epochs"] == 3


def test_load_settings_errors_name_file_and_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss:\n  alpha: 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*loss\.alpha"):
        load_settings(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_settings(listing)
    with pytest.raises(ConfigError, match="key=value"):
        load_settings(None, ["loss.alpha"])


def test_sets_are_validated_together_and_an_error_is_blamed_on_one_set() -> None:
    pair = ["model.arch=ef_lstm", "loss.contrastive=none"]
    for sets in (pair, pair[::-1]):  # valid only together, in either order
        settings = load_settings(None, sets)
        assert (settings["model"]["arch"], settings["loss"]["contrastive"]) == ("ef_lstm", "none")
    with pytest.raises(ConfigError, match=r"^--set model\.arch=ef_lstm: .*set loss\.contrastive=none"):
        load_settings(None, ["loss.alpha=0.5", "model.arch=ef_lstm"])  # the conflict's second half
    with pytest.raises(ConfigError, match=r"^--set loss\.alpha=1\.5: settings key 'loss\.alpha'"):
        load_settings(None, ["model.arch=ef_lstm", "loss.alpha=1.5", "loss.contrastive=none"])
    with pytest.raises(ConfigError, match=r"^--set model\.d=50: .*'model\.heads' \(3\) must divide"):
        load_settings(None, ["model.d=60", "model.heads=3", "model.d=50"])  # the one that broke a valid pair


def test_settings_hash_is_stable_and_sensitive() -> None:
    a = resolve_settings({"loss": {"alpha": 0.5}, "model": {"fusion": "graph"}})
    b = resolve_settings({"model.fusion": "graph", "loss.alpha": 0.5})
    assert settings_hash(a) == settings_hash(b) == settings_hash(json.loads(json.dumps(a)))
    assert settings_hash(a) != settings_hash(resolve_settings(a, {"loss.alpha": 0.6}))
    longer = resolve_settings(a, {"train.epochs": 99})
    assert settings_hash(a, exclude=("train.epochs",)) == settings_hash(longer, exclude=("train.epochs",))


def test_exponent_floats_without_a_dot_are_numbers_in_yaml_and_json(tmp_path) -> None:
    """YAML 1.1 reads `1e-5` as a string; the JSON writer emits `1e-05`: both must give the float."""
    (tmp_path / "s.yaml").write_text("train:\n  lr_lm: 1e-5\n")
    (tmp_path / "s.json").write_text('{"train": {"lr_lm": 1e-05}}')
    for name in ("s.yaml", "s.json"):
        assert load_settings(tmp_path / name)["train"]["lr_lm"] == 1e-5
    with pytest.raises(ConfigError, match="train.lr_lm"):
        resolve_settings({"train": {"lr_lm": "fast"}})


@pytest.mark.parametrize(
    ("overrides", "token", "key"),
    [
        ({}, "mean", "minilm"),  # the default: frozen, auto
        ({"model.text_token": "mean"}, "mean", "minilm"),  # the same cache as auto
        ({"model.text_token": "last"}, "last", "minilm_last128"),
        ({"model.text_token": "cls", "model.max_text_tokens": 64}, "cls", "minilm_cls64"),
        ({"model.lm_mode": "finetune"}, "cls", None),  # the MSA literature's first token; no cache
        ({"model.lm_mode": "finetune", "model.text_token": "last"}, "last", None),
    ],
)
def test_auto_text_token_resolves_once_for_model_and_features_cache(overrides, token, key) -> None:
    settings = resolve_settings(None, overrides)
    assert text_token_of(settings["model"]) == token
    assert feature_settings_of(settings)["text_token"] == token
    assert features_key(settings) == key
