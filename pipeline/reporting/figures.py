"""Figures of the report: the t-SNE of Fig. 3, learning curves, and a forest plot per table.

- `tsne`: the fused test embeddings of a run with and one without contrastive learning, side by side,
  projected with scikit-learn's t-SNE (fixed random_state, PCA initialisation, so reruns give the same
  picture); points are coloured by binary sentiment class as in the paper's Fig. 3 (negative: red x,
  non-negative: blue dot). Each panel also states the silhouette score of the classes in the original
  embedding space (cosine), a number that does not depend on the projection.
- `curves`: training loss and validation MAE per epoch, one thin line per seed and their mean.
- `forest`: for a rendered table (its CSV), each row's difference from the table's reference row (HyCon),
  the mean over the seeds both ran of the per-seed difference, with its 95% paired-bootstrap interval
  (seeds and segments resampled; a row sharing one seed is labelled with it: segments only), one panel
  per metric, the rows the tables mark (p < 0.05 over two or more shared seeds) filled red. Differences,
  not bars from zero: the gaps between variants are one or two points.
Matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.errors import DataError  # noqa: E402
from pipeline.io import atomic_path, check_output  # noqa: E402
from pipeline.reporting.aggregate import load_history  # noqa: E402
from pipeline.reporting.captions import ALPHA, MIN_MARKED_SEEDS, RESAMPLES  # noqa: E402
from pipeline.reporting.tables import COLUMNS  # noqa: E402

TSNE_SEED = 0  # random_state of t-SNE and of the subsampling of large test sets
DPI = 150


def save_figure(fig: plt.Figure, out: str | Path) -> None:
    """Write a figure as PNG atomically and release it."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Fused embeddings [N, D] (stored as float16) and labels [N] of an evaluate run's embeddings.npz (written
    with `evaluate --fused`) as float64; DataError if absent or malformed."""
    path = Path(path)
    try:
        with np.load(path) as data:
            if "embeddings" not in data.files:
                raise DataError(f"{path}: no fused embeddings (evaluate stores them with --fused only)")
            embeddings, labels = np.asarray(data["embeddings"], float), np.asarray(data["labels"], float)
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"{path}: cannot read embeddings/labels ({err})") from None
    if embeddings.ndim != 2 or labels.shape != (embeddings.shape[0],) or embeddings.shape[0] < 5:
        raise DataError(f"{path}: expected embeddings [N, D] and labels [N] with N >= 5")
    if not (np.isfinite(embeddings).all() and np.isfinite(labels).all()):
        raise DataError(f"{path}: embeddings or labels are not finite")
    return embeddings, labels


def tsne_2d(embeddings: np.ndarray, perplexity: float) -> np.ndarray:
    """Deterministic 2-D t-SNE; the perplexity is capped below N/3 as t-SNE requires."""
    from sklearn.manifold import TSNE

    capped = min(perplexity, max(1.0, (embeddings.shape[0] - 1) / 3))
    return TSNE(n_components=2, perplexity=capped, init="pca", random_state=TSNE_SEED).fit_transform(
        embeddings
    )


def class_silhouette(embeddings: np.ndarray, positive: np.ndarray) -> float | None:
    """Silhouette (cosine) of the binary classes in the embedding space; None with a single class."""
    from sklearn.metrics import silhouette_score

    if positive.all() or not positive.any():
        return None
    return float(silhouette_score(embeddings, positive.astype(int), metric="cosine"))


def plot_tsne(
    panels: Sequence[tuple[str, str | Path]], out: str | Path, title: str, perplexity: float, max_points: int
) -> None:
    """Side-by-side t-SNE panels ((panel title, embeddings.npz), ...), coloured by sentiment class."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5), squeeze=False)
    for ax, (panel_title, path) in zip(axes[0], panels, strict=True):
        embeddings, labels = load_embeddings(path)
        if embeddings.shape[0] > max_points:
            keep = np.sort(
                np.random.default_rng(TSNE_SEED).choice(embeddings.shape[0], max_points, replace=False)
            )
            embeddings, labels = embeddings[keep], labels[keep]
        positive = labels >= 0  # the binary classes of the losses' default (a zero label is non-negative)
        points = tsne_2d(embeddings, perplexity)
        ax.scatter(*points[~positive].T, marker="x", c="tab:red", s=14, linewidths=0.8, label="negative")
        ax.scatter(*points[positive].T, marker="o", c="tab:blue", s=10, alpha=0.7, label="non-negative")
        silhouette = class_silhouette(embeddings, positive)
        note = "" if silhouette is None else f"\nclass silhouette (cosine, before t-SNE): {silhouette:.3f}"
        ax.set_title(f"{panel_title}{note}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(loc="best", fontsize=8)
    fig.suptitle(f"t-SNE of the fused test embeddings, {title}", fontsize=11, y=1.04)
    save_figure(fig, out)


def plot_curves(histories: Sequence[str | Path], out: str | Path, title: str) -> None:
    """Training loss and validation MAE per epoch: each run (seed) thin, the mean over runs thick."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    frames = [load_history(path) for path in histories]
    for ax, column, label in (
        (axes[0], "train_loss", "training loss"),
        (axes[1], "valid_mae", "validation MAE"),
    ):
        present = [frame for frame in frames if column in frame.columns]
        if not present:
            raise DataError(f"no history has the column '{column}' ({', '.join(map(str, histories))})")
        for path, frame in zip(histories, frames, strict=True):
            if column in frame.columns:
                ax.plot(frame["epoch"], frame[column], "o-", ms=2, lw=0.8, alpha=0.6, label=_run_name(path))
        mean = pd.concat(present).groupby("epoch")[column].mean()
        ax.plot(mean.index, mean.values, "o-", ms=4, lw=2.2, color="black", label="mean")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Learning curves: {title}", fontsize=11)
    save_figure(fig, out)


def _run_name(path: str | Path) -> str:
    """'seed<k>' from a run directory path, else the file's parent folder name."""
    match = re.search(r"seed\d+", str(path))
    return match.group(0) if match else Path(path).parent.name


def plot_forest(table_csv: str | Path, out: str | Path, title: str) -> None:
    """Forest plot of a rendered table's CSV: one panel per metric, each compared row's difference from
    the reference row with its 95% paired-bootstrap interval; filled red where p < ALPHA."""
    path = Path(table_csv)
    try:
        table = pd.read_csv(path, dtype={"Compared_seeds": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{path}: cannot read table CSV ({err})") from None
    headers = [spec[1] for spec in COLUMNS.values()]
    needed = ["Method", "Compared_with", "Compared_seeds", "Seed_pairs"] + [
        f"{h}_{f}" for h in headers for f in ("diff", "ci_low", "ci_high", "p_boot")
    ]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise DataError(f"{path}: table CSV lacks columns {missing}")
    compared = table[table["Compared_with"].notna()].reset_index(drop=True)
    heading = f"{title}: " if title else ""
    if compared.empty:  # the reference row alone (or no reference): say so rather than draw empty panels
        fig = plt.figure(figsize=(8, 1.2))
        fig.text(
            0.5, 0.5, f"{heading}no measured row besides the reference row; nothing to compare", ha="center"
        )
        save_figure(fig, out)
        return
    positions = np.arange(len(compared))
    labels = [_forest_label(row) for row in compared.itertuples(index=False)]
    fig, axes = plt.subplots(
        1, len(headers), figsize=(3.2 * len(headers), 1.8 + 0.35 * len(compared)), layout="constrained"
    )
    for ax, (column, (_metric, header, scale, _decimals)) in zip(axes, COLUMNS.items(), strict=True):
        diff = compared[f"{header}_diff"].to_numpy(float)
        low, high = (
            compared[f"{header}_ci_low"].to_numpy(float),
            compared[f"{header}_ci_high"].to_numpy(float),
        )
        significant = (compared[f"{header}_p_boot"].to_numpy(float) < ALPHA) & (
            compared["Seed_pairs"].to_numpy(float) >= MIN_MARKED_SEEDS
        )  # the tables' marks (tables.is_marked)
        ax.axvline(0.0, color="black", lw=0.8)
        for is_significant, color, face in ((False, "tab:blue", "white"), (True, "tab:red", "tab:red")):
            keep = significant == is_significant
            ax.errorbar(
                diff[keep],
                positions[keep],
                xerr=[diff[keep] - low[keep], high[keep] - diff[keep]],
                fmt="o",
                color=color,
                mfc=face,
                capsize=3,
                label=f"marked (p < {ALPHA})" if is_significant else "not marked",
            )
        ax.set_yticks(positions, labels if ax is axes[0] else [""] * len(compared), fontsize=8)
        ax.set_ylim(len(compared) - 0.5, -0.5)
        unit = " (points)" if scale == 100.0 else ""
        better = "lower" if column == "mae" else "higher"
        ax.set_title(f"Δ {header}{unit}\n{better} is better", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(
        f"{heading}difference from {compared['Compared_with'].iloc[0]} (row minus reference, mean over the "
        f"seeds both ran of each seed's difference)\nwith its 95% paired-bootstrap interval ({RESAMPLES:,} "
        "resamples of those seeds and the test segments; [seed k]: one seed, segments only, not marked)",
        fontsize=10,
    )
    save_figure(fig, out)


def _forest_label(row: tuple) -> str:
    """A compared row's label: its method, with the seed it shares with the reference when it shares one
    (tested over test segments only) or a note when it shares none (not tested)."""
    if row.Seed_pairs == 1:
        return f"{row.Method} [seed {row.Compared_seeds}]"
    return f"{row.Method} [no shared seed]" if row.Seed_pairs == 0 else str(row.Method)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `figures tsne|curves|forest ...` (see each sub-command's --help)."""
    sub = parser.add_subparsers(dest="figure", required=True)
    tsne = sub.add_parser("tsne", help="Fig. 3: t-SNE with vs without contrastive learning")
    tsne.add_argument("--with", dest="with_cl", required=True, type=Path, help="embeddings.npz, with")
    tsne.add_argument(
        "--without", dest="without_cl", required=True, type=Path, help="embeddings.npz, without"
    )
    tsne.add_argument("--perplexity", type=float, default=30.0)
    tsne.add_argument("--max-points", type=int, default=2000, help="subsample larger test sets (fixed seed)")
    tsne.add_argument("--title", default="", help="figure title, e.g. the dataset")
    tsne.add_argument("--out", required=True, type=Path)
    curves = sub.add_parser("curves", help="learning curves from history.csv files (one per seed)")
    curves.add_argument("histories", nargs="+", type=Path)
    curves.add_argument("--title", default="")
    curves.add_argument("--out", required=True, type=Path)
    forest = sub.add_parser(
        "forest", help="forest plot of a rendered table's CSV: differences from the reference"
    )
    forest.add_argument("--table", required=True, type=Path)
    forest.add_argument("--title", default="")
    forest.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline figures`."""
    check_output(args.out)  # outputs before inputs
    if args.figure == "tsne":
        panels = [
            ("(a) learned by HyCon", args.with_cl),
            ("(b) learned without contrastive learning", args.without_cl),
        ]
        plot_tsne(panels, args.out, args.title, args.perplexity, args.max_points)
    elif args.figure == "curves":
        plot_curves(args.histories, args.out, args.title)
    else:
        plot_forest(args.table, args.out, args.title)
