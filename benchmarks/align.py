"""Benchmark: our aligner against the CMU SDK's `mmdataset.align` on the same generated MOSI-like data.

    python benchmarks/align.py                 # 10 and 40 videos: seconds, speed ratio, peak memory, equality
    python benchmarks/align.py --mosei-scale   # ours alone on MOSEI's count of segments and words

Each aligner runs in its own subprocess, `--repeat` times (default 5); the table reports the fastest wall
time (the machine is shared, so the minimum is the least disturbed figure) and that run's CPU time.
Peak memory is the process's peak resident set size (VmHWM), which includes the interpreter and
imported libraries ("base" is the same figure taken just before the work starts). Our time covers
validation, checksums (hashed on a second thread; the CPU column counts both threads; "hashing" is the
time SHA-256 alone takes on the same files), alignment and writing the HDF5 file; the SDK's covers its
recipe (two `align` calls), without writing anything. Data come from the tests' generator
(`pipeline/devtools/raw.py:generate_raw`: every word has frames, as the SDK's broken `impute` needs), and the
outputs are checked equal (same ids and words, features within 1e-5).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.data.align import align_dataset  # noqa: E402
from pipeline.devtools.raw import generate_raw  # noqa: E402
from pipeline.devtools.sdk_oracle import assert_same_as_sdk, sdk_align  # noqa: E402
from pipeline.io import sha256sum  # noqa: E402
from pipeline.layout import HASHED_FILES  # noqa: E402

SEQ_LEN = 50
MOSI_LIKE = {"segments": 24, "words": 10, "visual_dim": 47}
MOSEI_LIKE = {"videos": 1000, "segments": 23, "words": 20, "visual_dim": 35}  # ~23,000 segments, ~470k words


def _peak_mb() -> float:
    """Peak resident set size of this process in MiB: VmHWM (reset at exec, unlike ru_maxrss, which
    would report the benchmark parent's size at fork time), or ru_maxrss where /proc is absent."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(kind: str, raw: Path, out: Path, report: Path) -> None:
    """Run one aligner in this process; write {seconds, cpu, peak_mb, base_mb, summary} to `report`."""
    base = _peak_mb()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    if kind == "ours":
        summary = align_dataset(raw, out, seq_len=SEQ_LEN)
    else:
        with contextlib.redirect_stdout(io.StringIO()):  # the SDK logs every step to stdout
            result = sdk_align(raw, SEQ_LEN)
        out.write_bytes(pickle.dumps(result))
        summary = {"segments": len(result)}
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    peak = _peak_mb()
    start = time.perf_counter()
    if kind == "ours":  # the share of the checksums, which the SDK does not compute, timed on their own
        for name in HASHED_FILES:
            sha256sum(raw / name)
    hashing = time.perf_counter() - start
    report.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "hash": hashing,
                "peak_mb": peak,
                "base_mb": base,
                "summary": summary,
            }
        )
    )


def measure(kind: str, raw: Path, out: Path, repeat: int) -> dict:
    """Run `worker` in a fresh interpreter `repeat` times; return the fastest run's report."""
    report = out.with_suffix(".json")
    cmd = [sys.executable, __file__, "--worker", kind, str(raw), str(out), str(report)]
    runs = []
    for _ in range(repeat):
        out.unlink(missing_ok=True)  # replacing an existing output would time the deletion of the old one
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{kind} aligner failed:\n{proc.stderr[-3000:]}")
        runs.append(json.loads(report.read_text()))
    return min(runs, key=lambda run: run["seconds"])


def compare(sizes: list[int], seed: int, repeat: int, work: Path) -> None:
    """Time ours and the SDK on each size, check the outputs agree, print one table row per size."""
    print(
        f"{'videos':>6} {'segments':>8} {'words':>7} {'ours s (cpu)':>13} {'hashing s':>9} "
        f"{'SDK s (cpu)':>14} {'speed-up':>8} {'ours MB (base)':>15} {'SDK MB (base)':>14} {'same':>5}"
    )
    for videos in sizes:
        raw = generate_raw(work / f"raw{videos}", videos=videos, seed=seed, **MOSI_LIKE)
        ours = measure("ours", raw, work / f"ours{videos}.h5", repeat)
        sdk = measure("sdk", raw, work / f"sdk{videos}.pkl", repeat)
        assert_same_as_sdk(work / f"ours{videos}.h5", pickle.loads((work / f"sdk{videos}.pkl").read_bytes()))
        segments = sum(ours["summary"]["segments"].values())
        assert segments == sdk["summary"]["segments"]
        print(
            f"{videos:>6} {segments:>8} {ours['summary']['words_kept']:>7} "
            f"{ours['seconds']:>6.2f} ({ours['cpu']:>4.2f}) {ours['hash']:>9.2f} "
            f"{sdk['seconds']:>7.2f} ({sdk['cpu']:>5.2f}) "
            f"{sdk['seconds'] / ours['seconds']:>7.0f}x "
            f"{ours['peak_mb']:>7.0f} ({ours['base_mb']:>4.0f}) "
            f"{sdk['peak_mb']:>6.0f} ({sdk['base_mb']:>4.0f}) {'yes':>5}",
            flush=True,
        )


def mosei_scale(seed: int, work: Path) -> None:
    """Ours alone on an input with MOSEI's count of segments and words."""
    start = time.perf_counter()
    raw = generate_raw(work / "mosei", seed=seed, **MOSEI_LIKE)
    size_gb = sum(f.stat().st_size for f in raw.iterdir()) / 1e9
    print(f"generated {MOSEI_LIKE} ({size_gb:.1f} GB raw) in {time.perf_counter() - start:.0f} s", flush=True)
    ours = measure("ours", raw, work / "mosei.h5", repeat=1)
    summary = ours["summary"]
    print(
        f"MOSEI scale: {sum(summary['segments'].values())} segments {summary['segments']}, "
        f"{summary['words_kept']} words kept: {ours['seconds']:.1f} s (CPU {ours['cpu']:.1f} s), "
        f"peak RSS {ours['peak_mb']:.0f} MB (base {ours['base_mb']:.0f} MB)"
    )


def main() -> None:
    """Parse arguments and run the comparison or the MOSEI-scale run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 40], help="videos per comparison run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each aligner; the fastest counts")
    parser.add_argument("--mosei-scale", action="store_true", help="ours alone on ~23,000 segments")
    parser.add_argument("--workdir", type=Path, help="where to generate data (default: a temporary folder)")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "RAW", "OUT", "REPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, raw, out, report = args.worker
        worker(kind, Path(raw), Path(out), Path(report))
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        if args.mosei_scale:
            mosei_scale(args.seed, Path(work))
        else:
            compare(args.sizes, args.seed, args.repeat, Path(work))


if __name__ == "__main__":
    main()
