"""Benchmark: training throughput (samples/second) of every baseline beside HyCon, in one run.

    python benchmarks/baselines.py --threads 1        # builds the synthetic dataset (93 videos, T = 50) first
    python benchmarks/baselines.py --data data/aligned/synthetic.h5 --samples 256

Each trained family is timed exactly as `benchmarks/train.py` times HyCon (its `throughput`:
`pipeline.fitting.train_epoch` over the first `--samples` training samples, best of `--repeats` passes after a
warm-up batch), frozen mode with the same cached MiniLM features (per-word states for the word-sequential
baselines, `model.text_steps: words`) and the default settings (batch 32; `loss.contrastive=none` for the
baselines, HyCon with its hybrid loss). `mag_bert` cannot run frozen (its gate sits inside the language model)
and is timed fine-tuned, marked (ft). `text_probe` is not trained by
SGD: its row times its closed-form fit (the language model's [mean; CLS] features of the samples, encoded
from the text, then the ridge path over its alphas) per sample. The ratio is each row's throughput over
HyCon's on the same device. CPU, and CUDA where available.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.train import benchmark_arguments, frozen_features, throughput, training_arrays  # noqa: E402
from pipeline.choices import ARCHS  # noqa: E402
from pipeline.data.loader import AlignedDataset  # noqa: E402
from pipeline.models import model_class, reads_word_states  # noqa: E402
from pipeline.models.probe import ALPHAS, ridge_path  # noqa: E402
from pipeline.settings import resolve_settings  # noqa: E402


def probe_rate(settings: dict, info: dict, arrays: dict, device: torch.device) -> float:
    """Samples per second of the text probe's closed-form fit (feature encoding plus the ridge path)."""
    probe = model_class("text_probe")(
        settings["model"], info["audio_dim"], info["visual_dim"], info["seq_len"]
    )
    start = time.perf_counter()
    features = probe.features(AlignedDataset(arrays), device, settings["train"]["batch_size"])
    ridge_path(features, arrays["label"], ALPHAS)
    return len(features) / (time.perf_counter() - start)


def main() -> None:
    """Measure every family on every device and print one Markdown table."""
    parser = benchmark_arguments(__doc__.splitlines()[0], samples=256)
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS, help="families to time")
    args = parser.parse_args()
    archs = ["hycon"] + [a for a in args.archs if a != "hycon"]
    info, arrays = training_arrays(args)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rates: dict[str, dict[str, float]] = {arch: {} for arch in archs}
    for device in devices:
        features, words = frozen_features(resolve_settings(None, {}), arrays["text"], device, info["seq_len"])
        for arch in archs:
            overrides = {"model.arch": arch}
            if arch != "hycon":
                overrides["loss.contrastive"] = "none"
            if arch == "mag_bert":
                overrides["model.lm_mode"] = "finetune"
            settings = resolve_settings(None, overrides)
            finetune = settings["model"]["lm_mode"] == "finetune"
            dims = {**info, "lm_hidden": None if finetune else features.shape[1]}
            if arch == "text_probe":
                rates[arch][device.type] = probe_rate(settings, dims, arrays, device)
            else:
                cached = None if finetune else features
                per_word = None if finetune or not reads_word_states(settings["model"]) else words
                rates[arch][device.type] = throughput(
                    settings, dims, arrays, cached, device, args.repeats, per_word
                )
            print(f"{arch} on {device.type}: {rates[arch][device.type]:.1f} samples/s", file=sys.stderr)

    print(
        f"\n{len(arrays['label'])} training samples, T = {info['seq_len']}, batch 32, best of {args.repeats},"
        f" torch threads {torch.get_num_threads()}\n"
    )
    header = "| family | " + " | ".join(f"{d.type} samples/s | {d.type} / HyCon" for d in devices) + " |"
    print(header)
    print("|" + " --- |" * (1 + 2 * len(devices)))
    for arch in archs:
        label = {"mag_bert": "mag_bert (ft)", "text_probe": "text_probe (fit)"}.get(arch, arch)
        cells = " | ".join(
            f"{rates[arch][d.type]:.1f} | {rates[arch][d.type] / rates['hycon'][d.type]:.2f}x"
            for d in devices
        )
        print(f"| {label} | {cells} |")


if __name__ == "__main__":
    main()
