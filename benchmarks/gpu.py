"""GPU check: the CUDA path end to end, in one prepared run (under 5 minutes on one GPU, no network).

    python benchmarks/gpu.py                      # (also `make gpu-check`) needs CUDA
    python benchmarks/gpu.py --device cpu --smoke # the same logic on the CPU, tiny (what the tests run)

Checks, on the generated MOSI-like data (93 videos, T = 50; `--smoke`: 12 videos, T = 8):
1. fine-tuning with mixed precision (the bundled MiniLM, or `--language-model PATH`): every loss finite,
   metrics.json written by `evaluate` with finite metrics;
2. the same seed twice: every history value and test metric within `--tolerance` (CUDA kernels with atomic
   adds, and AMP rounding of them, may differ in the last bits; on the CPU the runs are identical);
3. kill and resume: a run with `train.keep_last` interrupted after epoch 2 by the epoch callback (last.pt
   on disk, no model.pt), then resumed: it must report the resume and match the uninterrupted run (check 1)
   within the same tolerance;
4. throughput of `pipeline.fitting.train_epoch` (benchmarks/train.py's measurement) with a randomly
   initialised BERT-base-sized encoder (transformers' BertConfig defaults: 12 layers, width 768; MiniLM's
   tokenizer), fine-tuned and frozen-cached, on the GPU and on the CPU in the same run, with the peak GPU
   memory of each GPU measurement.
It prints one table. Exit status: 0 all checks passed, 1 a check failed, 3 no CUDA device (one line, nothing
measured; use `--device cpu` to run the logic anyway). CI does not run it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.train import frozen_features, subset, throughput  # noqa: E402
from pipeline.data.align import align_dataset  # noqa: E402
from pipeline.data.dataset import load_split, validate_aligned  # noqa: E402
from pipeline.data.synthesize import synthesize  # noqa: E402
from pipeline.evaluate import evaluate_run  # noqa: E402
from pipeline.settings import resolve_settings  # noqa: E402
from pipeline.train import train_run  # noqa: E402

NO_CUDA = 3  # exit status when there is no CUDA device (distinct from a failed check)


class Interrupted(Exception):
    """Raised by the epoch callback: the run is killed after an epoch, its last.pt on disk."""


def prepare_data(root: Path, smoke: bool) -> Path:
    """Generate and align the synthetic dataset; return the aligned HDF5."""
    synthesize(root / "raw", videos=12 if smoke else 93, seed=0)
    synthesize_out = root / "synthetic.h5"
    align_dataset(root / "raw", synthesize_out, seq_len=8 if smoke else 50)
    return synthesize_out


def history(run_dir: Path) -> list[dict[str, float]]:
    """history.csv without the wall-clock column, as floats."""
    with open(run_dir / "history.csv", newline="") as handle:
        return [{k: float(v) for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def max_difference(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    """Largest absolute difference between two histories (inf when their epochs or columns differ)."""
    if len(a) != len(b) or any(set(x) != set(y) for x, y in zip(a, b, strict=True)):
        return math.inf
    gaps = [
        0.0 if math.isnan(x[k]) and math.isnan(y[k]) else abs(x[k] - y[k])
        for x, y in zip(a, b, strict=True)
        for k in x
    ]
    return max((math.inf if math.isnan(gap) else gap for gap in gaps), default=0.0)


def metric_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest absolute difference between two metrics.json's test metrics (inf when one is undefined and
    the other not)."""
    gaps = [
        0.0 if math.isnan(a["test"][k]) and math.isnan(b["test"][k]) else abs(a["test"][k] - b["test"][k])
        for k in a["test"]
    ]
    return max((math.inf if math.isnan(gap) else gap for gap in gaps), default=0.0)


def training_checks(
    data: Path, root: Path, args: argparse.Namespace, device: str
) -> list[tuple[str, bool, str]]:
    """Checks 1-3: a mixed-precision fine-tuning run, the same seed again, and a kill-and-resume."""
    overrides = {
        "model.lm_mode": "finetune",
        "model.language_model": args.language_model,
        "train.amp": True,
        "train.epochs": 3,
        "train.patience": 10,
    }
    if args.smoke:
        overrides.update({"model.d": 8, "model.ff": 16, "model.head_hidden": 16, "train.batch_size": 16})
    settings = resolve_settings(None, overrides)
    rows = []
    start = time.perf_counter()
    first = train_run(settings, data, root / "a", seed=0, device=device)
    metrics = evaluate_run(root / "a", data, device=device)
    losses = [
        row[k] for row in history(root / "a") for k in ("train_loss", "train_pred_loss", "train_hybrid_loss")
    ]
    written = json.loads((root / "a" / "metrics.json").read_text())
    ok = all(map(math.isfinite, losses)) and set(written["test"]) == set(metrics["test"])
    ok = ok and math.isfinite(metrics["test"]["mae"])
    rows.append(
        (
            f"fine-tune {args.language_model}, AMP {'on' if first['amp'] else 'off (CPU)'}",
            ok,
            f"{first['epochs_run']} epochs, {len(losses)} losses finite, "
            f"test MAE {metrics['test']['mae']:.4f}, "
            f"metrics.json written; {time.perf_counter() - start:.1f} s on {first['device_name']}",
        )
    )
    train_run(settings, data, root / "b", seed=0, device=device)
    again = evaluate_run(root / "b", data, device=device)
    gap = max(max_difference(history(root / "a"), history(root / "b")), metric_difference(metrics, again))
    rows.append(
        (
            "same seed twice",
            gap <= args.tolerance,
            f"max |difference| {gap:.2e} (tolerance {args.tolerance:g})",
        )
    )

    def kill_after_two(epoch: int, _row: dict[str, float]) -> None:
        if epoch == 2:
            raise Interrupted

    kept = {**overrides, "train.keep_last": True}
    with contextlib.suppress(Interrupted):
        train_run(kept, data, root / "c", seed=0, device=device, epoch_callback=kill_after_two)
    interrupted = (root / "c" / "last.pt").is_file() and not (root / "c" / "model.pt").exists()
    resumed = train_run(kept, data, root / "c", seed=0, device=device)
    gap = max_difference(history(root / "a"), history(root / "c"))
    rows.append(
        (
            "kill after epoch 2, resume",
            interrupted and resumed["resumed_from_epoch"] == 2 and gap <= args.tolerance,
            f"last.pt kept: {interrupted}, resumed from epoch {resumed['resumed_from_epoch']}, "
            f"max |difference| to the uninterrupted run {gap:.2e}",
        )
    )
    return rows


@contextlib.contextmanager
def random_bert(smoke: bool) -> Iterator[str]:
    """A folder holding a randomly initialised BERT-base-sized model (BertConfig defaults; 'tiny' in smoke
    mode) with MiniLM's tokenizer, loadable as `model.language_model`."""
    if smoke:
        yield "tiny"
        return
    from transformers import AutoTokenizer, BertConfig, BertModel

    from pipeline.models.language import _minilm_path

    with tempfile.TemporaryDirectory() as folder:
        tokenizer = AutoTokenizer.from_pretrained(_minilm_path(), local_files_only=True)
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=tokenizer.vocab_size), add_pooling_layer=False).save_pretrained(
            folder
        )
        tokenizer.save_pretrained(folder)
        yield folder


def throughput_rows(
    data: Path, args: argparse.Namespace, devices: list[torch.device]
) -> list[tuple[str, dict]]:
    """Check 4: training samples/s (and peak GPU memory) of the BERT-base-sized encoder, per mode, device."""
    info = validate_aligned(data)
    train = load_split(data, "train")
    results: dict[str, dict[str, str]] = {"fine-tuned": {}, "frozen-cached": {}}
    with random_bert(args.smoke) as bert:
        for device in devices:
            n = args.gpu_samples if device.type == "cuda" else args.cpu_samples
            arrays = subset(train, n)
            for mode, label in (("finetune", "fine-tuned"), ("frozen", "frozen-cached")):
                settings = resolve_settings(None, {"model.lm_mode": mode, "model.language_model": bert})
                features, info["lm_hidden"] = None, None
                if mode == "frozen":
                    features, _ = frozen_features(settings, arrays["text"], device)
                    info["lm_hidden"] = features.shape[1]
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
                rate = throughput(settings, info, arrays, features, device)
                peak = (
                    f", peak {torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB"
                    if device.type == "cuda"
                    else ""
                )
                results[label][device.type] = f"{rate:,.1f} samples/s ({len(arrays['label'])} samples{peak})"
    name = "tiny random BERT" if args.smoke else "random BERT-base"
    return [(f"throughput, {label} {name}", values) for label, values in results.items()]


def main(argv: list[str] | None = None) -> int:
    """Run every check and print one table; the exit status says whether they passed (see the docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="device of checks 1-3")
    parser.add_argument("--smoke", action="store_true", help="tiny data and models: the logic in seconds")
    parser.add_argument(
        "--language-model", default=None, help="checks 1-3: 'minilm' (bundled) or a local path"
    )
    parser.add_argument("--tolerance", type=float, default=1e-3, help="same seed / resume: max |difference|")
    parser.add_argument("--gpu-samples", type=int, default=1024, help="throughput samples on the GPU")
    parser.add_argument("--cpu-samples", type=int, default=64, help="throughput samples on the CPU")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu-check: no CUDA device (torch {torch.__version__}); nothing measured (exit {NO_CUDA})")
        return NO_CUDA
    if args.language_model is None:
        args.language_model = "tiny" if args.smoke else "minilm"
    if args.smoke:
        args.gpu_samples, args.cpu_samples = min(args.gpu_samples, 64), min(args.cpu_samples, 32)
    start = time.perf_counter()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if args.device == "cuda" else [])
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(Path(tmp), args.smoke)
        checks = training_checks(data, Path(tmp) / "runs", args, args.device)
        speed = throughput_rows(data, args, devices)
    card = torch.cuda.get_device_name(0) if args.device == "cuda" else "no GPU (--device cpu)"
    print(f"\ngpu-check on {card}, torch {torch.__version__}, {time.perf_counter() - start:.0f} s in all")
    width = max(len(name) for name, *_ in checks + speed) + 2
    print(f"{'check':<{width}}{'result':<8}detail")
    print("-" * (width + 90))
    for name, ok, detail in checks:
        print(f"{name:<{width}}{'PASS' if ok else 'FAIL':<8}{detail}")
    for name, values in speed:
        detail = "; ".join(f"{device}: {text}" for device, text in values.items())
        print(f"{name:<{width}}{'':<8}{detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
