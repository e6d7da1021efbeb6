"""Benchmark: which language vector carries the sentence, measured on real CMU-MOSI text (issue 7).

    python benchmarks/language_vector.py                      # 3 tokens x {hycon, none} x 3 seeds + ridge
    python benchmarks/language_vector.py --set train.lr=3e-4 --tokens mean

Data: `../shared/data/mosi/mosi_text_train_valid.csv` (real transcripts and labels of the train and valid
folds of the standard CMU-MOSI folds; the test fold is deliberately not shared). The script writes them in
the aligned-HDF5 contract (docs/architecture.md section 2) with audio and visual zeroed (1 dim, 1 step), so
only the language pathway carries information, then runs the project's own commands on it:
`python -m pipeline features` (bundled frozen all-MiniLM-L6-v2, one file per `--token`),
`python -m pipeline train` and `python -m pipeline evaluate`.

Splits (the valid fold is the only labelled real text outside train, so it is the reported split):
- `train`: the train fold less a selection part of `--select-videos` whole train videos (chosen by a seeded
  shuffle of the video ids; whole videos, so no speaker sits on both sides);
- `valid`: that selection part: early stopping / best epoch, and the ridge probe's alpha, are chosen here;
- `test`: the valid fold, never read for any choice: every reported number comes from it.

The ridge probe (no training loop) is scikit-learn's Ridge on the standardised concatenation of the same
frozen model's mean and first-token ([CLS]) vectors, read from the `features` files; alpha is chosen on
the selection part by MAE. Every model row is the mean ± std over `--seeds`; the ridge is deterministic.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.data.dataset import read_strings, write_aligned  # noqa: E402
from pipeline.metrics import regression_metrics  # noqa: E402

CSV = REPO.parent / "shared" / "data" / "mosi" / "mosi_text_train_valid.csv"
TOKENS = ("last", "cls", "mean")
LOSSES = ("hycon", "none")
# The metrics of the table, as (key, header, scale): Acc2 as a percentage.
COLUMNS = (("acc2_non0", "Acc2 (non0)", 100.0), ("mae", "MAE", 1.0), ("corr", "Corr", 1.0))
RIDGE_ALPHAS = np.logspace(-1, 5, 25)


def read_text_csv(path: Path) -> dict[str, list[dict[str, str]]]:
    """The CSV's rows grouped by fold ('train', 'valid'), in file order."""
    folds: dict[str, list[dict[str, str]]] = {"train": [], "valid": []}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            folds[row["split"]].append(row)
    return folds


def split_rows(
    folds: dict[str, list[dict[str, str]]], select_videos: int, seed: int
) -> dict[str, list[dict[str, str]]]:
    """{'train', 'valid', 'test'}: train fold less `select_videos` whole videos, those videos, valid fold."""
    videos = sorted({row["video_id"] for row in folds["train"]})
    chosen = set(np.random.default_rng(seed).permutation(videos)[:select_videos].tolist())
    return {
        "train": [r for r in folds["train"] if r["video_id"] not in chosen],
        "valid": [r for r in folds["train"] if r["video_id"] in chosen],
        "test": folds["valid"],
    }


def write_text_only(
    path: Path, splits: dict[str, list[dict[str, str]]], source: Path, seq_len: int | None = None
) -> Path:
    """Aligned HDF5 of the rows: ids `<video>[<clip_id - 1>]`, real text and labels, zero audio/visual.

    Without `seq_len`: one step per segment (the whole text, length 1). With it, the aligned contract's
    words: each text's first `seq_len` words, `length` their number, audio and visual zero at every step.
    """
    arrays = {}
    steps = seq_len or 1
    for split, rows in splits.items():
        n = len(rows)
        words = [r["text"].split()[:seq_len] if seq_len else [r["text"]] for r in rows]
        arrays[split] = {
            "id": np.array([f"{r['video_id']}[{int(r['clip_id']) - 1}]" for r in rows], dtype=object),
            "label": np.array([float(r["label"]) for r in rows], dtype=np.float32),
            "text": np.array([" ".join(w) for w in words], dtype=object),
            "audio": np.zeros((n, steps, 1), dtype=np.float32),
            "visual": np.zeros((n, steps, 1), dtype=np.float32),
            "length": np.array([len(w) if seq_len else 1 for w in words], dtype=np.int64),
        }
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    attrs = {
        "seq_len": steps,
        "audio_dim": 1,
        "visual_dim": 1,
        "dataset": "mosi-text",
        "checksums": json.dumps({source.name: digest}),
    }
    return write_aligned(path, arrays, attrs)


def stage(*args: str) -> None:
    """Run `python -m pipeline <args>` in the repository (single-threaded), failing loudly."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"python -m pipeline {shlex.join(args)} failed:\n{result.stderr[-3000:]}")


def model_run(
    work: Path, data: Path, features: Path, token: str, loss: str, seed: int, sets: list[str]
) -> dict[str, float]:
    """Train and evaluate one run (reused when its metrics.json exists); its test metrics."""
    overrides = [f"model.text_token={token}", f"loss.contrastive={loss}", *sets]
    tag = hashlib.sha256(" ".join(overrides).encode()).hexdigest()[:8]
    run = work / "runs" / f"{token}-{loss}-{tag}" / f"seed{seed}"
    metrics = run / "metrics.json"
    if not metrics.is_file():
        set_args = [a for o in overrides for a in ("--set", o)]
        stage("train", "--data", str(data), "--features", str(features), "--out", str(run),
              "--seed", str(seed), "--device", "cpu", *set_args)  # fmt: skip
        stage("evaluate", "--run", str(run), "--data", str(data), "--features", str(features),
              "--device", "cpu")  # fmt: skip
    result = json.loads(metrics.read_text())
    return {**result["test"], "best_epoch": result["best_epoch"]}


def load_vectors(path: Path) -> dict[str, np.ndarray]:
    """{split: features [N, H]} of a `features` file, checked to be in the same id order for every file."""
    with h5py.File(path, "r") as handle:
        return {s: np.asarray(handle[s]["features"][()]) for s in ("train", "valid", "test")} | {
            f"{s}_id": read_strings(handle[s]["id"]) for s in ("train", "valid", "test")
        }


def ridge_probe(mean_file: Path, cls_file: Path, labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Ridge on standardised [mean, first-token] vectors; alpha by selection-part MAE; test metrics."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    mean, first = load_vectors(mean_file), load_vectors(cls_file)
    x = {}
    for split in ("train", "valid", "test"):
        if (mean[f"{split}_id"] != first[f"{split}_id"]).any():
            sys.exit(f"{mean_file} and {cls_file} hold different ids in '{split}'")
        x[split] = np.concatenate([mean[split], first[split]], axis=1)
    scaler = StandardScaler().fit(x["train"])
    x = {split: scaler.transform(values) for split, values in x.items()}
    fits = [Ridge(alpha=float(a)).fit(x["train"], labels["train"]) for a in RIDGE_ALPHAS]
    maes = [np.mean(np.abs(f.predict(x["valid"]) - labels["valid"])) for f in fits]
    best = int(np.argmin(maes))
    return {**regression_metrics(labels["test"], fits[best].predict(x["test"])), "alpha": RIDGE_ALPHAS[best]}


def summarise(
    runs: list[dict[str, float]], columns: tuple[tuple[str, str, float], ...] = COLUMNS, ddof: int = 0
) -> list[str]:
    """'mean ± std' over the runs for each (key, header, scale) column, accuracies (scale 100) with one
    decimal, the rest with three; population std by default (`ddof=1`: the sample std)."""
    cells = []
    for key, _, scale in columns:
        values = np.array([r[key] for r in runs]) * scale
        digits = 1 if scale == 100.0 else 3
        cells.append(f"{values.mean():.{digits}f} ± {values.std(ddof=ddof):.{digits}f}")
    return cells


def report(
    header: tuple[str, ...], separator: str, rows: list[tuple[str, ...]], footer: str, out: Path | None
) -> None:
    """Print a Markdown table (`separator`: its alignment row) and its footer; write both to `out` too."""
    lines = ["| " + " | ".join(header) + " |", separator, *("| " + " | ".join(row) + " |" for row in rows)]
    print("\n".join(lines) + footer)
    if out:
        out.write_text("\n".join(lines) + "\n" + footer + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument("--work", type=Path, default=REPO / "results" / "benchmarks" / "language-vector")
    parser.add_argument("--tokens", nargs="+", default=list(TOKENS), choices=TOKENS)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--select-videos", type=int, default=8, help="train videos held out for selection")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, help="write the table (Markdown) here as well")
    args = parser.parse_args()
    if not args.csv.is_file():
        sys.exit(f"{args.csv}: not found (real CMU-MOSI text lives in ../shared)")
    started = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    splits = split_rows(read_text_csv(args.csv), args.select_videos, seed=0)
    data = write_text_only(args.work / "mosi-text.h5", splits, args.csv)
    sizes = {s: len(rows) for s, rows in splits.items()}
    print(
        f"segments: train {sizes['train']}, selection {sizes['valid']}, reported (valid fold) {sizes['test']}"
    )
    features = {}
    for token in sorted(set(args.tokens) | {"mean", "cls"}):
        features[token] = args.work / f"features-{token}.h5"
        if not features[token].is_file():  # the work folder is a cache: delete it to start afresh
            stage("features", "--data", str(data), "--model", "minilm", "--token", token,
                  "--out", str(features[token]), "--device", "cpu")  # fmt: skip
    sets = [f"train.epochs={args.epochs}", f"train.patience={args.patience}", *args.sets]
    rows = []
    for token in args.tokens:
        for loss in args.losses:
            runs = [model_run(args.work, data, features[token], token, loss, s, sets) for s in args.seeds]
            epochs = ",".join(str(r["best_epoch"]) for r in runs)
            rows.append((f"`{token}`", loss, *summarise(runs), f"best epochs {epochs}"))
            print(" | ".join(rows[-1]), flush=True)
    labels = {
        s: np.array([float(r["label"]) for r in rows_], dtype=np.float64) for s, rows_ in splits.items()
    }
    ridge = ridge_probe(features["mean"], features["cls"], labels)
    rows.append(("ridge on `mean` + `cls` vectors", "–", *summarise([ridge]), f"alpha {ridge['alpha']:.3g}"))
    header = ("language vector", "contrastive", *(h for _, h, _ in COLUMNS), "note")
    command = shlex.join(["python", "benchmarks/language_vector.py", *sys.argv[1:]])
    footer = (
        f"\n{command}  (seeds {args.seeds}, {args.epochs} epochs, patience {args.patience}, "
        f"extra settings {args.sets or 'none'}; {(time.time() - started) / 60:.1f} min)\n"
        f"segments: train {sizes['train']}, selection {sizes['valid']}, reported valid fold {sizes['test']}"
    )
    report(header, "|---|---|" + "--:|" * len(COLUMNS) + "---|", rows, footer, args.out)


if __name__ == "__main__":
    main()
