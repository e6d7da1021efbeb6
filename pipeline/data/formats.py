"""The three pickle layouts the importers read, shaped into the aligned contract's arrays (docs/data.md).

- `mmsa`: thuiar/MMSA's `aligned_50.pkl` / `unaligned_50.pkl`, one pickle `{train, valid, test}`, each a dict
  of arrays (`id` = `"<video>$_$<clip>"`, `raw_text`, `audio` [N, T, Da], `vision` [N, T, Dv],
  `regression_labels` [N], optional `audio_lengths` / `vision_lengths`; `text` / `text_bert` are ignored:
  the pipeline tokenises the raw text itself).
- `mag`: MAG-BERT's `mosi.pkl` / `mosei.pkl`, one pickle `{train, dev, test}`, each a list of
  `((words, visual [n, Dv], acoustic [n, Da]), label, segment)`.
- `misa`: MISA's folder of `train.pkl`, `dev.pkl`, `test.pkl`, each a list of
  `((word_ids, visual [n, Dv], acoustic [n, Da], words), label, segment)`.

Sequences keep their first `seq_len` steps and are zero-padded at the end (as `align` does); `length` is the
steps kept. A label array gives its first value (column 0 of the CMU labels, the sentiment). Ids: MAG and
MISA segments are already `"<video>[<k>]"` (k the 0-based labels row); an MMSA clip number c becomes
k = c - base, base 1 (MOSI's 1-based numbering: clip c is labels row c - 1) unless some clip is numbered 0.
Malformed input raises a one-line `DataError` naming the file, the split and the segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.dataset import SPLITS
from pipeline.data.pickles import load_pickle
from pipeline.errors import DataError
from pipeline.io import background_checksums

SOURCE_SPLITS = {"mmsa": ("train", "valid", "test"), "mag": ("train", "dev", "test")}
SOURCE_SPLITS["misa"] = SOURCE_SPLITS["mag"]
LAYOUTS = {  # one segment of a mag / misa split
    "mag": "((words, visual, acoustic), label, segment)",
    "misa": "((word_ids, visual, acoustic, words), label, segment)",
}
_MMSA_ID = re.compile(r"^(?P<video>.+)\$_\$(?P<clip>\d+)$")


@dataclass
class Where:
    """Where an input came from, for error messages: file, source split, segment."""

    path: Path
    split: str

    def error(self, problem: str, segment: object = None) -> DataError:
        at = f" segment '{segment}'" if segment is not None else ""
        return DataError(f"{self.path}: split '{self.split}'{at}: {problem}")


@dataclass
class Split:
    """One split in the output layout, before the checks common to every format."""

    where: Where
    ids: list[str]
    texts: list[str]
    labels: np.ndarray  # float64 [N]
    audio: np.ndarray  # float32 [N, seq_len, Da]
    visual: np.ndarray  # float32 [N, seq_len, Dv]
    length: np.ndarray  # int64 [N]
    cut: int  # segments longer than seq_len


def _features(where: Where, value: object, ndim: int, what: str, segment: object = None) -> np.ndarray:
    """A numeric feature array of `ndim` dimensions as float32 (an empty sequence may be shape (0,))."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise where.error(f"'{what}' is not a numeric array ({err})", segment) from None
    if array.size == 0 and ndim == 2:
        return array.reshape(0, array.shape[-1] if array.ndim == 2 else 0)
    if array.ndim != ndim:
        raise where.error(f"'{what}' has shape {array.shape}, expected {ndim} dimensions", segment)
    return array


def _fit(array: np.ndarray, seq_len: int) -> np.ndarray:
    """[N, T, D] -> [N, seq_len, D]: the first seq_len steps, zero-padded at the end."""
    if array.shape[1] >= seq_len:
        return array[:, :seq_len]
    return np.pad(array, ((0, 0), (0, seq_len - array.shape[1]), (0, 0)))


def _printable(value: str | bytes) -> str:
    """`value` with undecodable bytes and lone surrogates as backslash escapes, for an error message."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _utf8(where: Where, value: object, what: str, segment: object = None) -> str:
    """`value` (str or bytes; anything else by `str`) as a string HDF5 can store: valid UTF-8, no lone
    surrogates. Otherwise one line naming the segment (the value itself, escaped, for an id)."""
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        text.encode("utf-8")
    except UnicodeError as err:
        shown = _printable(value if isinstance(value, bytes) else str(value))
        raise where.error(
            f"{what} is not valid UTF-8 ({err.reason} at position {err.start})",
            _printable(segment) if isinstance(segment, str | bytes) else shown,
        ) from None
    return text


def _text(where: Where, value: object, segment: object) -> str:
    """A transcript (str or bytes, or a sequence of words) as words joined by single spaces."""
    words = [value] if isinstance(value, str | bytes | np.str_ | np.bytes_) else value
    try:
        decoded = [_utf8(where, w, "text", segment) if isinstance(w, str | bytes) else w for w in words]
    except TypeError as err:
        raise where.error(f"text is not UTF-8 strings ({err})", segment) from None
    if not all(isinstance(w, str) for w in decoded):
        kinds = sorted({type(w).__name__ for w in decoded if not isinstance(w, str)})
        raise where.error(f"words must be strings, found {', '.join(kinds)}", segment)
    return " ".join(" ".join(decoded).split())


def _label(where: Where, value: object, segment: object) -> float:
    """A scalar, or an array with one row (`[[x]]`, MOSEI's `[[x, ...]]`): its first value."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise where.error(f"label is not numeric ({err})", segment) from None
    if array.size == 0 or (array.ndim >= 2 and array.shape[0] != 1):
        raise where.error(f"label has shape {array.shape}, expected a scalar or one row", segment)
    return float(array.reshape(-1)[0])


def _mmsa_split(where: Where, data: object, seq_len: int) -> Split:
    """One MMSA split (a dict of arrays over N samples)."""
    if not isinstance(data, dict):
        raise where.error(f"expected a dict of arrays, found {type(data).__name__}")
    for key in ("id", "raw_text", "audio", "vision", "regression_labels"):
        if key not in data:
            raise where.error(f"missing key '{key}' (keys: {', '.join(sorted(map(str, data)))})")
    ids = [_utf8(where, v, "id") for v in np.asarray(data["id"]).reshape(-1)]
    n = len(ids)
    audio = _features(where, data["audio"], 3, "audio")
    visual = _features(where, data["vision"], 3, "vision")
    try:
        labels = np.asarray(data["regression_labels"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise where.error(f"'regression_labels' is not numeric ({err})") from None
    raw_text = np.asarray(data["raw_text"], dtype=object).reshape(-1)
    counts = {
        "raw_text": len(raw_text),
        "audio": len(audio),
        "vision": len(visual),
        "regression_labels": len(labels),
    }
    for key, count in counts.items():
        if count != n:
            raise where.error(f"'{key}' has {count} samples, 'id' has {n}")
    texts = [_text(where, raw_text[i], ids[i]) for i in range(n)]
    lengths = []
    for key, array in (("audio_lengths", audio), ("vision_lengths", visual)):
        if key in data:
            given = np.asarray(data[key]).reshape(-1)
            if len(given) != n or given.dtype.kind not in "iuf":
                raise where.error(
                    f"'{key}' must be {n} non-negative numbers, found {given.dtype} {given.shape}"
                )
            bad = np.flatnonzero(~np.isfinite(given) | (given < 0))
            if bad.size:  # NaN would become -2**63 as an integer
                raise where.error(f"'{key}' is {given[bad[0]]}, not a non-negative number", ids[bad[0]])
            lengths.append(np.minimum(given.astype(np.int64), array.shape[1]))
    if not lengths:  # no lengths given: the steps up to the last one with any non-zero feature
        steps = (audio != 0).any(axis=2) | (visual != 0).any(axis=2)
        lengths.append(np.where(steps.any(axis=1), steps.shape[1] - steps[:, ::-1].argmax(axis=1), 0))
    length = np.max(lengths, axis=0)
    return Split(
        where,
        ids,
        texts,
        labels,
        _fit(audio, seq_len),
        _fit(visual, seq_len),
        np.minimum(length, seq_len),
        int((length > seq_len).sum()),
    )


def _segments_split(where: Where, data: object, seq_len: int, fmt: str) -> Split:
    """One MAG or MISA split: a list of per-segment tuples of word-aligned [n, D] sequences."""
    if not isinstance(data, list | tuple):
        raise where.error(f"expected a list of segments, found {type(data).__name__}")
    ids, texts, labels, audio, visual = [], [], [], [], []
    for index, entry in enumerate(data):
        if not (
            isinstance(entry, list | tuple)
            and len(entry) == 3
            and isinstance(entry[0], list | tuple)
            and len(entry[0]) == (3 if fmt == "mag" else 4)
        ):
            raise where.error(f"entry {index} is not a {LAYOUTS[fmt]} tuple")
        features, label, segment = entry
        segment = _utf8(where, segment, "segment name")
        words = features[0] if fmt == "mag" else features[3]
        if not isinstance(words, list | tuple | np.ndarray):
            raise where.error(f"words must be a list of strings, found {type(words).__name__}", segment)
        v = _features(where, features[1], 2, "visual", segment)
        a = _features(where, features[2], 2, "acoustic", segment)
        if not len(v) == len(a) == len(words):
            raise where.error(
                f"{len(words)} words but {len(v)} visual and {len(a)} acoustic rows (not word-aligned)",
                segment,
            )
        ids.append(segment)
        texts.append(_text(where, list(words), segment))
        labels.append(_label(where, label, segment))
        visual.append(v)
        audio.append(a)
    return Split(
        where,
        ids,
        texts,
        np.asarray(labels, dtype=np.float64),
        _stack(where, audio, ids, "acoustic", seq_len),
        _stack(where, visual, ids, "visual", seq_len),
        np.array([min(len(a), seq_len) for a in audio], dtype=np.int64),
        sum(len(a) > seq_len for a in audio),
    )


def _stack(where: Where, sequences: list[np.ndarray], ids: list[str], what: str, seq_len: int) -> np.ndarray:
    """Per-segment [n_i, D] sequences -> [N, seq_len, D] (first steps kept, zero padding at the end)."""
    dims = [s.shape[1] for s in sequences if len(s)]
    dim = dims[0] if dims else 0
    out = np.zeros((len(sequences), seq_len, dim), np.float32)
    for row, sequence in enumerate(sequences):
        if len(sequence) and sequence.shape[1] != dim:
            raise where.error(
                f"{what} features are {sequence.shape[1]}-d, earlier segments {dim}-d", ids[row]
            )
        out[row, : len(sequence)] = sequence[:seq_len]
    return out


def misa_files(folder: str | Path) -> dict[str, Path]:
    """MISA's split files in `folder`, by its split name (also the workflow rule's inputs)."""
    return {split: Path(folder) / f"{split}.pkl" for split in SOURCE_SPLITS["misa"]}


def read_source(fmt: str, source: Path, seq_len: int) -> tuple[dict[str, Split], dict[str, str]]:
    """Read and shape every split of `source`; return them by output split name, and the files' sha256."""
    if fmt == "misa":
        if not source.is_dir():
            raise DataError(f"{source}: the misa format reads a folder holding train.pkl, dev.pkl, test.pkl")
        files = misa_files(source)
        for split, path in files.items():
            if not path.is_file():
                raise DataError(f"{path}: missing split '{split}' of the misa folder {source}")
    elif not source.is_file():
        raise DataError(f"{source}: {fmt} source file not found")
    paths = list(files.values()) if fmt == "misa" else [source]
    with background_checksums({path.name: path for path in paths}) as hashing:
        if fmt == "misa":
            raw = {split: (path, load_pickle(path)) for split, path in files.items()}
        else:
            data = load_pickle(source)
            if not isinstance(data, dict):
                raise DataError(f"{source}: expected a dict of splits, found {type(data).__name__}")
            for split in SOURCE_SPLITS[fmt]:
                if split not in data:
                    found = ", ".join(sorted(map(str, data))) or "none"
                    raise DataError(f"{source}: missing split '{split}' (splits found: {found})")
            raw = {split: (source, data[split]) for split in SOURCE_SPLITS[fmt]}
        read: Callable[[Where, object, int], Split] = (
            _mmsa_split if fmt == "mmsa" else lambda where, data, n: _segments_split(where, data, n, fmt)
        )
        splits = {
            out: read(Where(path, split), data, seq_len)
            for out, (split, (path, data)) in zip(SPLITS, raw.items(), strict=True)
        }
        return splits, {name: job.result() for name, job in hashing.items()}


def clip_base_of(splits: dict[str, Split], clip_base: int | None) -> int:
    """The first clip number of MMSA ids: given, else 0 if any clip is numbered 0, else 1 (MOSI's)."""
    if clip_base is not None:
        return clip_base
    clips = (_MMSA_ID.match(i) for split in splits.values() for i in split.ids)
    return 0 if any(m is not None and int(m["clip"]) == 0 for m in clips) else 1


def rename_mmsa(split: Split, base: int) -> None:
    """`"<video>$_$<clip>"` -> `"<video>[<clip - base>]"`; other ids are kept as they are."""
    for row, sample in enumerate(split.ids):
        match = _MMSA_ID.match(sample)
        if match is not None:
            k = int(match["clip"]) - base
            if k < 0:
                raise split.where.error(f"clip number below --clip-base {base}", sample)
            split.ids[row] = f"{match['video']}[{k}]"
