"""Word-level alignment of a raw dataset (`data/raw/<dataset>/`) into the aligned HDF5 (architecture, 2).

Semantics are the CMU Multimodal SDK's standard recipe (`mmdataset.align`, `__intersect_and_copy`):

1. Words are the reference. A frame [s0, s1] intersects a word [r0, r1] iff `r1 - s0 > -eps` and
   `s1 - r0 > -eps` (eps = 1e-3, the SDK's `10e-4`); its piece is clipped to [max(s0, r0), min(s1, r1)] and
   dropped when the clipped length is <= eps. A reference interval shorter than eps is skipped entirely, so
   zero-length words (and zero-length segments in step 2) vanish. Each word's acoustic and visual feature is
   the plain average of its intersecting frames; non-finite frame values become 0 first (counted, and a
   video that loses more than half of a modality's frames this way is named in a warning); a word
   with no frame of a modality gets zeros (the SDK's `impute` with `numpy.zeros`).
2. Labelled segments are the reference: a segment holds the words of step 1 that intersect it under the
   same rule, in time order, so a word straddling a boundary belongs to both segments. `sp` tokens are then
   dropped, the first `seq_len` words kept and zero-padded at the end.

One deliberate difference: in step 2 the SDK intersects each modality's step-1 rows with the segment using
that modality's own interval (for frames, the span of the clipped frames, which can fall up to eps inside
the word), so at a segment boundary it can keep a word's text but not its frames. Here each word goes into a
segment, with all its features, by the word's own interval; the two agree whenever no boundary lies within
eps of a word edge (the equivalence test checks this against the SDK itself).

Unlike the SDK (pure-Python loops over every word and segment, h5py reads per word), this streams one video
at a time and vectorises the interval search: frames sorted by start plus a running maximum of their ends
give each word a candidate window by binary search, and the SDK's exact test is applied to the window.
Only the words that end up in some segment are averaged (the others cannot reach the output).
All input is validated before any alignment, and the output is written under a temporary name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse
from tqdm import tqdm

from pipeline.data.csd import CSD, Sequence
from pipeline.data.dataset import append_rows, create_split
from pipeline.data.plan import Plan, first_videos, plan_alignment
from pipeline.errors import ConfigError, DataError
from pipeline.io import atomic_path, background_checksums, check_output
from pipeline.layout import CSD_FILES, FOLDS, FRAME_FILES, HASHED_FILES, SILENCE

log = logging.getLogger(__name__)

EPSILON = 1e-3  # the SDK's `epsilon = 10e-4`
_PAIR_BUDGET = 1 << 22  # candidate (reference, frame) pairs examined per vectorised block
_FLUSH_ROWS = 512  # segments buffered per split before a write


def _blocks(counts: np.ndarray, budget: int) -> Iterator[tuple[int, int]]:
    """Split references into consecutive blocks of about `budget` candidate pairs (memory bound)."""
    total = np.cumsum(counts)
    cuts = np.searchsorted(total, np.arange(budget, int(total[-1]), budget), side="right")
    edges = np.unique(np.concatenate([[0], cuts, [len(counts)]]))
    yield from zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)


def _intersections(ref: np.ndarray, sub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) where sub[j] intersects ref[i] under the SDK's rule, ordered by i, then j.

    `sub` must be sorted by start. The candidate window of ref[i] is found by binary search (starts, and the
    running maximum of ends) widened by eps; the SDK's exact test, with its arithmetic, then decides.
    """
    empty = np.zeros(0, dtype=np.int64)
    if len(ref) == 0 or len(sub) == 0:
        return empty, empty
    reach = np.maximum.accumulate(sub[:, 1])
    lo = np.searchsorted(reach, ref[:, 0] - 2 * EPSILON, side="right")
    hi = np.searchsorted(sub[:, 0], ref[:, 1] + 2 * EPSILON, side="left")
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    if total == 0:
        return empty, empty
    refs, subs = [], []
    for a, b in _blocks(counts, _PAIR_BUDGET) if total > _PAIR_BUDGET else [(0, len(ref))]:
        n = counts[a:b]
        i = np.repeat(np.arange(a, b), n)
        j = np.arange(int(n.sum())) + np.repeat(lo[a:b] - (np.cumsum(n) - n), n)
        r0, r1, s0, s1 = ref[i, 0], ref[i, 1], sub[j, 0], sub[j, 1]
        hit = (r1 - s0 > -EPSILON) & (s1 - r0 > -EPSILON)
        hit &= np.abs(np.minimum(s1, r1) - np.maximum(s0, r0)) > EPSILON
        refs.append(i[hit])
        subs.append(j[hit])
    return np.concatenate(refs), np.concatenate(subs)


def _word_means(
    intervals: np.ndarray, frames: Sequence, stats: Counter, name: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Plain average of the frames intersecting each word interval [U, 2]: ([U, d] float32, has-frame [U],
    the number of frames with a non-finite value).

    Non-finite values in `frames.features` are set to 0 in place (the caller reads into a reused buffer).
    """
    features = frames.features
    finite = np.isfinite(features)
    lost = 0
    if not finite.all():
        lost = int((~finite.all(axis=1)).sum())
        stats[f"nonfinite_values:{name}"] += int(finite.size - np.count_nonzero(finite))
        stats[f"nonfinite_frames:{name}"] += lost
        features[~finite] = 0
    starts = frames.intervals[:, 0]
    if np.all(starts[1:] >= starts[:-1]):  # frames usually come sorted: skip the sort
        word, frame = _intersections(intervals, frames.intervals)
    else:
        order = np.argsort(starts, kind="stable")
        word, frame = _intersections(intervals, frames.intervals[order])
        frame = order[frame]
    # Averaging as a sparse product: row w of `weights` holds 1/count at the columns of word w's frames
    # (pairs come grouped by word), so `weights @ features` is every word's mean in one pass. It runs in
    # the features' precision (float32 in CMU files), as the SDK's numpy average does: the rounding is at
    # the level of the float32 output itself.
    dtype = np.result_type(features.dtype, np.float32)
    count = np.bincount(word, minlength=len(intervals))
    weights = scipy.sparse.csr_array(
        ((1.0 / count[word]).astype(dtype), frame, np.concatenate([[0], np.cumsum(count)])),
        shape=(len(intervals), len(features)),
    )
    means = weights @ features.astype(dtype, copy=False)
    return means.astype(np.float32, copy=False), count > 0, lost


@dataclass
class _Rows:
    """One video's aligned segments: the per-segment columns, and each modality's word features as a scatter.

    `features[modality]` is (row, position, values [W, d]): word w's features go to padded row `row[w]`
    of this video's segments, at time step `position[w]`; everything else is zero padding.
    """

    columns: dict[str, np.ndarray]  # id, label, text, length
    features: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    dropped: list[str]  # ids of segments that produced no row

    def __len__(self) -> int:
        return len(self.columns["id"])


def _align_video(video: str, csds: dict[str, CSD], plan: Plan, seq_len: int, stats: Counter) -> _Rows:
    """Align one video's words, frames and segments (steps 1 and 2 of the module docstring)."""
    entry = plan.videos[video]
    tokens, word_iv, seg_iv = entry.tokens, entry.words, entry.segments

    # The SDK skips reference intervals shorter than eps: zero-length words and segments never align.
    kept = np.flatnonzero(np.abs(word_iv[:, 0] - word_iv[:, 1]) >= EPSILON)
    stats["zero_length_words"] += len(word_iv) - len(kept)
    kept = kept[np.argsort(word_iv[kept, 0], kind="stable")]  # time order, ties in file order (as the SDK)
    long = np.abs(seg_iv[:, 0] - seg_iv[:, 1]) >= EPSILON
    segments, zero_segments = np.flatnonzero(long), np.flatnonzero(~long)

    seg, pos = _intersections(seg_iv[segments], word_iv[kept])
    word = kept[pos]
    speech = tokens[word] != SILENCE
    stats["sp_dropped"] += int((~speech).sum())
    seg, word = seg[speech], word[speech]
    per_segment = np.bincount(seg, minlength=len(segments))
    position = np.arange(len(seg)) - (np.cumsum(per_segment) - per_segment)[seg]
    fits = position < seq_len
    stats["words_truncated"] += int((~fits).sum())
    seg, word, position = seg[fits], word[fits], position[fits]

    present = np.flatnonzero(per_segment > 0)
    empty = segments[per_segment == 0]
    stats["segments_dropped:zero_length"] += len(zero_segments)
    stats["segments_dropped:no_words"] += len(empty)
    dropped = [f"{video}[{k}]" for k in np.sort(np.concatenate([zero_segments, empty]))]
    out_row = np.full(len(segments), -1)
    out_row[present] = np.arange(len(present))
    out_row = out_row[seg]

    unique, inverse = np.unique(word, return_inverse=True)
    stats["words_kept"] += len(word)
    features: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for modality, name in FRAME_FILES.items():
        if video in plan.missing[modality]:
            stats[f"words_imputed:{name}"] += len(word)
            log.warning(
                "%s: no entry for video '%s'; its %d aligned words get zero %s features (the SDK's impute)",
                csds[name].path,
                video,
                len(word),
                modality,
            )
        else:
            frames = csds[name].load(video, reuse=True)
            means, has_frame, lost = _word_means(word_iv[unique], frames, stats, name)
            if lost > (n_frames := len(frames.features)) / 2:
                stats[f"videos_mostly_nonfinite:{name}"] += 1
                message = "%s: video '%s' lost %d of its %d frames to non-finite values (zeroed)"
                log.warning(message, csds[name].path, video, lost, n_frames)
            stats[f"words_imputed:{name}"] += int((~has_frame[inverse]).sum())
            features[modality] = (out_row, position, means[inverse])

    lengths = np.minimum(per_segment[present], seq_len)
    rows = segments[present]
    kept_tokens, ends = tokens[word].tolist(), np.cumsum(lengths).tolist()
    texts = [" ".join(kept_tokens[start:end]) for start, end in zip([0, *ends][:-1], ends, strict=True)]
    columns = {
        "id": np.array([f"{video}[{k}]" for k in rows.tolist()], dtype=object),
        "label": entry.labels[rows].astype(np.float32),
        "text": np.array(texts, dtype=object),
        "length": lengths.astype(np.int64),
    }
    return _Rows(columns, features, dropped)


class _Writer:
    """Appends segments to each split's resizable datasets, a few hundred rows per write.

    The padded feature rows are filled in buffers allocated once and zeroed again after each write:
    allocating a zeroed table per video, then concatenating them, cost more than the alignment itself
    (fresh memory means page faults).
    """

    def __init__(self, out: h5py.File, seq_len: int, dims: dict[str, int], raw_dir: Path):
        self.out, self.seq_len, self.dims = out, seq_len, dims
        self.sources = {modality: raw_dir / name for modality, name in FRAME_FILES.items()}
        self.buffers = {m: np.zeros((_FLUSH_ROWS, seq_len, dims[m]), np.float32) for m in FRAME_FILES}
        self.datasets: dict[str, h5py.Dataset] = {}
        self.pending: list[dict[str, np.ndarray]] = []  # the per-segment columns of the buffered rows
        self.rows = 0  # rows buffered

    def start(self, split: str) -> None:
        """Create the datasets of `split` (the previous split must be finished)."""
        self.datasets = create_split(self.out, split, self.seq_len, self.dims)

    def append(self, rows: _Rows) -> None:
        """Buffer one video's rows, writing the buffered ones first where they would not fit."""
        n = len(rows)
        if self.rows + n > _FLUSH_ROWS:
            self.flush()
        if n > len(self.buffers["audio"]):  # a video with more segments than a buffer holds
            self.buffers = {m: np.zeros((n, *b.shape[1:]), np.float32) for m, b in self.buffers.items()}
        for modality, (row, position, values) in rows.features.items():
            self.buffers[modality][self.rows + row, position] = values
        self.pending.append(rows.columns)
        self.rows += n

    def flush(self) -> None:
        """Write the buffered rows at the end of the current split's datasets."""
        if not self.rows:
            return
        n = self.rows
        columns = {name: np.concatenate([c[name] for c in self.pending]) for name in self.pending[0]}
        columns.update({name: buffer[:n] for name, buffer in self.buffers.items()})
        append_rows(self.datasets, columns, self.sources)
        for buffer in self.buffers.values():
            buffer[:n] = 0
        self.pending, self.rows = [], 0

    def finish(self) -> int:
        """Write what is buffered; return the number of rows of the current split."""
        self.flush()
        return len(self.datasets["label"])


def _summary(stats: Counter, segments: dict[str, int], plan: Plan) -> dict:
    """The counts a user checks after alignment (also returned by `align_dataset`)."""

    def per_file(key: str) -> dict[str, int]:
        return {name: stats[f"{key}:{name}"] for name in FRAME_FILES.values()}

    return {
        "segments": segments,
        "words_kept": stats["words_kept"],
        "words_truncated": stats["words_truncated"],
        "sp_dropped": stats["sp_dropped"],
        "zero_length_words": stats["zero_length_words"],
        "nonfinite_values_zeroed": per_file("nonfinite_values"),
        "nonfinite_frames": per_file("nonfinite_frames"),
        "videos_mostly_nonfinite": per_file("videos_mostly_nonfinite"),
        "words_imputed": per_file("words_imputed"),
        "videos_missing": {FRAME_FILES[m]: sorted(videos) for m, videos in plan.missing.items()},
        "videos_dropped": {video: name for video, (_, name) in plan.dropped.items()},
        "videos_in_no_fold": plan.unassigned,
        "segments_dropped": {
            "zero_length": stats["segments_dropped:zero_length"],
            "no_words": stats["segments_dropped:no_words"],
        },
    }


def align_dataset(raw_dir: str | Path, out_path: str | Path, seq_len: int = 50, strict: bool = False) -> dict:
    """Align `raw_dir` (words/covarep/facet/labels .csd + folds.json) into `out_path`; return the counts.

    Fold videos absent from labels.csd or words.csd are dropped and labelled videos in no fold left out,
    one warning line each (the SDK's hard_unify; pipeline/data/plan.py). `strict` turns these, and a video
    absent from covarep.csd or facet.csd (otherwise given zero features), into errors.
    Segments left with no word (after dropping `sp` and zero-length words) are dropped with a warning: they
    have no sequence to model. Raises DataError, before writing anything, on any bad input.
    """
    if seq_len < 1:
        raise ConfigError(f"seq_len must be a positive integer, got {seq_len}")
    check_output(out_path)
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: raw dataset folder not found")
    with contextlib.ExitStack() as stack:
        csds = {name: stack.enter_context(CSD(raw_dir / name)) for name in CSD_FILES}
        # From the start, alongside validation and alignment (started after validation, hashing was the
        # last thing running).
        checksums = stack.enter_context(background_checksums({name: raw_dir / name for name in HASHED_FILES}))
        plan = plan_alignment(csds, raw_dir / FOLDS, strict)
        _warn_unified(plan)
        stats: Counter = Counter()
        with (
            atomic_path(out_path) as tmp,
            h5py.File(tmp, "w", rdcc_nbytes=0) as out,  # rows are written once, in order: no chunk cache
        ):
            out.attrs.update(
                seq_len=seq_len,
                audio_dim=plan.dims["audio"],
                visual_dim=plan.dims["visual"],
                dataset=raw_dir.resolve().name,
            )
            segments, dropped = _write_splits(out, raw_dir, csds, plan, seq_len, stats)
            out.attrs["checksums"] = json.dumps({name: job.result() for name, job in checksums.items()})
    summary = _summary(stats, segments, plan)
    _log_summary(raw_dir, out_path, summary, dropped)
    return summary


def _warn_unified(plan: Plan) -> None:
    """One warning line for the dropped fold videos and one for the labelled videos in no fold."""
    if plan.dropped:
        named = [f"'{video}' ({split}; not in {name})" for video, (split, name) in plan.dropped.items()]
        log.warning(
            "dropped %d fold video(s) absent from the labels, the words or every feature file (the SDK's "
            "hard_unify drops them too): %s",
            len(named),
            ", ".join(named),
        )
    if plan.unassigned:
        log.warning(
            "%d labelled video(s) are in no fold and are not aligned: %s",
            len(plan.unassigned),
            first_videos(plan.unassigned),
        )


def _write_splits(
    out: h5py.File, raw_dir: Path, csds: dict[str, CSD], plan: Plan, seq_len: int, stats: Counter
) -> tuple[dict[str, int], list[str]]:
    """Align every fold video into `out`, split by split; return the rows per split and the dropped
    segments' ids. A split left with no segment is a DataError."""
    segments: dict[str, int] = {}
    dropped: list[str] = []
    total = sum(len(videos) for videos in plan.folds.values())
    # Off a terminal tqdm would disable the bar anyway; building none there saves its first-use cost (a
    # multiprocessing lock, ~4 ms: a twentieth of aligning 10 videos).
    with (
        tqdm(total=total, desc="align", unit="video")
        if sys.stderr.isatty()
        else contextlib.nullcontext() as bar
    ):
        writer = _Writer(out, seq_len, plan.dims, raw_dir)
        for split, videos in plan.folds.items():
            writer.start(split)
            for video in videos:
                rows = _align_video(video, csds, plan, seq_len, stats)
                dropped += rows.dropped
                writer.append(rows)
                if bar is not None:
                    bar.update(1)
            segments[split] = writer.finish()
            if not segments[split]:
                raise DataError(f"{raw_dir}: fold '{split}' has no segment left to align (see the warnings)")
    return segments, dropped


def _log_summary(raw_dir: Path, out_path: str | Path, summary: dict, dropped: list[str]) -> None:
    """The dropped segments (one warning line) and the alignment's counts (one info line)."""
    if dropped:
        log.warning(
            "dropped %d segment(s): %d of zero length, %d with no word left after dropping sp and "
            "zero-length words (no sequence to model): %s%s",
            len(dropped),
            summary["segments_dropped"]["zero_length"],
            summary["segments_dropped"]["no_words"],
            ", ".join(dropped[:10]),
            " ..." if len(dropped) > 10 else "",
        )
    log.info(
        "aligned %s -> %s: segments %s; words kept %d (truncated %d, sp dropped %d, zero-length %d); "
        "non-finite values zeroed %s; words imputed with zeros %s; segments dropped %s",
        raw_dir,
        out_path,
        summary["segments"],
        summary["words_kept"],
        summary["words_truncated"],
        summary["sp_dropped"],
        summary["zero_length_words"],
        summary["nonfinite_values_zeroed"],
        summary["words_imputed"],
        summary["segments_dropped"],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m pipeline align`."""
    parser.add_argument("raw_dir", type=Path, help="raw dataset folder, e.g. data/raw/mosi")
    parser.add_argument("out_path", type=Path, help="aligned HDF5 to write, e.g. data/aligned/mosi.h5")
    parser.add_argument("--seq-len", type=int, default=50, help="words kept per segment (default 50)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on a fold video absent from any raw file, or a labelled video in no fold, instead of "
        "dropping it (or giving it zero features, for covarep.csd and facet.csd) with a warning",
    )


def run(args: argparse.Namespace) -> None:
    """Entry of the `align` stage."""
    align_dataset(args.raw_dir, args.out_path, seq_len=args.seq_len, strict=args.strict)
