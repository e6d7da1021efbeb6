"""The comparison view of DVC experiments: every experiment's test Acc2, MAE and Corr in one JSON.

`dvc exp show` names a metric column by its key alone when the key is unique across metrics files, and
`path:key` when it recurs. The per-experiment summaries (results/summary/<dataset>/<experiment>.json) all
carry the same keys, so their columns read `results/summary/synthetic/alpha_0.5.json:mae`, three of them
fill a terminal. This file nests the paper's headline metrics under dataset and experiment (one row of a
table is one experiment), so that every key is unique and a column reads `synthetic.alpha_0.5.MAE`
(docs/dvc.md, "Trying configurations with DVC experiments"). Acc2 is in percent, as in the tables; the
values are the summaries' test means over seeds.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.io import write_json

# headline name -> (summary key, scale): the tables' Acc2 (non0, in %), MAE and Pearson correlation.
HEADLINE: dict[str, tuple[str, float]] = {
    "Acc2": ("acc2_non0", 100.0),
    "MAE": ("mae", 1.0),
    "Corr": ("corr", 1.0),
}


def headline(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """One experiment's headline metrics from its summary; None where the summary has no value."""
    values = {name: summary.get(key) for name, (key, _) in HEADLINE.items()}
    return {name: None if value is None else value * HEADLINE[name][1] for name, value in values.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `headline --out H.json results/summary/<dataset>/<experiment>.json...`."""
    parser.add_argument("summaries", nargs="+", type=Path, help="summary JSONs, one per experiment")
    parser.add_argument(
        "--out", required=True, type=Path, help="output JSON: dataset -> experiment -> metric"
    )


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline headline`: a summary's folder is its dataset, its stem the experiment."""
    table: dict[str, dict[str, dict[str, float | None]]] = {}
    for path in args.summaries:
        table.setdefault(path.parent.name, {})[path.stem] = headline(json.loads(path.read_text()))
    write_json(args.out, table)
