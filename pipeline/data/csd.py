"""Reader and writer of CMU Multimodal SDK computational sequences (.csd, HDF5).

Layout: `/<root>/data/<video>/{features, intervals}` and `/<root>/metadata/<key>` (one vlen string each).
The reader validates the layout and loads one video at a time, so aligners can stream large files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from pipeline.errors import DataError
from pipeline.io import atomic_path


@dataclass(frozen=True)
class Sequence:
    """One video's entry: `features` [n, d] and `intervals` [n, 2] (start, end in seconds)."""

    features: np.ndarray
    intervals: np.ndarray


class CSD:
    """An open computational sequence. Use as a context manager; `[video]` loads and checks one entry."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: computational sequence not found")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise DataError(f"{self.path}: not a readable HDF5 computational sequence ({err})") from err
        roots = list(self._file.keys())
        if len(roots) != 1 or not isinstance(self._file[roots[0]], h5py.Group):
            self._file.close()
            raise DataError(f"{self.path}: expected exactly one root group, found {roots}")
        self.root = roots[0]
        group = self._file[self.root]
        if not isinstance(group.get("data"), h5py.Group):
            self._file.close()
            raise DataError(f"{self.path}: missing group /{self.root}/data")
        self._data = group["data"]
        self._videos: frozenset[str] | None = None
        self._buffers: dict[str, np.ndarray] = {}  # byte buffers reused by `load(..., reuse=True)`
        self._last: tuple[str, tuple[h5py.h5d.DatasetID, h5py.h5d.DatasetID]] | None = None
        self.metadata = {}
        if isinstance(group.get("metadata"), h5py.Group):
            for key, value in group["metadata"].items():
                if not isinstance(value, h5py.Dataset):
                    self._file.close()
                    raise DataError(f"{self.path}: metadata entry '{key}' is not a dataset")
                item = value[0] if value.shape else value[()]
                self.metadata[key] = item.decode() if isinstance(item, bytes) else item

    def __enter__(self) -> CSD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._file.close()

    def videos(self) -> list[str]:
        """The video ids present, sorted."""
        return sorted(self._names())

    def _names(self) -> frozenset[str]:
        """The entry names, listed once: membership tests then cost a set lookup, not an HDF5 query."""
        if self._videos is None:
            self._videos = frozenset(self._data.keys())
        return self._videos

    def __contains__(self, video: str) -> bool:
        return video in self._names()

    def __len__(self) -> int:
        return len(self._data)

    def _checked(self, video: str) -> tuple[h5py.h5d.DatasetID, h5py.h5d.DatasetID]:
        """The video's `features` and `intervals` datasets, with shapes checked from their headers.

        Opened by path with the low-level API: about 8x cheaper than walking the groups, so validation
        passes over thousands of entries stay fast. Only the last video's pair is kept open (`describe`
        then `intervals` open it once): memory stays flat over many videos.
        """
        if self._last is not None and self._last[0] == video:
            return self._last[1]
        try:
            features, intervals = (
                h5py.h5d.open(self._data.id, f"{video}/{name}".encode()) for name in ("features", "intervals")
            )
        except KeyError:
            if video not in self:
                raise DataError(f"{self.path}: video '{video}' not found") from None
            raise DataError(f"{self.path}: video '{video}' lacks 'features' or 'intervals'") from None
        f_shape, i_shape = features.shape, intervals.shape
        if len(i_shape) != 2 or i_shape[1] != 2:
            raise DataError(f"{self.path}: video '{video}' intervals have shape {i_shape}, not [n, 2]")
        if len(f_shape) not in (1, 2):
            raise DataError(f"{self.path}: video '{video}' features have shape {f_shape}, not [n, d]")
        if f_shape[0] != i_shape[0]:
            raise DataError(
                f"{self.path}: video '{video}' has {f_shape[0]} feature rows but {i_shape[0]} intervals"
            )
        self._last = (video, (features, intervals))
        return features, intervals

    def _read(self, dataset: h5py.h5d.DatasetID, video: str, buffer: str | None = None) -> np.ndarray:
        """Read a whole dataset into a new array, or into the reused byte buffer named `buffer`."""
        if buffer is None or dataset.dtype.hasobject:
            values = np.empty(dataset.shape, dataset.dtype)
        else:
            size = int(np.prod(dataset.shape)) * dataset.dtype.itemsize
            held = self._buffers.get(buffer)
            if held is None or held.nbytes < size:  # grow geometrically: few reallocations over a pass
                held = self._buffers[buffer] = np.empty(
                    max(size, 2 * (0 if held is None else held.nbytes)), np.uint8
                )
            values = held[:size].view(dataset.dtype).reshape(dataset.shape)
        try:
            dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, values)
        except OSError as err:  # truncated or damaged file: h5py opens it but the read fails
            raise DataError(f"{self.path}: cannot read video '{video}' ({err})") from err
        return values

    def describe(self, video: str) -> tuple[int, int, np.dtype]:
        """Rows, feature dimension and feature dtype of one entry, checked from the dataset headers only.

        Validation passes use it to check shapes without reading the (possibly large) feature arrays.
        """
        features, _ = self._checked(video)
        shape = features.shape
        return int(shape[0]), 1 if len(shape) == 1 else int(shape[1]), features.dtype

    def intervals(self, video: str) -> np.ndarray:
        """One entry's intervals [n, 2] as float64, without reading its features."""
        return self._read(self._checked(video)[1], video).astype(np.float64, copy=False)

    def __getitem__(self, video: str) -> Sequence:
        return self.load(video)

    def load(self, video: str, reuse: bool = False) -> Sequence:
        """One entry, checked; features [n, d] as stored, intervals as float64.

        With `reuse`, numeric arrays are read into buffers this reader keeps and overwrites on its next
        `reuse` load, so the caller may modify them but must not keep them. A pass streaming over many
        videos then touches no fresh memory per video: page faults on new arrays cost more than the read.
        """
        features, intervals = self._checked(video)
        values = self._read(features, video, "features" if reuse else None)
        if values.ndim == 1:
            values = values[:, None]
        times = self._read(intervals, video, "intervals" if reuse else None)
        return Sequence(features=values, intervals=times.astype(np.float64, copy=False))

    def items(self) -> Iterator[tuple[str, Sequence]]:
        """Iterate (video, Sequence) in sorted video order, loading one at a time."""
        for video in self.videos():
            yield video, self[video]

    def feature_dim(self) -> int:
        """Feature dimensionality, read from the first video's dataset shape without loading it."""
        for video in self.videos():
            return self.describe(video)[1]
        raise DataError(f"{self.path}: contains no videos")


def write_csd(
    path: str | os.PathLike,
    root: str,
    data: Mapping[str, Sequence] | Iterator[tuple[str, Sequence]],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write a computational sequence in the SDK's layout, atomically (temporary name, then rename)."""
    items = data.items() if isinstance(data, Mapping) else data
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        group = handle.create_group(root)
        data_group = group.create_group("data")
        for video, seq in items:
            entry = data_group.create_group(video)
            features = np.asarray(seq.features)
            if features.dtype.kind == "U":  # HDF5 has no fixed-width unicode: store words as UTF-8 bytes
                features = np.char.encode(features, "utf-8")
            entry.create_dataset("features", data=features)
            entry.create_dataset("intervals", data=seq.intervals)
        meta_group = group.create_group("metadata")
        for key, value in (metadata or {}).items():
            dataset = meta_group.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            dataset[0] = str(value)
