"""The embedded synthetic dataset: labelling rule, scale and form, determinism, faults, learnable signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.data import synthesize as synthesize_module
from pipeline.data.csd import CSD
from pipeline.data.folds import SPLITS, load_folds
from pipeline.data.synthesize import annotate, compose_score, expected_sentiment, make_folds, synthesize
from pipeline.io import sha256sum

FILES = ("words.csd", "covarep.csd", "facet.csd", "labels.csd")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("faulty")
    return out, synthesize(out, videos=6, seed=3, faults=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("clean")
    return out, synthesize(out, videos=20, seed=5, faults=False)


def segment_tokens(words, interval: np.ndarray) -> list[str]:
    """Decoded tokens whose intervals lie inside a segment interval."""
    inside = (words.intervals[:, 0] >= interval[0]) & (words.intervals[:, 1] <= interval[1])
    return [token.decode() for token in words.features[inside, 0]]


@pytest.mark.parametrize(
    ("tokens", "score"),
    [
        (["the", "movie", "was", "good"], 1.0),
        (["not", "good"], -1.0),
        (["very", "good"], 1.5),
        (["not", "very", "good"], -1.5),
        (["really", "very", "good"], 2.25),  # intensifiers multiply
        (["extremely", "terrible"], -4.0),
        (["never", "the", "bad", "part"], 1.0),  # negation reaches over filler words
        (["not", "never", "good"], 1.0),  # double negation
        (["not", "bad", "and", "great"], 2.5),  # negation consumed by the first polarity word
        (["um", "the", "plot", "sp"], 0.0),
    ],
)
def test_compose_score_hand_computed(tokens: list[str], score: float) -> None:
    assert compose_score(tokens) == pytest.approx(score)


def test_bag_of_words_is_not_enough() -> None:
    # the same multiset of words, opposite sentiment: only the order (negation scope) tells them apart
    first, second = ["not", "good", "bad"], ["good", "not", "bad"]
    assert sorted(first) == sorted(second)
    assert compose_score(first) == pytest.approx(-2.0)
    assert compose_score(second) == pytest.approx(2.0)
    assert np.sign(expected_sentiment(compose_score(first))) == -np.sign(
        expected_sentiment(compose_score(second))
    )


def test_expected_sentiment_squashes_into_range() -> None:
    values = expected_sentiment(np.array([-100.0, -2.0, 0.0, 2.0, 100.0]))
    np.testing.assert_allclose(values, [-3.0, -3 * np.tanh(1.0), 0.0, 3 * np.tanh(1.0), 3.0])


def test_annotate_averages_integer_ratings() -> None:
    rng = np.random.default_rng(0)
    labels = annotate(np.concatenate([np.zeros(200), np.full(20, 50.0), np.full(20, -50.0)]), rng)
    assert labels.min() >= -3 and labels.max() <= 3
    # a mean of 3, 4 or 5 integers is a multiple of 1/3, 1/4 or 1/5
    assert all(min(abs(v * n - round(v * n)) for n in (3, 4, 5)) < 1e-9 for v in labels)
    assert (labels[:200] == 0).any()  # averaged annotations of neutral text include exact zeros
    assert (labels[200:220] == 3).all() and (labels[220:] == -3).all()


def test_scale_and_classes_match_mosi() -> None:
    plans = [synthesize_module.plan_video(0, i, faults=True) for i in range(93)]
    labels = np.concatenate([p.labels for p in plans])
    assert 2000 <= labels.size <= 2400  # CMU-MOSI: 2199 segments in 93 videos
    assert labels.min() >= -3 and labels.max() <= 3
    assert set(np.rint(labels).astype(int)) == set(range(-3, 4))  # all seven classes
    assert (labels == 0).sum() > 10
    for plan in plans[:10]:
        for interval in plan.segment_intervals:
            inside = (plan.word_intervals[:, 0] >= interval[0]) & (plan.word_intervals[:, 1] <= interval[1])
            n_words = sum(plan.tokens[i] != "sp" for i in np.flatnonzero(inside))
            assert 10 <= n_words <= 15
        # segments are ordered and separated by gaps
        assert (plan.segment_intervals[1:, 0] > plan.segment_intervals[:-1, 1]).all()


@pytest.mark.parametrize(("videos", "sizes"), [(93, (52, 10, 31)), (10, (6, 1, 3)), (3, (1, 1, 1))])
def test_folds_scale_mosi_proportions(videos: int, sizes: tuple[int, int, int]) -> None:
    ids = synthesize_module.video_ids(videos)
    folds = make_folds(ids, seed=0)
    assert tuple(len(folds[s]) for s in SPLITS) == sizes
    assert sorted(v for s in SPLITS for v in folds[s]) == ids  # every video in exactly one fold


def test_files_form_and_metadata(faulty: tuple[Path, dict]) -> None:
    out, summary = faulty
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == {name: sha256sum(out / name) for name in (*FILES, "folds.json")}
    folds = load_folds(out / "folds.json")
    assert sorted(v for s in SPLITS for v in folds[s]) == synthesize_module.video_ids(6)
    for name, dim, rate in (("covarep.csd", 74, 100.0), ("facet.csd", 47, 30.0)):
        with CSD(out / name) as seq:
            assert seq.feature_dim() == dim
            entry = seq[seq.videos()[0]]
            np.testing.assert_allclose(np.diff(entry.intervals[:, 0]), 1 / rate)
            np.testing.assert_allclose(entry.intervals[:, 1] - entry.intervals[:, 0], 1 / rate)
    for name in FILES:
        with CSD(out / name) as seq:
            assert seq.metadata["dataset name"] == "HyCon synthetic (NOT real data)"
            assert "SYNTHETIC" in seq.metadata["computational sequence description"]
            assert seq.metadata["seed"] == "3"
    with CSD(out / "labels.csd") as labels:
        assert sum(len(labels[v].features) for v in labels.videos()) == summary["segments"]
        assert all(labels[v].features.shape[1] == 1 for v in labels.videos())


def test_faults_present(faulty: tuple[Path, dict]) -> None:
    out, summary = faulty
    with CSD(out / "covarep.csd") as covarep:
        assert any(np.isneginf(covarep[v].features).any() for v in covarep.videos())
        assert not any(np.isnan(covarep[v].features).any() for v in covarep.videos())
    with CSD(out / "facet.csd") as facet:
        rows = [np.isnan(facet[v].features) for v in facet.videos()]
        assert any(r.all(axis=1).any() for r in rows)
        assert all((r.all(axis=1) == r.any(axis=1)).all() for r in rows)  # NaN comes as whole rows
        missing = set(synthesize_module.video_ids(6)) - set(facet.videos())
    assert missing and sorted(missing) == summary["videos_without_facet"]
    with CSD(out / "words.csd") as words:
        tokens = np.concatenate([words[v].features[:, 0] for v in words.videos()])
        intervals = np.concatenate([words[v].intervals for v in words.videos()])
    assert (tokens == b"sp").any()
    zero = intervals[:, 0] == intervals[:, 1]
    assert zero.any()
    # zero-length intervals only hit filler words, so every polarity word keeps its place in the segment
    assert not set(tokens[zero].astype(str)) & set(synthesize_module.POLARITY)


def test_no_faults_gives_clean_full_coverage(clean: tuple[Path, dict]) -> None:
    out, _ = clean
    ids = synthesize_module.video_ids(20)
    opened = {name: CSD(out / name) for name in FILES}
    try:
        for name, seq in opened.items():
            assert seq.videos() == ids, name
        for video in ids:
            words = opened["words.csd"][video]
            assert b"sp" not in words.features[:, 0]
            assert (words.intervals[:, 1] > words.intervals[:, 0]).all()
            for name in ("covarep.csd", "facet.csd"):
                frames = opened[name][video]
                assert np.isfinite(frames.features).all()
                # frames tile the whole timeline from 0 past the last word
                assert frames.intervals[0, 0] == 0
                np.testing.assert_allclose(frames.intervals[1:, 0], frames.intervals[:-1, 1])
                assert frames.intervals[-1, 1] >= words.intervals[:, 1].max()
    finally:
        for seq in opened.values():
            seq.close()


def test_text_strong_audio_visual_weaker_signal(clean: tuple[Path, dict]) -> None:
    out, summary = clean
    labels, text, audio, visual = [], [], [], []
    with (
        CSD(out / "labels.csd") as lab,
        CSD(out / "words.csd") as words,
        CSD(out / "covarep.csd") as covarep,
        CSD(out / "facet.csd") as facet,
    ):
        for video in lab.videos():
            segments, w, a, v = lab[video], words[video], covarep[video], facet[video]
            for interval, label in zip(segments.intervals, segments.features[:, 0], strict=True):
                labels.append(label)
                text.append(expected_sentiment(compose_score(segment_tokens(w, interval))))
                for frames, sink in ((a, audio), (v, visual)):
                    inside = (frames.intervals[:, 0] >= interval[0]) & (frames.intervals[:, 1] <= interval[1])
                    sink.append(frames.features[inside, : synthesize_module.SIGNAL_DIMS].mean())
    assert len(labels) == summary["segments"]
    corr = {
        name: np.corrcoef(labels, x)[0, 1]
        for name, x in (("text", text), ("audio", audio), ("visual", visual))
    }
    assert corr["text"] > 0.9
    assert 0.15 < corr["audio"] < corr["text"] - 0.2
    assert 0.1 < corr["visual"] < corr["text"] - 0.2


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = synthesize(tmp_path / "a", videos=3, seed=11)
    second = synthesize(tmp_path / "b", videos=3, seed=11)
    other = synthesize(tmp_path / "c", videos=3, seed=12)
    assert first["manifest"] == second["manifest"]
    for name in FILES:
        with CSD(tmp_path / "a" / name) as a, CSD(tmp_path / "b" / name) as b:
            for video in a.videos():
                assert a[video].features.tobytes() == b[video].features.tobytes()
                assert a[video].intervals.tobytes() == b[video].intervals.tobytes()
    assert other["manifest"]["covarep.csd"] != first["manifest"]["covarep.csd"]
    assert other["manifest"]["words.csd"] != first["manifest"]["words.csd"]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synthesize", str(tmp_path / "syn"), "--videos", "3", "--seed", "2", "--no-faults"]) == 0
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == sorted(
        [*FILES, "folds.json", "manifest.json"]
    )
    with CSD(tmp_path / "syn" / "words.csd") as words:
        assert words.metadata["faults"] == "false"
    assert main(["synthesize", str(tmp_path / "bad"), "--videos", "2"]) == 2
    assert "videos" in capsys.readouterr().err


def test_columns_have_the_scales_of_real_covarep_and_facet(clean: tuple[Path, dict]) -> None:
    out, _ = clean
    s = synthesize_module
    with CSD(out / "covarep.csd") as covarep, CSD(out / "facet.csd") as facet, CSD(out / "labels.csd") as lab:
        audio = np.concatenate([covarep[v].features for v in covarep.videos()])
        visual = np.concatenate([facet[v].features for v in facet.videos()])
        first = covarep[covarep.videos()[0]]
        segments = lab[lab.videos()[0]].intervals
    voiced = audio[:, s.VOICED_DIM]
    assert set(np.unique(voiced)) == {0.0, 1.0} and 0.5 < voiced.mean() < s.VOICED_P
    f0 = audio[:, s.F0_DIM]
    assert (f0[voiced == 0] == 0).all()  # 0 when unvoiced, as COVAREP's F0
    assert 80 < f0[voiced == 1].mean() < 250 and f0[voiced == 1].min() >= 50
    # no voiced frame outside speech (before the first segment of a video)
    before = first.intervals[:, 1] < segments[:, 0].min()
    assert before.any() and (first.features[before, s.VOICED_DIM] == 0).all()
    cepstrum = audio[:, s.CEPSTRUM_DIMS]
    assert cepstrum[:, 0].mean() < -4 and cepstrum[:, -1].std() < 0.2 < 1.5 < cepstrum[:, 0].std()
    evidence = visual[:, s.EVIDENCE_DIMS]
    assert evidence[:, 0].mean() < -2 and evidence[:, -1].std() > 2 * evidence[:, 0].std()
    # the label-signal dims keep their unit scale: column spreads now span orders of magnitude
    spread = np.concatenate([audio.std(0), visual.std(0)])
    assert spread.max() / spread.min() > 100
