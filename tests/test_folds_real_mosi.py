"""Folds: folds.json I/O and bad inputs, safe parsing of SDK std-folds files, the real CMU-MOSI labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.data.csd import CSD
from pipeline.data.folds import SPLITS, load_folds, parse_sdk_folds_file, standard_folds, write_folds
from pipeline.errors import DataError


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    folds = {"train": ["a", "b"], "valid": ["c"], "test": ["d"]}
    write_folds(tmp_path / "folds.json", folds)
    assert load_folds(tmp_path / "folds.json") == folds
    assert [p.name for p in tmp_path.iterdir()] == ["folds.json"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"train": ["a"], "valid": ["b"], "test": ["a"]}',
            "video 'a' appears in fold 'train' and in fold 'test'",
        ),
        ('{"train": ["a"], "valid": ["b"]}', "exactly the keys"),
        ('{"train": ["a"], "valid": ["b"], "test": [3]}', "fold 'test' must be a list of video id strings"),
        ('["a", "b"]', "folds must be a mapping"),
        ("{not json", "not valid JSON"),
    ],
)
def test_load_folds_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "folds.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        load_folds(path)
    assert str(path) in str(err.value)


def test_load_folds_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="folds file not found"):
        load_folds(tmp_path / "absent.json")


def test_write_folds_refuses_overlap(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="video 'x'"):
        write_folds(tmp_path / "folds.json", {"train": ["x"], "valid": ["x"], "test": []})
    assert not (tmp_path / "folds.json").exists()


def test_parse_sdk_folds_file_never_executes(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    source = tmp_path / "folds.py"
    source.write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n"
        "standard_train_fold=['a', 'b']\nstandard_valid_fold=['c']\nstandard_test_fold=['d']\n"
    )
    assert parse_sdk_folds_file(source) == {"train": ["a", "b"], "valid": ["c"], "test": ["d"]}
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("standard_train_fold=make()\nstandard_valid_fold=[]\nstandard_test_fold=[]\n", "not a literal list"),
        ("standard_train_fold=['a']\n", "missing fold lists"),
        ("standard_train_fold=[\n", "not a parsable Python folds file"),
    ],
)
def test_parse_sdk_folds_file_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    source = tmp_path / "folds.py"
    source.write_text(content)
    with pytest.raises(DataError, match=message):
        parse_sdk_folds_file(source)


def test_standard_folds_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset 'iemocap'"):
        standard_folds("iemocap")


def test_real_mosi_labels_and_standard_folds(shared_dir: Path) -> None:
    folds = parse_sdk_folds_file(shared_dir / "data" / "mosi" / "cmu_mosi_std_folds.py")
    assert folds == standard_folds("mosi")
    assert {split: len(folds[split]) for split in SPLITS} == {"train": 52, "valid": 10, "test": 31}
    with CSD(shared_dir / "data" / "mosi" / "CMU_MOSI_Opinion_Labels.csd") as labels:
        assert len(labels) == 93
        assert set(labels.videos()) == {v for split in SPLITS for v in folds[split]}
        counts = {video: len(labels[video].features) for video in labels.videos()}
        values = np.concatenate([labels[video].features[:, 0] for video in labels.videos()])
    assert sum(counts.values()) == 2199
    assert {split: sum(counts[v] for v in folds[split]) for split in SPLITS} == {
        "train": 1284,
        "valid": 229,
        "test": 686,
    }
    assert values.min() >= -3 and values.max() <= 3


def test_mosei_standard_folds_are_the_sdk_masters(shared_dir: Path) -> None:
    master = parse_sdk_folds_file(shared_dir / "data" / "mosei" / "cmu_mosei_std_folds.py")
    assert master == standard_folds("mosei")
    assert {split: len(master[split]) for split in SPLITS} == {"train": 2249, "valid": 300, "test": 678}
    # the older package copy differs only by the video upstream removed from train
    package = parse_sdk_folds_file(shared_dir / "data" / "mosi" / "cmu_mosei_std_folds.py")
    assert set(package["train"]) - set(master["train"]) == {"-NFrJFQijFE"}
    assert {s: v for s, v in package.items() if s != "train"} == {s: master[s] for s in ("valid", "test")}
