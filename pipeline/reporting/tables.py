"""Render the paper's tables from aggregated metrics: Markdown, LaTeX (booktabs) and CSV.

Columns are the paper's: Acc7, Acc2, F1 (in %, Acc2/F1 the non0 convention), MAE and Corr (3 decimals).
A measured cell is "mean ± std" over seeds; a row the paper reports (the baselines of Tables 1-2) is
printed as the paper prints it and marked † (Markdown, LaTeX) or `Source = reported` (CSV); a value the
paper does not give (IMR's MAE/Corr) is "–". The CSV keeps full precision, adds the has0 Acc2/F1 and, for
every row whose label is one of the paper's, the paper's numbers (`Paper_*` columns) so measured and
reported values can be compared programmatically.

Every other measured row is compared with the table's reference row (HyCon; pipeline.reporting.stats) on
the seeds both ran (`Compared_seeds`, `Seed_pairs`), seed by seed: the CSV gives, per metric, the mean
per-seed difference (`*_diff`, row minus reference), its 95% paired-bootstrap interval (`*_ci_low`,
`*_ci_high`) and p-value (`*_p_boot`; seeds and segments resampled, segments only with one shared seed),
the exact paired permutation test over seeds (`*_p_perm`) and the paired t-test (`*_p_ttest`); Markdown
and LaTeX mark a MAE cell * and an Acc2 cell ‡ where the bootstrap p-value is below 0.05 and the row shares
two or more seeds with the reference.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ConfigError, DataError
from pipeline.io import atomic_path, check_output
from pipeline.reporting.captions import ALPHA, MARKERS, MIN_MARKED_SEEDS, tested_reference
from pipeline.reporting.paper import PAPER_TABLES
from pipeline.reporting.stats import Comparison, group_predictions, table_statistics

# Paper column -> (run metric it is computed from, header, scale to the printed unit, decimals)
COLUMNS: dict[str, tuple[str, str, float, int]] = {
    "acc7": ("acc7", "Acc7", 100.0, 1),
    "acc2": ("acc2_non0", "Acc2", 100.0, 1),
    "f1": ("f1_non0", "F1", 100.0, 1),
    "mae": ("mae", "MAE", 1.0, 3),
    "corr": ("corr", "Corr", 1.0, 3),
}
# Columns only the CSV carries: the has0 convention of Acc2 and F1.
CSV_COLUMNS: dict[str, tuple[str, str, float, int]] = {
    **COLUMNS,
    "acc2_has0": ("acc2_has0", "Acc2_has0", 100.0, 1),
    "f1_has0": ("f1_has0", "F1_has0", 100.0, 1),
}
MISSING = "–"
DAGGER = "†"
STAT_FIELDS: tuple[str, ...] = ("diff", "ci_low", "ci_high", "p_boot", "p_perm", "p_ttest")


@dataclass
class Row:
    """One table row: measured (mean, std over `seeds` runs) or reported (the paper's values, std None)."""

    label: str
    source: str  # "measured" | "reported"
    mean: dict[str, float | None]
    std: dict[str, float | None] = field(default_factory=dict)
    seeds: int | None = None
    paper: dict[str, float | None] | None = None
    compared_with: str | None = None  # label of the reference row the statistics compare with
    stats: dict[str, Comparison] = field(default_factory=dict)  # column -> comparison, in printed units


def format_value(column: str, value: float | None) -> str:
    """One number in the printed unit of its column (percent with 1 decimal, or 3 decimals); '–' if None."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.{COLUMNS[column][3]}f}"


def format_cell(row: Row, column: str) -> str:
    """A row's cell: 'mean ± std' for measured rows over several seeds, the bare number for a reported row
    or a single-seed one (its std, 0 in the aggregate, is unknown, not zero)."""
    mean = format_value(column, row.mean.get(column))
    std = row.std.get(column)
    if row.source == "reported" or mean == MISSING or std is None or row.seeds == 1:
        return mean
    return f"{mean} ± {format_value(column, std)}"


def marked_cell(row: Row, column: str) -> str:
    """format_cell, followed by the column's marker when the row differs significantly from the reference
    in the bootstrap over seeds and segments (MIN_MARKED_SEEDS shared seeds or more)."""
    return format_cell(row, column) + (MARKERS.get(column, "") if is_marked(row.stats.get(column)) else "")


def is_marked(comparison: Comparison | None) -> bool:
    """Whether a comparison earns its column's marker: bootstrap p < ALPHA over MIN_MARKED_SEEDS+ seeds."""
    return (
        comparison is not None
        and comparison.pairs >= MIN_MARKED_SEEDS
        and comparison.p_boot is not None
        and comparison.p_boot < ALPHA
    )


def measured_row(label: str, aggregate: Mapping[str, Any], paper: dict[str, float | None] | None) -> Row:
    """A measured row from an aggregate JSON (pipeline.reporting.aggregate), in the printed units."""
    mean: dict[str, float | None] = {}
    std: dict[str, float | None] = {}
    for column, (metric, _header, scale, _decimals) in CSV_COLUMNS.items():
        stats = aggregate["test"][metric]
        mean[column] = None if stats["mean"] is None else stats["mean"] * scale
        std[column] = None if stats["std"] is None else stats["std"] * scale
    return Row(label, "measured", mean, std, seeds=int(aggregate["n"]), paper=paper)


def build_rows(
    spec: Mapping[str, Any],
    aggregates: Mapping[str, Mapping[str, Any]],
    predictions: Sequence[str | Path] = (),
) -> list[Row]:
    """The table's rows: the paper's reported rows first (as in the paper), then the measured ones.

    `aggregates` maps experiment name -> aggregate; a row whose experiment is missing is a DataError.
    When the table has a reference row and others, `predictions` (every measured row's per-seed
    predictions.csv) give the statistics of the others against it.
    """
    paper_rows = PAPER_TABLES[spec["paper"]].rows if spec.get("paper") else {}
    rows = [
        Row(label, "reported", dict(paper_rows[label]), paper=paper_rows[label]) for label in spec["reported"]
    ]
    for entry in spec["rows"]:
        aggregate = aggregates.get(entry["experiment"])
        if aggregate is None:
            raise DataError(
                f"table {spec['name']}: no aggregated metrics for experiment '{entry['experiment']}' "
                f"(row '{entry['label']}')"
            )
        if aggregate["dataset"] != spec["dataset"]:
            raise DataError(
                f"table {spec['name']}: metrics of '{entry['experiment']}' are for dataset "
                f"'{aggregate['dataset']}', the table is on '{spec['dataset']}'"
            )
        rows.append(measured_row(entry["label"], aggregate, paper_rows.get(entry["label"])))
    if (reference := tested_reference(spec)) is None:
        return rows
    comparisons = table_statistics(
        spec["name"], spec["rows"], reference, aggregates, group_predictions(predictions)
    )
    reference_label = next(entry["label"] for entry in spec["rows"] if entry["experiment"] == reference)
    for row, entry in zip(rows[-len(spec["rows"]) :], spec["rows"], strict=True):
        if entry["experiment"] in comparisons:
            row.compared_with = reference_label
            row.stats = {
                column: comparisons[entry["experiment"]][metric].scaled(scale)
                for column, (metric, _header, scale, _decimals) in CSV_COLUMNS.items()
            }
    return rows


def _row_label(row: Row, dagger: str) -> str:
    return f"{row.label} {dagger}" if row.source == "reported" else row.label


def render_markdown(spec: Mapping[str, Any], rows: Sequence[Row]) -> str:
    """GitHub Markdown: the caption in bold, the table, and the paper's numbers for the measured rows."""
    headers = [COLUMNS[c][1] for c in COLUMNS]
    lines = [f"**{spec['caption']}**", ""]
    lines += _markdown_table(
        ["Method", *headers], [[_row_label(r, DAGGER)] + [marked_cell(r, c) for c in COLUMNS] for r in rows]
    )
    compared = [r for r in rows if r.source == "measured" and r.paper]
    if compared:
        lines += [
            "",
            f"Reported in the paper for the measured rows (its Table {spec['paper'][5:]}, "
            f"{spec['paper_dataset']}):",
            "",
        ]
        lines += _markdown_table(
            ["Method", *headers],
            [[r.label] + [format_value(c, r.paper.get(c)) for c in COLUMNS] for r in compared],
        )
    return "\n".join(lines) + "\n"


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    """Pipe-table lines, the first column left-aligned and the numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|:--" + "|--:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in body]
    return lines


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "α": r"$\alpha$",
    "±": r"$\pm$",
    "†": r"$^\dagger$",
    "‡": r"$^\ddagger$",
    "*": r"$^{*}$",
    "–": "--",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(ch) for ch in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters and map the few non-ASCII symbols the tables use to math mode.

    Text between backticks becomes \\texttt{...}.
    """
    parts = text.split("`")
    out = []
    for index, part in enumerate(parts):
        escaped = _LATEX_PATTERN.sub(lambda m: _LATEX_SPECIAL[m.group(0)], part)
        out.append(f"\\texttt{{{escaped}}}" if index % 2 == 1 and index < len(parts) - 1 else escaped)
    return "".join(out)


def render_latex(spec: Mapping[str, Any], rows: Sequence[Row]) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); a rule separates reported and measured rows."""
    lines = [
        "% Generated by `python -m pipeline tables`; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(spec['caption'])}}}",
        f"\\label{{tab:{spec['name']}}}",
        "\\begin{tabular}{l" + "r" * len(COLUMNS) + "}",
        "\\toprule",
        " & ".join(["Method", *(COLUMNS[c][1] for c in COLUMNS)]) + " \\\\",
        "\\midrule",
    ]
    previous = None
    for row in rows:
        if previous is not None and previous != row.source:
            lines.append("\\midrule")
        previous = row.source
        cells = [latex_escape(_row_label(row, DAGGER))] + [latex_escape(marked_cell(row, c)) for c in COLUMNS]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def table_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """Machine-readable table: Method, Source, Seeds, each mean and its `_std` (has0 too), the paper's
    values, and the statistics against the reference row (`Compared_with`, `Compared_seeds`, `Seed_pairs`,
    per metric `_diff`, `_ci_low`, `_ci_high`, `_p_boot`, `_p_perm`, `_p_ttest`; empty for the reference
    and reported rows)."""
    records = []
    for row in rows:
        record: dict[str, Any] = {"Method": row.label, "Source": row.source, "Seeds": row.seeds}
        for column, (_metric, header, _scale, _decimals) in CSV_COLUMNS.items():
            record[header] = row.mean.get(column)
            record[f"{header}_std"] = row.std.get(column)
        for column, (_metric, header, _scale, _decimals) in COLUMNS.items():
            record[f"Paper_{header}"] = row.paper.get(column) if row.paper else None
        record["Compared_with"] = row.compared_with
        seeds = row.stats["mae"].seeds if row.stats else None
        record["Compared_seeds"] = " ".join(map(str, seeds)) if seeds else None
        record["Seed_pairs"] = len(seeds) if seeds is not None else None
        for column, (_metric, header, _scale, _decimals) in CSV_COLUMNS.items():
            c = row.stats.get(column)
            values = (
                (c.diff, c.low, c.high, c.p_boot, c.p_perm, c.p_ttest) if c else (None,) * len(STAT_FIELDS)
            )
            record.update(
                {f"{header}_{name}": value for name, value in zip(STAT_FIELDS, values, strict=True)}
            )
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    return frame.astype({"Seeds": "Int64", "Seed_pairs": "Int64"})


def write_table(
    spec: Mapping[str, Any],
    aggregates: Mapping[str, Mapping[str, Any]],
    prefix: str | Path,
    predictions: Sequence[str | Path] = (),
) -> None:
    """Write `<prefix>.md`, `<prefix>.tex` and `<prefix>.csv` for one table, each atomically."""
    rows = build_rows(spec, aggregates, predictions)
    prefix = Path(prefix)
    outputs = {
        ".md": render_markdown(spec, rows),
        ".tex": render_latex(spec, rows),
        ".csv": table_frame(rows).to_csv(index=False, float_format="%.6g"),
    }
    for suffix, text in outputs.items():
        with atomic_path(prefix.with_name(prefix.name + suffix)) as tmp:
            tmp.write_text(text)


def load_aggregates(paths: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """experiment -> aggregate JSON, read from aggregate files (DataError naming an unreadable one)."""
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            aggregate = json.loads(Path(path).read_text())
            found[aggregate["experiment"]] = aggregate
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not an aggregate metrics file ({err})") from None
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `tables --spec JSON --out results/tables/table1 AGGREGATE.json...`."""
    parser.add_argument(
        "aggregates", nargs="+", type=Path, help="aggregated metrics of the table's experiments"
    )
    parser.add_argument(
        "--spec",
        required=True,
        help="table spec as JSON (pipeline.grid.table_spec) or a JSON file",
    )
    parser.add_argument("--out", required=True, type=Path, help="output prefix; writes .md, .tex and .csv")
    parser.add_argument(
        "--predictions",
        nargs="*",
        default=[],
        type=Path,
        help="every measured row's results/runs/<dataset>/<experiment>/seed<k>/predictions.csv (statistics)",
    )


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline tables`."""
    check_output(*(args.out.with_name(args.out.name + suffix) for suffix in (".md", ".tex", ".csv")))
    try:
        raw = args.spec if args.spec.lstrip().startswith("{") else Path(args.spec).read_text()
        spec = json.loads(raw)
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"--spec is neither JSON text nor a readable JSON file ({err})") from None
    write_table(spec, load_aggregates(args.aggregates), args.out, args.predictions)
