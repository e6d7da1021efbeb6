"""Captions of the rendered tables and figures: what was measured, on which data, what is reported."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.errors import ConfigError
from pipeline.layout import CMU_DATASETS

# The tables' significance test (pipeline.reporting.stats) and its markers (pipeline.reporting.tables),
# defined here because the captions state them and this module is light enough for the workflow to import.
ALPHA = 0.05  # significance level of the markers
RESAMPLES = 10_000  # paired-bootstrap resamples of the test segments
MARKERS: dict[str, str] = {"mae": "*", "acc2": "‡"}  # table column -> marker of a significant difference
# Marks need this many seeds shared with the reference: with one, the bootstrap resamples test segments
# only and cannot see training randomness (a row's seed 0 against HyCon's seed 0 is marked in 12% of
# null tables at a seed spread of 0.02 in benchmarks/bootstrap.py --calibrate; docs/statistics.md).
MIN_MARKED_SEEDS = 2
DEFAULT_REFERENCE = "hycon"  # the row a table's other rows are compared with, unless its `reference` says


def dataset_label(spec: Mapping[str, Any], dataset: str) -> str:
    """Caption name of a dataset (its config entry `spec`): its `label`, else CMU-MOSI/CMU-MOSEI, else a
    synthetic dataset's wording."""
    if "label" in spec:
        return spec["label"]
    if spec["source"] == "download":
        return CMU_DATASETS[spec.get("name", dataset)]
    return f"the synthetic dataset '{dataset}' (generated, MOSI-like)"


def reference_experiment(rows: Sequence[Mapping[str, str]], reference: str | None, where: str) -> str | None:
    """The experiment a table's rows are compared with: `reference`, else `hycon` when a row runs it.

    A `reference` that no row of the table runs is a ConfigError naming `where`; None: no statistics.
    """
    experiments = [row["experiment"] for row in rows]
    if reference is None:
        return DEFAULT_REFERENCE if DEFAULT_REFERENCE in experiments else None
    if reference not in experiments:
        raise ConfigError(
            f"{where}.reference: '{reference}' is not the experiment of a row of the table "
            f"(its rows run {', '.join(experiments)})"
        )
    return reference


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
        text += statistics_caption(spec, reference)
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


def statistics_caption(spec: Mapping[str, Any], reference: str) -> str:
    """The caption's sentences on the significance marks: which test marked which rows (rows that share
    one seed with the reference are tested over test segments only; rows that share none, not at all)."""
    label = next(row["label"] for row in spec["rows"] if row["experiment"] == reference)
    reference_seeds = set(spec["row_seeds"][reference])
    shared = {
        row["label"]: sorted(reference_seeds & set(spec["row_seeds"][row["experiment"]]))
        for row in spec["rows"]
        if row["experiment"] != reference
    }
    text = (
        f" Marked {MARKERS['mae']} (MAE) and {MARKERS['acc2']} (Acc2): the difference from {label} is "
        f"significant at p < {ALPHA} in a paired bootstrap ({RESAMPLES:,} resamples) that compares each run "
        f"with {label}'s run of the same seed and resamples both the seeds the two rows share and the test "
        "segments"
    )
    one = {name: seeds[0] for name, seeds in shared.items() if len(seeds) == 1}
    if one:
        seeds = ", ".join(str(s) for s in sorted(set(one.values())))
        text += (
            f"; {_listing(list(one))} (one seed in common with it, seed {seeds}): compared on that seed's "
            "runs over the test segments alone and never marked, since one seed cannot show training "
            "randomness (the CSV gives their intervals)"
        )
    if none := [name for name, seeds in shared.items() if not seeds]:
        text += f"; {_listing(none)} (no seed in common with it): not tested"
    smallest = 2 / 2 ** len(reference_seeds)
    return text + (
        ". The CSV gives each metric's difference (the mean over the shared seeds of the per-seed "
        "difference), its 95% interval, and two tests over seeds that mark nothing: an exact paired "
        f"permutation test (its smallest p with {len(reference_seeds)} seeds is {smallest:.2g}) and a paired "
        "t-test."
    )


def _listing(names: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


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
