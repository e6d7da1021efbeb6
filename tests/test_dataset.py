"""Aligned HDF5 reader: round trip, torch Dataset batching, and one clear DataError per malformed file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pipeline.data.dataset import load_split, validate_aligned, write_aligned
from pipeline.data.loader import AlignedDataset, iterate_batches
from pipeline.errors import DataError

T, DA, DV = 5, 4, 3


def split_arrays(n: int, prefix: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays of one split in the documented layout."""
    rng = np.random.default_rng(seed)
    return {
        "id": np.array([f"{prefix}{i}[0]" for i in range(n)]),
        "label": rng.uniform(-3, 3, n).astype(np.float32),
        "text": np.array([f"word{i} café" for i in range(n)]),
        "audio": rng.normal(size=(n, T, DA)).astype(np.float32),
        "visual": rng.normal(size=(n, T, DV)).astype(np.float32),
        "length": rng.integers(0, T + 1, n).astype(np.int64),
    }


ATTRS = {"seq_len": T, "audio_dim": DA, "visual_dim": DV, "dataset": "toy", "checksums": "{}"}


@pytest.fixture
def aligned(tmp_path: Path) -> tuple[Path, dict]:
    splits = {
        "train": split_arrays(7, "tr"),
        "valid": split_arrays(3, "va", 1),
        "test": split_arrays(4, "te", 2),
    }
    return write_aligned(tmp_path / "toy.h5", splits, ATTRS), splits


def test_round_trip_and_info(aligned) -> None:
    path, splits = aligned
    info = validate_aligned(path)
    assert info == {
        "seq_len": T,
        "audio_dim": DA,
        "visual_dim": DV,
        "dataset": "toy",
        "sizes": {"train": 7, "valid": 3, "test": 4},
    }
    loaded = load_split(path, "valid")
    for name, values in splits["valid"].items():
        np.testing.assert_array_equal(loaded[name], values)
    assert loaded["text"][0] == "word0 café" and loaded["audio"].dtype == np.float32


def test_dataset_indexing_and_batches(aligned) -> None:
    path, splits = aligned
    arrays = load_split(path, "train")
    feats = np.arange(7 * 2, dtype=np.float32).reshape(7, 2)
    ds = AlignedDataset(arrays, feats)
    item = ds[[4, 1]]
    assert item["text"] == [splits["train"]["text"][4], splits["train"]["text"][1]]
    torch.testing.assert_close(item["lm_features"], torch.tensor([[8.0, 9.0], [2.0, 3.0]]))
    assert item["audio"].shape == (2, T, DA) and item["index"].tolist() == [4, 1]
    ordered = list(iterate_batches(ds, 3))
    assert [b["index"].tolist() for b in ordered] == [[0, 1, 2], [3, 4, 5], [6]]
    # Shuffled: a permutation, reproducible from the generator, with 7 % 3 == 1 -> the lone sample dropped.
    first = [b["index"].tolist() for b in iterate_batches(ds, 3, torch.Generator().manual_seed(5))]
    again = [b["index"].tolist() for b in iterate_batches(ds, 3, torch.Generator().manual_seed(5))]
    assert first == again and [len(b) for b in first] == [3, 3]
    assert len(set(sum(first, []))) == 6
    assert [len(b["index"]) for b in iterate_batches(ds, 4, torch.Generator().manual_seed(5))] == [4, 3]


def _rewrite(path: Path, edit) -> None:
    with h5py.File(path, "a") as handle:
        edit(handle)


def _replace(name: str, values):
    def edit(handle):
        del handle[name]
        handle[name] = values

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.__delitem__("valid"), "missing group 'valid'"),
        (lambda h: h["train"].__delitem__("visual"), "missing dataset 'train/visual'"),
        (lambda h: h.attrs.__delitem__("audio_dim"), "missing root attribute 'audio_dim'"),
        (
            lambda h: h.attrs.__setitem__("visual_dim", 35),
            r"'train/visual' has shape \(7, 5, 3\).*dimensions",
        ),
        (_replace("test/audio", np.zeros((3, T, DA), np.float32)), "'test/audio'.*number of samples"),
        (_replace("train/label", np.zeros((7, 2), np.float32)), "'train/label' must be a non-empty 1-D"),
    ],
)
def test_layout_errors_name_file_and_dataset(aligned, edit, message) -> None:
    path, _ = aligned
    _rewrite(path, edit)
    with pytest.raises(DataError, match=message) as err:
        validate_aligned(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("label", np.nan, r"'train/label' has NaN/inf values in 1 samples \(first: tr2\[0\], value nan\)"),
        ("audio", -np.inf, "'train/audio' has NaN/inf"),
        (
            "visual",
            2e6,
            r"'train/visual' has values beyond \+-1e\+06 in 1 samples \(first: tr2\[0\], value 2e\+06\)",
        ),
        ("length", T + 1, r"'train/length' outside \[0, seq_len=5\]"),
        ("length", -1, "'train/length' outside"),
    ],
)
def test_value_errors_name_the_sample(aligned, name, value, message) -> None:
    path, splits = aligned
    arrays = splits["train"][name].copy()
    arrays[2] = value
    _rewrite(path, _replace(f"train/{name}", arrays))
    with pytest.raises(DataError, match=message):
        load_split(path, "train")


def test_missing_or_non_hdf5_file(tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        validate_aligned(tmp_path / "absent.h5")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match=r"notes\.h5: not an HDF5 file"):
        load_split(text, "train")


def test_duplicate_ids_and_bad_features(aligned) -> None:
    path, splits = aligned
    ids = splits["test"]["id"].copy()
    ids[1] = ids[0]
    _rewrite(path, _replace("test/id", ids.astype(object).astype(h5py.string_dtype())))
    with pytest.raises(DataError, match="duplicate ids"):
        load_split(path, "test")
    with pytest.raises(DataError, match="2 language features for 7 samples"):
        AlignedDataset(load_split(path, "train"), np.zeros((2, 4), np.float32))
