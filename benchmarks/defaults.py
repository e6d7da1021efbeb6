"""Benchmark: the default's measured choices, re-decided on the synthetic data's VALIDATION split.

    python benchmarks/defaults.py                       # 6 settings x 3 seeds, about 15 minutes on 2 cores
    python benchmarks/defaults.py --work /tmp/defaults --seeds 0 1 2

The choices `docs/method.md` ("Paper protocol: measurements") records for the default config
(`loss.reduction`, the split learning rates, `data.normalize`, the language vector `model.text_token`) are
compared here on the split a choice may read: validation. Each row is the default config's `hycon`
experiment (`grid.experiment_settings`, written as a settings file) with one `--set` changed, trained and
evaluated by the project's own commands (`python -m pipeline train` / `evaluate`) on the embedded synthetic
dataset (`synthesize --videos 93 --seed 0`, `align --seq-len 50`, `features --model minilm` per token),
seeds 0-2. The table gives the validation metrics of each run's selected epoch (mean ± sample std over the
seeds); the test split is not read. Validation also picks the epoch, so its figures are a little
optimistic, and equally so for every row: they rank settings, they do not estimate performance. The real
CMU-MOSI text comparison of the same choices is `benchmarks/language_vector.py` (train on the train fold,
report the valid fold).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.language_vector import stage, summarise  # noqa: E402
from pipeline.grid import DEFAULT_CONFIG, experiment_settings, load_config  # noqa: E402
from pipeline.settings import write_settings  # noqa: E402

# Row label -> the `--set` overrides of the default's hycon (empty: the default itself).
SETTINGS: dict[str, tuple[str, ...]] = {
    "default (mean reduction, split rates, zscore, mean vector)": (),
    "`loss.reduction=sum` (the paper's Eq. 13)": ("loss.reduction=sum",),
    "`train.lr=1e-5` (the paper's single rate)": ("train.lr=1e-5",),
    "`data.normalize=none`": ("data.normalize=none",),
    "`model.text_token=cls`": ("model.text_token=cls",),
    "`model.text_token=last` (the paper's literal [SEP])": ("model.text_token=last",),
}
# The metrics of the table, as (key, header, scale): accuracies in %.
COLUMNS = (
    ("acc2_non0", "Acc2 (non0)", 100.0),
    ("acc7", "Acc7", 100.0),
    ("mae", "MAE", 1.0),
    ("corr", "Corr", 1.0),
)


def build_data(work: Path) -> tuple[Path, dict[str, Path]]:
    """The synthetic dataset aligned, and its frozen MiniLM features per language vector (cached)."""
    raw, data = work / "raw", work / "synthetic.h5"
    if not data.is_file():
        stage("synthesize", str(raw), "--videos", "93", "--seed", "0")
        stage("align", str(raw), str(data), "--seq-len", "50")
    features = {}
    for token in ("mean", "cls", "last"):
        features[token] = work / f"synthetic-minilm-{token}.h5"
        if not features[token].is_file():
            stage("features", "--data", str(data), "--model", "minilm", "--token", token,
                  "--out", str(features[token]), "--device", "cpu")  # fmt: skip
    return data, features


def valid_metrics(
    work: Path, data: Path, features: Path, name: str, sets: tuple[str, ...], seed: int
) -> dict:
    """Train and evaluate one run (reused when its metrics.json exists); its validation metrics."""
    run = work / "runs" / name / f"seed{seed}"
    metrics = run / "metrics.json"
    if not metrics.is_file():
        set_args = [a for item in sets for a in ("--set", item)]
        stage("train", "--config", str(work / "hycon.yaml"), "--data", str(data), "--features", str(features),
              "--out", str(run), "--seed", str(seed), "--device", "cpu", *set_args)  # fmt: skip
        stage("evaluate", "--run", str(run), "--data", str(data), "--features", str(features),
              "--device", "cpu")  # fmt: skip
    result = json.loads(metrics.read_text())
    return {**result["valid"], "best_epoch": result["best_epoch"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "results" / "benchmarks" / "defaults")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, help="write the table (Markdown) here as well")
    args = parser.parse_args()
    started = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    write_settings(args.work / "hycon.yaml", experiment_settings(load_config([DEFAULT_CONFIG]), "hycon"))
    data, features = build_data(args.work)
    header = ("setting (`--set` on the default's hycon)", *(h for _, h, _ in COLUMNS), "best epochs")
    lines = ["| " + " | ".join(header) + " |", "|---|" + "--:|" * len(COLUMNS) + "---|"]
    for index, (label, sets) in enumerate(SETTINGS.items()):
        token = next((s.split("=", 1)[1] for s in sets if s.startswith("model.text_token=")), "mean")
        runs = [valid_metrics(args.work, data, features[token], f"s{index}", sets, s) for s in args.seeds]
        epochs = ",".join(str(r["best_epoch"]) for r in runs)
        lines.append("| " + " | ".join((label, *summarise(runs, COLUMNS, ddof=1), epochs)) + " |")
        print(lines[-1], flush=True)
    command = shlex.join(["python", "benchmarks/defaults.py", *sys.argv[1:]])
    footer = f"\n{command}  (validation split, seeds {args.seeds}; {(time.time() - started) / 60:.1f} min)"
    print("\n".join(lines) + footer)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n" + footer + "\n")


if __name__ == "__main__":
    main()
