"""Benchmark: the tables' paired bootstrap (pipeline/reporting/stats.py), 10,000 resamples, all seven metrics.

    python benchmarks/bootstrap.py                  # CMU-MOSI's and CMU-MOSEI's test-set sizes
    python benchmarks/bootstrap.py --segments 686 --rows 7 --repeats 5
    python benchmarks/bootstrap.py --calibrate 300  # false-positive rates under no difference
    python benchmarks/bootstrap.py --calibrate 200 --videos 31  # ... when errors are shared within videos

Times `scored` (drawing the resamples and scoring the reference and every row on them) plus `bootstrap`
(differences, intervals, p-values) for the reference and one other row, and for the reference and six
others (Table 3's shape), each row one run (one seed), on generated MOSI-like labels and noisy
predictions. A table of k seeds scores k runs per row: k times the time of a row. Prints the fastest of
`--repeats` runs (the machine is shared; the minimum is the least disturbed figure). Single-threaded BLAS
gives the CPU figure of one workflow job: run with OMP_NUM_THREADS=1.

`--calibrate N`: N simulated tables where the row and the reference are the SAME model (no real
difference), each run being the labels plus per-segment noise (N(0, 0.8)), its seed moving the offset
and the noise's scale (training randomness of about `sd`, relative: `run_predictions`), on 686 segments.
For each seed spread it prints how often the MAE and Acc2 are marked (p < 0.05; 5% is the nominal rate)
by the tables' tests: the two-level bootstrap over `--seeds` (3) shared seeds, the one-level bootstrap
of one shared seed, and what the tables did before, a bootstrap of the segments of the seed-averaged
predictions (of all seeds against all, and of one seed against all); and (MAE) the exact permutation
test over the seeds. With `--videos V` the segments belong to V videos and each run's errors share an
offset per video (`--video-sd`): the same null tables are tested drawing videos (what the tables do for
ids `<video>[<k>]`) and drawing segments.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.reporting.captions import RESAMPLES  # noqa: E402
from pipeline.reporting.stats import (  # noqa: E402
    Segments,
    bootstrap,
    scored,
    seed_differences,
    seed_weights,
    sign_flip_test,
)


def time_table(rows: list[Segments], repeats: int) -> float:
    """Fastest wall time of scoring the rows (the first is the reference) and comparing the others."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        reference, *others = scored(rows)
        for scores in others:
            bootstrap(seed_differences([scores], [reference]), seed_weights(1, RESAMPLES))
        best = min(best, time.perf_counter() - start)
    return best


def marked(rows: list[Segments], references: list[Segments], resamples: int) -> dict[str, bool]:
    """metric -> p_boot < 0.05 for the runs of a row and the reference's runs of the same seeds."""
    scores = scored([*rows, *references], resamples)
    differences = seed_differences(scores[: len(rows)], scores[len(rows) :])
    boot = bootstrap(differences, seed_weights(len(rows), resamples))
    return {m: boot[m][3] < 0.05 for m in ("mae", "acc2_non0")}


def run_predictions(rng: np.random.Generator, labels: np.ndarray, spread: float) -> np.ndarray:
    """One simulated run [N]: the labels, an offset N(0, spread) and noise whose scale 0.8 is multiplied by
    exp(N(0, spread)): a seed moves Acc2 (the offset) and the MAE (the scale) by about `spread` relative."""
    return labels + rng.normal(0, spread) + rng.normal(0, 0.8 * np.exp(rng.normal(0, spread)), len(labels))


def calibrate(tables: int, resamples: int, spreads: list[float], seeds: int) -> None:
    """Print how often each test marks a difference between two runs of the same simulated model."""
    rng = np.random.default_rng(1)
    n = 686
    labels = np.round(rng.uniform(-3, 3, n) * 3) / 3
    ids = np.arange(n).astype(str)
    print(f"{tables} tables per spread, {n} segments, {resamples:,} resamples; share marked (MAE / Acc2)")
    header = (
        f"{seeds} seeds, two-level",
        "1 seed",
        f"old: {seeds} averaged",
        f"old: 1 vs {seeds} avg.",
        "permutation",
    )
    print(f"{'seed sd':>7}" + "".join(f"  {h:>18}" for h in header))
    for spread in spreads:
        counts = {name: np.zeros(2) for name in ("two", "one", "old", "old_one", "perm")}
        for _ in range(tables):
            runs = [
                [Segments(ids, labels, run_predictions(rng, labels, spread)) for _ in range(seeds)]
                for _ in range(2)
            ]
            row, reference = runs
            counts["two"] += list(marked(row, reference, resamples).values())
            counts["one"] += list(marked(row[:1], reference[:1], resamples).values())
            averaged = [Segments(ids, labels, np.mean([r.predictions for r in rs], axis=0)) for rs in runs]
            counts["old"] += list(marked(averaged[:1], averaged[1:], resamples).values())
            counts["old_one"] += list(marked(row[:1], averaged[1:], resamples).values())
            per_seed = [np.abs(a.predictions - labels).mean() - np.abs(b.predictions - labels).mean()
                        for a, b in zip(row, reference, strict=True)]  # fmt: skip
            counts["perm"] += [sign_flip_test(per_seed) < 0.05, 0]
        cells = [f"{c[0] / tables:.3f} / {c[1] / tables:.3f}" for c in counts.values()]
        cells[-1] = cells[-1].split(" / ")[0]  # the permutation test is run on the MAE only
        print(f"{spread:>7.2f}" + "".join(f"  {c:>18}" for c in cells))


def calibrate_videos(tables: int, resamples: int, videos: int, video_sd: float, seeds: int) -> None:
    """Print how often the tables' bootstrap marks two runs of the same model whose errors move together
    within each video: each run adds its own N(0, video_sd) offset per video to per-segment noise N(0, 0.8).
    The same predictions are tested twice: drawn by video (ids `v<j>[<k>]`, what the tables do) and drawn
    segment by segment (the same ids without their video)."""
    rng = np.random.default_rng(2)
    n = 686
    labels = np.round(rng.uniform(-3, 3, n) * 3) / 3
    video = np.sort(rng.integers(0, videos, n))  # CMU-MOSI's test set: 686 segments of 31 videos
    ids = {
        "by video": np.array([f"v{v}[{k}]" for k, v in enumerate(video)]),
        "by segment": np.arange(n).astype(str),
    }

    def run() -> np.ndarray:
        return labels + rng.normal(0, video_sd, videos)[video] + rng.normal(0, 0.8, n)

    counts = {(draw, k): np.zeros(2) for draw in ids for k in (seeds, 1)}
    for _ in range(tables):
        row, reference = [run() for _ in range(seeds)], [run() for _ in range(seeds)]
        for draw, names in ids.items():
            segments = [[Segments(names, labels, p) for p in runs] for runs in (row, reference)]
            for k in (seeds, 1):
                counts[draw, k] += list(marked(segments[0][:k], segments[1][:k], resamples).values())
    print(f"{tables} null tables, {n} segments in {videos} videos, video offset sd {video_sd}; share marked")
    for (draw, k), count in counts.items():
        print(f"  {draw:>10}, {k} seed(s): MAE {count[0] / tables:.3f}, Acc2 {count[1] / tables:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, nargs="+", default=[686, 4659], help="test-set sizes")
    parser.add_argument("--rows", type=int, nargs="+", default=[2, 7], help="rows, the reference included")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calibrate", type=int, metavar="N", help="simulate N null tables per seed spread")
    parser.add_argument("--spreads", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1])
    parser.add_argument("--resamples", type=int, default=2000, help="resamples per simulated table")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per row of a simulated table")
    parser.add_argument("--videos", type=int, help="with --calibrate: errors shared within this many videos")
    parser.add_argument("--video-sd", type=float, default=0.3, help="with --videos: sd of a video's offset")
    args = parser.parse_args()
    if args.calibrate and args.videos:
        calibrate_videos(args.calibrate, args.resamples, args.videos, args.video_sd, args.seeds)
        return
    if args.calibrate:
        calibrate(args.calibrate, args.resamples, args.spreads, args.seeds)
        return
    rng = np.random.default_rng(0)
    print(f"{'segments':>8} {'rows':>4} {'seconds':>8}   ({RESAMPLES:,} resamples, 7 metrics)")
    for n in args.segments:
        labels = np.round(rng.uniform(-3, 3, n) * 3) / 3
        ids = np.arange(n).astype(str)
        rows = [Segments(ids, labels, labels + rng.normal(0, 0.8, n)) for _ in range(max(args.rows))]
        for count in args.rows:
            print(f"{n:>8} {count:>4} {time_table(rows[:count], args.repeats):>8.3f}")


if __name__ == "__main__":
    main()
