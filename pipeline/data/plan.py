"""What alignment will do, established before any work: the raw files and folds validated into a `Plan`.

Every entry the alignment reads is checked here (shapes, dtypes, intervals, labels, fold membership), so
a bad input stops `align` with one `DataError` naming the file and the video before any output is made.

Folds and data are reconciled as the CMU SDK's `hard_unify` does (it keeps the entries every sequence has;
`get_tensors` then skips entries in no fold): a fold video absent from labels.csd, from words.csd (the
reference) or from both covarep.csd and facet.csd is dropped, and labelled videos in no fold are left out;
`unify_folds` returns both in the plan and `align` reports each kind in one warning line. Real CMU-MOSEI
has both: two test-fold videos of the standard folds have no labels (CMU SDK issue 256) and 66 labelled
videos are in no fold. With `strict` both are errors, as is a video absent from covarep.csd or facet.csd
(otherwise given zero features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.data.csd import CSD
from pipeline.data.folds import load_folds
from pipeline.errors import DataError
from pipeline.layout import FRAME_FILES, LABELS, WORDS

LABEL_RANGE = 3.0


@dataclass
class Video:
    """One video's words and labelled segments, read and checked by validation and kept for alignment.

    They are small (a few arrays of one row per word or segment), unlike the frames, which are read once,
    during alignment; keeping them saves a second read and decode of every video.
    """

    tokens: np.ndarray  # words decoded from UTF-8, object array of str [n]
    words: np.ndarray  # word intervals [n, 2]
    labels: np.ndarray  # label of each segment [k] (column 0 of labels.csd)
    segments: np.ndarray  # segment intervals [k, 2]


@dataclass
class Plan:
    """What validation established: the folds, each modality's feature size, videos lacking a modality,
    and every fold video's words and segments."""

    folds: dict[str, list[str]]  # the videos aligned, by split (fold videos lacking labels or words dropped)
    dims: dict[str, int]
    missing: dict[str, set[str]] = field(default_factory=dict)
    videos: dict[str, Video] = field(default_factory=dict)
    dropped: dict[str, tuple[str, str]] = field(default_factory=dict)  # video -> (split, file it lacks in)
    unassigned: list[str] = field(default_factory=list)  # labelled videos in no fold (sorted)


def first_bad_label(values: np.ndarray) -> int | None:
    """Index of the first label that is not a finite value in [-LABEL_RANGE, LABEL_RANGE], or None."""
    bad = ~np.isfinite(values) | (np.abs(values) > LABEL_RANGE)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def check_intervals(path: Path, video: str, intervals: np.ndarray) -> None:
    """Intervals must be finite with end >= start; anything else breaks the interval search."""
    bad = ~np.isfinite(intervals).all(axis=1) | (intervals[:, 1] < intervals[:, 0])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: video '{video}' has {int(bad.sum())} invalid interval(s) (non-finite or end < start), "
            f"first at row {row}: {intervals[row].tolist()}"
        )


def decode_tokens(path: Path, video: str, words: np.ndarray) -> np.ndarray:
    """One video's words [n, 1] decoded from UTF-8 (object array of str [n])."""
    try:
        tokens = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in words[:, 0].tolist()]
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: video '{video}' has a word that is not UTF-8 ({err})") from err
    return np.array(tokens, dtype=object)


def first_videos(videos: list[str], shown: int = 10) -> str:
    """The first `shown` video names joined for a message, with " ..." when there are more."""
    return ", ".join(videos[:shown]) + (" ..." if len(videos) > shown else "")


def unify_folds(path: Path, csds: dict[str, CSD], strict: bool) -> Plan:
    """Load folds.json (validated by `load_folds`) and reconcile it with the data (module docstring).

    Returns a plan holding the folds to align, the dropped fold videos (`plan.dropped`) and the labelled
    videos in no fold (`plan.unassigned`), for the caller to report; with `strict` either kind raises
    DataError instead.
    """
    folds = load_folds(path)
    labels = csds[LABELS]
    plan = Plan(folds={}, dims={}, missing={modality: set() for modality in FRAME_FILES})
    for split, videos in folds.items():
        if not videos:
            raise DataError(f"{path}: fold '{split}' is empty; every fold needs at least one video")
        for video in videos:
            lacking = _lacking_files(csds, video)
            if lacking and strict:
                raise DataError(
                    f"{path}: fold '{split}' names video '{video}', which is not in "
                    f"{' nor '.join(map(str, lacking))} (--strict)"
                )
            if lacking:
                plan.dropped[video] = (split, " nor ".join(p.name for p in lacking))
        plan.folds[split] = [video for video in videos if video not in plan.dropped]
        if not plan.folds[split]:
            raise DataError(f"{path}: fold '{split}' has no video left with labels, words and features")
    in_folds = {video for videos in folds.values() for video in videos}
    plan.unassigned = sorted(set(labels.videos()) - in_folds)
    if plan.unassigned and strict:
        raise DataError(
            f"{labels.path}: {len(plan.unassigned)} labelled video(s) are in no fold of {path} "
            f"(--strict): {first_videos(plan.unassigned)}"
        )
    return plan


def _lacking_files(csds: dict[str, CSD], video: str) -> list[Path]:
    """The files whose absence drops a fold video: labels.csd or words.csd (the first lacking it), or
    both frame files when neither has it; empty when the video can be aligned."""
    lacking = [csd.path for csd in (csds[LABELS], csds[WORDS]) if video not in csd][:1]
    frames = [csds[name] for name in FRAME_FILES.values()]
    if not lacking and not any(video in csd for csd in frames):
        lacking = [csd.path for csd in frames]
    return lacking


def plan_alignment(csds: dict[str, CSD], folds_path: Path, strict: bool) -> Plan:
    """Check every entry the alignment will read (shapes, dtypes, intervals, labels) before any work.

    The folds are read and reconciled with the data first (`unify_folds`). Frame features are not read,
    only their headers; words, labels and frame intervals are read, and the words and labels are kept in
    the plan for the alignment.
    """
    plan = unify_folds(folds_path, csds, strict)
    for split, videos in plan.folds.items():
        for video in videos:
            plan.videos[video] = _read_video(csds, video)
            _check_frames(csds, plan, video, split, strict)
    for modality, name in FRAME_FILES.items():
        if modality not in plan.dims:  # no fold video has this modality: take the size from the file
            plan.dims[modality] = csds[name].feature_dim()
    return plan


def _read_video(csds: dict[str, CSD], video: str) -> Video:
    """One video's labels and words, checked (numeric labels in range, string words, valid intervals)."""
    words, labels = csds[WORDS], csds[LABELS]
    seq = labels[video]
    if seq.features.dtype.kind not in "fiu":
        raise DataError(f"{labels.path}: video '{video}' labels are {seq.features.dtype}, not numeric")
    check_intervals(labels.path, video, seq.intervals)
    values = seq.features[:, 0].astype(np.float64)
    bad = first_bad_label(values)
    if bad is not None:
        raise DataError(
            f"{labels.path}: video '{video}' segment {bad} has label {values[bad]}, "
            f"outside [-{LABEL_RANGE:g}, {LABEL_RANGE:g}]"
        )
    entry = words[video]
    dtype, dim = entry.features.dtype, entry.features.shape[1]
    if dtype.kind not in "SOU" or dim != 1:
        raise DataError(f"{words.path}: video '{video}' words are {dtype} [n, {dim}], not strings [n, 1]")
    check_intervals(words.path, video, entry.intervals)
    return Video(
        decode_tokens(words.path, video, entry.features), entry.intervals, seq.features[:, 0], seq.intervals
    )


def _check_frames(csds: dict[str, CSD], plan: Plan, video: str, split: str, strict: bool) -> None:
    """Check one video's frame headers and intervals; record a missing modality and each modality's size."""
    for modality, name in FRAME_FILES.items():
        csd = csds[name]
        if video not in csd:
            if strict:
                raise DataError(f"{csd.path}: no entry for video '{video}' (fold '{split}'; --strict)")
            plan.missing[modality].add(video)
            continue
        _, dim, dtype = csd.describe(video)
        if dtype.kind not in "fiu":
            raise DataError(f"{csd.path}: video '{video}' features are {dtype}, not numeric")
        expected = plan.dims.setdefault(modality, dim)
        if dim != expected:
            raise DataError(f"{csd.path}: video '{video}' has {dim}-d features, other videos {expected}-d")
        check_intervals(csd.path, video, csd.intervals(video))
