"""Benchmark: per-word language states against the repeated sentence vector (issue 16, `model.text_steps`).

    python benchmarks/word_level.py table      # 6 word-sequential families x {sentence, words} x 3 seeds
    python benchmarks/word_level.py memory     # peak memory reading a CMU-MOSEI-sized per-word cache
    python benchmarks/word_level.py features   # the features stage's added time and size, synthetic data

`table`: real CMU-MOSI text, `../shared/data/mosi/mosi_text_train_valid.csv`, split as
`benchmarks/language_vector.py` splits it (train fold less 8 whole videos for early stopping; every
reported figure is on the valid fold, never used for a choice), written in the aligned contract at T = 50
words (each text's first 50 words) with audio and visual zeroed, so only language carries information.
The frozen bundled MiniLM caches both inputs once (`pipeline.features.write_features`). Each family runs
before (`model.text_steps=sentence`, HyCon's settings: the defaults, lr 1e-3, batch 32, no weight decay,
clip 1.0) and after (`model.text_steps=words` with its family preset, `pipeline.presets.family_preset`);
Acc2 / MAE / Corr as mean ± std over `--seeds`.

`memory`: a features file of CMU-MOSEI's size (22,856 segments, T = 50, H = 768, lengths drawn uniformly
in [1, T]) read the way training reads it: the z-score statistics streamed over the split, then one epoch
of shuffled batches of 32. Reported: the peak resident memory added by the reading, against the size
of the states held in memory at float16 and float32 (the ratio: what reading lazily saves).

`features`: the default synthetic dataset (93 videos, T = 50, the default `make run`'s) cached by
`write_features` (sentence vectors and per-word states) against the sentence vectors alone (the same
model's forward passes, without the per-word pooling and writing): time and file size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.language_vector import (  # noqa: E402
    COLUMNS,
    CSV,
    read_text_csv,
    report,
    split_rows,
    summarise,
    write_text_only,
)
from pipeline.data.align import align_dataset  # noqa: E402
from pipeline.data.dataset import SPLITS, load_split  # noqa: E402
from pipeline.data.loader import AlignedDataset, iterate_batches  # noqa: E402
from pipeline.data.normalize import fit_word_stats  # noqa: E402
from pipeline.data.synthesize import synthesize  # noqa: E402
from pipeline.evaluate import evaluate_run  # noqa: E402
from pipeline.features import WORD_DTYPE, WORDS, compute_features, open_word_states, write_features  # noqa: E402
from pipeline.models import WORD_STEP_FAMILIES  # noqa: E402
from pipeline.presets import family_preset  # noqa: E402
from pipeline.settings import resolve_settings  # noqa: E402
from pipeline.train import train_run  # noqa: E402


def run_row(
    work: Path, data: Path, features: Path, arm: str, overrides: dict, seeds: list[int]
) -> list[dict]:
    """Train and evaluate one row's seeds in process; a run whose metrics.json exists is read, not rerun
    (the work folder is a cache: delete it to start afresh). Runs live under `<arm>-<digest of the
    overrides>`, so a changed preset is a new folder (a preset's keys spelled out exceed a file name)."""
    settings = resolve_settings(None, overrides)
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:12]
    tag = f"{arm}-{digest}"
    results = []
    for seed in seeds:
        run = work / "runs" / overrides["model.arch"] / tag / f"seed{seed}"
        metrics = run / "metrics.json"
        if not metrics.is_file():
            train_run(settings, data, run, seed, features, device="cpu")
            evaluate_run(run, data, features, device="cpu")
        results.append(json.loads(metrics.read_text())["test"])
    return results


def table(args: argparse.Namespace) -> None:
    """Every word-sequential family before and after, on real CMU-MOSI text; one Markdown table."""
    if not args.csv.is_file():
        sys.exit(f"{args.csv}: not found (real CMU-MOSI text lives in ../shared)")
    started = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    splits = split_rows(read_text_csv(args.csv), args.select_videos, seed=0)
    data = write_text_only(args.work / "mosi-text-words.h5", splits, args.csv, seq_len=args.seq_len)
    features = args.work / "features-minilm.h5"
    if not features.is_file():  # the work folder is a cache: delete it to start afresh
        write_features(data, features, "minilm")
    common = {"loss.contrastive": "none", "train.epochs": args.epochs, "train.patience": args.patience}
    rows = []
    for arch in args.archs:
        arms = {
            "sentence": ({"model.text_steps": "sentence"}, "HyCon's settings"),
            "words": ({**family_preset(arch), "model.text_steps": "words"}, "family preset"),
        }
        for steps, (extra, settings_source) in arms.items():
            runs = run_row(
                args.work, data, features, steps, {"model.arch": arch, **extra, **common}, args.seeds
            )
            rows.append((arch, steps, settings_source, *summarise(runs)))
            print(" | ".join(rows[-1]), flush=True)
    header = ("family", "language input", "settings", *(h for _, h, _ in COLUMNS))
    sizes = {split: len(rows_) for split, rows_ in splits.items()}
    command = shlex.join(["python", "benchmarks/word_level.py", *sys.argv[1:]])
    footer = (
        f"\n{command}  (seeds {args.seeds}, {args.epochs} epochs, patience {args.patience}, T = "
        f"{args.seq_len}; {(time.time() - started) / 60:.1f} min)\nsegments: train {sizes['train']}, "
        f"selection {sizes['valid']}, reported valid fold {sizes['test']}"
    )
    report(header, "|---|---|---|" + "--:|" * len(COLUMNS), rows, footer, args.out)


def memory_mib(field: str) -> float:
    """This process's resident memory (`VmRSS`) or its peak since the last reset (`VmHWM`), MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"/proc/self/status has no {field}")


def reset_peak() -> None:
    """Reset this process's peak resident memory (`VmHWM`) to its current size (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def memory(args: argparse.Namespace) -> None:
    """Peak memory of the lazy per-word reading at CMU-MOSEI scale (statistics pass and one epoch)."""
    n, steps, hidden = args.segments, args.seq_len, args.hidden
    rng = np.random.default_rng(0)
    length = rng.integers(1, steps + 1, n)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "features.h5"
        started = time.time()
        with h5py.File(path, "w") as handle:
            words = handle.create_group("train").create_dataset(
                WORDS, (n, steps, hidden), WORD_DTYPE, chunks=(1, steps, hidden), compression="lzf"
            )
            for start in range(0, n, 512):
                rows = np.arange(start, min(start + 512, n))
                block = rng.standard_normal((len(rows), steps, hidden), dtype=np.float32)
                block *= np.arange(steps)[None, :, None] < length[rows, None, None]
                words[start : rows[-1] + 1] = block.astype(WORD_DTYPE)
        written = time.time() - started
        size = path.stat().st_size
        arrays = {
            "id": np.array([f"s{i}" for i in range(n)], dtype=object),
            "text": np.array([""] * n, dtype=object),
            "audio": np.zeros((n, steps, 1), np.float32),
            "visual": np.zeros((n, steps, 1), np.float32),
            "length": length.astype(np.int64),
            "label": np.zeros(n, np.float32),
        }
        reset_peak()  # the peak of writing the file does not count
        before = memory_mib("VmRSS")
        started = time.time()
        states = open_word_states(path, {"train": arrays["length"]}, steps, hidden)["train"]
        states.stats = fit_word_stats(states)
        fitted = time.time() - started
        dataset = AlignedDataset(arrays, None, states)
        started = time.time()
        batches = sum(1 for _ in iterate_batches(dataset, 32, torch.Generator().manual_seed(0)))
        epoch = time.time() - started
        added = memory_mib("VmHWM") - before
    held = n * steps * hidden * 2 / 2**20
    print(
        f"| per-word cache, {n:,} segments x T = {steps} x H = {hidden} | MiB |\n|---|--:|\n"
        f"| states in memory at float16 (float32) | {held:,.0f} ({2 * held:,.0f}) |\n"
        f"| file on disk (lzf, lengths uniform in [1, {steps}]) | {size / 2**20:,.0f} |\n"
        f"| peak resident memory added by reading lazily | {added:,.0f} |\n"
        f"| lazy / float16 in memory | {added / held:.3f}x |\n\n"
        f"write {written:.0f} s; z-score statistics pass {fitted:.0f} s; one epoch of {batches} shuffled "
        f"batches of 32 {epoch:.0f} s ({epoch / batches * 1000:.1f} ms a batch); torch threads "
        f"{torch.get_num_threads()}\n{shlex.join(['python', 'benchmarks/word_level.py', *sys.argv[1:]])}"
    )


def features(args: argparse.Namespace) -> None:
    """The features stage on the default synthetic data: sentence vectors and per-word states against the
    sentence vectors alone (time, file size)."""
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        root = Path(tmp)
        synthesize(root / "raw", videos=93, seed=0)
        data = root / "synthetic.h5"
        align_dataset(root / "raw", data, seq_len=50)
        texts = {split: load_split(data, split)["text"].tolist() for split in SPLITS}
        started = time.time()
        vectors, _ = compute_features(texts, "minilm", "mean", 128)
        sentence_s = time.time() - started
        started = time.time()
        out = write_features(data, root / "features.h5", "minilm")
        both_s = time.time() - started
        both = out.stat().st_size
        # the file as it was: ids and sentence vectors
        with h5py.File(root / "sentence.h5", "w") as handle, h5py.File(out, "r") as source:
            for split in SPLITS:
                source.copy(source[f"{split}/id"], handle.require_group(split), "id")
                handle[split].create_dataset("features", data=vectors[split])
        sentence = (root / "sentence.h5").stat().st_size
    n = sum(len(t) for t in texts.values())
    print(
        f"| features stage, synthetic 93 videos ({n} segments), T = 50, frozen MiniLM | seconds | MiB |\n"
        f"|---|--:|--:|\n| sentence vectors only (before) | {sentence_s:.1f} | {sentence / 2**20:.1f} |\n"
        f"| sentence vectors + per-word states (after) | {both_s:.1f} | {both / 2**20:.1f} |\n"
        f"| after / before | {both_s / sentence_s:.2f}x | {both / sentence:.1f}x |\n\n"
        f"torch threads {torch.get_num_threads()}\n"
        f"{shlex.join(['python', 'benchmarks/word_level.py', *sys.argv[1:]])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("table", help="before/after on real CMU-MOSI text")
    t.add_argument("--csv", type=Path, default=CSV)
    t.add_argument("--work", type=Path, default=REPO / "results" / "benchmarks" / "word-level")
    t.add_argument("--archs", nargs="+", default=list(WORD_STEP_FAMILIES), choices=WORD_STEP_FAMILIES)
    t.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--patience", type=int, default=3)
    t.add_argument("--seq-len", type=int, default=50)
    t.add_argument("--select-videos", type=int, default=8, help="train videos held out for selection")
    t.add_argument("--out", type=Path, help="write the table (Markdown) here as well")
    m = sub.add_parser("memory", help="peak memory of the lazy per-word reading")
    m.add_argument("--segments", type=int, default=22856)
    m.add_argument("--seq-len", type=int, default=50)
    m.add_argument("--hidden", type=int, default=768)
    f = sub.add_parser("features", help="added features time and size on the default synthetic data")
    for p in (m, f):
        p.add_argument("--tmp", type=Path, default=None, help="folder for the temporary files")
    args = parser.parse_args()
    {"table": table, "memory": memory, "features": features}[args.what](args)


if __name__ == "__main__":
    main()
