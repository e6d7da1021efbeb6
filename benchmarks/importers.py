"""Benchmark: `import` on pickles of CMU-MOSI's and CMU-MOSEI's size, one format per subprocess.

    python benchmarks/importers.py                 # MOSI scale: mmsa, mag, misa
    python benchmarks/importers.py --mosei-scale   # MOSEI scale (about 23k segments)

The pickles are random data in each layout (MMSA aligned_50: 5/20-d for MOSI, 74/35-d for MOSEI; MAG and
MISA: word-level sequences of 8-30 steps, 74/47-d or 74/35-d). Each import runs in its own process; the table
gives its wall time (hashing, unpickling, checks and writing the HDF5 file) and the process's peak resident
memory (VmHWM, interpreter and libraries included).
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPLITS = {"mosi": (1284, 229, 686), "mosei": (16326, 1871, 4659)}
DIMS = {"mosi": {"mmsa": (5, 20), "word": (74, 47)}, "mosei": {"mmsa": (74, 35), "word": (74, 35)}}


def _word_split(rng: np.random.Generator, n: int, dims: tuple[int, int], fmt: str, tag: str) -> list:
    out = []
    for k in range(n):
        steps = int(rng.integers(8, 31))
        words = [f"w{i}" for i in range(steps)]
        visual = rng.normal(size=(steps, dims[1])).astype(np.float32)
        acoustic = rng.normal(size=(steps, dims[0])).astype(np.float32)
        features = (words, visual, acoustic) if fmt == "mag" else (np.arange(steps), visual, acoustic, words)
        out.append((features, np.array([[rng.uniform(-3, 3)]], np.float32), f"{tag}{k // 8}[{k % 8}]"))
    return out


def build(fmt: str, scale: str, folder: Path) -> Path:
    """Write a random pickle (or MISA folder) of `fmt` at `scale`; return the source path."""
    rng = np.random.default_rng(0)
    sizes = dict(zip(("train", "valid", "test"), SPLITS[scale], strict=True))
    if fmt == "mmsa":
        da, dv = DIMS[scale]["mmsa"]
        data = {
            split: {
                "id": np.array([f"{split}{k // 8}$_${k % 8 + 1}" for k in range(n)], dtype=object),
                "raw_text": np.array(["some words of a segment"] * n, dtype=object),
                "audio": rng.normal(size=(n, 50, da)).astype(np.float32),
                "vision": rng.normal(size=(n, 50, dv)).astype(np.float32),
                "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
                "audio_lengths": np.full(n, 50),
                "vision_lengths": np.full(n, 50),
            }
            for split, n in sizes.items()
        }
        path = folder / "aligned_50.pkl"
        path.write_bytes(pickle.dumps(data, protocol=4))
        return path
    dims = DIMS[scale]["word"]
    named = {"dev" if s == "valid" else s: _word_split(rng, n, dims, fmt, s) for s, n in sizes.items()}
    if fmt == "mag":
        path = folder / "data.pkl"
        path.write_bytes(pickle.dumps(named, protocol=4))
        return path
    for split, segments in named.items():
        (folder / f"{split}.pkl").write_bytes(pickle.dumps(segments, protocol=4))
    return folder


def _child(fmt: str, source: str, out: str) -> None:
    sys.path.insert(0, str(REPO))
    from pipeline.data.import_ import import_dataset

    start = time.perf_counter()
    import_dataset(fmt, source, out, dataset="bench")
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    print(f"{seconds:.2f} {peak:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mosei-scale", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    scale = "mosei" if args.mosei_scale else "mosi"
    print("| format | scale | segments | source MB | seconds | peak MB |\n|---|---|--:|--:|--:|--:|")
    for fmt in ("mmsa", "mag", "misa"):
        with tempfile.TemporaryDirectory() as tmp:
            source = build(fmt, scale, Path(tmp))
            files = [source] if source.is_file() else sorted(source.glob("*.pkl"))
            megabytes = sum(f.stat().st_size for f in files) / 2**20
            out = Path(tmp) / "out.h5"
            result = subprocess.run(
                [sys.executable, __file__, "--child", fmt, str(source), str(out)],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds, peak = result.stdout.split()
            print(f"| {fmt} | {scale} | {sum(SPLITS[scale])} | {megabytes:.0f} | {seconds} | {peak} |")


if __name__ == "__main__":
    main()
