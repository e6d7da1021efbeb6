"""Alignment semantics on hand-built intervals, the output layout, and every bad input.

Raw dataset folders are built with `pipeline.devtools.raw` (`frames`, `irregular`, `write_raw`), which the SDK
oracle test and benchmarks/align.py share.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import mosi_folds

from pipeline.__main__ import main
from pipeline.data.align import align_dataset
from pipeline.data.csd import CSD, Sequence, write_csd
from pipeline.devtools.raw import frames, generate_raw, irregular, read_aligned, write_raw
from pipeline.errors import DataError
from pipeline.io import sha256sum

# --- alignment semantics -------------------------------------------------------------------------------


def test_word_feature_is_plain_average_of_frames_intersecting_beyond_epsilon(tmp_path):
    # word [1, 2]; frame A overlaps it by 0.5 ms and E starts 0.9 ms after its end: both pass the SDK's
    # intersection test but their clipped pieces are <= eps, so only B, C, D (2 ms overlap) count.
    covarep = irregular(
        [
            (0.5, 1.0005, [100.0, 1.0]),  # A
            (1.0005, 1.5, [2.0, 1.0]),  # B
            (1.5, 1.998, [4.0, 2.0]),  # C
            (1.998, 2.5, [6.0, 6.0]),  # D
            (2.0009, 3.0, [500.0, 1.0]),  # E
            (3.0, 4.0, [700.0, 1.0]),  # F
        ]
    )
    raw = write_raw(
        tmp_path / "toy",
        words={"v": [("hello", 1.0, 2.0)]},
        labels={"v": [(1.5, 0.0, 4.0)]},
        covarep={"v": covarep},
        facet={"v": frames([7.0], start=0.0, step=10.0)},
    )
    align_dataset(raw, tmp_path / "out.h5", seq_len=2)
    train = read_aligned(tmp_path / "out.h5")["train"]
    np.testing.assert_allclose(train["audio"][0], [[4.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(train["visual"][0], [[7.0], [0.0]])
    assert train["text"].tolist() == ["hello"]
    assert train["length"].tolist() == [1]
    assert train["label"].tolist() == [1.5]


def test_segments_words_sp_zero_length_and_boundaries(tmp_path):
    words = [
        ("a", 0.2, 0.8),
        ("b", 1.2, 1.8),  # straddles the boundary at 1.5: in both segments, with its whole-word average
        ("sp", 1.8, 1.9),
        ("z", 2.0, 2.0),  # zero length: dropped
        ("tiny", 2.1, 2.1005),  # shorter than eps: dropped
        ("c", 2.2, 2.5),
        ("d", 3.0, 3.4),  # touches segment 1 only at its end (3.0): zero-length piece, not in it
    ]
    # one frame per 0.1 s with value = 10 * start time
    covarep = frames(np.arange(40) * 1.0, start=0.0, step=0.1)
    raw = write_raw(
        tmp_path / "toy",
        words={"v": words},
        labels={"v": [(1.0, 0.0, 1.5), (-2.0, 1.5, 3.0), (0.5, 3.5, 3.5), (0.0, 3.6, 3.9)]},
        covarep={"v": covarep},
        facet={"v": frames(np.ones(10), step=1.0)},
    )
    summary = align_dataset(raw, tmp_path / "out.h5", seq_len=4)
    train = read_aligned(tmp_path / "out.h5")["train"]
    # segment 2 has zero length, segment 3 holds no word (d ends at 3.4): both dropped
    assert train["id"].tolist() == ["v[0]", "v[1]"]
    assert train["text"].tolist() == ["a b", "b c"]
    assert train["length"].tolist() == [2, 2]
    np.testing.assert_allclose(train["label"], [1.0, -2.0])
    # a: frames 2..7 (starts 0.2..0.7) -> mean 4.5; b: frames 12..17 -> 14.5; c: frames 22..24 -> 23
    np.testing.assert_allclose(train["audio"][:, :, 0], [[4.5, 14.5, 0, 0], [14.5, 23.0, 0, 0]], atol=1e-5)
    assert summary["sp_dropped"] == 1
    assert summary["zero_length_words"] == 2
    assert summary["segments_dropped"] == {"zero_length": 1, "no_words": 1}
    assert summary["segments"] == {"train": 2, "valid": 1, "test": 1}  # valid, test: write_raw's fillers
    assert summary["words_kept"] == 4 + 2  # and the fillers' two words


def test_nonfinite_values_are_zeroed_before_averaging(tmp_path):
    raw = write_raw(
        tmp_path / "toy",
        words={"v": [("x", 0.0, 2.0)]},
        labels={"v": [(0.0, 0.0, 2.0)]},
        covarep={"v": frames([[1.0, -np.inf], [3.0, 5.0]])},
        facet={"v": frames([[np.nan, np.nan], [4.0, 8.0]])},
    )
    summary = align_dataset(raw, tmp_path / "out.h5", seq_len=1)
    train = read_aligned(tmp_path / "out.h5")["train"]
    np.testing.assert_allclose(train["audio"][0, 0], [2.0, 2.5])
    np.testing.assert_allclose(train["visual"][0, 0], [2.0, 4.0])
    assert summary["nonfinite_values_zeroed"] == {"covarep.csd": 1, "facet.csd": 2}
    assert summary["nonfinite_frames"] == {"covarep.csd": 1, "facet.csd": 1}


def test_word_without_frames_gets_zeros(tmp_path):
    raw = write_raw(
        tmp_path / "toy",
        words={"v": [("early", 0.0, 1.0), ("late", 5.0, 6.0)]},
        labels={"v": [(0.0, 0.0, 6.0)]},
        covarep={"v": frames([2.0, 4.0], step=0.5)},  # frames end at 1.0
        facet={"v": frames([1.0] * 6)},
    )
    summary = align_dataset(raw, tmp_path / "out.h5", seq_len=2)
    train = read_aligned(tmp_path / "out.h5")["train"]
    np.testing.assert_allclose(train["audio"][0, :, 0], [3.0, 0.0])
    np.testing.assert_allclose(train["visual"][0, :, 0], [1.0, 1.0])
    assert summary["words_imputed"] == {"covarep.csd": 1, "facet.csd": 0}


def test_words_and_frames_out_of_file_order_are_taken_in_time_order(tmp_path, monkeypatch):
    """Unsorted words and frames, and the block-wise pair search, give the same output as sorted input."""
    words = [("c", 2.0, 3.0), ("a", 0.0, 1.0), ("b", 1.0, 2.0)]
    audio = frames(np.arange(12.0).reshape(6, 2), step=0.5)
    order = np.array([3, 0, 5, 1, 4, 2])
    shuffled = Sequence(audio.features[order], audio.intervals[order])
    for name, seq in (("sorted", audio), ("shuffled", shuffled)):
        write_raw(
            tmp_path / name,
            words={"v": words},
            labels={"v": [(0.0, 0.0, 3.0)]},
            covarep={"v": seq},
            facet={"v": frames([1.0, 2.0, 3.0])},
        )
    align_dataset(tmp_path / "sorted", tmp_path / "sorted.h5", seq_len=3)
    align_dataset(tmp_path / "shuffled", tmp_path / "shuffled.h5", seq_len=3)
    monkeypatch.setattr("pipeline.data.align._PAIR_BUDGET", 2)  # force many small blocks
    align_dataset(tmp_path / "shuffled", tmp_path / "blocks.h5", seq_len=3)
    expected = read_aligned(tmp_path / "sorted.h5")["train"]
    assert expected["text"].tolist() == ["a b c"]
    # word a covers frames 0, 1 -> ((0 + 2) / 2, (1 + 3) / 2); b frames 2, 3; c frames 4, 5
    np.testing.assert_allclose(expected["audio"][0], [[1.0, 2.0], [5.0, 6.0], [9.0, 10.0]])
    np.testing.assert_allclose(expected["visual"][0, :, 0], [1.0, 2.0, 3.0])
    for other in ("shuffled.h5", "blocks.h5"):
        got = read_aligned(tmp_path / other)["train"]
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])


def test_video_left_with_no_segment_adds_no_row(tmp_path):
    """A video whose every segment is dropped (only `sp` in it) contributes nothing; the others align."""
    raw = write_raw(
        tmp_path / "toy",
        words={"a": [("x", 0.0, 1.0)], "b": [("sp", 0.0, 1.0)]},
        labels={"a": [(1.0, 0.0, 1.0)], "b": [(0.5, 0.0, 1.0)]},
        covarep={v: frames([1.0, 2.0]) for v in "ab"},
        facet={v: frames([3.0, 4.0]) for v in "ab"},
        folds={"train": ["b", "a"], "valid": [], "test": []},
    )
    summary = align_dataset(raw, tmp_path / "out.h5", seq_len=2)
    train = read_aligned(tmp_path / "out.h5")["train"]
    assert train["id"].tolist() == ["a[0]"] and train["text"].tolist() == ["x"]
    np.testing.assert_allclose(train["audio"][0, :, 0], [1.0, 0.0])
    assert summary["segments_dropped"] == {"zero_length": 0, "no_words": 1}


def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch):
    """A bar over videos is drawn on a terminal; elsewhere none is built."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    raw = _two_videos(tmp_path / "toy")
    for stream in (Terminal(), io.StringIO()):
        monkeypatch.setattr("sys.stderr", stream)
        align_dataset(raw, tmp_path / "out.h5", seq_len=2)
        drawn = stream.getvalue()
        assert ("align: 100%" in drawn and "4/4" in drawn) == isinstance(stream, Terminal), drawn


def test_writes_in_small_buffers_give_the_same_file(tmp_path, monkeypatch):
    """Flushing every few rows, and growing the buffers for a video with more segments than they hold,
    writes the same datasets as one large buffer."""
    raw = generate_raw(tmp_path / "raw", videos=4, segments=5, words=4, audio_dim=3, visual_dim=2)
    align_dataset(raw, tmp_path / "one.h5", seq_len=6)
    monkeypatch.setattr("pipeline.data.align._FLUSH_ROWS", 3)
    align_dataset(raw, tmp_path / "many.h5", seq_len=6)
    expected, got = read_aligned(tmp_path / "one.h5"), read_aligned(tmp_path / "many.h5")
    assert len(expected["train"]["id"]) > 3  # several writes, each video larger than a buffer
    for split in expected:
        for key in expected[split]:
            np.testing.assert_array_equal(got[split][key], expected[split][key])


def _two_videos(raw: Path, facet_videos: tuple[str, ...] = ("v1", "v2")) -> Path:
    """Two small videos (v1: 5 words, v2: 2 words); FACET entries only for `facet_videos`."""
    words = {
        "v1": [(f"w{i}", float(i), i + 1.0) for i in range(5)],
        "v2": [("hi", 0.0, 1.0), ("there", 1.0, 2.0)],
    }
    return write_raw(
        raw,
        words=words,
        labels={"v1": [(2.0, 0.0, 5.0)], "v2": [(-1.0, 0.0, 2.0), (3.0, 0.0, 1.0)]},
        covarep={v: frames(np.arange(5.0 * 2).reshape(5, 2)) for v in words},
        facet={v: frames(np.full((5, 3), 2.0)) for v in facet_videos},
        folds={"train": ["v2", "v1"], "valid": [], "test": []},
    )


def test_video_missing_from_facet_gets_zeros_and_a_warning(tmp_path, caplog):
    raw = _two_videos(tmp_path / "toy", facet_videos=("v1",))
    with caplog.at_level(logging.WARNING, logger="pipeline.data.align"):
        summary = align_dataset(raw, tmp_path / "out.h5", seq_len=5)
    train = read_aligned(tmp_path / "out.h5")["train"]
    assert train["id"].tolist() == ["v2[0]", "v2[1]", "v1[0]"]
    assert not train["visual"][:2].any()
    np.testing.assert_allclose(train["visual"][2], 2.0)
    assert summary["videos_missing"] == {"covarep.csd": [], "facet.csd": ["v2"]}
    assert summary["words_imputed"] == {"covarep.csd": 0, "facet.csd": 3}
    warning = next(r.getMessage() for r in caplog.records if "'v2'" in r.getMessage())
    assert "facet.csd" in warning and "3 aligned words" in warning


def test_strict_rejects_a_video_missing_from_facet(tmp_path):
    raw = _two_videos(tmp_path / "toy", facet_videos=("v1",))
    with pytest.raises(DataError, match=r"facet\.csd.*'v2'"):
        align_dataset(raw, tmp_path / "out" / "a.h5", strict=True)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _unify_case(raw: Path) -> Path:
    """As real MOSEI: a fold video with no labels ('ghost', test), one with no words ('v2', train), one with
    no frames at all ('v3', test) and a labelled video in no fold ('v4'); v1 (train), v5 (valid) and v6
    (test) are complete."""
    complete = ("v1", "v5", "v6")
    words = {v: [("a", 0.0, 1.0), ("b", 1.0, 2.0)] for v in (*complete, "v3", "v4")}
    return write_raw(
        raw,
        words=words,
        labels={v: [(1.0, 0.0, 2.0)] for v in (*complete, "v2", "v3", "v4")},
        covarep={v: frames(np.ones((2, 2))) for v in (*complete, "v2", "v4")},
        facet={v: frames(np.ones((2, 3))) for v in (*complete, "v4")},
        folds={"train": ["v1", "v2"], "valid": ["v5"], "test": ["ghost", "v3", "v6"]},
    )


def test_fold_videos_without_data_are_dropped_with_one_warning_like_hard_unify(tmp_path, caplog):
    raw = _unify_case(tmp_path / "toy")
    with caplog.at_level(logging.WARNING, logger="pipeline.data.align"):
        summary = align_dataset(raw, tmp_path / "out.h5", seq_len=4)
    aligned = read_aligned(tmp_path / "out.h5")
    assert [aligned[s]["id"].tolist() for s in ("train", "valid", "test")] == [
        ["v1[0]"],
        ["v5[0]"],
        ["v6[0]"],
    ]
    assert summary["videos_dropped"] == {
        "v2": "words.csd",
        "ghost": "labels.csd",
        "v3": "covarep.csd nor facet.csd",
    }
    assert summary["videos_in_no_fold"] == ["v4"]
    dropped = [r.getMessage() for r in caplog.records if "dropped 3 fold video(s)" in r.getMessage()]
    assert len(dropped) == 1
    assert all(f"'{v}'" in dropped[0] for v in ("ghost", "v2", "v3"))
    assert "'ghost' (test; not in labels.csd)" in dropped[0]
    unassigned = [r.getMessage() for r in caplog.records if "in no fold" in r.getMessage()]
    assert len(unassigned) == 1 and unassigned[0].startswith("1 labelled video(s)") and "v4" in unassigned[0]


def test_a_fold_left_empty_by_the_dropping_is_an_error(tmp_path):
    raw = _unify_case(tmp_path / "toy")
    (raw / "folds.json").write_text(json.dumps({"train": ["v1"], "valid": ["v5"], "test": ["ghost", "v3"]}))
    with pytest.raises(DataError, match="fold 'test' has no video left"):
        align_dataset(raw, tmp_path / "out" / "a.h5")


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ({"test": ["v6", "ghost"]}, ["'ghost'", "'test'", "labels.csd", "--strict"]),
        ({"train": ["v1", "v2"]}, ["'v2'", "words.csd", "--strict"]),
        ({"train": ["v1", "v3"]}, ["'v3'", "covarep.csd nor", "facet.csd"]),
        ({}, ["labels.csd", "3 labelled video(s) are in no fold", "v2, v3, v4"]),
    ],
)
def test_strict_turns_dropped_and_unassigned_videos_into_errors(tmp_path, extra, fragments):
    raw = _unify_case(tmp_path / "toy")
    folds = {"train": ["v1"], "valid": ["v5"], "test": ["v6"], **extra}
    (raw / "folds.json").write_text(json.dumps(folds))
    with pytest.raises(DataError) as err:
        align_dataset(raw, tmp_path / "out" / "a.h5", strict=True)
    assert all(fragment in str(err.value) for fragment in fragments), str(err.value)
    assert not (tmp_path / "out").exists()


def test_truncation_keeps_the_first_words_and_pads_with_zeros(tmp_path):
    raw = _two_videos(tmp_path / "toy")
    align_dataset(raw, tmp_path / "short.h5", seq_len=3)
    align_dataset(raw, tmp_path / "long.h5", seq_len=7)
    short, long = read_aligned(tmp_path / "short.h5")["train"], read_aligned(tmp_path / "long.h5")["train"]
    assert short["text"][2] == "w0 w1 w2" and long["text"][2] == "w0 w1 w2 w3 w4"
    assert short["length"].tolist() == [2, 1, 3] and long["length"].tolist() == [2, 1, 5]
    # word i of v1 covers frame i exactly: features (2i, 2i + 1)
    expected = np.array([[2 * i, 2 * i + 1] for i in range(5)] + [[0, 0]] * 2, dtype=np.float32)
    np.testing.assert_allclose(long["audio"][2], expected)
    np.testing.assert_allclose(short["audio"][2], expected[:3])
    assert not long["visual"][0, 2:].any() and long["visual"][0, :2].all()


def test_output_layout_dtypes_and_attributes(tmp_path):
    raw = _two_videos(tmp_path / "mydata")
    (raw / "folds.json").write_text(json.dumps({"train": ["v1"], "valid": ["v2"], "test": ["filler_test"]}))
    out = tmp_path / "aligned" / "mydata.h5"
    align_dataset(raw, out, seq_len=6)
    assert [p.name for p in out.parent.iterdir()] == ["mydata.h5"]  # no temporary file left
    with h5py.File(out, "r") as handle:
        assert set(handle) == {"train", "valid", "test"}
        assert handle.attrs["seq_len"] == 6
        assert handle.attrs["audio_dim"] == 2 and handle.attrs["visual_dim"] == 3
        assert handle.attrs["dataset"] == "mydata"
        checksums = json.loads(handle.attrs["checksums"])
        expected = ["covarep.csd", "facet.csd", "folds.json", "labels.csd", "words.csd"]
        assert sorted(checksums) == expected
        assert checksums["words.csd"] == sha256sum(raw / "words.csd")
        for split, n in (("train", 1), ("valid", 2), ("test", 1)):
            group = handle[split]
            assert set(group) == {"id", "label", "text", "audio", "visual", "length"}
            assert h5py.check_string_dtype(group["id"].dtype) and h5py.check_string_dtype(group["text"].dtype)
            assert group["label"].dtype == np.float32 and group["label"].shape == (n,)
            assert group["audio"].dtype == np.float32 and group["audio"].shape == (n, 6, 2)
            assert group["visual"].dtype == np.float32 and group["visual"].shape == (n, 6, 3)
            assert group["length"].dtype == np.int64 and group["length"].shape == (n,)
        assert handle["valid"]["id"].asstr()[()].tolist() == ["v2[0]", "v2[1]"]


def test_real_mosi_labels_align_with_the_standard_folds(tmp_path, shared_dir):
    """The real label file, one synthetic word per segment: every segment but the zero-length one aligns."""
    source = shared_dir / "data" / "mosi" / "CMU_MOSI_Opinion_Labels.csd"
    raw = tmp_path / "mosi"
    raw.mkdir()
    (raw / "labels.csd").write_bytes(source.read_bytes())
    folds = mosi_folds(shared_dir)
    (raw / "folds.json").write_text(json.dumps(folds))
    with CSD(raw / "labels.csd") as labels:
        segments = {video: labels[video].intervals for video in labels.videos()}
    middle = {v: iv.mean(axis=1, keepdims=True) + [[-0.01, 0.01]] for v, iv in segments.items()}
    words = {v: Sequence(np.full((len(m), 1), b"ok"), m) for v, m in middle.items()}
    ends = {v: iv.max() + 1 for v, iv in segments.items()}
    write_csd(raw / "words.csd", "words", words)
    write_csd(raw / "covarep.csd", "covarep", {v: frames(np.ones((1, 74)), step=e) for v, e in ends.items()})
    write_csd(raw / "facet.csd", "facet", {v: frames(np.ones((1, 47)), step=e) for v, e in ends.items()})
    summary = align_dataset(raw, tmp_path / "mosi.h5")
    zero = "2WGyTLYerpo"  # its segment 43 has zero length: the SDK's rule drops it
    fold_of_zero = next(split for split, videos in folds.items() if zero in videos)
    expected = {"train": 1284, "valid": 229, "test": 686}
    expected[fold_of_zero] -= 1
    assert summary["segments"] == expected
    assert summary["segments_dropped"] == {"zero_length": 1, "no_words": 0}


# --- bad input -------------------------------------------------------------------------------------------


def _drop_video(name: str, video: str):
    def corrupt(raw: Path) -> None:
        with CSD(raw / name) as csd:
            kept = {v: csd[v] for v in csd.videos() if v != video}
            root = csd.root
        write_csd(raw / name, root, kept)

    return corrupt


def _replace_video(name: str, video: str, seq: Sequence):
    def corrupt(raw: Path) -> None:
        with CSD(raw / name) as csd:
            data = {v: csd[v] for v in csd.videos()}
            root = csd.root
        data[video] = seq
        write_csd(raw / name, root, data)

    return corrupt


def _write(name: str, text: str):
    def corrupt(raw: Path) -> None:
        (raw / name).write_text(text)

    return corrupt


def _no_data_group(raw: Path) -> None:
    with h5py.File(raw / "labels.csd", "w") as handle:
        handle.create_group("labels").create_group("metadata")


BAD_INPUTS = {
    "missing words.csd": (lambda raw: (raw / "words.csd").unlink(), ["words.csd", "not found"]),
    "covarep not HDF5": (_write("covarep.csd", "not hdf5"), ["covarep.csd", "HDF5"]),
    "labels without data group": (_no_data_group, ["labels.csd", "data"]),
    "features and intervals differ": (
        _replace_video("covarep.csd", "v1", Sequence(np.zeros((4, 2)), np.zeros((3, 2)))),
        ["covarep.csd", "'v1'", "4 feature rows but 3 intervals"],
    ),
    "missing folds.json": (lambda raw: (raw / "folds.json").unlink(), ["folds.json", "not found"]),
    "malformed folds.json": (_write("folds.json", "{train: "), ["folds.json", "JSON"]),
    "folds without test": (_write("folds.json", '{"train": ["v1"], "valid": []}'), ["folds.json", "test"]),
    "video in two folds": (
        _write("folds.json", '{"train": ["v1"], "valid": [], "test": ["v1"]}'),
        ["folds.json", "'v1'", "'train'", "'test'"],
    ),
    "label out of range": (
        _replace_video("labels.csd", "v2", Sequence(np.array([[1.0], [3.5]]), np.array([[0, 1], [1, 2.0]]))),
        ["labels.csd", "'v2'", "segment 1", "3.5"],
    ),
    "label NaN": (
        _replace_video("labels.csd", "v1", Sequence(np.array([[np.nan]]), np.array([[0, 1.0]]))),
        ["labels.csd", "'v1'", "nan"],
    ),
    "inconsistent audio dims": (
        _replace_video("covarep.csd", "v1", frames(np.zeros((5, 3)))),
        ["covarep.csd", "'v1'", "3-d", "2-d"],
    ),
    "non-finite frame interval": (
        _replace_video("facet.csd", "v1", Sequence(np.zeros((2, 3)), np.array([[0, 1], [1, np.nan]]))),
        ["facet.csd", "'v1'", "row 1"],
    ),
    "numeric words": (
        _replace_video("words.csd", "v2", Sequence(np.zeros((1, 1)), np.array([[0, 1.0]]))),
        ["words.csd", "'v2'", "strings"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_one_clear_error_and_writes_nothing(tmp_path, case):
    corrupt, fragments = BAD_INPUTS[case]
    raw = _two_videos(tmp_path / "toy")
    corrupt(raw)
    out = tmp_path / "out" / "toy.h5"
    with pytest.raises(DataError) as err:
        align_dataset(raw, out)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_cli_aligns_and_returns_2_on_bad_input(tmp_path, capsys):
    raw = _two_videos(tmp_path / "toy")
    out = tmp_path / "toy.h5"
    assert main(["align", str(raw), str(out), "--seq-len", "4"]) == 0
    assert read_aligned(out)["train"]["audio"].shape == (3, 4, 2)
    _drop_video("facet.csd", "v2")(raw)
    assert main(["align", str(raw), str(tmp_path / "strict.h5"), "--strict"]) == 2
    assert "facet.csd" in capsys.readouterr().err
    assert not (tmp_path / "strict.h5").exists()
    assert main(["align", str(raw), str(tmp_path / "zero.h5"), "--seq-len", "0"]) == 2
    assert "seq_len" in capsys.readouterr().err
