"""The CMU SDK's own alignment (`mmdataset.align`), the oracle our aligner is compared with.

`sdk_align` runs the SDK's standard recipe on a raw dataset folder; `assert_same_as_sdk` compares an aligned
file of ours with it. Used by tests/test_align_sdk_oracle.py and timed by benchmarks/align.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.devtools.raw import read_aligned


def _sdk_avg(intervals: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The SDK's standard collapse function: NaN-ignoring mean of the frames; words (bytes) pass through."""
    try:
        return np.nanmean(features, axis=0)
    except TypeError:
        return features


def sdk_align(raw: Path, seq_len: int) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """The SDK recipe: align to words (average), add labels, align to labels, drop `sp`, keep `seq_len` words.

    Returns segment id -> (words, audio [n, 74], visual [n, Dv]) for segments with a word left.
    """
    from mmsdk import mmdatasdk

    dataset = mmdatasdk.mmdataset({name: str(raw / f"{name}.csd") for name in ("words", "covarep", "facet")})
    dataset.align("words", collapse_functions=[_sdk_avg])
    dataset.add_computational_sequences({"labels": str(raw / "labels.csd")}, destination=None)
    dataset.align("labels")
    data = {name: dataset[name].data for name in ("labels", "words", "covarep", "facet")}
    aligned = {}
    for key in data["labels"]:
        if key not in data["words"]:
            continue
        words = [w.decode() for w in data["words"][key]["features"][:, 0]]
        keep = np.flatnonzero([w != "sp" for w in words])[:seq_len]
        if len(keep):
            aligned[key] = (
                [words[i] for i in keep],
                data["covarep"][key]["features"][keep],
                data["facet"][key]["features"][keep],
            )
    return aligned


def assert_same_as_sdk(ours: Path, sdk: dict[str, tuple[list[str], np.ndarray, np.ndarray]]) -> None:
    """Same segment ids, same words, features within 1e-5 (padding rows of ours must be zero)."""
    splits = read_aligned(ours)
    ids = [i for split in splits.values() for i in split["id"]]
    assert sorted(ids) == sorted(sdk)
    for split in splits.values():
        for row, key in enumerate(split["id"]):
            words, audio, visual = sdk[key]
            n = split["length"][row]
            assert split["text"][row] == " ".join(words), key
            assert n == len(words), key
            np.testing.assert_allclose(split["audio"][row, :n], audio, atol=1e-5, err_msg=key)
            np.testing.assert_allclose(split["visual"][row, :n], visual, atol=1e-5, err_msg=key)
            assert not split["audio"][row, n:].any() and not split["visual"][row, n:].any()
