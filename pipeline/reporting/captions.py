"""Captions of the rendered tables and figures: what was measured, on which data, what is reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.layout import CMU_DATASETS

# The tables' significance test (pipeline.reporting.stats) and its markers (pipeline.reporting.tables),
# defined here because the captions state them and this module is light enough for the workflow to import.
ALPHA = 0.05  # significance level of the markers
RESAMPLES = 10_000  # paired-bootstrap resamples of the test segments
MARKERS: dict[str, str] = {"mae": "*", "acc2": "‡"}  # table column -> marker of a significant difference


def dataset_label(spec: Mapping[str, Any], dataset: str) -> str:
    """Caption name of a dataset (its config entry `spec`): its `label`, else CMU-MOSI/CMU-MOSEI, else a
    synthetic dataset's wording."""
    if "label" in spec:
        return spec["label"]
    if spec["source"] == "download":
        return CMU_DATASETS[spec.get("name", dataset)]
    return f"the synthetic dataset '{dataset}' (generated, MOSI-like)"


def tested_reference(spec: Mapping[str, Any]) -> str | None:
    """The table's `reference` experiment (resolved by `grid.table_spec`) when other rows are tested
    against it, else None (no reference, or every row runs it)."""
    reference = spec.get("reference")
    if reference is None or all(row["experiment"] == reference for row in spec["rows"]):
        return None
    return reference


def table_caption(spec: Mapping[str, Any]) -> str:
    """Caption of a rendered table: what was measured, on which data, over which seeds, what is reported."""
    head = f"Table {spec['number']}" if spec["number"] is not None else spec["name"]
    seeds = ", ".join(str(s) for s in spec["seeds"])
    text = (
        f"{head}: {spec['title']}. Measured rows: {spec['dataset_label']}, mean ± sample std over "
        f"{len(spec['seeds'])} seed{'s' if len(spec['seeds']) != 1 else ''} ({seeds}), on the test set; "
        "Acc7, Acc2 and F1 in %, Acc2/F1 excluding zero labels (non0)."
    )
    if spec["reported"]:
        text += (
            f" Rows marked † are the numbers reported in the paper (its Table {spec['paper'][5:]}, "
            f"{spec['paper_dataset']}), not rerun."
        )
    if (reference := tested_reference(spec)) is not None:
        label = next(row["label"] for row in spec["rows"] if row["experiment"] == reference)
        text += (
            f" Marked {MARKERS['mae']} (MAE) and {MARKERS['acc2']} (Acc2): the difference from {label} is "
            f"significant at p < {ALPHA} in a paired bootstrap over the test segments ({RESAMPLES:,} "
            "resamples of the seed-averaged predictions); the CSV gives every metric's difference, its 95% "
            "interval and a paired t-test over seeds."
        )
    text += _training_caption(spec)
    if spec.get("unsearched"):
        rows = "; ".join(f"{label} ({why})" for label, why in spec["unsearched"].items())
        text += f" Not searched, as in the unsearched table: {rows}."
    if spec.get("trimmed"):
        rows = "; ".join(f"{label}: {note}" for label, note in spec["trimmed"].items())
        text += f" Run with less, for CPU time: {rows}."
    if spec["synthetic"]:
        text += (
            " The data is SYNTHETIC (generated offline by `python -m pipeline synthesize`), so measured "
            "rows are not comparable with the paper's numbers."
        )
    return text


def _training_caption(spec: Mapping[str, Any]) -> str:
    """What the rows trained with, grouped by setting, when they differ (each baseline trains with its
    reference's settings, pipeline/presets.py; HyCon's rows with the config's `base`); else ''."""
    groups: dict[str, list[str]] = {}
    for label, note in (spec.get("training") or {}).items():
        groups.setdefault(note, []).append(label)
    if len(groups) < 2:
        return ""
    parts = "; ".join(f"{', '.join(labels)}: {note}" for note, labels in groups.items())
    return f" Trained with (each baseline its reference's settings, pipeline/presets.py): {parts}."
