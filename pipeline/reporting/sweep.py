"""A sweep's report (stage `sweep`): its table and a heatmap of test MAE and Acc2 over the swept keys.

Inputs are the aggregates of the sweep's cells (pipeline.reporting.aggregate; each holds every seed's
value) and the sweep's spec (pipeline.sweeps.sweep_spec). Per metric, the best cell is the one with the
best test mean; every other cell is compared with it by a paired t-test over the seeds both share
(pipeline.reporting.stats.paired_t_test: the same seed gives both runs the same data order and
initialisation), and cells whose difference is not significant (p >= 0.05) are marked, so that a reader
does not take the argmin of noise for a finding. The validation optimum (lowest validation MAE, the choice
a user may make without looking at the test set) is marked too. With fewer than two shared seeds, or
differences that do not vary (the t-test is undefined), there is no test, and nothing is marked as such.

Outputs: `<out>.csv` (one row per cell: the swept values, each metric's mean and std in the tables' units,
the p-values against the best cell, the marks) and `<out>.md`, and the heatmap (PNG).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, DataError
from pipeline.io import atomic_path, check_output
from pipeline.reporting.captions import ALPHA
from pipeline.reporting.figures import plt, save_figure
from pipeline.reporting.stats import paired_differences, paired_t_test, seed_values
from pipeline.reporting.tables import COLUMNS, format_value, load_aggregates

# The heatmap's panels: paper column (pipeline.reporting.tables.COLUMNS) and whether lower is better.
PANELS: tuple[tuple[str, bool], ...] = (("mae", True), ("acc2", False))


def sweep_frame(spec: Mapping[str, Any], aggregates: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per cell: swept values, Seeds, each paper metric's mean and `_std` (tables' units), the
    validation MAE, and per heatmap metric the p-value against its best cell and `<metric>_best`/`_ns`."""
    records = []
    for cell in spec["cells"]:
        aggregate = aggregates.get(cell["experiment"])
        if aggregate is None:
            raise DataError(f"sweep {spec['name']}: no aggregated metrics for cell '{cell['experiment']}'")
        record: dict[str, Any] = {**cell["values"], "Experiment": cell["experiment"], "Seeds": aggregate["n"]}
        for metric, header, scale, _decimals in COLUMNS.values():
            test = aggregate["test"][metric]
            record[header] = None if test["mean"] is None else test["mean"] * scale
            record[f"{header}_std"] = None if test["std"] is None else test["std"] * scale
        record["Valid_MAE"] = aggregate["valid"]["mae"]["mean"]
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame["valid_best"] = frame.index == frame["Valid_MAE"].astype(float).idxmin()
    for column, lower in PANELS:
        metric, header = COLUMNS[column][0], COLUMNS[column][1]
        means = frame[header].astype(float)
        best = int(means.idxmin() if lower else means.idxmax())
        reference = seed_values(aggregates[frame.loc[best, "Experiment"]], metric)
        p_values = [
            paired_t_test(paired_differences(seed_values(aggregates[name], metric), reference))
            for name in frame["Experiment"]
        ]
        frame[f"{header}_p"] = [None if i == best else p for i, p in enumerate(p_values)]
        frame[f"{header}_best"] = frame.index == best
        frame[f"{header}_ns"] = [i != best and p is not None and p >= ALPHA for i, p in enumerate(p_values)]
    return frame


def render_markdown(spec: Mapping[str, Any], frame: pd.DataFrame) -> str:
    """The table as GitHub Markdown: mean ± std per metric, marks for the best, not-significant and
    validation-optimal cells."""
    keys = list(spec["keys"])
    headers = [COLUMNS[c][1] for c in COLUMNS]
    lines = [
        f"**Sweep `{spec['name']}` on {spec['dataset_label']}: test metrics, mean ± std over seeds "
        f"{', '.join(map(str, spec['seeds']))}.** \\* best test mean of the column; ≈ not significantly "
        f"different from it (paired t-test over seeds, p ≥ {ALPHA}); ★ lowest validation MAE.",
        "",
        "| " + " | ".join([*keys, *headers, "valid. optimum"]) + " |",
        "|" + "--:|" * (len(keys) + len(headers) + 1),
    ]
    for _, row in frame.iterrows():
        cells = [str(row[key]) for key in keys]
        for column in COLUMNS:
            header = COLUMNS[column][1]
            text = format_value(column, row[header])
            if row[f"{header}_std"] is not None and np.isfinite(row[f"{header}_std"]):
                text += f" ± {format_value(column, row[f'{header}_std'])}"
            if row.get(f"{header}_best"):
                text += " \\*"
            elif row.get(f"{header}_ns"):
                text += " ≈"
            cells.append(text)
        cells.append("★" if row["valid_best"] else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_sweep(spec: Mapping[str, Any], frame: pd.DataFrame, out: str | Path) -> None:
    """Heatmaps of test MAE and Acc2 over the swept keys (rows: the first key, columns: the second): the
    best cell framed, cells not significantly different from it hatched, the validation optimum starred."""
    keys = list(spec["keys"])
    rows = spec["keys"][keys[0]]
    cols = spec["keys"][keys[1]] if len(keys) > 1 else [None]
    fig, axes = plt.subplots(
        1, len(PANELS), figsize=(5.2 * len(PANELS), 2.2 + 0.5 * len(rows)), layout="constrained"
    )
    for ax, (column, lower) in zip(np.atleast_1d(axes), PANELS, strict=True):
        header = COLUMNS[column][1]
        grid = np.full((len(rows), len(cols)), np.nan)
        where = {}
        for index, row in frame.iterrows():
            r = rows.index(row[keys[0]])
            c = cols.index(row[keys[1]]) if len(keys) > 1 else 0
            grid[r, c] = np.nan if row[header] is None else row[header]
            where[index] = (r, c)
        image = ax.imshow(grid, cmap="viridis_r" if lower else "viridis", aspect="auto")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        for index, (r, c) in where.items():
            row = frame.loc[index]
            label = format_value(column, grid[r, c]) + ("\n★" if row["valid_best"] else "")
            ax.text(
                c,
                r,
                label,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if row[f"{header}_best"] else "black",
                bbox={
                    "boxstyle": "round,pad=0.15",
                    "fc": "black" if row[f"{header}_best"] else "white",
                    "alpha": 0.7,
                    "lw": 0,
                },
            )
            if row[f"{header}_ns"]:
                ax.add_patch(
                    plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch="///", lw=0, alpha=0.6)
                )
            if row[f"{header}_best"]:
                ax.add_patch(plt.Rectangle((c - 0.45, r - 0.45), 0.9, 0.9, fill=False, lw=2.5, ec="red"))
        unit = " (%)" if COLUMNS[column][2] == 100.0 else ""
        ax.set_title(f"test {header}{unit}, {'lower' if lower else 'higher'} is better", fontsize=10)
        ax.set_yticks(range(len(rows)), [str(v) for v in rows])
        if ax is np.atleast_1d(axes)[0]:
            ax.set_ylabel(keys[0])
        if len(keys) > 1:
            ax.set_xticks(range(len(cols)), [str(v) for v in cols])
            ax.set_xlabel(keys[1])
        else:
            ax.set_xticks([])
    seeds = len(spec["seeds"])
    fig.suptitle(
        f"Sweep {spec['name']} on {spec['dataset_label']}, mean over {seeds} seed{'s' * (seeds > 1)}\n"
        f"red frame: best cell; hatched: not significantly different from it (paired t-test over seeds, "
        f"p ≥ {ALPHA}); ★: lowest validation MAE",
        fontsize=9,
    )
    save_figure(fig, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `sweep --spec JSON --out results/sweeps/<sweep> --figure PNG AGGREGATE.json...`."""
    parser.add_argument("aggregates", nargs="+", type=Path, help="aggregated metrics of the sweep's cells")
    parser.add_argument("--spec", required=True, help="sweep spec as JSON (pipeline.sweeps.sweep_spec)")
    parser.add_argument("--out", required=True, type=Path, help="table prefix; writes .csv and .md")
    parser.add_argument("--figure", required=True, type=Path, help="heatmap PNG")


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline sweep`."""
    check_output(args.figure, *(args.out.with_name(args.out.name + suffix) for suffix in (".csv", ".md")))
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--spec is not JSON ({err})") from None
    frame = sweep_frame(spec, load_aggregates(args.aggregates))
    for suffix, text in (
        (".csv", frame.to_csv(index=False, float_format="%.6g")),
        (".md", render_markdown(spec, frame)),
    ):
        with atomic_path(args.out.with_name(args.out.name + suffix)) as tmp:
            tmp.write_text(text)
    plot_sweep(spec, frame, args.figure)
