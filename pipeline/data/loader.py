"""Serve an aligned split to torch: the split's arrays as tensors, and seeded batches.

Splits are small enough to hold in memory (MOSEI's train split is about 0.3 GB at T = 50), so a split is
read once into numpy arrays (`pipeline.data.dataset.load_split`) and batches are index slices of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from pipeline.errors import DataError


class AlignedDataset(torch.utils.data.Dataset):
    """One split as a torch Dataset; indexing with an int or a sequence of ints returns a (batched) dict.

    Items hold `audio`, `visual`, `length`, `label` tensors, `index` (row in the split) and either `text`
    (list of str, fine-tuning) or `lm_features` (cached frozen language-model vectors) when given.
    """

    def __init__(self, arrays: dict[str, np.ndarray], lm_features: np.ndarray | None = None) -> None:
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

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int | Sequence[int] | torch.Tensor) -> dict[str, Any]:
        item: dict[str, Any] = {name: tensor[index] for name, tensor in self.tensors.items()}
        item["text"] = self.text[np.asarray(index)].tolist()
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
