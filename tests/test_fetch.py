"""Hub language models: fetched once into data/models/<name> (the `fetch` stage, on the submitting host),
then loaded from there by every job with the hub offline. No network: the hub is never reached here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.layout import hub_model_dir
from pipeline.models.language import load_language_model

REPO = Path(__file__).resolve().parents[1]


def test_hub_names_map_to_project_folders_bundled_names_and_paths_do_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-bert").mkdir()
    assert hub_model_dir("bert-base-uncased") == Path("data/models/bert-base-uncased")
    assert hub_model_dir("org/some.model-v2") == Path("data/models/org--some.model-v2")
    assert hub_model_dir("minilm") is None and hub_model_dir("tiny") is None
    assert hub_model_dir("my-bert") is None  # an existing local path is loaded as it is


def test_a_hub_name_loads_from_its_project_folder_with_the_hub_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"'org/tiny-bert'.*fetch it into data/models/org--tiny-bert"):
        load_language_model("org/tiny-bert")
    tiny, tokenizer = load_language_model("tiny")
    for part in (tiny, tokenizer):
        part.save_pretrained(tmp_path / "data/models/org--tiny-bert")  # what `fetch` leaves there
    loaded, _ = load_language_model("org/tiny-bert")
    for name, value in tiny.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)


def fetch(name: str, cwd: Path, hf_home: Path) -> subprocess.CompletedProcess:
    """`python -m pipeline fetch NAME` with the hub offline and `hf_home` as the Hugging Face cache."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "fetch", name], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_offline_fetch_is_one_error_naming_the_model_and_the_folder(tmp_path):
    proc = fetch("org/absent-bert", tmp_path, tmp_path / "hf")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.language_model 'org/absent-bert'")
    assert "into data/models/org--absent-bert by hand" in lines[0]
    assert not (tmp_path / "data/models/org--absent-bert/config.json").exists()
    assert fetch("minilm", tmp_path, tmp_path / "hf").returncode == 2  # bundled: nothing to fetch


def test_offline_fetch_copies_the_local_cache(tmp_path):
    snapshot = tmp_path / "hf/hub/models--org--tiny-bert/snapshots/0123abcd"
    tiny, tokenizer = load_language_model("tiny")
    for part in (tiny, tokenizer):
        part.save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs/main").write_text(snapshot.name)
    assert fetch("org/tiny-bert", tmp_path, tmp_path / "hf").returncode == 0
    copied = tmp_path / "data/models/org--tiny-bert"
    assert (copied / "config.json").read_bytes() == (snapshot / "config.json").read_bytes()
    assert (copied / "model.safetensors").is_file() and not (copied / "model.safetensors").is_symlink()
