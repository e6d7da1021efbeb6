"""Serve an aligned split to torch: the split's arrays as tensors, and seeded batches.

Splits are small enough to hold in memory (MOSEI's train split is about 0.3 GB at T = 50), so a split is
read once into numpy arrays (`pipeline.data.dataset.load_split`) and batches are index slices of them. The
cached per-word language states are not (about 1.2 GB for MOSEI's train split at T = 50, H = 768):
`WordStates` reads each batch's segments from the features file when the batch is made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from pipeline.data.dataset import check_values
from pipeline.data.normalize import Stats, scale_words
from pipeline.errors import DataError


class WordStates:
    """One split's per-word language states [N, T, H] (float16 as cached), read row by row on demand:
    from an array in memory, or lazily from an HDF5 dataset (`source` = (file, dataset path); the file is
    opened on the first read and only the rows asked for are read). `length` [N] are the split's valid
    word counts; with `stats` (z-score statistics holding `words_*`) the valid steps are z-scored as read.
    States read from a file are checked as read (`check_values`: NaN, inf), naming the file, the split and
    the segment (`ids` [N], else the row number).
    """

    def __init__(
        self,
        source: np.ndarray | tuple[Path, str],
        length: np.ndarray,
        stats: Stats | None = None,
        ids: np.ndarray | None = None,
    ) -> None:
        self.source = source
        self.length = np.asarray(length)
        self.stats = stats
        self.ids = np.arange(len(self.length)) if ids is None else np.asarray(ids)
        self._handle: h5py.File | None = None

    def __len__(self) -> int:
        return len(self.length)

    def _array(self) -> Any:
        if isinstance(self.source, np.ndarray):
            return self.source
        if self._handle is None:
            self._handle = h5py.File(self.source[0], "r")
        return self._handle[self.source[1]]

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The raw states [b, T, H] (float32) of `rows` [b] (any order, repeats allowed)."""
        unique, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
        array = self._array()
        # One read per segment (one HDF5 chunk each): h5py's fancy indexing with a list of rows is two
        # orders of magnitude slower (285 ms against 2 ms for 32 segments, T = 50, H = 384).
        values = np.stack([array[i] for i in unique]) if len(unique) else np.zeros((0, *array.shape[1:]))
        values = values.astype(np.float32)  # checked as float32: float16 cannot hold the bound
        if not isinstance(self.source, np.ndarray):  # a file: trust nothing read from disk
            path, dataset = self.source
            check_values(str(path), dataset.split("/")[0], self.ids[unique], dataset.split("/")[-1], values)
        return values[inverse.reshape(-1)]

    def __getitem__(self, index: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """[T, H] for an int, [b, T, H] for a sequence: float32, z-scored with `stats` when given."""
        rows = np.asarray(index, dtype=np.int64)
        values = self.read(rows.reshape(-1))
        if self.stats is not None:
            values = scale_words(values, self.length[rows.reshape(-1)], self.stats)
        tensor = torch.from_numpy(values)
        return tensor[0] if rows.ndim == 0 else tensor


class AlignedDataset(torch.utils.data.Dataset):
    """One split as a torch Dataset; indexing with an int or a sequence of ints returns a (batched) dict.

    Items hold `audio`, `visual`, `length`, `label` tensors, `index` (row in the split), `text` (list of
    str, read when fine-tuning), and when given `lm_features` (cached frozen language-model vectors [H]) and
    `lm_words` (cached per-word states [T, H], read from `words` as the item is made).
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        lm_features: np.ndarray | None = None,
        words: WordStates | None = None,
    ) -> None:
        self.ids = arrays["id"]
        self.text = arrays["text"]
        self.tensors = {
            "audio": torch.from_numpy(arrays["audio"]),
            "visual": torch.from_numpy(arrays["visual"]),
            "length": torch.from_numpy(arrays["length"]),
            "label": torch.from_numpy(arrays["label"]),
            "index": torch.arange(len(arrays["label"])),
        }
        if lm_features is not None:
            if len(lm_features) != len(self.ids):
                raise DataError(f"{len(lm_features)} language features for {len(self.ids)} samples")
            self.tensors["lm_features"] = torch.from_numpy(np.asarray(lm_features, dtype=np.float32))
        if words is not None and len(words) != len(self.ids):
            raise DataError(f"{len(words)} segments of per-word language states for {len(self.ids)} samples")
        self.words = words

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int | Sequence[int] | torch.Tensor) -> dict[str, Any]:
        item: dict[str, Any] = {name: tensor[index] for name, tensor in self.tensors.items()}
        item["text"] = self.text[np.asarray(index)].tolist()
        if self.words is not None:
            item["lm_words"] = self.words[index]
        return item


def iterate_batches(
    dataset: AlignedDataset, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[dict[str, Any]]:
    """Yield batches in order, or shuffled with `generator` (the only randomness: resumable and seeded).

    When shuffling, a final batch of a single sample is dropped: it has no contrastive pair and gives a
    one-sample gradient step.
    """
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    stop = n - 1 if generator is not None and n % batch_size == 1 and n > 1 else n
    for start in range(0, stop, batch_size):
        yield dataset[order[start : min(start + batch_size, stop)]]
