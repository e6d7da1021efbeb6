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
        if "data" not in group:
            self._file.close()
            raise DataError(f"{self.path}: missing group /{self.root}/data")
        self._data = group["data"]
        self.metadata = {}
        if "metadata" in group:
            for key, value in group["metadata"].items():
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
        return sorted(self._data.keys())

    def __contains__(self, video: str) -> bool:
        return video in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, video: str) -> Sequence:
        if video not in self._data:
            raise DataError(f"{self.path}: video '{video}' not found")
        entry = self._data[video]
        if not isinstance(entry, h5py.Group) or "features" not in entry or "intervals" not in entry:
            raise DataError(f"{self.path}: video '{video}' lacks 'features' or 'intervals'")
        features = entry["features"][()]
        intervals = entry["intervals"][()]
        if features.ndim == 1:
            features = features[:, None]
        if intervals.ndim != 2 or intervals.shape[1] != 2:
            raise DataError(f"{self.path}: video '{video}' intervals have shape {intervals.shape}, not [n, 2]")
        if features.shape[0] != intervals.shape[0]:
            raise DataError(
                f"{self.path}: video '{video}' has {features.shape[0]} feature rows "
                f"but {intervals.shape[0]} intervals"
            )
        return Sequence(features=features, intervals=intervals.astype(np.float64))

    def items(self) -> Iterator[tuple[str, Sequence]]:
        """Iterate (video, Sequence) in sorted video order, loading one at a time."""
        for video in self.videos():
            yield video, self[video]

    def feature_dim(self) -> int:
        """Feature dimensionality, read from the first video's dataset shape without loading it."""
        for video in self.videos():
            shape = self._data[video]["features"].shape
            return 1 if len(shape) == 1 else int(shape[1])
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
            entry.create_dataset("features", data=seq.features)
            entry.create_dataset("intervals", data=seq.intervals)
        meta_group = group.create_group("metadata")
        for key, value in (metadata or {}).items():
            dataset = meta_group.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            dataset[0] = str(value)
