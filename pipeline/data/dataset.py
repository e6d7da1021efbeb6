"""The aligned HDF5 file (docs/architecture.md section 2): its layout, its one writer, reading and checks.

Every check runs before training starts and raises `DataError` naming the file, the split and what is
wrong. Torch-free, so that `align` and the importers do not load torch (`loader.py` serves splits to it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import DataError
from pipeline.io import atomic_path
from pipeline.layout import FRAME_FILES

SPLITS: tuple[str, ...] = ("train", "valid", "test")
DATASETS: tuple[str, ...] = ("id", "label", "text", "audio", "visual", "length")
ROOT_ATTRS: tuple[str, ...] = ("seq_len", "audio_dim", "visual_dim")


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
    return {**dims, "dataset": str(name), "sizes": sizes}


def load_split(path: str | Path, split: str) -> dict[str, np.ndarray]:
    """Read one split into numpy arrays (`id`, `text` as str; `label`, `audio`, `visual` float32; `length`).

    Validates layout and values: labels and features finite, lengths in [0, seq_len], unique ids.
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
        bad = ~np.isfinite(arrays[name].reshape(len(arrays["label"]), -1)).all(axis=1)
        if bad.any():
            first = arrays["id"][np.flatnonzero(bad)[0]]
            raise DataError(
                f"{path}: '{split}/{name}' has NaN/inf values in {int(bad.sum())} samples (first: {first})"
            )
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
        name: group.create_dataset(
            name,
            shape=(0, *shape),
            maxshape=(None, *shape),
            dtype=dtype,
            chunks=(16 if shape else 1024, *shape),
        )
        for name, (shape, dtype) in specs.items()
    }


def append_rows(datasets: dict[str, h5py.Dataset], columns: dict[str, np.ndarray]) -> None:
    """Append rows ({dataset name: array [n, ...]}) at the end of a split made by `create_split`."""
    start = datasets["label"].shape[0]
    n = len(columns["label"])
    for name, dataset in datasets.items():
        dataset.resize(start + n, axis=0)
        dataset[start:] = columns[name]


def write_aligned(path: str | Path, splits: dict[str, dict[str, np.ndarray]], attrs: dict[str, Any]) -> Path:
    """Write an aligned file in the documented layout, atomically: {split: arrays as `load_split` returns}.

    `attrs` are the root attributes (`seq_len`, `audio_dim`, `visual_dim`, `dataset`, `checksums`, ...).
    """
    path = Path(path)
    dims = {modality: int(attrs[f"{modality}_dim"]) for modality in FRAME_FILES}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs.update(attrs)
        for split, arrays in splits.items():
            append_rows(create_split(handle, split, int(attrs["seq_len"]), dims), arrays)
    return path
