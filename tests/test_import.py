"""The `import` stage: MMSA, MAG-BERT and MISA pickles built here round-trip into the aligned contract;
bad input and pickles that ask for code are refused before anything is written."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from pipeline.__main__ import main
from pipeline.data.dataset import SPLITS, load_split, validate_aligned
from pipeline.data.formats import SOURCE_SPLITS
from pipeline.data.import_ import import_dataset
from pipeline.errors import DataError
from pipeline.io import sha256sum

REPO = Path(__file__).resolve().parents[1]


def _dump(obj: object, path: Path, protocol: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def _mmsa_split(
    rng: np.random.Generator, videos: list[str], steps: int = 8, da: int = 5, dv: int = 20
) -> dict:
    """An MMSA split: two clips per video (1-based, as MOSI), features zero after each modality's length."""
    ids = [f"{video}$_${clip}" for video in videos for clip in (1, 2)]
    n = len(ids)
    audio_lengths = rng.integers(1, steps + 1, n)
    vision_lengths = rng.integers(1, steps + 1, n)
    audio = rng.normal(size=(n, steps, da)).astype(np.float32)
    vision = rng.normal(size=(n, steps, dv))  # float64, as some releases store it
    audio[np.arange(steps)[None, :] >= audio_lengths[:, None]] = 0
    vision[np.arange(steps)[None, :] >= vision_lengths[:, None]] = 0
    return {
        "id": np.array(ids, dtype=object),
        "raw_text": np.array([f"words  of {i}" for i in ids], dtype=object),
        "audio": audio,
        "vision": vision,
        "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        "audio_lengths": audio_lengths.tolist(),
        "vision_lengths": vision_lengths,
        "text": np.zeros((n, steps, 768), np.float32)[:, :, :2],  # ignored
        "text_bert": np.zeros((n, 3, steps), np.float32),  # ignored
    }


def _mmsa(rng: np.random.Generator, **kwargs) -> dict:
    return {split: _mmsa_split(rng, [f"{split}{v}" for v in range(3)], **kwargs) for split in SPLITS}


def _segment(rng: np.random.Generator, fmt: str, n: int, segment: str, label: object, dv: int = 47) -> tuple:
    """One MAG or MISA segment of n word-aligned steps."""
    words = [f"w{i}" for i in range(n)]
    visual, acoustic = rng.normal(size=(n, dv)), rng.normal(size=(n, 74)).astype(np.float32)
    if fmt == "mag":
        return (words, visual, acoustic), label, segment
    return (np.arange(n), visual, acoustic, words), label, segment


def _segments(rng: np.random.Generator, fmt: str, prefix: str, lengths=(3, 6, 1)) -> list:
    return [
        _segment(rng, fmt, n, f"{prefix}vid[{k}]", np.array([[rng.uniform(-3, 3)]], np.float32))
        for k, n in enumerate(lengths)
    ]


def _mag(rng: np.random.Generator, path: Path, **kwargs) -> Path:
    return _dump({split: _segments(rng, "mag", split, **kwargs) for split in ("train", "dev", "test")}, path)


def _misa(rng: np.random.Generator, folder: Path, **kwargs) -> Path:
    for split in ("train", "dev", "test"):
        _dump(_segments(rng, "misa", split, **kwargs), folder / f"{split}.pkl")
    return folder


def _read(path: Path) -> dict[str, dict[str, np.ndarray]]:
    return {split: load_split(path, split) for split in SPLITS}


def test_mmsa_round_trip(tmp_path: Path) -> None:
    source = _mmsa(np.random.default_rng(0))
    src = _dump(source, tmp_path / "MOSI" / "Processed" / "unaligned_8.pkl")
    out = tmp_path / "mosi.h5"
    summary = import_dataset("mmsa", src, out, seq_len=8)
    info = validate_aligned(out)
    assert (info["audio_dim"], info["visual_dim"], info["seq_len"], info["dataset"]) == (5, 20, 8, "mosi")
    with h5py.File(out) as handle:
        assert handle.attrs["format"] == "mmsa"
        assert json.loads(handle.attrs["checksums"]) == {src.name: sha256sum(src)}
    assert summary["clip_base"] == 1 and summary["segments"] == {"train": 6, "valid": 6, "test": 6}
    for split, got in _read(out).items():
        want = source[split]
        videos = [i.split("$_$")[0] for i in want["id"]]
        clips = [int(i.split("$_$")[1]) for i in want["id"]]
        assert got["id"].tolist() == [f"{v}[{c - 1}]" for v, c in zip(videos, clips, strict=True)]
        assert got["text"].tolist() == [" ".join(t.split()) for t in want["raw_text"]]
        np.testing.assert_array_equal(got["label"], want["regression_labels"])
        np.testing.assert_array_equal(got["audio"], want["audio"])
        np.testing.assert_allclose(got["visual"], want["vision"], rtol=1e-6)
        assert got["length"].tolist() == np.maximum(want["audio_lengths"], want["vision_lengths"]).tolist()


def test_mmsa_cut_pad_and_lengths_without_lengths(tmp_path: Path) -> None:
    source = _mmsa(np.random.default_rng(1))
    src = _dump(source, tmp_path / "aligned.pkl")
    cuts = import_dataset("mmsa", src, tmp_path / "cut.h5", seq_len=3)["cut"]
    import_dataset("mmsa", src, tmp_path / "pad.h5", seq_len=11)
    cut, pad = load_split(tmp_path / "cut.h5", "test"), load_split(tmp_path / "pad.h5", "test")
    want = source["test"]
    lengths = np.maximum(want["audio_lengths"], want["vision_lengths"])
    np.testing.assert_array_equal(cut["audio"], want["audio"][:, :3])  # the first steps are kept
    assert cut["length"].tolist() == np.minimum(lengths, 3).tolist()
    assert cuts["test"] == (lengths > 3).sum() > 0
    np.testing.assert_array_equal(pad["audio"][:, :8], want["audio"])
    assert not pad["audio"][:, 8:].any() and not pad["visual"][:, 8:].any()  # zero padding at the end
    for split in source.values():
        del split["audio_lengths"], split["vision_lengths"]
    import_dataset("mmsa", _dump(source, tmp_path / "nolengths.pkl"), tmp_path / "inferred.h5", seq_len=8)
    inferred = load_split(tmp_path / "inferred.h5", "test")
    assert inferred["length"].tolist() == lengths.tolist()  # from the trailing all-zero steps


def test_mmsa_clip_numbering(tmp_path: Path) -> None:
    source = _mmsa(np.random.default_rng(2))
    source["train"]["id"][0] = "train0$_$0"  # a 0-based release (clips 0, 2: ids stay unique)
    src = _dump(source, tmp_path / "mosei.pkl")
    assert import_dataset("mmsa", src, tmp_path / "auto.h5")["clip_base"] == 0
    assert load_split(tmp_path / "auto.h5", "train")["id"][:2].tolist() == ["train0[0]", "train0[2]"]
    with pytest.raises(
        DataError, match=r"mosei\.pkl: split 'train' segment 'train0\$_\$0': clip number below"
    ):
        import_dataset("mmsa", src, tmp_path / "one.h5", clip_base=1)
    assert not (tmp_path / "one.h5").exists()


def test_mmsa_clip_numbering_matches_real_mosi_labels(tmp_path: Path, shared_dir: Path) -> None:
    """MOSI's clip ids are 1-based: imported ids must name the labels.csd row that holds the same label."""
    with open(shared_dir / "data/mosi/mosi_text_train_valid.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    source = {}
    for split in SPLITS:
        chosen = [r for r in rows if r["split"] == ("valid" if split == "test" else split)][:200]
        n = len(chosen)
        source[split] = {
            "id": np.array([f"{r['video_id']}$_${r['clip_id']}" for r in chosen], dtype=object),
            "raw_text": np.array([r["text"] for r in chosen], dtype=object),
            "audio": np.ones((n, 2, 5), np.float32),
            "vision": np.ones((n, 2, 20), np.float32),
            "regression_labels": np.array([float(r["label"]) for r in chosen], np.float32),
        }
    source["test"]["id"] = np.array([f"x{i}" for i in source["test"]["id"]], dtype=object)  # no overlap
    import_dataset("mmsa", _dump(source, tmp_path / "mosi.pkl"), tmp_path / "mosi.h5")
    with h5py.File(shared_dir / "data/mosi/CMU_MOSI_Opinion_Labels.csd") as labels:
        data = next(iter(labels.values()))["data"]
        for split in ("train", "valid"):
            got = load_split(tmp_path / "mosi.h5", split)
            for sample, label in zip(got["id"], got["label"], strict=True):
                video, k = sample[:-1].split("[")
                assert data[video]["features"][int(k), 0] == pytest.approx(label, abs=1e-6)


@pytest.mark.parametrize("fmt", ["mag", "misa"])
def test_word_level_round_trip_cut_and_pad(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(3)
    make = _mag if fmt == "mag" else _misa
    src = make(rng, tmp_path / ("mosi.pkl" if fmt == "mag" else "mosi"))
    out = tmp_path / "out.h5"
    assert import_dataset(fmt, src, out, seq_len=4, dataset="custom")["cut"] == dict.fromkeys(SPLITS, 1)
    info = validate_aligned(out)
    assert (info["audio_dim"], info["visual_dim"], info["seq_len"], info["dataset"]) == (74, 47, 4, "custom")
    source = pickle.loads(src.read_bytes()) if fmt == "mag" else None
    for split, got in _read(out).items():
        name = "dev" if split == "valid" else split
        segments = source[name] if fmt == "mag" else pickle.loads((src / f"{name}.pkl").read_bytes())
        assert got["id"].tolist() == [f"{name}vid[{k}]" for k in range(3)]
        assert got["length"].tolist() == [3, 4, 1]  # 6 words cut to 4
        for row, (features, label, _) in enumerate(segments):
            words = features[0] if fmt == "mag" else features[3]
            visual, acoustic, n = features[1], features[2], len(words)
            assert got["text"][row] == " ".join(words)  # the whole transcript
            assert got["label"][row] == np.float32(label[0][0])
            np.testing.assert_array_equal(got["audio"][row, : min(n, 4)], acoustic[:4])
            np.testing.assert_allclose(got["visual"][row, : min(n, 4)], visual[:4], rtol=1e-6)
            assert not got["audio"][row, n:].any() and not got["visual"][row, n:].any()


def test_labels_scalars_arrays_and_mosei_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    data = {split: _segments(rng, "mag", split) for split in ("train", "dev", "test")}
    data["train"][0] = _segment(rng, "mag", 2, "a[0]", 1.5)  # plain float
    data["train"][1] = _segment(rng, "mag", 2, "a[1]", np.float64(-2.0))  # numpy scalar
    data["train"][2] = _segment(rng, "mag", 2, "a[2]", np.array([[0.5, 1, 0, 0, 0, 0, 0]]))  # MOSEI row
    import_dataset("mag", _dump(data, tmp_path / "mosei.pkl"), tmp_path / "out.h5")
    assert load_split(tmp_path / "out.h5", "train")["label"].tolist() == [1.5, -2.0, 0.5]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("CMU_MOSEI/Processed/aligned_50.pkl", "mosei"),
        ("data/mosi.pkl", "mosi"),
        ("MOSI/mosei_copy.pkl", "mosei"),  # the file name first
        ("simson/cmumosi/data.pkl", "imported"),  # whole words only
    ],
)
def test_dataset_name_is_guessed_from_the_path(tmp_path: Path, path: str, name: str) -> None:
    src = _mag(np.random.default_rng(13), tmp_path / "x" / path)
    assert import_dataset("mag", src, tmp_path / "out.h5")["dataset"] == name
    assert validate_aligned(tmp_path / "out.h5")["dataset"] == name


class _Numpy1Pickler(pickle._Pickler):
    """Pickles as numpy 1.x does: its modules are `numpy.core.*` where numpy 2 has `numpy._core.*`."""

    # Python functions (protocol 5's `_frombuffer`) are dispatched to the base class's save_global.
    dispatch = {**pickle._Pickler.dispatch, types.FunctionType: lambda self, obj: self.save_global(obj)}

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = getattr(obj, "__module__", "")
        if not module.startswith("numpy._core."):
            return super().save_global(obj, name)
        module, name = module.replace("numpy._core.", "numpy.core."), name or obj.__qualname__
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("numpy_names", ["numpy._core", "numpy.core"])
def test_pickles_of_numpy_1_and_2_and_every_protocol_load(
    tmp_path: Path, protocol: int, numpy_names: str
) -> None:
    source = _mmsa(np.random.default_rng(5), steps=3)
    if numpy_names == "numpy.core":
        buffer = io.BytesIO()
        _Numpy1Pickler(buffer, protocol=protocol).dump(source)
        raw = buffer.getvalue()
        assert b"numpy._core" not in raw and b"numpy.core.multiarray" in raw
    else:
        raw = pickle.dumps(source, protocol=protocol)
    src = tmp_path / "mosi.pkl"
    src.write_bytes(raw)
    import_dataset("mmsa", src, tmp_path / "out.h5")
    got = load_split(tmp_path / "out.h5", "valid")
    np.testing.assert_array_equal(got["audio"][:, :3], source["valid"]["audio"])
    np.testing.assert_array_equal(got["label"], source["valid"]["regression_labels"])


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Innocent:
    """A harmless class: refused all the same (its module could be anything)."""


@pytest.mark.parametrize("payload", ["system", "class"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    rng = np.random.default_rng(6)
    data = {split: _segments(rng, "mag", split) for split in ("train", "dev", "test")}
    data["test"].append(_Exploit(marker) if payload == "system" else _Innocent())
    src = _dump(data, tmp_path / "mosi.pkl")
    out = tmp_path / "out.h5"
    wanted = "posix.system" if payload == "system" else f"{__name__}._Innocent"
    with pytest.raises(
        DataError, match=rf"mosi\.pkl: refused to unpickle: it asks for the global '{wanted}'"
    ):
        import_dataset("mag", src, out)
    assert not marker.exists() and not out.exists()
    assert main(["import", "mag", str(src), str(out)]) == 2
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("latin1", r"expected a dict of splits, found bytes"),  # admitted: the pickle holds b"abc"
        ("rot13", r"not a readable pickle \(_codecs\.encode with encoding 'rot13'"),
        ("utf-8", r"not a readable pickle \(_codecs\.encode with encoding 'utf-8'"),
    ],
)
def test_codecs_encode_is_admitted_only_for_latin1(tmp_path: Path, encoding: str, message: str) -> None:
    """Protocol 2 stores bytes as `_codecs.encode(text, 'latin1')`; no other codec may be called."""
    name = encoding.encode()
    # PROTO 2, GLOBAL _codecs.encode, BINUNICODE 'abc', BINUNICODE encoding, TUPLE2, REDUCE, STOP
    call = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX" + len(name).to_bytes(4, "little") + name
    src = _write(tmp_path / "src.pkl", call + b"\x86R.")
    with pytest.raises(DataError, match=rf"src\.pkl: {message}"):
        import_dataset("mag", src, tmp_path / "out.h5")


def _mmsa_case(change) -> object:
    def build(tmp_path: Path) -> Path:
        source = _mmsa(np.random.default_rng(7))
        change(source)
        return _dump(source, tmp_path / "src.pkl")

    return build


def _mag_case(change) -> object:
    def build(tmp_path: Path) -> Path:
        rng = np.random.default_rng(8)
        data = {split: _segments(rng, "mag", split) for split in ("train", "dev", "test")}
        change(data, rng)
        return _dump(data, tmp_path / "src.pkl")

    return build


def _set(data: dict, split: str, row: int, entry: tuple) -> None:
    data[split][row] = entry


BAD = {
    "missing split": (
        "mag",
        _mag_case(lambda d, r: d.pop("dev")),
        r"src\.pkl: missing split 'dev' \(splits found: test, train\)",
    ),
    "missing key": (
        "mmsa",
        _mmsa_case(lambda s: s["valid"].pop("vision")),
        r"src\.pkl: split 'valid': missing key 'vision'",
    ),
    "N differs": (
        "mmsa",
        _mmsa_case(lambda s: s["test"].update(vision=s["test"]["vision"][:-1])),
        r"src\.pkl: split 'test': 'vision' has 5 samples, 'id' has 6",
    ),
    "labels N differs": (
        "mmsa",
        _mmsa_case(lambda s: s["test"].update(regression_labels=s["test"]["regression_labels"][:-1])),
        r"split 'test': 'regression_labels' has 5 samples",
    ),
    "ragged mmsa": (
        "mmsa",
        _mmsa_case(lambda s: s["train"].update(audio=[np.zeros((2, 5)), np.zeros((3, 5))] * 3)),
        r"src\.pkl: split 'train': 'audio' is not a numeric array",
    ),
    "words and frames differ": (
        "mag",
        _mag_case(
            lambda d, r: _set(d, "dev", 1, ((["a", "b"], np.zeros((3, 47)), np.zeros((3, 74))), 0.0, "x[1]"))
        ),
        r"src\.pkl: split 'dev' segment 'x\[1\]': 2 words but 3 visual and 3 acoustic rows",
    ),
    "ragged rows": (
        "mag",
        _mag_case(
            lambda d, r: _set(
                d, "dev", 1, ((["a", "b"], [[0.0] * 47, [0.0]], np.zeros((2, 74))), 0.0, "x[1]")
            )
        ),
        r"split 'dev' segment 'x\[1\]': 'visual' is not a numeric array",
    ),
    "dims differ": (
        "mag",
        _mag_case(lambda d, r: _set(d, "train", 2, _segment(r, "mag", 2, "y[2]", 0.0, dv=35))),
        r"split 'train' segment 'y\[2\]': visual features are 35-d, earlier segments 47-d",
    ),
    "NaN label": (
        "mag",
        _mag_case(lambda d, r: _set(d, "test", 0, _segment(r, "mag", 2, "n[0]", np.array([[np.nan]])))),
        r"src\.pkl: split 'test' segment 'n\[0\]': label nan is not a finite value in \[-3, 3\]",
    ),
    "label out of range": (
        "mmsa",
        _mmsa_case(lambda s: s["valid"]["regression_labels"].__setitem__(2, 3.5)),
        r"src\.pkl: split 'valid' segment 'valid1\[0\]': label 3.5 is not a finite value in \[-3, 3\]",
    ),
    "duplicate id": (
        "mag",
        _mag_case(lambda d, r: _set(d, "test", 2, _segment(r, "mag", 2, "trainvid[0]", 0.0))),
        r"split 'test' segment 'trainvid\[0\]': duplicate id \(also in output split 'train'\)",
    ),
    "not a tuple": (
        "mag",
        _mag_case(lambda d, r: _set(d, "train", 1, ("words", 0.0))),
        r"split 'train': entry 1 is not a \(\(words, visual, acoustic\), label, segment\) tuple",
    ),
    "words not strings": (
        "mag",
        _mag_case(
            lambda d, r: _set(d, "train", 1, (([1, 2], np.zeros((2, 47)), np.zeros((2, 74))), 0.0, "w[1]"))
        ),
        r"split 'train' segment 'w\[1\]': words must be strings, found int",
    ),
    "label two rows": (
        "mag",
        _mag_case(lambda d, r: _set(d, "train", 0, _segment(r, "mag", 2, "l[0]", np.zeros((2, 1))))),
        r"segment 'l\[0\]': label has shape \(2, 1\), expected a scalar or one row",
    ),
    "empty split": ("mag", _mag_case(lambda d, r: d.update(test=[])), r"split 'test': has no segments"),
    "not a pickle": (
        "mag",
        lambda tmp_path: _write(tmp_path / "src.pkl", b"\x00 not a pickle"),
        r"not a readable",
    ),
    "unknown format": ("cmu", _mag_case(lambda d, r: None), r"src\.pkl: unknown import format 'cmu'"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, case: str) -> None:
    fmt, build, message = BAD[case]
    src = build(tmp_path)
    out = tmp_path / "out" / "data.h5"
    with pytest.raises(DataError, match=message) as err:
        import_dataset(fmt, src, out)
    assert "\n" not in str(err.value)
    assert main(["import", fmt, str(src), str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: {err.value}"]
    assert not out.exists() and not out.parent.exists()


def test_misa_missing_file_and_file_instead_of_folder(tmp_path: Path) -> None:
    folder = _misa(np.random.default_rng(9), tmp_path / "misa")
    with pytest.raises(DataError, match=r"the misa format reads a folder"):
        import_dataset("misa", folder / "train.pkl", tmp_path / "out.h5")
    (folder / "test.pkl").unlink()
    with pytest.raises(DataError, match=r"misa/test\.pkl: missing split 'test'"):
        import_dataset("misa", folder, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_nonfinite_features_become_zero_and_are_counted(tmp_path: Path, caplog) -> None:
    rng = np.random.default_rng(10)
    data = {split: _segments(rng, "mag", split) for split in ("train", "dev", "test")}
    (_, visual, acoustic), _, _ = data["dev"][1]
    acoustic[0, :3] = [np.nan, np.inf, -np.inf]
    visual[2, 5] = np.nan
    with caplog.at_level(logging.INFO, logger="pipeline.data.import_"):
        summary = import_dataset("mag", _dump(data, tmp_path / "src.pkl"), tmp_path / "out.h5")
    assert summary["nonfinite_values_zeroed"] == {"audio": 3, "visual": 1}
    assert "non-finite feature values zeroed {'audio': 3, 'visual': 1}" in caplog.text
    got = load_split(tmp_path / "out.h5", "valid")
    assert (got["audio"][1, 0, :3] == 0).all() and got["visual"][1, 2, 5] == 0
    np.testing.assert_array_equal(got["audio"][1, 0, 3:], acoustic[0, 3:])


def test_command_line_exit_status_and_one_line(tmp_path: Path) -> None:
    src = _mag(np.random.default_rng(11), tmp_path / "mosi.pkl")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pipeline", "import", "mag", str(src), str(tmp_path / "ok.h5")]
    assert subprocess.run([*command, "--seq-len", "5"], env=env, capture_output=True).returncode == 0
    assert validate_aligned(tmp_path / "ok.h5")["seq_len"] == 5
    bad = subprocess.run(
        [*command[:4], "mmsa", str(src), str(tmp_path / "bad.h5")], env=env, capture_output=True
    )
    assert bad.returncode == 2
    assert bad.stderr.decode().splitlines() == [
        f"error: {src}: missing split 'valid' (splits found: dev, test, train)"
    ]
    assert not (tmp_path / "bad.h5").exists()


def test_the_workflow_schema_offers_every_format() -> None:
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    dataset = schema["properties"]["datasets"]["additionalProperties"]["properties"]
    assert set(dataset["format"]["enum"]) == set(SOURCE_SPLITS)
    assert "import" in dataset["source"]["enum"]


@pytest.mark.slow
def test_training_accepts_an_imported_file_with_mmsa_dims(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    source = {
        split: _mmsa_split(rng, [f"{split}{v}" for v in range(6)], steps=6) for split in SPLITS
    }  # 12 segments per split, 5-d audio, 20-d visual
    src = _dump(source, tmp_path / "mosi" / "aligned_6.pkl")
    data = tmp_path / "mosi.h5"
    assert main(["import", "mmsa", str(src), str(data), "--seq-len", "6"]) == 0
    run_dir = tmp_path / "run"
    sets = ["model.language_model=tiny", "model.lm_mode=frozen", "train.epochs=1", "train.batch_size=4"]
    assert main(["train", "--data", str(data), "--out", str(run_dir), *(f"--set={s}" for s in sets)]) == 0
    train = json.loads((run_dir / "train.json").read_text())
    assert train["epochs_run"] == 1 and (train["n_train"], train["n_valid"]) == (12, 12)
    assert np.isfinite(train["best_valid"]["mae"])
