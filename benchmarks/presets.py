"""Benchmark: how each baseline's preset (pipeline/presets.py) changes its training time on the CPU default.

    python benchmarks/presets.py --threads 1 --samples 512

For every baseline row of config/config.yaml, times one training pass (`benchmarks/train.py` `throughput`,
the first `--samples` training samples of the synthetic dataset) with the row's settings before the presets
(`base` plus the experiment's own overrides) and with them (`grid.experiment_settings`), in the same run;
the ratio is the preset's throughput over the earlier one (below 1: the preset trains slower). Batch size
is what moves the time (weight decay, clipping and dropouts cost next to nothing); the job's training time
scales by the inverse of the ratio.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.train import benchmark_arguments, frozen_features, throughput, training_arrays  # noqa: E402
from pipeline.grid import experiment_settings, load_config  # noqa: E402
from pipeline.presets import PRESETS  # noqa: E402
from pipeline.settings import resolve_settings  # noqa: E402


def main() -> None:
    """Time every baseline row before and after its preset; print one Markdown table."""
    args = benchmark_arguments(__doc__.splitlines()[0], samples=512).parse_args()
    config = load_config([REPO / "config" / "config.yaml"])
    info, arrays = training_arrays(args)
    device = torch.device("cpu")
    features = frozen_features(resolve_settings(config["base"]), arrays["text"], device)
    print("| row | batch before | batch after | before samples/s | after samples/s | after / before |")
    print("| --- | --: | --: | --: | --: | --: |")
    for name in PRESETS:
        rows = {
            "before": resolve_settings(config["base"], config["experiments"][name]),
            "after": experiment_settings(config, name),
        }
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
