"""Train/valid/test video folds: `folds.json` I/O, the CMU SDK's standard folds, and its std-folds files.

A fold file maps each split to a list of video ids, `{"train": [...], "valid": [...], "test": [...]}`;
speaker independence (as in CMU-MOSI/MOSEI, one speaker per video) requires that no video is in two folds.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import DataError
from pipeline.io import write_json

SPLITS = ("train", "valid", "test")
# names of the module-level lists in the SDK's `cmu_*_std_folds.py`, by split
SDK_FOLD_NAMES = {
    "train": "standard_train_fold",
    "valid": "standard_valid_fold",
    "test": "standard_test_fold",
}


def validate_folds(folds: Any, source: str | os.PathLike) -> dict[str, list[str]]:
    """Check a folds mapping (exactly train/valid/test, lists of str, no video twice); return a clean copy.

    `source` names the file in error messages.
    """
    if not isinstance(folds, Mapping):
        raise DataError(f"{source}: folds must be a mapping of {list(SPLITS)}, got {type(folds).__name__}")
    if set(folds) != set(SPLITS):
        raise DataError(f"{source}: folds must have exactly the keys {list(SPLITS)}, found {sorted(folds)}")
    seen: dict[str, str] = {}
    clean: dict[str, list[str]] = {}
    for split in SPLITS:
        videos = folds[split]
        if not isinstance(videos, list) or not all(isinstance(v, str) for v in videos):
            raise DataError(f"{source}: fold '{split}' must be a list of video id strings")
        for video in videos:
            if video in seen:
                raise DataError(
                    f"{source}: video '{video}' appears in fold '{seen[video]}' and in fold '{split}'"
                )
            seen[video] = split
        clean[split] = list(videos)
    return clean


def load_folds(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read and validate a `folds.json`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: folds file not found")
    try:
        folds = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err
    return validate_folds(folds, path)


def write_folds(path: str | os.PathLike, folds: Mapping[str, list[str]]) -> None:
    """Validate `folds` and write them as `folds.json`, atomically."""
    write_json(path, validate_folds(folds, path))


def parse_sdk_folds_file(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read the three fold lists from an SDK std-folds `.py` file without executing it.

    The file is parsed with `ast` and only literal list assignments are evaluated (`ast.literal_eval`), so a
    file from an untrusted copy cannot run code.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: SDK folds file not found")
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a parsable Python folds file ({err})") from err
    found: dict[str, Any] = {}
    wanted = {name: split for split, name in SDK_FOLD_NAMES.items()}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id in wanted:
            try:
                found[wanted[target.id]] = ast.literal_eval(node.value)
            except ValueError as err:
                raise DataError(f"{path}: '{target.id}' is not a literal list ({err})") from err
    missing = [SDK_FOLD_NAMES[split] for split in SPLITS if split not in found]
    if missing:
        raise DataError(f"{path}: missing fold lists {missing}")
    return validate_folds(found, path)


# Provenance of the standard folds: the CMU Multimodal SDK's current master,
# github.com/CMU-MultiComp-Lab/CMU-MultimodalSDK, mmsdk/mmdatasdk/dataset/standard_datasets/
# CMU_MOSI/cmu_mosi_std_folds.py (52/10/31 videos: 1,284/229/686 segments) and
# CMU_MOSEI/cmu_mosei_std_folds.py (2,249/300/678 videos). The installed SDK package ships an older MOSEI
# copy whose train fold still lists the video below, which upstream removed in 2019; it is taken out here, so
# the folds equal master's file (tests compare them with ../shared/data/mosei/cmu_mosei_std_folds.py).
REMOVED_UPSTREAM: dict[str, frozenset[str]] = {"mosei": frozenset({"-NFrJFQijFE"})}


def standard_folds(dataset: str) -> dict[str, list[str]]:
    """The standard folds of 'mosi' or 'mosei': the CMU SDK master's (see REMOVED_UPSTREAM)."""
    from mmsdk import mmdatasdk  # imported lazily: the SDK is slow to import and only needed here

    modules = {"mosi": mmdatasdk.cmu_mosi, "mosei": mmdatasdk.cmu_mosei}
    if dataset not in modules:
        raise DataError(f"unknown dataset '{dataset}': standard folds exist for {sorted(modules)}")
    module = modules[dataset].standard_folds
    removed = REMOVED_UPSTREAM.get(dataset, frozenset())
    folds = {
        split: [video for video in getattr(module, name) if video not in removed]
        for split, name in SDK_FOLD_NAMES.items()
    }
    return validate_folds(folds, f"CMU SDK master's standard folds of {dataset}")
