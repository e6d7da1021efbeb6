"""Benchmark: the cost of reading by content (issue 19) at CMU-MOSEI scale, against the plain read.

    python benchmarks/digests.py   # 22,856 segments (16,326 / 1,871 / 4,659), T = 50, 74/35-d, 768-d text

Synthetic arrays of MOSEI's size are written twice, with and without the HDF5 Fletcher-32 checksums that
`pipeline.data.dataset.create_dataset` adds, as the aligned file (`write_aligned`) and a features file
(768-d, BERT-base width). Each time is the best of 5 runs in this process, 3 for the writes (the files in
the page cache, as a stage finds a file it just made or read; on a shared machine other load only adds
time); peak memory is what tracemalloc traces over the operation (numpy buffers included, the interpreter
not). The baseline of a row is the plain read of the same arrays from the file without checksums (h5py,
every dataset whole; for the write rows, the write without checksums); the ratio is the row over it:
- write, Fletcher-32: `write_aligned`, as `align` and `import` write;
- read, checksums verified: the same read of the file with Fletcher-32 (HDF5 verifies every chunk);
- content_digest: what train and evaluate add per file (`pipeline.data.dataset.content_digest`);
- check_values: the magnitude checks of `load_split` on audio and visual (their own baseline: the read).
The weights digest (`checkpoint.weights_digest`) is timed against reading the model.pt it hashes, for a
checkpoint of MiniLM-L6's size (22.7M parameters in float16, the default `train.checkpoint_dtype`).
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from pipeline.checkpoint import read_checkpoint, save_model, weights_digest
from pipeline.data.dataset import SPLITS, check_values, content_digest, create_dataset, write_aligned

SIZES = {"train": 16326, "valid": 1871, "test": 4659}
T, AUDIO, VISUAL, TEXT = 50, 74, 35, 768
MINILM_PARAMETERS = 22_700_000


def measure(action: Callable[[], Any], repeats: int = 5) -> tuple[float, float]:
    """Best seconds of `action` over `repeats` runs (on a shared machine the other load only adds time) and
    its peak traced memory in MiB."""
    seconds = []
    peak = 0.0
    for _ in range(repeats):
        tracemalloc.start()
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    return min(seconds), peak


def synthetic_splits(rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """MOSEI-sized splits in the aligned layout (random features, short texts)."""
    splits = {}
    for split, n in SIZES.items():
        ids = np.array([f"{split}{k // 8:05d}[{k % 8}]" for k in range(n)], dtype=object)
        splits[split] = {
            "id": ids,
            "label": rng.uniform(-3, 3, n).astype(np.float32),
            "text": np.array(
                [f"segment {k} says something of middling length" for k in range(n)], dtype=object
            ),
            "audio": rng.normal(size=(n, T, AUDIO)).astype(np.float32),
            "visual": rng.normal(size=(n, T, VISUAL)).astype(np.float32),
            "length": rng.integers(1, T + 1, n).astype(np.int64),
        }
    return splits


def write_unchecked(path: Path, groups: dict[str, dict[str, np.ndarray]], chunk_rows: int | None) -> None:
    """The same datasets, chunked alike (`chunk_rows` rows, or h5py's choice as `create_dataset` leaves it
    when None), without checksums: the baseline files."""
    with h5py.File(path, "w") as handle:
        for split, arrays in groups.items():
            group = handle.create_group(split)
            for name, values in arrays.items():
                kwargs: dict[str, Any] = {"dtype": h5py.string_dtype()} if values.dtype == object else {}
                if values.dtype != object:
                    rows = min(chunk_rows, len(values)) if chunk_rows else None
                    kwargs["chunks"] = (rows, *values.shape[1:]) if rows else True
                group.create_dataset(name, data=values, **kwargs)


def read_all(path: Path) -> None:
    """Every dataset of every split, whole: the plain read."""
    with h5py.File(path, "r") as handle:
        for split in handle:
            for name in handle[split]:
                handle[split][name][()]


def write_checked_features(path: Path, features: dict[str, np.ndarray]) -> None:
    """A features file as pipeline/features.py writes it (checksummed through `create_dataset`)."""
    with h5py.File(path, "w") as handle:
        for split, values in features.items():
            create_dataset(handle.create_group(split), "features", data=values)


def main() -> None:
    rng = np.random.default_rng(0)
    splits = synthetic_splits(rng)
    features = {split: rng.normal(size=(n, TEXT)).astype(np.float32) for split, n in SIZES.items()}
    rows: list[tuple[str, str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        attrs = {"seq_len": T, "audio_dim": AUDIO, "visual_dim": VISUAL, "dataset": "mosei-sized"}
        plain_write, _ = measure(lambda: write_unchecked(work / "plain.h5", splits, 16), repeats=3)
        checked_write, _ = measure(lambda: write_aligned(work / "checked.h5", splits, attrs), repeats=3)
        rows.append(("aligned", "write, no checksums (baseline)", plain_write, float("nan"), 1.0))
        rows.append(
            ("aligned", "write, Fletcher-32", checked_write, float("nan"), checked_write / plain_write)
        )
        write_unchecked(work / "plain-f.h5", {s: {"features": v} for s, v in features.items()}, None)
        write_checked_features(work / "checked-f.h5", features)
        baselines = {}
        for kind, plain, checked in (
            ("aligned", work / "plain.h5", work / "checked.h5"),
            ("features", work / "plain-f.h5", work / "checked-f.h5"),
        ):
            base, base_mb = measure(lambda p=plain: read_all(p))
            baselines[kind] = base
            rows.append((kind, "read, no checksums (baseline)", base, base_mb, 1.0))
            for label, action in (
                ("read, checksums verified", lambda c=checked: read_all(c)),
                ("content_digest", lambda c=checked: content_digest(c)),
            ):
                seconds, peak = measure(action)
                rows.append((kind, label, seconds, peak, seconds / base))
        checks, peak = measure(
            lambda: [
                check_values("x", s, splits[s]["id"], m, splits[s][m])
                for s in SPLITS
                for m in ("audio", "visual")
            ]
        )
        rows.append(("aligned", "check_values (audio, visual)", checks, peak, checks / baselines["aligned"]))
        state = {f"w{k}": torch.randn(MINILM_PARAMETERS // 10).half() for k in range(10)}
        save_model(work / "model.pt", {"state_dict": state})
        loaded = read_checkpoint(work / "model.pt", "")
        base, base_mb = measure(lambda: read_checkpoint(work / "model.pt", ""))
        digest, digest_mb = measure(lambda: weights_digest(loaded))
        rows.append(("model.pt", "read_checkpoint (baseline)", base, base_mb, 1.0))
        rows.append(("model.pt", "weights_digest", digest, digest_mb, digest / base))
    print("| file | operation | seconds | peak MiB | ratio to baseline |")
    print("|:--|:--|--:|--:|--:|")
    for kind, label, seconds, peak, ratio in rows:
        print(f"| {kind} | {label} | {seconds:.3f} | {peak:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
