"""Fetch a hub language model once into its project folder, for every job to load with the hub offline.

`python -m pipeline fetch bert-base-uncased [--out data/models/bert-base-uncased]`

Writes a snapshot of the hub repository (configuration, tokenizer files and safetensors weights; `.bin`
weights only where a repository has no safetensors) into data/models/<name> (`org/name` ->
`org--name`), the folder `load_language_model` reads. The workflow runs it on the submitting host (a
localrule): compute nodes often have no network. Offline (no network, or `HF_HUB_OFFLINE` set) a copy in
the local Hugging Face cache is used; failing that, one error names the model and the folder to fill by hand.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.layout import hub_model_dir

log = logging.getLogger(__name__)

FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]  # config, tokenizer, weights (no TF/Flax/ONNX)
LEGACY_WEIGHTS = ["pytorch_model*.bin"]


def _snapshot(name: str, folder: Path, local_only: bool) -> None:
    """Copy the repository's files into `folder`, from the hub or (local_only) from the local cache."""
    from huggingface_hub import snapshot_download

    for patterns in (FILES, LEGACY_WEIGHTS):
        if local_only:
            cached = snapshot_download(name, allow_patterns=patterns, local_files_only=True)
            shutil.copytree(cached, folder, dirs_exist_ok=True)  # the cache's links become files
        else:
            snapshot_download(name, allow_patterns=patterns, local_dir=folder)
        if any(folder.glob("*.safetensors")):
            return


def fetch_language_model(name: str, folder: Path) -> Path:
    """Fill `folder` with hub model `name` from the hub, else the local cache; one ConfigError if neither."""
    errors = []
    for local_only in (False, True):  # offline (HF_HUB_OFFLINE), the hub attempt fails at once
        try:
            _snapshot(name, folder, local_only)
        except Exception as err:  # noqa: BLE001 - huggingface_hub raises HTTP, OS and offline errors
            errors.append(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            continue
        if (folder / "config.json").is_file():
            log.info("language model %s -> %s", name, folder)
            return folder
        errors.append("no config.json in the repository")
    raise ConfigError(
        f"model.language_model {name!r} could not be fetched (hub unreachable or offline, not in the local "
        f"cache: {errors[-1]}); put its files (config.json, tokenizer, weights) into {folder} by hand, "
        "or use 'minilm' (bundled, offline)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="hub model name, e.g. bert-base-uncased")
    parser.add_argument("--out", type=Path, help="target folder (default: data/models/<name>)")


def run(args: argparse.Namespace) -> None:
    folder = args.out or hub_model_dir(args.name)
    if folder is None:
        raise ConfigError(f"{args.name!r} is bundled or a local path: there is nothing to fetch")
    fetch_language_model(args.name, folder)
