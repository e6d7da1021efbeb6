"""Benchmark: training throughput (samples/second) with a fine-tuned and a frozen-cached language encoder.

    python benchmarks/train.py                       # builds the synthetic dataset (93 videos, T = 50) first
    python benchmarks/train.py --data data/aligned/synthetic.h5 --samples 512

Both modes use the bundled all-MiniLM-L6-v2 and the default settings otherwise (HyCon loss, addition
fusion, batch 32). Each measurement times `pipeline.fitting.train_epoch` (forward, MAE + hybrid loss,
backward, Adam step) over the first `--samples` training samples (best of `--repeats` passes), after one
untimed warm-up batch; the frozen mode reads features cached beforehand, whose one-off cost is reported
separately. Runs on the CPU and, where CUDA is available, on the GPU, printed side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.data.align import align_dataset  # noqa: E402
from pipeline.data.dataset import load_split, validate_aligned  # noqa: E402
from pipeline.data.loader import AlignedDataset, WordStates  # noqa: E402
from pipeline.data.synthesize import synthesize  # noqa: E402
from pipeline.device import use_amp  # noqa: E402
from pipeline.features import compute_features  # noqa: E402
from pipeline.fitting import train_epoch  # noqa: E402
from pipeline.models import build_model  # noqa: E402
from pipeline.optimizer import make_optimizer  # noqa: E402
from pipeline.settings import feature_settings_of, resolve_settings  # noqa: E402
from pipeline.train import seed_everything  # noqa: E402

MODES = ("finetune", "frozen")


def subset(arrays: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The first `n` samples of a split's arrays."""
    return {name: values[:n] for name, values in arrays.items()}


def throughput(
    settings: dict,
    info: dict,
    arrays: dict[str, np.ndarray],
    features: np.ndarray | None,
    device: torch.device,
    repeats: int = 1,
    words: np.ndarray | None = None,
) -> float:
    """Training samples per second: the best of `repeats` timed passes over `arrays`, after a warm-up batch
    (best-of damps the noise of a shared machine; each pass continues training the same model). `features`
    [N, H] and `words` [N, T, H] are the cached sentence vectors and per-word states (None: not read)."""
    seed_everything(0)
    model = build_model(settings, info).to(device)
    optimizer = make_optimizer(model, settings["train"])
    amp = use_amp(settings["train"]["amp"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    generators = {"loader": torch.Generator().manual_seed(0), "loss": torch.Generator().manual_seed(1)}
    n = len(arrays["label"])
    passes = [("warm-up", settings["train"]["batch_size"])] + [
        (f"{settings['model']['lm_mode']}", n)
    ] * repeats
    rates = []
    for name, size in passes:
        part = subset(arrays, size)
        dataset = AlignedDataset(
            part,
            None if features is None else features[:size],
            None if words is None else WordStates(words[:size], part["length"]),
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_epoch(model, dataset, settings, optimizer, scaler, device, amp, generators, desc=name)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(size / (time.perf_counter() - start))
    return max(rates[1:])


def frozen_features(
    settings: dict, texts: np.ndarray, device: torch.device, steps: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The cached language vectors [N, H] of `texts` as the features stage makes them for `settings`, and
    with `steps` their per-word states [N, steps, H] (else None)."""
    lm = feature_settings_of(settings)  # `text_token: auto` resolved
    vectors, words = compute_features(
        {"train": texts.tolist()},
        lm["language_model"],
        lm["text_token"],
        lm["max_text_tokens"],
        device=device,
        steps=steps,
    )
    return vectors["train"], words.get("train")


def benchmark_arguments(description: str, samples: int) -> argparse.ArgumentParser:
    """The options every training benchmark shares: data, samples, repeats, threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, help="aligned HDF5; default: build the synthetic dataset")
    parser.add_argument("--samples", type=int, default=samples, help="training samples per measurement")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed passes per measurement; the best counts"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return parser


def training_arrays(args: argparse.Namespace) -> tuple[dict, dict[str, np.ndarray]]:
    """Apply `--threads`; return the data file's info and its first `--samples` training samples (the
    synthetic dataset, 93 videos at T = 50, built in a temporary folder when `--data` is not given)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            synthesize(Path(tmp) / "raw", videos=93, seed=0)
            data = Path(tmp) / "synthetic.h5"
            align_dataset(Path(tmp) / "raw", data, seq_len=50)
        return validate_aligned(data), subset(load_split(data, "train"), args.samples)


def main() -> None:
    """Measure every (mode, device) pair and print one table."""
    parser = benchmark_arguments(__doc__.splitlines()[0], samples=320)
    parser.add_argument("--language-model", default="minilm")
    args = parser.parse_args()
    info, arrays = training_arrays(args)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows: dict[str, dict[str, float]] = {"finetune": {}, "frozen": {}, "caching": {}}
    for device in devices:
        for mode in MODES:
            settings = resolve_settings(
                None, {"model.lm_mode": mode, "model.language_model": args.language_model}
            )
            info["lm_hidden"] = None
            features = None
            if mode == "frozen":
                start = time.perf_counter()
                features, _ = frozen_features(settings, arrays["text"], device)
                rows["caching"][device.type] = len(features) / (time.perf_counter() - start)
                info["lm_hidden"] = features.shape[1]
            rows[mode][device.type] = throughput(settings, info, arrays, features, device, args.repeats)

    names = {
        "finetune": f"fine-tuned {args.language_model}",
        "frozen": f"frozen-cached {args.language_model}",
        "caching": "(one-off feature caching)",
    }
    header = f"{'training samples/s':<32}" + "".join(f"{d.type:>12}" for d in devices)
    print(
        f"\n{len(arrays['label'])} samples, T = {info['seq_len']}, batch 32, best of {args.repeats},"
        f" torch threads {torch.get_num_threads()}"
    )
    print(header)
    print("-" * len(header))
    for key, label in names.items():
        print(f"{label:<32}" + "".join(f"{rows[key][d.type]:>12.1f}" for d in devices))
    print(
        f"{'frozen / fine-tuned':<32}"
        + "".join(f"{rows['frozen'][d.type] / rows['finetune'][d.type]:>11.1f}x" for d in devices)
    )


if __name__ == "__main__":
    main()
