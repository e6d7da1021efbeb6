"""The numbers the HyCon paper reports (Mai et al., Tables 1-6), transcribed from ../shared/paper.

Tables 1 and 2 give the baselines' rows that our tables show as reported (they are not rerun); the HyCon
rows of every table let the tables put our measured values beside the paper's. Acc7, Acc2 and F1 are in
percent (Acc2/F1 are the paper's non0 convention), MAE and Corr as printed. Row labels are the paper's,
with citation brackets dropped. Table 2's IMR row has no MAE/Corr (the paper: IMR cannot perform
regression); those cells are None.
"""

from __future__ import annotations

from typing import NamedTuple

from pipeline.errors import ConfigError

METRICS: tuple[str, ...] = ("acc7", "acc2", "f1", "mae", "corr")


class PaperTable(NamedTuple):
    """One table of the paper: its number, the dataset it was measured on, and its rows."""

    number: int
    dataset: str
    title: str
    rows: dict[str, dict[str, float | None]]


def _rows(labels: list[str], *columns: list[float | None]) -> dict[str, dict[str, float | None]]:
    """Zip the paper's column-wise listing (one list per metric, in METRICS order) into rows."""
    if len(columns) != len(METRICS):
        raise ValueError("a paper table needs one column per metric")
    rows = zip(labels, *columns, strict=True)
    return {label: dict(zip(METRICS, values, strict=True)) for label, *values in rows}


_BASELINES_MOSI = ["EF-LSTM", "LF-LSTM", "TFN", "LMF", "MFN", "RAVEN", "MULT", "QMF", "ICCN", "MAG-BERT"]
_BASELINES_MOSEI = _BASELINES_MOSI[:7] + ["IMR"] + _BASELINES_MOSI[7:]

PAPER_TABLES: dict[str, PaperTable] = {
    "table1": PaperTable(
        1,
        "CMU-MOSI",
        "The comparison with baselines on CMU-MOSI",
        _rows(
            [*_BASELINES_MOSI, "HyCon"],
            [31.6, 31.6, 32.2, 30.6, 32.1, 33.8, 33.6, 35.5, 39.0, 42.9, 46.6],
            [75.8, 76.4, 76.4, 73.8, 78.0, 78.8, 79.3, 79.7, 83.0, 83.5, 85.2],
            [75.6, 75.4, 76.3, 73.7, 76.0, 76.9, 78.3, 79.6, 83.0, 83.5, 85.1],
            [1.053, 1.037, 1.017, 1.026, 1.010, 0.968, 1.009, 0.915, 0.860, 0.790, 0.713],
            [0.613, 0.620, 0.604, 0.602, 0.635, 0.667, 0.667, 0.696, 0.710, 0.769, 0.790],
        ),
    ),
    "table2": PaperTable(
        2,
        "CMU-MOSEI",
        "The comparison with baselines on CMU-MOSEI",
        _rows(
            [*_BASELINES_MOSEI, "HyCon"],
            [46.7, 49.1, 49.8, 50.0, 49.1, 50.2, 48.2, 48.7, 47.9, 51.6, 51.9, 52.8],
            [79.1, 79.4, 79.4, 80.6, 79.6, 79.0, 80.2, 80.6, 80.7, 84.2, 85.0, 85.4],
            [78.8, 80.0, 79.7, 81.0, 80.6, 79.4, 80.5, 81.0, 79.8, 84.2, 85.0, 85.6],
            [0.665, 0.625, 0.610, 0.608, 0.618, 0.605, 0.638, None, 0.640, 0.565, 0.602, 0.601],
            [0.621, 0.655, 0.671, 0.677, 0.670, 0.680, 0.659, None, 0.658, 0.713, 0.778, 0.776],
        ),
    ),
    "table3": PaperTable(
        3,
        "CMU-MOSI",
        "Ablation studies on CMU-MOSI",
        _rows(
            [
                "HyCon (W/O Contrast Learning)",
                "HyCon (W/O Refinement Loss)",
                "HyCon (W/O Modality Margin α)",
                "HyCon (W/O L_IAMCL)",
                "HyCon (W/O L_IEMCL)",
                "HyCon (W/O L_SCL)",
                "HyCon",
            ],
            [43.2, 45.5, 44.2, 45.0, 42.8, 47.0, 46.6],
            [82.7, 84.9, 84.6, 83.2, 83.7, 84.0, 85.2],
            [82.8, 84.9, 84.5, 83.2, 83.4, 84.0, 85.1],
            [0.769, 0.733, 0.739, 0.752, 0.768, 0.748, 0.713],
            [0.774, 0.789, 0.785, 0.787, 0.760, 0.776, 0.790],
        ),
    ),
    "table4": PaperTable(
        4,
        "CMU-MOSI",
        "Fusion strategies on CMU-MOSI",
        _rows(
            ["Concatenation", "Addition (default)", "Tensor Fusion", "Graph Fusion"],
            [44.8, 46.6, 43.7, 46.0],
            [84.3, 85.2, 83.5, 85.1],
            [84.1, 85.1, 83.5, 85.3],
            [0.762, 0.713, 0.763, 0.729],
            [0.786, 0.790, 0.791, 0.801],
        ),
    ),
    "table5": PaperTable(
        5,
        "CMU-MOSI",
        "The modality margin α on CMU-MOSI",
        _rows(
            ["HyCon (α = 0.5)", "HyCon (α = 0.7)", "HyCon (α = 0.8)", "HyCon (α = 0.9)"],
            [42.2, 46.3, 46.6, 46.1],
            [83.8, 83.8, 85.2, 84.2],
            [83.7, 83.8, 85.1, 84.3],
            [0.751, 0.737, 0.713, 0.747],
            [0.784, 0.795, 0.790, 0.783],
        ),
    ),
    "table6": PaperTable(
        6,
        "CMU-MOSI",
        "Comparison of loss functions on CMU-MOSI",
        _rows(
            ["Triplet Loss", "Hard-triplet Mining", "N-pair Loss", "Classical Contrastive Loss", "HyCon"],
            [43.4, 45.5, 45.7, 46.3, 46.6],
            [83.5, 84.3, 83.8, 83.7, 85.2],
            [83.4, 84.2, 83.9, 83.6, 85.1],
            [0.797, 0.753, 0.767, 0.740, 0.713],
            [0.777, 0.776, 0.768, 0.791, 0.790],
        ),
    ),
}


def paper_table(name: str) -> PaperTable:
    """The paper's table `name` (table1..table6); ConfigError naming the known tables otherwise."""
    try:
        return PAPER_TABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown paper table '{name}'; the paper's tables are {', '.join(PAPER_TABLES)}"
        ) from None


def reported_row(table: str, label: str) -> dict[str, float | None]:
    """The paper's numbers for one row label of one table; ConfigError naming the table's labels otherwise."""
    rows = paper_table(table).rows
    if label not in rows:
        raise ConfigError(f"paper {table} has no row '{label}'; its rows are: {', '.join(rows)}")
    return rows[label]
