"""Figures of the report: the t-SNE of Fig. 3, learning curves, and a bar chart per table.

- `tsne`: the fused test embeddings of a run with and one without contrastive learning, side by side,
  projected with scikit-learn's t-SNE (fixed random_state, PCA initialisation, so reruns give the same
  picture); points are coloured by binary sentiment class as in the paper's Fig. 3 (negative: red x,
  non-negative: blue dot). Each panel also states the silhouette score of the classes in the original
  embedding space (cosine), a number that does not depend on the projection.
- `curves`: training loss and validation MAE per epoch, one thin line per seed and their mean.
- `bars`: the five metrics of a rendered table (its CSV), error bars = std over seeds, reported rows hatched.
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
from pipeline.io import atomic_path  # noqa: E402
from pipeline.reporting.aggregate import load_history  # noqa: E402
from pipeline.reporting.tables import COLUMNS, format_value  # noqa: E402

TSNE_SEED = 0  # random_state of t-SNE and of the subsampling of large test sets
DPI = 150


def save_figure(fig: plt.Figure, out: str | Path) -> None:
    """Write a figure as PNG atomically and release it."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Fused embeddings [N, D] and labels [N] of an evaluate run's embeddings.npz; DataError if malformed."""
    path = Path(path)
    try:
        with np.load(path) as data:
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


def plot_bars(table_csv: str | Path, out: str | Path, title: str) -> None:
    """One panel per metric; bars per table row with std error bars; reported rows grey and hatched."""
    path = Path(table_csv)
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{path}: cannot read table CSV ({err})") from None
    headers = [spec[1] for spec in COLUMNS.values()]
    missing = [c for c in ["Method", "Source", *headers] if c not in table.columns]
    if missing or table.empty:
        raise DataError(f"{path}: table CSV lacks columns {missing} or rows")
    reported = (table["Source"] == "reported").to_numpy()
    positions = np.arange(len(table))
    fig, axes = plt.subplots(1, len(headers), figsize=(3.2 * len(headers), 0.9 + 0.32 * len(table) + 2.5))
    for ax, header in zip(axes, headers, strict=True):
        values = table[header].to_numpy(float)
        errors = np.nan_to_num(table[f"{header}_std"].to_numpy(float)) if f"{header}_std" in table else None
        colors = np.where(reported, "lightgrey", "tab:blue")
        bars = ax.barh(
            positions, np.nan_to_num(values), xerr=errors, color=colors, capsize=2, edgecolor="black"
        )
        for bar, is_reported in zip(bars, reported, strict=True):
            if is_reported:
                bar.set_hatch("//")
        ax.set_yticks(positions, table["Method"] if ax is axes[0] else [""] * len(table), fontsize=8)
        ax.invert_yaxis()
        unit = " (%)" if COLUMNS[_column_key(header)][2] == 100.0 else ""
        ax.set_title(f"{header}{unit}", fontsize=10)
        ends = np.nan_to_num(values) + (errors if errors is not None else 0.0)  # labels clear the error bar
        for position, value, end in zip(positions, values, ends, strict=True):
            if np.isfinite(value):
                ax.annotate(
                    format_value(_column_key(header), value),
                    (max(end, 0.0), position),
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7,
                )
        finite = values[np.isfinite(values)]
        if finite.size:  # bars start at 0 (an honest length); room on the right for the value labels
            ax.set_xlim(min(0.0, finite.min() * 1.15), max(finite.max() * 1.3, 1e-3))
        ax.grid(axis="x", alpha=0.3)
    legend = (
        "grey hatched: reported in the paper; error bars: std over seeds"
        if reported.any()
        else ("error bars: std over seeds")
    )
    fig.suptitle(f"{title} ({legend})", fontsize=10)
    save_figure(fig, out)


def _column_key(header: str) -> str:
    return next(key for key, spec in COLUMNS.items() if spec[1] == header)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `figures tsne|curves|bars ...` (see each sub-command's --help)."""
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
    bars = sub.add_parser("bars", help="bar chart of a rendered table's CSV")
    bars.add_argument("--table", required=True, type=Path)
    bars.add_argument("--title", default="")
    bars.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline figures`."""
    if args.figure == "tsne":
        panels = [
            ("(a) learned by HyCon", args.with_cl),
            ("(b) learned without contrastive learning", args.without_cl),
        ]
        plot_tsne(panels, args.out, args.title, args.perplexity, args.max_points)
    elif args.figure == "curves":
        plot_curves(args.histories, args.out, args.title)
    else:
        plot_bars(args.table, args.out, args.title)
