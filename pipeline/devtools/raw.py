"""Generated raw datasets (CMU SDK computational sequences + folds.json) and a reader of aligned files.

The alignment tests build hand-made cases with `frames`, `irregular` and `write_raw`; the SDK oracle test
and `benchmarks/align.py` generate MOSI-like data of any size with `generate_raw`.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from pipeline.data.csd import Sequence, write_csd

Words = dict[str, list[tuple[str, float, float]]]
Labels = dict[str, list[tuple[float, float, float]]]


def frames(values: list | np.ndarray, start: float = 0.0, step: float = 1.0) -> Sequence:
    """Regular frames: row i of `values` over [start + i*step, start + (i+1)*step]."""
    values = np.asarray(values, dtype=np.float32)
    values = values[:, None] if values.ndim == 1 else values
    t = start + step * np.arange(len(values) + 1)
    return Sequence(features=values, intervals=np.stack([t[:-1], t[1:]], axis=1))


def irregular(rows: list[tuple[float, float, list[float]]]) -> Sequence:
    """Frames given as (start, end, values) rows."""
    return Sequence(
        features=np.array([r[2] for r in rows], dtype=np.float32),
        intervals=np.array([r[:2] for r in rows], dtype=np.float64),
    )


def write_raw(
    raw: Path,
    words: Words,
    labels: Labels,
    covarep: dict[str, Sequence],
    facet: dict[str, Sequence],
    folds: dict[str, list[str]] | None = None,
) -> Path:
    """Write a raw dataset folder: words as (token, start, end), labels as (label, start, end) per video.

    Without `folds`, every video is in train. An empty valid or test fold gets a one-word video of its own
    (`FILLERS`): align refuses an empty fold.
    """
    raw.mkdir(parents=True, exist_ok=True)
    folds = dict(folds or {"train": list(labels), "valid": [], "test": []})
    fillers = {split: f"filler_{split}" for split in ("valid", "test") if not folds[split]}
    if fillers:
        folds.update({split: [video] for split, video in fillers.items()})
        width = {
            "c": next(iter(covarep.values())).features.shape[1],
            "f": next(iter(facet.values())).features.shape[1],
        }
        words = {**words, **{v: [("filler", 0.0, 1.0)] for v in fillers.values()}}
        labels = {**labels, **{v: [(0.5, 0.0, 1.0)] for v in fillers.values()}}
        covarep = {**covarep, **{v: frames(np.ones((1, width["c"]))) for v in fillers.values()}}
        facet = {**facet, **{v: frames(np.ones((1, width["f"]))) for v in fillers.values()}}
    write_csd(
        raw / "words.csd",
        "words",
        {
            video: Sequence(
                features=np.array([[w[0].encode()] for w in rows], dtype=bytes).reshape(-1, 1),
                intervals=np.array([w[1:] for w in rows], dtype=np.float64).reshape(-1, 2),
            )
            for video, rows in words.items()
        },
    )
    write_csd(
        raw / "labels.csd",
        "labels",
        {
            video: Sequence(
                features=np.array([[r[0]] for r in rows], dtype=np.float32),
                intervals=np.array([r[1:] for r in rows], dtype=np.float64),
            )
            for video, rows in labels.items()
        },
    )
    write_csd(raw / "covarep.csd", "covarep", covarep)
    write_csd(raw / "facet.csd", "facet", facet)
    (raw / "folds.json").write_text(json.dumps(folds))
    return raw


def generate_raw(
    raw: Path,
    videos: int,
    seed: int = 0,
    segments: int = 24,
    words: int = 10,
    audio_dim: int = 74,
    visual_dim: int = 47,
) -> Path:
    """A random MOSI-like raw dataset whose every word has frames (the SDK oracle's impute is broken).

    Per video: `segments` labelled segments of about `words` words (0.1-0.6 s each), `sp` tokens in some
    gaps, a few zero-length words, a fifth of the segments ending mid-word (that word straddles two
    segments), COVAREP frames at 100 Hz and FACET at 30 Hz covering the whole video with finite values.
    Videos are written one at a time, so large inputs (the MOSEI-scale benchmark) stay within memory.
    """
    rng = np.random.default_rng(seed)
    names = [f"vid{v:04d}" for v in range(videos)]

    def video_entries() -> dict[str, tuple[list, list]]:
        for video in names:
            tokens, spans, labels = [], [], []
            t = rng.uniform(0.2, 1.0)
            for _ in range(segments):
                seg_start = t - rng.uniform(0.0, 0.1)
                for _ in range(max(1, int(rng.integers(words - 4, words + 5)))):
                    if rng.random() < 0.1:  # silence token over a gap
                        gap = rng.uniform(0.1, 0.3)
                        tokens.append("sp")
                        spans.append((t, t + gap))
                        t += gap
                    if rng.random() < 0.03:
                        tokens.append(f"w{rng.integers(500)}")
                        spans.append((t, t))
                    length = rng.uniform(0.1, 0.6)
                    tokens.append(f"w{rng.integers(500)}")
                    spans.append((t, t + length))
                    t += length + rng.uniform(0.0, 0.1)
                last_start, last_end = spans[-1]
                if rng.random() < 0.2:  # end the segment mid-word; the next one starts there
                    seg_end = (last_start + last_end) / 2
                    t = seg_end
                else:
                    seg_end = last_end + rng.uniform(0.0, 0.1)
                    t = seg_end + rng.uniform(0.2, 1.0)
                labels.append((round(float(rng.uniform(-3, 3)), 1), seg_start, seg_end))
            yield video, tokens, spans, labels, t + 1.0

    raw.mkdir(parents=True, exist_ok=True)
    entries = list(video_entries())
    write_csd(
        raw / "words.csd",
        "words",
        (
            (v, Sequence(np.array(tok, dtype=bytes)[:, None], np.array(sp, dtype=np.float64)))
            for v, tok, sp, _, _ in entries
        ),
    )
    write_csd(
        raw / "labels.csd",
        "labels",
        (
            (v, Sequence(np.array(lab, dtype=np.float32)[:, :1], np.array(lab, dtype=np.float64)[:, 1:]))
            for v, _, _, lab, _ in entries
        ),
    )
    for name, hz, dim in (("covarep", 100, audio_dim), ("facet", 30, visual_dim)):
        write_csd(
            raw / f"{name}.csd",
            name,
            (
                (v, frames(rng.standard_normal((int(end * hz) + 1, dim), dtype=np.float32), step=1 / hz))
                for v, _, _, _, end in entries
            ),
        )
    cut_valid, cut_test = int(0.6 * videos), int(0.75 * videos)
    folds = {"train": names[:cut_valid], "valid": names[cut_valid:cut_test], "test": names[cut_test:]}
    (raw / "folds.json").write_text(json.dumps(folds))
    return raw


def read_aligned(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every dataset of every split of an aligned file, as numpy arrays (strings decoded)."""
    with h5py.File(path, "r") as handle:
        return {
            split: {
                name: (
                    handle[split][name].asstr()[()]
                    if h5py.check_string_dtype(handle[split][name].dtype)
                    else handle[split][name][()]
                )
                for name in handle[split]
            }
            for split in ("train", "valid", "test")
        }
