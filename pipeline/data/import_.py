"""Stage `import`: the preprocessed pickles researchers already hold, into the aligned HDF5 (architecture, 2).

The module is `import_` because `import` is a Python keyword; the stage is `python -m pipeline import`.
Formats (docs/data.md has the details and the commands):

- `mmsa`: thuiar/MMSA's `aligned_50.pkl` / `unaligned_50.pkl`, one pickle `{train, valid, test}`, each a dict
  of arrays (`id` = `"<video>$_$<clip>"`, `raw_text`, `audio` [N, T, Da], `vision` [N, T, Dv],
  `regression_labels` [N], optional `audio_lengths` / `vision_lengths`; `text` / `text_bert` are ignored:
  the pipeline tokenises the raw text itself).
- `mag`: MAG-BERT's `mosi.pkl` / `mosei.pkl`, one pickle `{train, dev, test}`, each a list of
  `((words, visual [n, Dv], acoustic [n, Da]), label, segment)`.
- `misa`: MISA's folder of `train.pkl`, `dev.pkl`, `test.pkl`, each a list of
  `((word_ids, visual [n, Dv], acoustic [n, Da], words), label, segment)`.

`dev` becomes `valid`. Ids follow the contract, `"<video>[<k>]"` with k the segment's 0-based row in the
labels: MAG and MISA segments already read so; an MMSA clip number c becomes k = c - base, base 1 (MOSI's
numbering, 1-based: clip c is labels row c - 1) unless some clip is numbered 0 (then 0), or `--clip-base`.
Sequences keep their first `seq_len` steps and are zero-padded at the end (as `align` does); `length` is the
steps kept. Feature sizes are taken from the data. A label array gives its first value (column 0 of the CMU
labels, the sentiment). Non-finite feature values become 0 and are counted.

Pickles run code when loaded, so they are read by `_SafeUnpickler`, which admits numpy arrays, dtypes and
scalars and builtin containers, and nothing else. Every input is checked before anything is written; a bad
one raises a one-line `DataError` naming the file, the split and the segment.
"""

from __future__ import annotations

import argparse
import codecs
import json
import logging
import pickle
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.dataset import SPLITS, write_aligned
from pipeline.data.plan import LABEL_RANGE
from pipeline.errors import ConfigError, DataError
from pipeline.io import sha256sum

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

log = logging.getLogger(__name__)

SOURCE_SPLITS = {"mmsa": ("train", "valid", "test"), "mag": ("train", "dev", "test")}
SOURCE_SPLITS["misa"] = SOURCE_SPLITS["mag"]
LAYOUTS = {  # one segment of a mag / misa split
    "mag": "((words, visual, acoustic), label, segment)",
    "misa": "((word_ids, visual, acoustic, words), label, segment)",
}
KNOWN_DATASETS = ("mosei", "mosi", "sims")  # guessed from the words of the source path
_MMSA_ID = re.compile(r"^(?P<video>.+)\$_\$(?P<clip>\d+)$")


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it (bytes written as latin-1 text), and only that."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding '{encoding}' (only latin-1 is admitted)")
    return text.encode("latin-1")


# Globals a pickle of numpy arrays needs: array, dtype and scalar reconstruction under numpy 1.x
# (`numpy.core`) and 2.x (`numpy._core`) names, protocol 5's buffer reconstruction, the builtin containers
# that protocols 0-3 name as globals (lists, tuples and dicts have opcodes), and protocol 2's bytes.
_ALLOWED: dict[tuple[str, str], Any] = {
    **{
        (f"{package}.multiarray", "_reconstruct"): _multiarray._reconstruct
        for package in ("numpy.core", "numpy._core")
    },
    **{(f"{package}.multiarray", "scalar"): _multiarray.scalar for package in ("numpy.core", "numpy._core")},
    **{
        (f"{package}.numeric", "_frombuffer"): _numeric._frombuffer
        for package in ("numpy.core", "numpy._core")
    },
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{("builtins", kind.__name__): kind for kind in (set, frozenset, bytes, bytearray)},
    ("_codecs", "encode"): _latin1,
}


class _Refused(pickle.UnpicklingError):
    """A pickle asked for a global outside `_ALLOWED`; the message is its dotted name."""


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in `_ALLOWED`: data, never code."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def load_pickle(path: Path) -> Any:
    """Unpickle `path` admitting only numpy arrays, dtypes, scalars and builtin containers.

    Anything else (a class, a function such as `os.system`) is refused before it runs: `DataError`.
    """
    try:
        with open(path, "rb") as handle:
            # latin-1 reads Python 2 pickles of numpy arrays (their data are `str`) byte for byte.
            return _SafeUnpickler(handle, encoding="latin1").load()
    except _Refused as err:
        raise DataError(
            f"{path}: refused to unpickle: it asks for the global '{err}'; only numpy arrays, dtypes, "
            "scalars and builtin containers are admitted (pickles can run code)"
        ) from None
    except pickle.UnpicklingError as err:
        raise DataError(f"{path}: not a readable pickle ({err})") from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, MemoryError) as err:
        raise DataError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err


@dataclass
class _Where:
    """Where an input came from, for error messages: file, source split, segment."""

    path: Path
    split: str

    def error(self, problem: str, segment: object = None) -> DataError:
        at = f" segment '{segment}'" if segment is not None else ""
        return DataError(f"{self.path}: split '{self.split}'{at}: {problem}")


@dataclass
class _Split:
    """One split in the output layout, before the checks common to every format."""

    where: _Where
    ids: list[str]
    texts: list[str]
    labels: np.ndarray  # float64 [N]
    audio: np.ndarray  # float32 [N, seq_len, Da]
    visual: np.ndarray  # float32 [N, seq_len, Dv]
    length: np.ndarray  # int64 [N]
    cut: int  # segments longer than seq_len


def _features(where: _Where, value: object, ndim: int, what: str, segment: object = None) -> np.ndarray:
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


def _text(where: _Where, value: object, segment: object) -> str:
    """A transcript (str or bytes, or a sequence of words) as words joined by single spaces."""
    words = [value] if isinstance(value, str | bytes | np.str_ | np.bytes_) else value
    try:
        decoded = [w.decode("utf-8") if isinstance(w, bytes) else w for w in words]
    except (TypeError, UnicodeDecodeError) as err:
        raise where.error(f"text is not UTF-8 strings ({err})", segment) from None
    if not all(isinstance(w, str) for w in decoded):
        kinds = sorted({type(w).__name__ for w in decoded if not isinstance(w, str)})
        raise where.error(f"words must be strings, found {', '.join(kinds)}", segment)
    return " ".join(" ".join(decoded).split())


def _label(where: _Where, value: object, segment: object) -> float:
    """A scalar, or an array with one row (`[[x]]`, MOSEI's `[[x, ...]]`): its first value."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise where.error(f"label is not numeric ({err})", segment) from None
    if array.size == 0 or (array.ndim >= 2 and array.shape[0] != 1):
        raise where.error(f"label has shape {array.shape}, expected a scalar or one row", segment)
    return float(array.reshape(-1)[0])


def _mmsa_split(where: _Where, data: object, seq_len: int) -> _Split:
    """One MMSA split (a dict of arrays over N samples)."""
    if not isinstance(data, dict):
        raise where.error(f"expected a dict of arrays, found {type(data).__name__}")
    for key in ("id", "raw_text", "audio", "vision", "regression_labels"):
        if key not in data:
            raise where.error(f"missing key '{key}' (keys: {', '.join(sorted(map(str, data)))})")
    ids = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(data["id"]).reshape(-1)]
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
            if len(given) != n or given.dtype.kind not in "iuf" or (given < 0).any():
                raise where.error(
                    f"'{key}' must be {n} non-negative numbers, found {given.dtype} {given.shape}"
                )
            lengths.append(np.minimum(given.astype(np.int64), array.shape[1]))
    if not lengths:  # no lengths given: the steps up to the last one with any non-zero feature
        steps = (audio != 0).any(axis=2) | (visual != 0).any(axis=2)
        lengths.append(np.where(steps.any(axis=1), steps.shape[1] - steps[:, ::-1].argmax(axis=1), 0))
    length = np.max(lengths, axis=0)
    return _Split(
        where,
        ids,
        texts,
        labels,
        _fit(audio, seq_len),
        _fit(visual, seq_len),
        np.minimum(length, seq_len),
        int((length > seq_len).sum()),
    )


def _segments_split(where: _Where, data: object, seq_len: int, fmt: str) -> _Split:
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
        segment = segment.decode("utf-8") if isinstance(segment, bytes) else str(segment)
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
    return _Split(
        where,
        ids,
        texts,
        np.asarray(labels, dtype=np.float64),
        _stack(where, audio, ids, "acoustic", seq_len),
        _stack(where, visual, ids, "visual", seq_len),
        np.array([min(len(a), seq_len) for a in audio], dtype=np.int64),
        sum(len(a) > seq_len for a in audio),
    )


def _stack(where: _Where, sequences: list[np.ndarray], ids: list[str], what: str, seq_len: int) -> np.ndarray:
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


def _read(fmt: str, source: Path, seq_len: int) -> tuple[dict[str, _Split], dict[str, str]]:
    """Read and shape every split of `source`; return them by output split name, and the files' sha256."""
    if fmt == "misa":
        if not source.is_dir():
            raise DataError(f"{source}: the misa format reads a folder holding train.pkl, dev.pkl, test.pkl")
        files = {split: source / f"{split}.pkl" for split in SOURCE_SPLITS[fmt]}
        for split, path in files.items():
            if not path.is_file():
                raise DataError(f"{path}: missing split '{split}' of the misa folder {source}")
        checksums = {path.name: sha256sum(path) for path in files.values()}
        raw = {split: (path, load_pickle(path)) for split, path in files.items()}
    else:
        if not source.is_file():
            raise DataError(f"{source}: {fmt} source file not found")
        checksums = {source.name: sha256sum(source)}
        data = load_pickle(source)
        if not isinstance(data, dict):
            raise DataError(f"{source}: expected a dict of splits, found {type(data).__name__}")
        for split in SOURCE_SPLITS[fmt]:
            if split not in data:
                found = ", ".join(sorted(map(str, data))) or "none"
                raise DataError(f"{source}: missing split '{split}' (splits found: {found})")
        raw = {split: (source, data[split]) for split in SOURCE_SPLITS[fmt]}
    read: Callable[[_Where, object, int], _Split] = (
        _mmsa_split if fmt == "mmsa" else lambda where, data, n: _segments_split(where, data, n, fmt)
    )
    splits = {
        out: read(_Where(path, split), data, seq_len)
        for out, (split, (path, data)) in zip(SPLITS, raw.items(), strict=True)
    }
    return splits, checksums


def _clip_base(splits: dict[str, _Split], clip_base: int | None) -> int:
    """The first clip number of MMSA ids: given, else 0 if any clip is numbered 0, else 1 (MOSI's)."""
    if clip_base is not None:
        return clip_base
    clips = (_MMSA_ID.match(i) for split in splits.values() for i in split.ids)
    return 0 if any(m is not None and int(m["clip"]) == 0 for m in clips) else 1


def _rename_mmsa(split: _Split, base: int) -> None:
    """`"<video>$_$<clip>"` -> `"<video>[<clip - base>]"`; other ids are kept as they are."""
    for row, sample in enumerate(split.ids):
        match = _MMSA_ID.match(sample)
        if match is not None:
            k = int(match["clip"]) - base
            if k < 0:
                raise split.where.error(f"clip number below --clip-base {base}", sample)
            split.ids[row] = f"{match['video']}[{k}]"


def _check(splits: dict[str, _Split], stats: Counter) -> dict[str, int]:
    """Labels finite and in range, ids unique over the file, one feature size per modality; zero
    non-finite feature values (counted). Returns the feature sizes."""
    seen: dict[str, str] = {}
    dims: dict[str, int] = {}
    for name, split in splits.items():
        where = split.where
        if not split.ids:
            raise where.error("has no segments")
        bad = ~np.isfinite(split.labels) | (np.abs(split.labels) > LABEL_RANGE)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise where.error(
                f"label {split.labels[row]} is not a finite value in [-{LABEL_RANGE:g}, {LABEL_RANGE:g}]",
                split.ids[row],
            )
        for sample in split.ids:
            if sample in seen:
                raise where.error(f"duplicate id (also in output split '{seen[sample]}')", sample)
            seen[sample] = name
        for modality in ("audio", "visual"):
            values = getattr(split, modality)
            dim = dims.setdefault(modality, values.shape[2])
            if values.shape[2] != dim:
                raise where.error(f"{modality} features are {values.shape[2]}-d, other splits' {dim}-d")
            finite = np.isfinite(values)
            stats[f"nonfinite_zeroed:{modality}"] += int(finite.size - np.count_nonzero(finite))
            values[~finite] = 0
    return dims


def guess_dataset(source: Path) -> str:
    """The dataset a source holds: a known name that is a word of its file name or, failing that, of the
    nearest folder above (`CMU_MOSEI/aligned_50.pkl` -> mosei); else 'imported'."""
    for part in (source.name, *(p.name for p in source.resolve().parents)):
        words = set(re.split(r"[^a-z0-9]+", part.lower()))
        for name in KNOWN_DATASETS:
            if name in words:
                return name
    return "imported"


def import_dataset(
    fmt: str,
    source: str | Path,
    out_path: str | Path,
    seq_len: int = 50,
    dataset: str | None = None,
    clip_base: int | None = None,
) -> dict[str, Any]:
    """Import `source` (format `mmsa`, `mag` or `misa`) into the aligned HDF5 `out_path`; return the counts.

    Every input is checked before anything is written: bad input raises `DataError` and writes nothing.
    """
    source = Path(source)
    if fmt not in SOURCE_SPLITS:
        raise DataError(
            f"{source}: unknown import format '{fmt}' (expected one of {', '.join(sorted(SOURCE_SPLITS))})"
        )
    if seq_len < 1:
        raise ConfigError(f"seq_len must be a positive integer, got {seq_len}")
    if clip_base not in (None, 0, 1):
        raise ConfigError(f"clip_base must be 0 or 1, got {clip_base}")
    splits, checksums = _read(fmt, source, seq_len)
    if fmt == "mmsa":
        clip_base = _clip_base(splits, clip_base)
        for split in splits.values():
            _rename_mmsa(split, clip_base)
    stats: Counter = Counter()
    dims = _check(splits, stats)
    name = dataset or guess_dataset(source)
    attrs = {
        "seq_len": seq_len,
        "audio_dim": dims["audio"],
        "visual_dim": dims["visual"],
        "dataset": name,
        "format": fmt,
        "checksums": json.dumps(checksums),
    }
    arrays = {
        out: {
            "id": np.array(split.ids, dtype=object),
            "label": split.labels.astype(np.float32),
            "text": np.array(split.texts, dtype=object),
            "audio": split.audio,
            "visual": split.visual,
            "length": split.length.astype(np.int64),
        }
        for out, split in splits.items()
    }
    write_aligned(out_path, arrays, attrs)
    summary = {
        "format": fmt,
        "dataset": name,
        "segments": {out: len(split.ids) for out, split in splits.items()},
        "dims": dims,
        "cut": {out: split.cut for out, split in splits.items()},
        "nonfinite_values_zeroed": {m: stats[f"nonfinite_zeroed:{m}"] for m in ("audio", "visual")},
        "clip_base": clip_base,
    }
    log.info(
        "imported %s (%s) -> %s: dataset %s, segments %s, audio %d-d, visual %d-d, seq_len %d%s; "
        "segments cut to seq_len %s; non-finite feature values zeroed %s",
        source,
        fmt,
        out_path,
        name,
        summary["segments"],
        dims["audio"],
        dims["visual"],
        seq_len,
        f", MMSA clip numbers from {clip_base}" if fmt == "mmsa" else "",
        summary["cut"],
        summary["nonfinite_values_zeroed"],
    )
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m pipeline import`."""
    parser.add_argument(
        "format", help="source layout: mmsa (MMSA pickle), mag (MAG-BERT pickle), misa (MISA folder)"
    )
    parser.add_argument("source", type=Path, help="the pickle (mmsa, mag) or folder of pickles (misa)")
    parser.add_argument("out_path", type=Path, help="aligned HDF5 to write, e.g. data/aligned/mosi.h5")
    parser.add_argument("--seq-len", type=int, default=50, help="steps kept per segment (default 50)")
    parser.add_argument(
        "--dataset", help="dataset name recorded in the file (default: guessed from the path)"
    )
    parser.add_argument(
        "--clip-base",
        type=int,
        choices=(0, 1),
        help="mmsa: number of a video's first clip (default: 0 if some clip is numbered 0, else 1)",
    )


def run(args: argparse.Namespace) -> None:
    """Entry of the `import` stage."""
    import_dataset(args.format, args.source, args.out_path, args.seq_len, args.dataset, args.clip_base)
