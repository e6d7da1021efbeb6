"""Stage `import`: the preprocessed pickles researchers already hold, into the aligned HDF5 (architecture, 2).

The module is `import_` because `import` is a Python keyword; the stage is `python -m pipeline import`.
`python -m pipeline import mmsa|mag|misa SOURCE OUT.h5` reads thuiar/MMSA's, MAG-BERT's or MISA's pickles
(`pipeline/data/formats.py`; docs/data.md has the layouts and the commands) with the restricted unpickler of
`pipeline/data/pickles.py`, and writes the same file `align` writes: `dev` becomes `valid`, ids are
`"<video>[<k>]"`, feature sizes come from the data, non-finite feature values become 0 (counted), and the root
attributes record the format and the sources' SHA-256. The output path is checked before the input is read,
and every input before anything is written.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.dataset import write_aligned
from pipeline.data.formats import SOURCE_SPLITS, Split, clip_base_of, read_source, rename_mmsa
from pipeline.data.plan import LABEL_RANGE, first_bad_label
from pipeline.errors import ConfigError, DataError
from pipeline.io import check_output
from pipeline.layout import FRAME_FILES

log = logging.getLogger(__name__)

KNOWN_DATASETS = ("mosei", "mosi", "sims")  # guessed from the words of the source path


def _check(splits: dict[str, Split], stats: Counter) -> dict[str, int]:
    """Labels finite and in range, ids unique over the file, one feature size per modality; zero
    non-finite feature values (counted). Returns the feature sizes."""
    seen: dict[str, str] = {}
    dims: dict[str, int] = {}
    for name, split in splits.items():
        where = split.where
        if not split.ids:
            raise where.error("has no segments")
        if (row := first_bad_label(split.labels)) is not None:
            raise where.error(
                f"label {split.labels[row]} is not a finite value in [-{LABEL_RANGE:g}, {LABEL_RANGE:g}]",
                split.ids[row],
            )
        for sample in split.ids:
            if sample in seen:
                raise where.error(f"duplicate id (also in output split '{seen[sample]}')", sample)
            seen[sample] = name
        for modality in ("audio", "visual"):
            values = getattr(split, modality)
            dim = dims.setdefault(modality, values.shape[2])
            if values.shape[2] != dim:
                raise where.error(f"{modality} features are {values.shape[2]}-d, other splits' {dim}-d")
            finite = np.isfinite(values)
            stats[f"nonfinite_zeroed:{modality}"] += int(finite.size - np.count_nonzero(finite))
            values[~finite] = 0
    return dims


def guess_dataset(source: Path) -> str:
    """The dataset a source holds: a known name that is a word of its file name or, failing that, of the
    nearest folder above (`CMU_MOSEI/aligned_50.pkl` -> mosei); else 'imported'."""
    for part in (source.name, *(p.name for p in source.resolve().parents)):
        words = set(re.split(r"[^a-z0-9]+", part.lower()))
        for name in KNOWN_DATASETS:
            if name in words:
                return name
    return "imported"


def _check_arguments(fmt: str, source: Path, seq_len: int, clip_base: int | None) -> None:
    """The import's own arguments, checked before the source is read."""
    if fmt not in SOURCE_SPLITS:
        raise DataError(
            f"{source}: unknown import format '{fmt}' (expected one of {', '.join(sorted(SOURCE_SPLITS))})"
        )
    if seq_len < 1:
        raise ConfigError(f"seq_len must be a positive integer, got {seq_len}")
    if clip_base not in (None, 0, 1):
        raise ConfigError(f"clip_base must be 0 or 1, got {clip_base}")


def _columns(split: Split) -> dict[str, np.ndarray]:
    """One split's columns as the aligned HDF5 stores them (ids, labels [n], texts, frames [n, seq_len, d],
    lengths)."""
    return {
        "id": np.array(split.ids, dtype=object),
        "label": split.labels.astype(np.float32),
        "text": np.array(split.texts, dtype=object),
        "audio": split.audio,
        "visual": split.visual,
        "length": split.length.astype(np.int64),
    }


def import_dataset(
    fmt: str,
    source: str | Path,
    out_path: str | Path,
    seq_len: int = 50,
    dataset: str | None = None,
    clip_base: int | None = None,
) -> dict[str, Any]:
    """Import `source` (format `mmsa`, `mag` or `misa`) into the aligned HDF5 `out_path`; return the counts.

    Every input is checked before anything is written: bad input raises `DataError` and writes nothing.
    """
    source = Path(source)
    check_output(out_path)  # an impossible output is refused before the input is read
    _check_arguments(fmt, source, seq_len, clip_base)
    splits, checksums = read_source(fmt, source, seq_len)
    if fmt == "mmsa":
        clip_base = clip_base_of(splits, clip_base)
        for split in splits.values():
            rename_mmsa(split, clip_base)
    stats: Counter = Counter()
    dims = _check(splits, stats)
    name = dataset or guess_dataset(source)
    attrs = {
        "seq_len": seq_len,
        "audio_dim": dims["audio"],
        "visual_dim": dims["visual"],
        "dataset": name,
        "format": fmt,
        "checksums": json.dumps(checksums),
    }
    arrays = {out: _columns(split) for out, split in splits.items()}
    write_aligned(out_path, arrays, attrs, dict.fromkeys(FRAME_FILES, source))
    summary = {
        "format": fmt,
        "dataset": name,
        "segments": {out: len(split.ids) for out, split in splits.items()},
        "dims": dims,
        "cut": {out: split.cut for out, split in splits.items()},
        "nonfinite_values_zeroed": {m: stats[f"nonfinite_zeroed:{m}"] for m in ("audio", "visual")},
        "clip_base": clip_base,
    }
    log.info(
        "imported %s (%s) -> %s: dataset %s, segments %s, audio %d-d, visual %d-d, seq_len %d%s; "
        "segments cut to seq_len %s; non-finite feature values zeroed %s",
        source,
        fmt,
        out_path,
        name,
        summary["segments"],
        dims["audio"],
        dims["visual"],
        seq_len,
        f", MMSA clip numbers from {clip_base}" if fmt == "mmsa" else "",
        summary["cut"],
        summary["nonfinite_values_zeroed"],
    )
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m pipeline import`."""
    parser.add_argument(
        "format", help="source layout: mmsa (MMSA pickle), mag (MAG-BERT pickle), misa (MISA folder)"
    )
    parser.add_argument("source", type=Path, help="the pickle (mmsa, mag) or folder of pickles (misa)")
    parser.add_argument("out_path", type=Path, help="aligned HDF5 to write, e.g. data/aligned/mosi.h5")
    parser.add_argument("--seq-len", type=int, default=50, help="steps kept per segment (default 50)")
    parser.add_argument(
        "--dataset", help="dataset name recorded in the file (default: guessed from the path)"
    )
    parser.add_argument(
        "--clip-base",
        type=int,
        choices=(0, 1),
        help="mmsa: number of a video's first clip (default: 0 if some clip is numbered 0, else 1)",
    )


def run(args: argparse.Namespace) -> None:
    """Entry of the `import` stage."""
    import_dataset(args.format, args.source, args.out_path, args.seq_len, args.dataset, args.clip_base)
