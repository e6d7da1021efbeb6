"""The embedded synthetic dataset (NOT real data): CMU-MOSI's scale and form, generated offline from a seed.

It lets the whole pipeline run on a fresh machine with no network, and is learnable the way the real task is:

- Text carries compositional sentiment. Segments are built from a lexicon of REAL English words (so a
  pretrained language model such as MiniLM/BERT brings useful prior knowledge, as on real transcripts):
  polarity words with signed strengths, intensifiers that multiply the next polarity word, negators that flip
  its sign, and neutral filler words. The label is a function of the composition (`compose_score`), so a bag
  of words is not enough: "not good" and "good" share their polarity word but have opposite labels.
- The label is squashed into [-3, 3] (`expected_sentiment`) and then "annotated": 3 to 5 simulated annotators
  each give an integer rating with noise, and the label is their mean (`annotate`), as in CMU-MOSI, so labels
  are multiples of 1/3, 1/4 or 1/5 and include exact zeros.
- Acoustic (COVAREP-like, 74-d, 100 Hz) and visual (FACET-4.1-like, 47-d, 30 Hz) frames carry a weaker, noisy
  label signal (the first `SIGNAL_DIMS` dimensions shifted in proportion to the label over the segment's
  frames, plus per-segment noise) on top of speaker (per-video) offsets and frame noise.
- Other columns have the real features' heterogeneous scales, so that a run exercises `data.normalize`:
  COVAREP dim `F0_DIM` is a pitch in Hz (speaker mean in `F0_HZ`, `F0_SD` Hz of noise) on voiced frames, 0
  on unvoiced ones (outside speech and a `1 - VOICED_P` share within), `VOICED_DIM` the 0/1 voicing flag,
  `CEPSTRUM_DIMS` cepstra (c0 near `C0_OFFSET`, then shrinking as 1/order); FACET `EVIDENCE_DIMS` are
  evidence-scale (log-odds, column offsets in `EVIDENCE_OFFSET`, spreads in `EVIDENCE_SCALE`).
- With `faults=True` it carries the faults real data has: `-inf` COVAREP frames, NaN FACET rows, `sp` tokens,
  zero-length word intervals, and at least one video with no FACET entry.

Every array is drawn from a generator seeded by (seed, stream, video index), so the output is byte-identical
for a seed and videos can be generated and written one at a time (constant memory at any scale).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data import csd
from pipeline.data.folds import SPLITS, write_folds
from pipeline.errors import ConfigError
from pipeline.io import sha256sum, write_json
from pipeline.layout import FOLDS, FRAME_FILES, HASHED_FILES, LABELS, MANIFEST, SILENCE, WORDS

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1.1"  # 1.1: real feature scales (module docstring)
DATASET_NAME = "HyCon synthetic (NOT real data)"
AUDIO_DIM, AUDIO_RATE = 74, 100.0  # COVAREP
VISUAL_DIM, VISUAL_RATE = 47, 30.0  # FACET 4.1 (CMU-MOSI)
MOSI_FOLD_VIDEOS = {"train": 52, "valid": 10, "test": 31}  # CMU-MOSI's standard folds, scaled to N videos
SEGMENTS_PER_VIDEO = 2199 / 93  # CMU-MOSI: 2199 opinion segments in 93 videos
WORDS_PER_SEGMENT = (10, 15)  # inclusive range of (non-sp) words per segment

# --- the lexicon: real English words, decided so that pretrained language models can use them ---
POLARITY: dict[str, float] = {
    "good": 1.0, "nice": 0.8, "fine": 0.5, "decent": 0.5, "pleasant": 0.8, "funny": 1.0, "enjoyable": 1.2,
    "charming": 1.2, "great": 1.5, "beautiful": 1.5, "wonderful": 1.8, "excellent": 2.0, "amazing": 2.0,
    "brilliant": 2.0, "perfect": 2.2,
    "bad": -1.0, "dull": -0.8, "weak": -0.6, "mediocre": -0.5, "poor": -1.0, "boring": -1.0,
    "annoying": -1.2, "disappointing": -1.2, "ugly": -1.3, "stupid": -1.5, "painful": -1.5,
    "awful": -1.8, "terrible": -2.0, "horrible": -2.0, "worst": -2.2,
}  # fmt: skip
INTENSIFIERS: dict[str, float] = {"very": 1.5, "really": 1.5, "extremely": 2.0}
NEGATORS: tuple[str, ...] = ("not", "never")
FILLERS: tuple[str, ...] = (
    "the", "movie", "film", "i", "think", "it", "was", "and", "a", "story", "actor", "actors", "plot",
    "scene", "this", "that", "just", "kind", "of", "um", "uh", "like", "you", "know", "character", "ending",
    "music", "director", "is", "were", "basically", "saw", "watched", "with", "my", "friends", "in", "part",
    "second", "half", "overall", "acting", "script", "dialogue", "camera", "then", "there", "we",
)  # fmt: skip
SENTIMENT_SCALE = 2.0  # expected sentiment = 3 tanh(score / SENTIMENT_SCALE)
ANNOTATOR_SD = 0.6  # noise of one annotator's rating around the expected sentiment
ANNOTATORS = (3, 5)  # inclusive range of annotators per segment

# --- generation knobs (probabilities per segment / word) ---
PHRASES_P = (0.12, 0.38, 0.32, 0.18)  # P(0, 1, 2, 3 polarity phrases in a segment)
NEGATE_P, INTENSIFY_P = 0.3, 0.3
WORD_SECONDS = (0.15, 0.5)
GAP_SECONDS = (0.2, 0.8)  # silence between segments
SEGMENT_PAD = 0.05  # segment interval = [first word start - pad, last word end + pad]
SP_IN_SEGMENT_P, ZERO_LENGTH_P = 0.08, 0.03  # faults: sp between words, zero-length filler words
NEG_INF_FRAME_P, NAN_ROW_P = 0.01, 0.01  # faults: -inf COVAREP frames, NaN FACET rows
# --- the acoustic and visual label signal (weaker than the text's) ---
SIGNAL_DIMS = 4  # first dims of each modality that shift with the label
AUDIO_GAIN, VISUAL_GAIN = 0.2, 0.15  # shift per unit of label
SEGMENT_NOISE_SD = 0.8  # per-segment noise on the signal dims (does not average out over frames)
SPEAKER_SD = 0.5  # per-video offsets of every dim
# --- the scales of the real features (module docstring), on dims that carry no label signal ---
# COVAREP pitch and voicing
F0_DIM = 4  # pitch in Hz on voiced frames, 0 on unvoiced ones
VOICED_DIM = 5  # the 0/1 voicing flag
F0_HZ = (90.0, 230.0)  # range of a speaker's mean pitch
F0_SD = 25.0  # frame-to-frame pitch noise, Hz
VOICED_P = 0.75  # share of the frames within speech that are voiced
# COVAREP: MCEP-like cepstral coefficients
CEPSTRUM_DIMS = slice(6, 30)
C0_OFFSET = -6.0  # level of c0 (the higher orders shrink as 1/order)
# FACET: evidence-scale (log-odds) columns
EVIDENCE_DIMS = slice(SIGNAL_DIMS, VISUAL_DIM)
EVIDENCE_OFFSET = (-3.0, 0.5)  # column offsets, first to last
EVIDENCE_SCALE = (0.5, 2.5)  # column spreads, first to last

_POSITIVE = [word for word, strength in POLARITY.items() if strength > 0]
_NEGATIVE = [word for word, strength in POLARITY.items() if strength < 0]

# independent random streams, by purpose
_TEXT, _AUDIO, _VISUAL, _FOLDS = 0, 1, 2, 3


def compose_score(tokens: Sequence[str]) -> float:
    """Compositional polarity of a token sequence: sum of signed, intensified, possibly negated polarities.

    An intensifier multiplies, and a negator flips the sign of, the next polarity word (filler words between
    do not end their scope); a polarity word consumes the pending modifiers. Other tokens count zero.
    """
    score, multiplier, negated = 0.0, 1.0, False
    for token in tokens:
        if token in INTENSIFIERS:
            multiplier *= INTENSIFIERS[token]
        elif token in NEGATORS:
            negated = not negated
        elif token in POLARITY:
            score += POLARITY[token] * multiplier * (-1.0 if negated else 1.0)
            multiplier, negated = 1.0, False
    return score


def expected_sentiment(score: np.ndarray | float) -> np.ndarray:
    """Squash compositional scores into the open interval (-3, 3): 3 tanh(score / SENTIMENT_SCALE)."""
    return 3.0 * np.tanh(np.asarray(score, dtype=np.float64) / SENTIMENT_SCALE)


def annotate(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulated averaged annotations: the mean of 3-5 integer ratings round(expected + noise) in [-3, 3]."""
    expected = np.asarray(expected, dtype=np.float64)
    most = ANNOTATORS[1]
    ratings = np.clip(
        np.rint(expected[:, None] + rng.normal(0.0, ANNOTATOR_SD, (expected.size, most))), -3, 3
    )
    counts = rng.integers(ANNOTATORS[0], most + 1, expected.size)
    used = np.arange(most)[None, :] < counts[:, None]
    return (ratings * used).sum(axis=1) / counts


@dataclass(frozen=True)
class VideoPlan:
    """One video's words, segments and labels; the frame streams are generated from it on demand."""

    tokens: list[str]
    word_intervals: np.ndarray  # [n_words, 2]
    segment_intervals: np.ndarray  # [n_segments, 2]
    labels: np.ndarray  # [n_segments]
    duration: float  # frames cover [0, duration]


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    """An independent generator per (seed, stream, video index): order-free, reproducible streams."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


def _segment_tokens(rng: np.random.Generator, bias: float) -> list[str]:
    """Tokens of one segment: 0-3 polarity phrases ([negator] [intensifier] polarity) among filler words."""
    phrases = []
    for _ in range(rng.choice(len(PHRASES_P), p=PHRASES_P)):
        phrase = []
        if rng.random() < NEGATE_P:
            phrase.append(str(rng.choice(NEGATORS)))
        if rng.random() < INTENSIFY_P:
            phrase.append(str(rng.choice(list(INTENSIFIERS))))
        pool = _POSITIVE if rng.random() < 0.5 + 0.4 * bias else _NEGATIVE
        phrase.append(str(rng.choice(pool)))
        phrases.append(phrase)
    n_words = int(rng.integers(WORDS_PER_SEGMENT[0], WORDS_PER_SEGMENT[1] + 1))
    n_fill = max(1, n_words - sum(len(p) for p in phrases))
    chunks = phrases + [[str(w)] for w in rng.choice(FILLERS, n_fill)]
    order = rng.permutation(len(chunks))
    return [token for i in order for token in chunks[i]]


def plan_video(seed: int, index: int, faults: bool) -> VideoPlan:
    """Generate one video's segments (tokens, labels) and its word timeline."""
    rng = _rng(seed, _TEXT, index)
    n_segments = max(3, int(rng.poisson(SEGMENTS_PER_VIDEO)))
    bias = rng.uniform(-1.0, 1.0)  # the speaker's overall opinion of the reviewed movie
    segments = [_segment_tokens(rng, bias) for _ in range(n_segments)]
    labels = annotate(expected_sentiment([compose_score(s) for s in segments]), rng)

    tokens: list[str] = []
    durations: list[np.ndarray] = []
    gaps: list[float] = []  # silence before each token
    owner: list[int] = []  # segment of each token (-1: silence between segments)
    for k, words in enumerate(segments):
        gap = float(rng.uniform(*GAP_SECONDS))
        if faults:  # silence between segments transcribed as one sp token
            tokens.append(SILENCE)
            durations.append(np.array([gap]))
            gaps.append(0.0)
            owner.append(-1)
            gap = 0.0
        seg_tokens = list(words)
        if faults:  # sp between some words of the segment
            inner = rng.random(len(seg_tokens) - 1) < SP_IN_SEGMENT_P
            for pos in np.flatnonzero(inner)[::-1]:
                seg_tokens.insert(int(pos) + 1, SILENCE)
        dur = rng.uniform(*WORD_SECONDS, len(seg_tokens))
        if faults:  # zero-length intervals, only on filler words so the text keeps its sentiment
            filler = np.array([t in FILLERS for t in seg_tokens])
            dur[filler & (rng.random(len(seg_tokens)) < ZERO_LENGTH_P)] = 0.0
        tokens.extend(seg_tokens)
        durations.append(dur)
        gaps.extend([gap] + [0.0] * (len(seg_tokens) - 1))
        owner.extend([k] * len(seg_tokens))
    dur = np.concatenate(durations)
    ends = float(rng.uniform(0.3, 1.0)) + np.cumsum(dur + np.asarray(gaps))
    word_intervals = np.stack([ends - dur, ends], axis=1)
    owner_arr = np.asarray(owner)
    segment_intervals = np.array(
        [
            [
                word_intervals[owner_arr == k, 0].min() - SEGMENT_PAD,
                word_intervals[owner_arr == k, 1].max() + SEGMENT_PAD,
            ]
            for k in range(n_segments)
        ]
    )
    duration = float(ends[-1] + rng.uniform(0.5, 1.5))
    return VideoPlan(tokens, word_intervals, segment_intervals, labels.astype(np.float32), duration)


def _segment_of(plan: VideoPlan, intervals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame [n, 2]: the segment its centre follows ([n], -1 before the first) and whether inside it."""
    centres = intervals.mean(axis=1)
    seg = np.searchsorted(plan.segment_intervals[:, 0], centres, side="right") - 1
    return seg, (seg >= 0) & (centres < plan.segment_intervals[np.maximum(seg, 0), 1])


def _frames(plan: VideoPlan, rng: np.random.Generator, dim: int, rate: float, gain: float) -> csd.Sequence:
    """Frames at `rate` over the whole video: speaker offset + noise + label signal on the first dims."""
    n = int(math.ceil(plan.duration * rate))
    starts = np.arange(n, dtype=np.float64) / rate
    intervals = np.stack([starts, starts + 1.0 / rate], axis=1)
    offset = rng.normal(0.0, SPEAKER_SD, dim).astype(np.float32)
    features = rng.standard_normal((n, dim), dtype=np.float32) + offset
    seg, inside = _segment_of(plan, intervals)  # frames between segments carry no signal
    shift = gain * plan.labels + rng.normal(0.0, SEGMENT_NOISE_SD, plan.labels.size)
    features[inside, :SIGNAL_DIMS] += shift[seg[inside], None].astype(np.float32)
    return csd.Sequence(features=features, intervals=intervals)


def _covarep(plan: VideoPlan, seed: int, index: int, faults: bool) -> csd.Sequence:
    """COVAREP-like acoustic frames; with faults, some frames are -inf in a few dims (as real COVAREP)."""
    rng = _rng(seed, _AUDIO, index)
    seq = _frames(plan, rng, AUDIO_DIM, AUDIO_RATE, AUDIO_GAIN)
    if faults:
        rows = rng.random(len(seq.features)) < NEG_INF_FRAME_P
        seq.features[np.ix_(rows, [0, AUDIO_DIM - 1])] = -np.inf
    features = seq.features
    voiced = _segment_of(plan, seq.intervals)[1] & (rng.random(len(features)) < VOICED_P)
    pitch = np.maximum(rng.uniform(*F0_HZ) + F0_SD * features[:, F0_DIM], 50.0)
    features[:, F0_DIM], features[:, VOICED_DIM] = np.where(voiced, pitch, 0.0), voiced
    features[:, CEPSTRUM_DIMS] *= 2.0 / np.arange(1, CEPSTRUM_DIMS.stop - CEPSTRUM_DIMS.start + 1)
    features[:, CEPSTRUM_DIMS.start] += C0_OFFSET
    return seq


def _facet(plan: VideoPlan, seed: int, index: int, faults: bool) -> csd.Sequence:
    """FACET-like visual frames; with faults, some rows are all NaN (face not found)."""
    rng = _rng(seed, _VISUAL, index)
    seq = _frames(plan, rng, VISUAL_DIM, VISUAL_RATE, VISUAL_GAIN)
    if faults:
        seq.features[rng.random(len(seq.features)) < NAN_ROW_P] = np.nan
    columns = EVIDENCE_DIMS.stop - EVIDENCE_DIMS.start
    seq.features[:, EVIDENCE_DIMS] *= np.linspace(*EVIDENCE_SCALE, columns, dtype=np.float32)
    seq.features[:, EVIDENCE_DIMS] += np.linspace(*EVIDENCE_OFFSET, columns, dtype=np.float32)
    return seq


def video_ids(videos: int) -> list[str]:
    """Synthetic video ids, sorted as they are numbered."""
    return [f"synth{i:05d}" for i in range(videos)]


def make_folds(ids: list[str], seed: int) -> dict[str, list[str]]:
    """Speaker-independent folds (one speaker per video) in CMU-MOSI's 52/10/31 proportions, >= 1 each."""
    total = sum(MOSI_FOLD_VIDEOS.values())
    n_valid = max(1, round(len(ids) * MOSI_FOLD_VIDEOS["valid"] / total))
    n_test = max(1, round(len(ids) * MOSI_FOLD_VIDEOS["test"] / total))
    shuffled = [ids[i] for i in _rng(seed, _FOLDS).permutation(len(ids))]
    n_train = len(ids) - n_valid - n_test
    cuts = {
        "train": (0, n_train),
        "valid": (n_train, n_train + n_valid),
        "test": (n_train + n_valid, len(ids)),
    }
    return {split: sorted(shuffled[a:b]) for split, (a, b) in cuts.items()}


def _metadata(root: str, description: str, dims: list[str], seed: int, faults: bool) -> dict[str, str]:
    """Metadata with every key the CMU SDK requires, saying plainly that the data are synthetic."""
    return {
        "root name": root,
        "computational sequence description": f"{description} SYNTHETIC (generated by "
        "pipeline.data.synthesize), not real recordings or annotations.",
        "computational sequence version": GENERATOR_VERSION,
        "alignment compatible": "true",
        "dataset name": DATASET_NAME,
        "dataset version": GENERATOR_VERSION,
        "creator": "pipeline.data.synthesize",
        "contact": "see README.md",
        "featureset bib citation": "none (synthetic)",
        "dataset bib citation": "none (synthetic)",
        "dimension names": json.dumps(dims),
        "generator version": GENERATOR_VERSION,
        "seed": str(seed),
        "faults": str(faults).lower(),
    }


@dataclass(frozen=True)
class _Stream:
    """One frame file: its modality, the CSD root name and description, size, rate and generator."""

    modality: str  # key of FRAME_FILES
    root: str  # the CSD's root group name
    what: str  # start of its description
    dim: int
    rate: float  # frames per second
    generate: Callable[[VideoPlan, int, int, bool], csd.Sequence]  # (plan, seed, video index, faults)
    left_out: frozenset[int]  # indices of the videos with no entry


def synthesize(out_dir: str | os.PathLike, videos: int = 93, seed: int = 0, faults: bool = True) -> dict:
    """Write the synthetic dataset to `out_dir` in the raw layout; return a summary (counts, checksums)."""
    if videos < 3:
        raise ConfigError(f"videos: need at least 3 (one per fold), got {videos}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = video_ids(videos)
    plans = [plan_video(seed, i, faults) for i in range(videos)]
    # with faults, a few videos (at least one) have no FACET entry at all, as in the real data
    no_facet = (
        frozenset(_rng(seed, _FOLDS, 1).choice(videos, max(1, videos // 50), replace=False))
        if faults
        else frozenset()
    )

    def meta(root: str, description: str, dims: list[str]) -> dict[str, str]:
        return _metadata(root, description, dims, seed, faults)

    words = (
        (vid, csd.Sequence(np.array(p.tokens, dtype="S").reshape(-1, 1), p.word_intervals))
        for vid, p in zip(ids, plans, strict=True)
    )
    csd.write_csd(out / WORDS, "words", words, meta("words", "Timestamped words (sp = silence).", ["word"]))
    labels = (
        (vid, csd.Sequence(p.labels.reshape(-1, 1), p.segment_intervals))
        for vid, p in zip(ids, plans, strict=True)
    )
    csd.write_csd(
        out / LABELS,
        "Opinion Segment Labels",
        labels,
        meta("Opinion Segment Labels", "Sentiment in [-3, 3] per opinion segment.", ["sentiment score"]),
    )
    streams = (
        _Stream(
            modality="audio",
            root="COVAREP",
            what="COVAREP-like acoustic",
            dim=AUDIO_DIM,
            rate=AUDIO_RATE,
            generate=_covarep,
            left_out=frozenset(),
        ),
        _Stream(
            modality="visual",
            root="FACET 4.1",
            what="FACET-like visual",
            dim=VISUAL_DIM,
            rate=VISUAL_RATE,
            generate=_facet,
            left_out=no_facet,
        ),
    )
    for stream in streams:
        frames: Iterator[tuple[str, csd.Sequence]] = (
            (vid, stream.generate(p, seed, i, faults))
            for i, (vid, p) in enumerate(zip(ids, plans, strict=True))
            if i not in stream.left_out
        )
        names = [f"{stream.modality[0]}{i}" for i in range(stream.dim)]
        description = f"{stream.what} features, {stream.dim}-d at {stream.rate:g} Hz."
        metadata = meta(stream.root, description, names)
        csd.write_csd(out / FRAME_FILES[stream.modality], stream.root, frames, metadata)
    folds = make_folds(ids, seed)
    write_folds(out / FOLDS, folds)
    manifest = {name: sha256sum(out / name) for name in HASHED_FILES}
    write_json(out / MANIFEST, manifest)
    segments = dict(zip(ids, (p.labels.size for p in plans), strict=True))
    return {
        "dataset": DATASET_NAME,
        "seed": seed,
        "faults": faults,
        "videos": videos,
        "segments": sum(segments.values()),
        "words": sum(sum(t != SILENCE for t in p.tokens) for p in plans),
        "fold_videos": {split: len(folds[split]) for split in SPLITS},
        "fold_segments": {split: sum(segments[v] for v in folds[split]) for split in SPLITS},
        "videos_without_facet": sorted(ids[i] for i in no_facet),
        "manifest": manifest,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `python -m pipeline synthesize OUT_DIR [--videos N] [--seed S] [--no-faults]`."""
    parser.add_argument("out_dir", type=Path, help="output folder, e.g. data/raw/synthetic")
    parser.add_argument("--videos", type=int, default=93, help="number of videos (CMU-MOSI has 93)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument(
        "--no-faults",
        action="store_true",
        help="clean data: no sp, no zero-length words, no NaN/-inf, no gaps",
    )


def run(args: argparse.Namespace) -> None:
    """Generate the dataset and log its summary."""
    start = time.perf_counter()
    summary = synthesize(args.out_dir, videos=args.videos, seed=args.seed, faults=not args.no_faults)
    counts = [summary[key] for key in ("videos", "segments", "words", "fold_videos", "fold_segments")]
    log.info(
        "synthetic dataset (NOT real data) in %s: %d videos, %d segments, %d words, folds %s (segments %s), "
        "%.1fs",
        args.out_dir,
        *counts,
        time.perf_counter() - start,
    )
