"""Benchmark: how each baseline's preset (pipeline/presets.py) changes its training time on the CPU default.

    python benchmarks/presets.py --threads 1 --samples 256 --repeats 2
    python benchmarks/presets.py --threads 1 --jobs        # whole training jobs, slower (about 30 minutes)

For every baseline row of config/config.yaml, times one training pass (`benchmarks/train.py` `throughput`,
the first `--samples` training samples of the synthetic dataset) with the row's settings before the presets
(`base` plus the experiment's own overrides) and with them (`grid.experiment_settings`), in the same run;
the ratio is the preset's throughput over the earlier one (below 1: the preset trains slower). Batch size
is what moves the time (weight decay, clipping and dropouts cost next to nothing); the job's training time
scales by the inverse of the ratio.

With `--jobs`, each row's whole training job instead (`pipeline.train.train_run`, its configured epochs,
seed 0, on the whole synthetic dataset and its cached MiniLM features): wall seconds (training and the
validation passes) and the selected epoch's validation MAE, before and after, so that a preset that makes
the CPU default slower, or stops a row learning in the default's few epochs, shows (validation only).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.train import benchmark_arguments, frozen_features, throughput, training_arrays  # noqa: E402
from pipeline.data.align import align_dataset  # noqa: E402
from pipeline.data.synthesize import synthesize  # noqa: E402
from pipeline.features import write_features  # noqa: E402
from pipeline.grid import experiment_settings, load_config  # noqa: E402
from pipeline.presets import PRESETS  # noqa: E402
from pipeline.settings import resolve_settings  # noqa: E402
from pipeline.train import train_run  # noqa: E402


def before_and_after(config: dict, name: str) -> dict[str, dict]:
    """A row's settings before the presets (`base` plus its own overrides) and with its preset."""
    return {
        "before": resolve_settings(config["base"], config["experiments"][name]),
        "after": experiment_settings(config, name),
    }


def time_jobs(config: dict, names: list[str]) -> None:
    """Train each baseline row's job before and after its preset; print one Markdown table."""
    print("| row | epochs | before s | after s | after / before | before valid MAE | after valid MAE |")
    print("| --- | --: | --: | --: | --: | --: | --: |")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize(root / "raw", videos=93, seed=0)
        align_dataset(root / "raw", root / "synthetic.h5", seq_len=50)
        write_features(root / "synthetic.h5", root / "minilm.h5", "minilm")
        for name in names:
            found = {}
            for when, settings in before_and_after(config, name).items():
                out = root / "runs" / name / when
                features = None if settings["model"]["lm_mode"] == "finetune" else root / "minilm.h5"
                start = time.perf_counter()
                summary = train_run(settings, root / "synthetic.h5", out, 0, features, device="cpu")
                found[when] = (time.perf_counter() - start, summary["best_valid"]["mae"])
                print(
                    f"{name} {when}: {found[when][0]:.0f} s, valid MAE {found[when][1]:.3f}", file=sys.stderr
                )
            epochs = experiment_settings(config, name)["train"]["epochs"]
            (before_s, before_mae), (after_s, after_mae) = found["before"], found["after"]
            print(
                f"| {name} | {epochs} | {before_s:.0f} | {after_s:.0f} | {after_s / before_s:.2f}x |"
                f" {before_mae:.3f} | {after_mae:.3f} |"
            )


def main() -> None:
    """Time every baseline row before and after its preset; print one Markdown table."""
    parser = benchmark_arguments(__doc__.splitlines()[0], samples=256)
    parser.add_argument("--jobs", action="store_true", help="time whole training jobs instead of passes")
    parser.add_argument(
        "--rows", nargs="+", default=list(PRESETS), choices=list(PRESETS), help="rows to time"
    )
    args = parser.parse_args()
    config = load_config([REPO / "config" / "config.yaml"])
    if args.jobs:
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        time_jobs(config, args.rows)
        return
    info, arrays = training_arrays(args)
    device = torch.device("cpu")
    features = frozen_features(resolve_settings(config["base"]), arrays["text"], device)
    print("| row | batch before | batch after | before samples/s | after samples/s | after / before |")
    print("| --- | --: | --: | --: | --: | --: |")
    for name in args.rows:
        rows = before_and_after(config, name)
        rates = {}
        for when, settings in rows.items():
            finetune = settings["model"]["lm_mode"] == "finetune"
            dims = {**info, "lm_hidden": None if finetune else features.shape[1]}
            cached = None if finetune else features
            rates[when] = throughput(settings, dims, arrays, cached, device, args.repeats)
            print(f"{name} {when}: {rates[when]:.1f} samples/s", file=sys.stderr)
        batches = " | ".join(str(rows[w]["train"]["batch_size"]) for w in rows)
        print(
            f"| {name} | {batches} | {rates['before']:.1f} | {rates['after']:.1f} |"
            f" {rates['after'] / rates['before']:.2f}x |"
        )


if __name__ == "__main__":
    main()
