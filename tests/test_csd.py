"""The computational-sequence reader/writer: round trip, every corrupt-file case, the real MOSI label file."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import mosi_folds

from pipeline.data.csd import CSD, Sequence, write_csd
from pipeline.errors import DataError


def test_round_trip_words_features_and_metadata(tmp_path):
    words = Sequence(
        np.array([[b"hello"], [b"sp"], [b"caf\xc3\xa9"]]), np.array([[0, 0.5], [0.5, 1], [1, 1]])
    )
    unicode_words = Sequence(np.array([["naïve"], ["ok"]]), np.array([[0.0, 1.0], [1.0, 2.0]]))
    feats = Sequence(np.arange(12, dtype=np.float32).reshape(3, 4), np.array([[0, 1], [1, 2], [2, 3]]))
    path = tmp_path / "x.csd"
    write_csd(path, "words", {"b": words, "a": unicode_words}, metadata={"root name": "words", "version": 2})
    write_csd(tmp_path / "f.csd", "feats", iter([("v", feats)]))
    with CSD(path) as csd:
        assert csd.root == "words"
        assert csd.videos() == ["a", "b"] and len(csd) == 2 and "a" in csd and "c" not in csd
        assert csd.metadata == {"root name": "words", "version": "2"}
        back = csd["b"]
        assert back.features.dtype.kind == "S" and back.features.tolist() == words.features.tolist()
        assert back.intervals.dtype == np.float64
        np.testing.assert_array_equal(back.intervals, words.intervals)
        assert [w[0].decode() for w in csd["a"].features] == ["naïve", "ok"]
        assert csd.describe("b") == (3, 1, back.features.dtype)
        np.testing.assert_array_equal(csd.intervals("a"), unicode_words.intervals)
    with CSD(tmp_path / "f.csd") as csd:
        back = csd["v"]
        assert back.features.dtype == np.float32
        np.testing.assert_array_equal(back.features, feats.features)
        assert csd.feature_dim() == 4


def test_reused_buffers_hold_each_load_and_grow(tmp_path):
    """`load(reuse=True)` reads into buffers kept by the reader: same values as a plain read, the next
    reuse load overwrites them in place, a larger entry grows them, and strings still get a new array."""
    small = Sequence(np.arange(6, dtype=np.float32).reshape(3, 2), np.array([[0.0, 1], [1, 2], [2, 3]]))
    large = Sequence(-np.arange(20, dtype=np.float32).reshape(10, 2), np.stack([np.arange(10.0)] * 2, 1))
    write_csd(tmp_path / "f.csd", "feats", {"small": small, "large": large, "again": small})
    words = Sequence(np.array([[b"a"], [b"bc"]]), np.array([[0.0, 1.0], [1.0, 2.0]]))
    write_csd(tmp_path / "w.csd", "words", {"v": words})
    with CSD(tmp_path / "f.csd") as csd:
        first = csd.load("small", reuse=True)
        np.testing.assert_array_equal(first.features, small.features)
        np.testing.assert_array_equal(first.intervals, small.intervals)
        second = csd.load("again", reuse=True)
        assert np.shares_memory(first.features, second.features)  # the same buffer, read again
        grown = csd.load("large", reuse=True)
        assert grown.features.shape == (10, 2) and not np.shares_memory(grown.features, first.features)
        np.testing.assert_array_equal(grown.features, large.features)
        np.testing.assert_array_equal(grown.intervals, large.intervals)
        fresh = csd.load("small")  # without reuse: a new array, untouched by later reuse loads
        csd.load("large", reuse=True).features[:] = 7
        np.testing.assert_array_equal(fresh.features, small.features)
    with CSD(tmp_path / "w.csd") as csd:
        assert csd.load("v", reuse=True).features.tolist() == words.features.tolist()


def test_one_dimensional_features_read_as_a_column(tmp_path):
    path = tmp_path / "x.csd"
    with h5py.File(path, "w") as handle:
        entry = handle.create_group("labels/data/v")
        entry["features"] = np.array([1.0, 2.0])
        entry["intervals"] = np.array([[0.0, 1.0], [1.0, 2.0]])
    with CSD(path) as csd:
        assert csd["v"].features.shape == (2, 1)
        assert csd.feature_dim() == 1


def _h5(path: Path, build) -> Path:
    with h5py.File(path, "w") as handle:
        build(handle)
    return path


def _entry(features, intervals):
    def build(handle):
        entry = handle.create_group("seq/data/v")
        entry["features"] = features
        entry["intervals"] = intervals

    return build


OPEN_ERRORS = {
    "not hdf5": (lambda p: p.write_bytes(b"plain text") or p, "not a readable HDF5"),
    "two roots": (
        lambda p: _h5(p, lambda h: (h.create_group("a/data"), h.create_group("b/data"))),
        "one root",
    ),
    "root is a dataset": (lambda p: _h5(p, lambda h: h.create_dataset("a", data=[1])), "one root"),
    "no data group": (lambda p: _h5(p, lambda h: h.create_group("a/metadata")), "missing group /a/data"),
    "metadata not a dataset": (
        lambda p: _h5(p, lambda h: (h.create_group("a/data"), h.create_group("a/metadata/x"))),
        "metadata entry 'x'",
    ),
}


@pytest.mark.parametrize("case", list(OPEN_ERRORS))
def test_corrupt_file_is_rejected_on_open(tmp_path, case):
    make, message = OPEN_ERRORS[case]
    path = tmp_path / "bad.csd"
    make(path)
    with pytest.raises(DataError, match=message) as err:
        CSD(path)
    assert str(path) in str(err.value)


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(DataError, match="not found"):
        CSD(tmp_path / "absent.csd")


ENTRY_ERRORS = {
    "lacks intervals": (
        lambda h: h.create_group("seq/data/v").create_dataset("features", data=[[1]]),
        "lacks",
    ),
    "entry is a dataset": (lambda h: h.create_group("seq/data").create_dataset("v", data=[1]), "lacks"),
    "intervals not [n, 2]": (_entry(np.zeros((2, 1)), np.zeros((2, 3))), r"shape \(2, 3\), not \[n, 2\]"),
    "rows differ": (_entry(np.zeros((3, 1)), np.zeros((2, 2))), "3 feature rows but 2 intervals"),
    "features 3-d": (_entry(np.zeros((2, 1, 1)), np.zeros((2, 2))), r"features have shape \(2, 1, 1\)"),
}


@pytest.mark.parametrize("case", list(ENTRY_ERRORS))
def test_corrupt_entry_names_file_and_video(tmp_path, case):
    build, message = ENTRY_ERRORS[case]
    path = _h5(tmp_path / "bad.csd", build)
    with CSD(path) as csd:
        for read in (csd.__getitem__, csd.describe, csd.intervals):
            with pytest.raises(DataError, match=message) as err:
                read("v")
            assert str(path) in str(err.value) and "'v'" in str(err.value)


def test_unknown_video_names_file_and_video(tmp_path):
    path = tmp_path / "x.csd"
    write_csd(path, "seq", {"v": Sequence(np.zeros((1, 1)), np.zeros((1, 2)))})
    with CSD(path) as csd, pytest.raises(DataError, match="video 'w' not found") as err:
        csd["w"]
    assert str(path) in str(err.value)


def test_truncated_file_raises_data_error(tmp_path):
    path = tmp_path / "x.csd"
    big = Sequence(np.random.default_rng(0).standard_normal((20000, 8)), np.zeros((20000, 2)))
    write_csd(path, "seq", {"v": big})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=re.escape(str(path))), CSD(path) as csd:
        csd["v"]


def test_real_mosi_label_file(shared_dir):
    """The official CMU-MOSI labels: 93 videos, 2199 segments in [-3, 3], 1284/229/686 with standard folds."""
    folds = mosi_folds(shared_dir)
    with CSD(shared_dir / "data" / "mosi" / "CMU_MOSI_Opinion_Labels.csd") as labels:
        assert len(labels) == 93
        counts = {split: sum(labels.describe(v)[0] for v in videos) for split, videos in folds.items()}
        assert counts == {"train": 1284, "valid": 229, "test": 686}
        values = np.concatenate([labels[v].features[:, 0] for v in labels.videos()])
        assert len(values) == 2199
        assert values.min() == -3.0 and values.max() == 3.0
        assert labels.metadata["root name"].strip('"') == "Opinion Segment Labels"
