"""Benchmark: the tables' paired bootstrap (pipeline/reporting/stats.py), 10,000 resamples, all seven metrics.

    python benchmarks/bootstrap.py                  # CMU-MOSI's and CMU-MOSEI's test-set sizes
    python benchmarks/bootstrap.py --segments 686 --rows 7 --repeats 5

Times `scored` (drawing the resamples and scoring the reference and every row on them) plus `bootstrap`
(differences, intervals, p-values) for the reference and one other row, and for the reference and six
others (Table 3's shape), on generated MOSI-like labels and noisy predictions. Prints the fastest of
`--repeats` runs (the machine is shared; the minimum is the least disturbed figure). Single-threaded BLAS
gives the CPU figure of one workflow job: run with OMP_NUM_THREADS=1.
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
from pipeline.reporting.stats import Segments, bootstrap, scored  # noqa: E402


def time_table(rows: list[Segments], repeats: int) -> float:
    """Fastest wall time of scoring the rows (the first is the reference) and comparing the others."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        reference, *others = scored(rows)
        for scores in others:
            bootstrap(scores, reference)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, nargs="+", default=[686, 4659], help="test-set sizes")
    parser.add_argument("--rows", type=int, nargs="+", default=[2, 7], help="rows, the reference included")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
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
