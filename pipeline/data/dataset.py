"""The aligned HDF5 file (docs/architecture.md section 2): its layout, its one writer, reading and checks.

Every check runs before training starts and raises `DataError` naming the file, the split and what is
wrong. Torch-free, so that `align` and the importers do not load torch (`loader.py` serves splits to it).

Checked by content: every numeric dataset this package writes (here and in the features file,
pipeline/features.py) is made by `create_dataset`, chunked with HDF5's Fletcher-32 checksum, which the
library verifies on every read: flipped bytes fail the read, and the readers turn that into one line naming
the file. Variable-length strings (ids, texts) cannot take an HDF5 filter; they are covered by
`content_digest`, which `train.json` records and `evaluate` compares. A file written before the checksums
is read with a warning (`warn_unchecked`): its numbers are not verified, rebuilding it adds them.

Values a model cannot use are refused where they are written and where they are read (`check_values`):
NaN, inf, or a magnitude beyond `MAX_ABS_VALUE`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import DataError
from pipeline.io import atomic_path
from pipeline.layout import FRAME_FILES

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "valid", "test")
DATASETS: tuple[str, ...] = ("id", "label", "text", "audio", "visual", "length")
ROOT_ATTRS: tuple[str, ...] = ("seq_len", "audio_dim", "visual_dim")
# The largest magnitude of a feature value a model is given. Physical features are far below it (F0 in Hz,
# cepstra, facial evidence: at most a few thousand), and so is a z-scored value of real data; past it a
# value is a fault (an unset sentinel, a unit error, flipped exponent bits), and within a few orders of
# magnitude more float32 training overflows: squares and attention scores pass 3.4e38 near 1e19, and
# float16 (mixed precision, half-precision checkpoints) stops at 65504 after a first layer.
MAX_ABS_VALUE = 1e6
# Bytes of a dataset hashed at a time by `content_digest` (bounded memory at any file size: a features
# file's per-word states are 75 KB a row at T = 50, H = 768, so a fixed row count would not bound it).
_DIGEST_BYTES = 64 * 2**20


def check_values(where: str, split: str, ids: np.ndarray, name: str, values: np.ndarray) -> None:
    """DataError naming `where` (a file), the split, the first segment and the modality `name` when a
    value of `values` [N, ...] (one row per id) is NaN, inf or beyond +-MAX_ABS_VALUE."""
    rows = values.reshape(len(values), -1)
    if rows.size == 0:
        return
    # Row extremes (NaN propagates into them) instead of a full-size mask: no copy of the array.
    with np.errstate(invalid="ignore"):
        bad = ~((rows.max(axis=1) <= MAX_ABS_VALUE) & (rows.min(axis=1) >= -MAX_ABS_VALUE))
    if not bad.any():
        return
    first = int(np.flatnonzero(bad)[0])
    row = rows[first]
    value = row[~(np.abs(row) <= MAX_ABS_VALUE)][0]
    what = "NaN/inf values" if not np.isfinite(value) else f"values beyond +-{MAX_ABS_VALUE:g}"
    raise DataError(
        f"{where}: '{split}/{name}' has {what} in {int(bad.sum())} samples (first: {ids[first]}, "
        f"value {value:g}), which a model cannot use"
    )


def create_dataset(group: h5py.Group, name: str, **kwargs: Any) -> h5py.Dataset:
    """`group.create_dataset(name, **kwargs)` with HDF5's Fletcher-32 checksum on a numeric dataset
    (chunked: the filter needs chunks; `chunks` is kept when given). Every writer of this package's files
    makes its datasets here, so none is left unchecked (module docstring)."""
    dtype = np.dtype(kwargs.get("dtype", getattr(kwargs.get("data"), "dtype", np.float32)))
    if h5py.check_string_dtype(dtype) is None and dtype.kind != "O":
        kwargs.setdefault("chunks", True)
        kwargs["fletcher32"] = True
    return group.create_dataset(name, **kwargs)


def warn_unchecked(path: Path, handle: h5py.File) -> None:
    """Warn once per read when a file's numeric datasets carry no checksum (written before them)."""
    unchecked: list[str] = []
    handle.visititems(
        lambda name, obj: (
            unchecked.append(name)
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiu" and not obj.fletcher32
            else None
        )
    )
    if unchecked:
        log.warning(
            "%s: %d dataset(s) without a checksum (e.g. %s; written before checksums): flipped bytes in "
            "them go undetected; rebuild the file to add them",
            path,
            len(unchecked),
            unchecked[0],
        )


def content_digest(path: str | Path, what: str = "aligned dataset file") -> dict[str, str]:
    """{top-level group: hex digest of its datasets' names, dtypes, shapes and values}: what a file holds,
    not where it is (train.json records it; evaluate and a resume compare it). Read in blocks of rows."""
    path = Path(path)
    digests = {}
    with open_hdf5(path, what) as handle:
        for group_name in sorted(handle):
            group = handle[group_name]
            if not isinstance(group, h5py.Group):
                continue
            digest = hashlib.sha256()
            for name in sorted(group):
                dataset = group[name]
                digest.update(f"{name} {dataset.dtype} {dataset.shape}\n".encode())
                try:
                    row_bytes = dataset.dtype.itemsize * int(np.prod(dataset.shape[1:], dtype=np.int64))
                    rows = max(1, _DIGEST_BYTES // max(1, row_bytes))
                    for start in range(0, len(dataset), rows):
                        block = dataset[start : start + rows]
                        if h5py.check_string_dtype(dataset.dtype) is not None:
                            for value in block:
                                value = value if isinstance(value, bytes) else str(value).encode()
                                digest.update(len(value).to_bytes(8, "little") + value)
                        else:
                            digest.update(np.ascontiguousarray(block))  # its buffer, no copy
                except OSError as err:  # a failed checksum, a damaged chunk
                    raise DataError(
                        f"{path}: damaged '{group_name}/{name}' ({err}); rebuild the file"
                    ) from None
            digests[group_name] = digest.hexdigest()[:16]
    return digests


def read_strings(dataset: h5py.Dataset) -> np.ndarray:
    """A 1-D HDF5 string dataset (variable or fixed length, bytes or str) as a numpy array of `str`."""
    values = dataset[()]
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values], dtype=str)


def open_hdf5(path: Path, what: str = "aligned dataset file") -> h5py.File:
    """Open an HDF5 file for reading; DataError naming the file when it is missing, not HDF5 or truncated."""
    if not path.is_file():
        raise DataError(f"{path}: {what} does not exist")
    if not h5py.is_hdf5(path):
        raise DataError(f"{path}: not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as err:  # a truncated or damaged file: h5py names neither the file nor a remedy
        raise DataError(f"{path}: damaged {what} ({err}); rebuild it") from None


def _root_dims(path: Path, handle: h5py.File) -> dict[str, int]:
    dims = {}
    for name in ROOT_ATTRS:
        if name not in handle.attrs:
            raise DataError(f"{path}: missing root attribute '{name}'")
        dims[name] = int(handle.attrs[name])
    return dims


def _check_split_layout(path: Path, handle: h5py.File, split: str, dims: dict[str, int]) -> int:
    """Check the split's datasets exist with consistent shapes; return its number of samples."""
    if split not in handle or not isinstance(handle[split], h5py.Group):
        raise DataError(f"{path}: missing group '{split}'")
    group = handle[split]
    for name in DATASETS:
        if name not in group:
            raise DataError(f"{path}: missing dataset '{split}/{name}'")
    n = group["label"].shape[0] if group["label"].ndim == 1 else -1
    if n <= 0:
        raise DataError(
            f"{path}: '{split}/label' must be a non-empty 1-D array, shape {group['label'].shape}"
        )
    expected = {
        "id": (n,),
        "text": (n,),
        "length": (n,),
        "audio": (n, dims["seq_len"], dims["audio_dim"]),
        "visual": (n, dims["seq_len"], dims["visual_dim"]),
    }
    for name, shape in expected.items():
        got = group[name].shape
        if got != shape:
            what = "number of samples" if got[:1] != shape[:1] else "dimensions (root attrs seq_len/*_dim)"
            raise DataError(f"{path}: '{split}/{name}' has shape {got}, expected {shape}: wrong {what}")
    return n


def validate_aligned(path: str | Path) -> dict[str, Any]:
    """Check the whole file's layout (groups, datasets, shapes vs root attributes) without reading features.

    Returns the root dimensions, the dataset name and the number of samples per split.
    """
    path = Path(path)
    with open_hdf5(path) as handle:
        dims = _root_dims(path, handle)
        sizes = {split: _check_split_layout(path, handle, split, dims) for split in SPLITS}
        name = handle.attrs.get("dataset", path.stem)
        warn_unchecked(path, handle)
    return {**dims, "dataset": str(name), "sizes": sizes}


def load_split(path: str | Path, split: str) -> dict[str, np.ndarray]:
    """Read one split into numpy arrays (`id`, `text` as str; `label`, `audio`, `visual` float32; `length`).

    Validates layout and values: labels and features usable (`check_values`), lengths in [0, seq_len],
    unique ids; a failed checksum is a DataError naming the split.
    """
    path = Path(path)
    if split not in SPLITS:
        raise DataError(f"{path}: unknown split '{split}' (expected one of {', '.join(SPLITS)})")
    with open_hdf5(path) as handle:
        dims = _root_dims(path, handle)
        _check_split_layout(path, handle, split, dims)
        group = handle[split]
        try:
            arrays = {
                "id": read_strings(group["id"]),
                "text": read_strings(group["text"]),
                "label": np.asarray(group["label"][()], dtype=np.float32),
                "audio": np.asarray(group["audio"][()], dtype=np.float32),
                "visual": np.asarray(group["visual"][()], dtype=np.float32),
                "length": np.asarray(group["length"][()], dtype=np.int64),
            }
        except OSError as err:
            raise DataError(f"{path}: damaged split '{split}' ({err}); rebuild the file") from None
    for name in ("label", "audio", "visual"):
        check_values(str(path), split, arrays["id"], name, arrays[name])
    length = arrays["length"]
    if (length < 0).any() or (length > dims["seq_len"]).any():
        first = arrays["id"][np.flatnonzero((length < 0) | (length > dims["seq_len"]))[0]]
        raise DataError(f"{path}: '{split}/length' outside [0, seq_len={dims['seq_len']}] (first: {first})")
    if len(set(arrays["id"].tolist())) != len(arrays["id"]):
        raise DataError(f"{path}: '{split}/id' holds duplicate ids")
    return arrays


def create_split(
    handle: h5py.File, split: str, seq_len: int, dims: dict[str, int]
) -> dict[str, h5py.Dataset]:
    """Create one split's empty, resizable datasets of the aligned layout (the one place it is defined).

    `dims` maps `audio` and `visual` to their feature widths; every writer (`align`, `write_aligned`)
    appends rows to what this returns, so the names, dtypes and chunking cannot drift apart.
    """
    text = h5py.string_dtype()
    specs: dict[str, tuple[tuple[int, ...], object]] = {
        "id": ((), text),
        "label": ((), np.float32),
        "text": ((), text),
        "length": ((), np.int64),
        **{modality: ((seq_len, dims[modality]), np.float32) for modality in FRAME_FILES},
    }
    group = handle.create_group(split)
    return {
        name: create_dataset(
            group,
            name,
            shape=(0, *shape),
            maxshape=(None, *shape),
            dtype=dtype,
            chunks=(16 if shape else 1024, *shape),
        )
        for name, (shape, dtype) in specs.items()
    }


def append_rows(
    datasets: dict[str, h5py.Dataset], columns: dict[str, np.ndarray], sources: Mapping[str, str | Path]
) -> None:
    """Append rows ({dataset name: array [n, ...]}) at the end of a split made by `create_split`.

    Refuses (DataError) features a model cannot use (`check_values`), naming the source file of the
    modality (`sources`: {modality: file}), the split and the segment: this is the one writer of aligned
    rows, so `align` and `import` both check them.
    """
    split = datasets["label"].parent.name.strip("/")
    for modality in FRAME_FILES:
        check_values(str(sources[modality]), split, columns["id"], modality, columns[modality])
    start = datasets["label"].shape[0]
    n = len(columns["label"])
    for name, dataset in datasets.items():
        dataset.resize(start + n, axis=0)
        dataset[start:] = columns[name]


def write_aligned(
    path: str | Path,
    splits: dict[str, dict[str, np.ndarray]],
    attrs: dict[str, Any],
    sources: Mapping[str, str | Path] | None = None,
) -> Path:
    """Write an aligned file in the documented layout, atomically: {split: arrays as `load_split` returns}.

    `attrs` are the root attributes (`seq_len`, `audio_dim`, `visual_dim`, `dataset`, `checksums`, ...);
    `sources` the file each modality came from, for error messages (default: the output itself).
    """
    path = Path(path)
    sources = sources or dict.fromkeys(FRAME_FILES, path)
    dims = {modality: int(attrs[f"{modality}_dim"]) for modality in FRAME_FILES}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs.update(attrs)
        for split, arrays in splits.items():
            append_rows(create_split(handle, split, int(attrs["seq_len"]), dims), arrays, sources)
    return path
