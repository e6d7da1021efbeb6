"""Equivalence with the CMU SDK's own `mmdataset.align` (the oracle) on generated MOSI-like data.

The oracle (`pipeline.devtools.sdk_oracle`) is the SDK's standard recipe; benchmarks/align.py times it
against ours.
"""

from __future__ import annotations

from pipeline.data.align import align_dataset
from pipeline.devtools.raw import generate_raw
from pipeline.devtools.sdk_oracle import assert_same_as_sdk, sdk_align


def test_alignment_matches_the_sdk(tmp_path):
    raw = generate_raw(tmp_path / "gen", videos=3, seed=7, segments=8, words=12)
    seq_len = 12  # some segments hold more words (straddlers included): truncation is compared too
    summary = align_dataset(raw, tmp_path / "ours.h5", seq_len=seq_len)
    assert summary["words_truncated"] > 0 and summary["sp_dropped"] > 0 and summary["zero_length_words"] > 0
    sdk = sdk_align(raw, seq_len)
    assert len(sdk) == 24
    assert_same_as_sdk(tmp_path / "ours.h5", sdk)
