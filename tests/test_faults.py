"""The fault suite: what a user gets when things go wrong (docs/reliability.md), one small case each.

Every fault ends in one of: one line `error: ...` naming the file (and the video or key) with exit status 2
and nothing half-written; a warning naming the video, the run going on; or a resume that gives the same
bytes. Issue 11 tried 37 faults. The nine it found mishandled are tested here (D1-D9, with the kills and the
concurrent runs); those already handled are tested where their stage is (`here` = this file):

fault -> outcome: test
- raw CSD file missing, not HDF5, without its data group, rows != intervals -> 2, the file:
  test_align.py::test_bad_input_raises_one_clear_error_and_writes_nothing (and test_csd.py)
- raw CSD file truncated -> 2, the file: test_csd.py::test_truncated_file_raises_data_error
- folds.json missing, malformed, without a split; fold naming an unknown video; a video in two folds
  -> 2, folds.json and the video: test_align.py::test_bad_input_raises_one_clear_error_and_writes_nothing
- label out of [-3, 3] or NaN; video absent from words.csd; inconsistent feature widths; non-finite
  interval; numeric words -> 2, the file and the video: same test
- video absent from facet.csd -> a warning naming it, zero features:
  test_align.py::test_video_missing_from_facet_gets_zeros_and_a_warning; with --strict -> 2:
  test_align.py::test_strict_rejects_a_video_missing_from_facet
- aligned file missing, not HDF5, missing a group -> 2, the file:
  test_dataset.py::test_missing_or_non_hdf5_file, test_train.py::test_cli_errors_before_training
- aligned file with NaN labels or features, bad lengths, duplicate ids -> 2, the file and the sample:
  test_dataset.py::test_value_errors_name_the_sample, ::test_duplicate_ids_and_bad_features
- bad settings value, unknown key -> 2, the key (a close match):
  test_train.py::test_cli_errors_before_training
- settings file not YAML -> 2, the file: test_settings.py::test_load_settings_errors_name_file_and_key
- features of another LM, token or truncation, or other ids -> 2, the setting:
  test_train.py::test_cli_errors_before_training, ::test_feature_cache_round_trip_matches_the_finetune_branch
- features file not HDF5 -> 2: test_features_file_not_hdf5 (here)
- evaluate without model.pt -> 2, "no checkpoint": test_train.py::test_cli_errors_before_training
- model.pt corrupt -> 2, "unreadable checkpoint": test_corrupt_model_is_one_line (here)
- last.pt corrupt -> a warning, trains from scratch: test_corrupt_last_checkpoint_trains_afresh (here); of
  other settings or device: test_train.py::test_last_checkpoint_of_other_settings_is_not_resumed,
  ::test_checkpoint_of_another_device_is_not_resumed
- crash after an epoch, rerun -> resumes, same metrics:
  test_train.py::test_interrupted_run_resumes_to_the_same_result
- kill -9 of train, rerun -> same bytes: test_kill_9_of_train_resumes_to_the_same_bytes (here, slow)
- kill -9 of snakemake, --unlock, rerun -> same tables:
  test_killed_workflow_reruns_to_the_same_tables (here, slow)
- bad workflow config (schema, cross-reference) -> one error, no job:
  test_workflow.py::test_bad_config_is_one_error_before_any_job
- download offline, server error, dropped connection -> 2 and the URL, or resumed:
  test_download.py::test_offline_names_url, ::test_server_error_names_url_and_target_and_leaves_no_final_file,
  ::test_resume_after_dropped_connection
- an output write interrupted -> nothing at the final name:
  test_io.py::test_atomic_path_leaves_nothing_on_failure

Issue 19 (nothing read from disk is trusted), test_d19_<defect> here: a pickled payload in model.pt or
last.pt (1), flipped weight bytes (2), flipped bytes in an HDF5 dataset (3), another dataset of the same
dimensions (4), huge finite values and non-finite predictions (5), divergence on bad data (13).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import BIN, REPO, rewrite_model

from pipeline.__main__ import main
from pipeline.checkpoint import load_checkpoint, run_lock
from pipeline.data.align import align_dataset
from pipeline.data.synthesize import synthesize
from pipeline.devtools.raw import frames, write_raw
from pipeline.devtools.repository import copy_repository
from pipeline.errors import ConfigError
from pipeline.evaluate import evaluate_run
from pipeline.features import write_features
from pipeline.grid import load_config
from pipeline.settings import resolve_settings
from pipeline.train import train_run
from pipeline.workflow import configfiles

SMALL = {
    "model.language_model": "tiny",
    "model.max_text_tokens": 16,
    "model.d": 8,
    "model.heads": 2,
    "model.ff": 16,
    "model.head_hidden": 16,
    "train.batch_size": 16,
    "train.epochs": 2,
}
SETS = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """12 synthetic videos aligned at T = 8 with cached tiny-BERT features, and one complete run."""
    root = tmp_path_factory.mktemp("tiny")
    synthesize(root / "raw", videos=12, seed=0)
    align_dataset(root / "raw", root / "data.h5", seq_len=8)
    write_features(root / "data.h5", root / "features.h5", "tiny", max_tokens=16)
    train_run(SMALL, root / "data.h5", root / "run", 0, root / "features.h5")
    evaluate_run(root / "run", root / "data.h5", root / "features.h5")
    return {"root": root, "raw": root / "raw", "data": root / "data.h5", "features": root / "features.h5"}


def _data_args(tiny: dict[str, Path]) -> list[str]:
    return ["--data", str(tiny["data"]), "--features", str(tiny["features"])]


def train_argv(data: Path, out: Path, features: Path | None = None, *extra: str) -> list[str]:
    """Command line of `train` on the SMALL settings."""
    features_args = ["--features", str(features)] if features else []
    return ["train", "--data", str(data), *features_args, "--out", str(out), *SETS, *extra]


def fails(argv: list[str], capsys, *fragments: str) -> str:
    """Run the CLI; assert exit status 2 and one line `error: ...` holding every fragment; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and all(f in err for f in fragments), err
    return err


# ---------------------------------------------------------------- D1: OS and HDF5 errors are one line


@pytest.mark.parametrize("stage", ["train", "evaluate", "features"])
def test_truncated_aligned_file_is_one_line(tiny, tmp_path, capsys, stage):
    truncated = tmp_path / "t.h5"
    truncated.write_bytes(tiny["data"].read_bytes()[: tiny["data"].stat().st_size // 3])
    argv = {
        "train": train_argv(truncated, tmp_path / "run"),
        "evaluate": ["evaluate", "--run", str(tiny["root"] / "run"), "--data", str(truncated)],
        "features": f"features --data {truncated} --model tiny --out {tmp_path / 'f.h5'}".split(),
    }[stage]
    fails(argv, capsys, str(truncated), "damaged aligned dataset file")
    assert not (tmp_path / "run").exists() and not (tmp_path / "f.h5").exists()


def test_output_that_is_a_folder_or_under_a_file_is_refused_first(tiny, tmp_path, capsys):
    folder = tmp_path / "aligned.h5"
    folder.mkdir()
    fails(["align", str(tiny["raw"]), str(folder)], capsys, f"{folder}: the output is a folder")
    fails(
        ["features", "--data", str(tiny["data"]), "--model", "tiny", "--out", str(folder)],
        capsys,
        "the output is a folder",
    )
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    fails(
        ["align", str(tiny["raw"]), str(a_file / "sub" / "a.h5")], capsys, f"{a_file} is a file, not a folder"
    )
    fails(train_argv(tiny["data"], a_file), capsys, f"{a_file} is a file, not a folder")
    assert a_file.read_text() == "x"


def test_operating_system_error_is_one_line_naming_the_path(tmp_path, capsys):
    """Any OSError a stage meets (here `synthesize` into a file) is one line naming the path, exit 2."""
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    fails(["synthesize", str(a_file), "--videos", "3"], capsys, f"error: {a_file}: File exists")
    fails(
        ["synthesize", str(a_file / "sub"), "--videos", "3"],
        capsys,
        f"error: {a_file / 'sub'}: Not a directory",
    )


def test_unwritable_output_folder_is_refused_before_aligning(tiny, tmp_path):
    """A real EACCES from the kernel. Root ignores permission bits, so as root the command runs without the
    capabilities that let it (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permission bits cannot deny a write")
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out").chmod(0o555)
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "pipeline", "align", str(tiny["raw"]), "out/a.h5"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    # one line, and no alignment log before it: the check came first
    assert proc.stderr.strip() == "error: out/a.h5: cannot write in out (permission denied)"


def test_features_file_not_hdf5(tiny, tmp_path, capsys):
    bogus = tmp_path / "features.h5"
    bogus.write_text("not hdf5")
    fails(
        train_argv(tiny["data"], tmp_path / "r", bogus),
        capsys,
        str(bogus),
        "features file missing or not HDF5",
    )


def test_corrupt_model_is_one_line(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny["root"] / "run", run)
    (run / "model.pt").write_bytes((run / "model.pt").read_bytes()[:1000])
    fails(["evaluate", "--run", str(run), *_data_args(tiny)], capsys, "model.pt: unreadable checkpoint")


def test_corrupt_last_checkpoint_trains_afresh(tiny, tmp_path, caplog):
    (tmp_path / "last.pt").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        summary = train_run(SMALL, tiny["data"], tmp_path, 0, tiny["features"])
    assert "ignoring unreadable" in caplog.text and summary["resumed_from_epoch"] is None


# ---------------------------------------------------------------- D2, D3, D7, D8: inputs


def test_stale_features_are_refused_with_the_rebuild_command(tiny, tmp_path, capsys):
    realigned = tmp_path / "data.h5"
    align_dataset(tiny["raw"], realigned, seq_len=4)  # the same ids, other texts
    argv = train_argv(realigned, tmp_path / "r", tiny["features"])
    fails(argv, capsys, str(tiny["features"]), "other texts", "python -m pipeline features")


@pytest.mark.parametrize(
    ("folds", "empty"),
    [
        ({"train": [], "valid": [], "test": []}, "train"),
        ({"train": ["v1"], "valid": [], "test": ["v2"]}, "valid"),
    ],
)
def test_align_refuses_an_empty_fold_before_writing(tmp_path, capsys, folds, empty):
    raw = write_raw(
        tmp_path / "raw",
        words={"v1": [("hi", 0.0, 1.0)], "v2": [("yo", 0.0, 1.0)]},
        labels={"v1": [(1.0, 0.0, 1.0)], "v2": [(-1.0, 0.0, 1.0)]},
        covarep={v: frames([[1.0, 2.0]]) for v in ("v1", "v2")},
        facet={v: frames([[3.0]]) for v in ("v1", "v2")},
    )
    (raw / "folds.json").write_text(json.dumps(folds))
    fails(
        ["align", str(raw), str(tmp_path / "out" / "a.h5")], capsys, "folds.json", f"fold '{empty}' is empty"
    )
    assert not (tmp_path / "out").exists()


def test_bad_set_value_is_blamed_on_the_set_argument(tiny, tmp_path, capsys):
    config = tmp_path / "settings.yaml"
    config.write_text("loss:\n  alpha: 0.5\n")
    argv = train_argv(tiny["data"], tmp_path, tiny["features"], "--config", str(config))
    err = fails(
        [*argv, "--set", "loss.alpha=1.5"], capsys, "error: --set loss.alpha=1.5: settings key 'loss.alpha'"
    )
    assert str(config) not in err
    config.write_text("loss:\n  alpha: 1.5\n")  # and a bad file value is still the file's
    fails(argv, capsys, f"error: {config}: settings key 'loss.alpha'")


def test_videos_mostly_non_finite_are_named(tmp_path, caplog):
    raw = write_raw(
        tmp_path / "raw",
        words={"v1": [("hi", 0.0, 1.0), ("all", 1.0, 2.0)], "v2": [("yo", 0.0, 2.0)]},
        labels={"v1": [(1.0, 0.0, 2.0)], "v2": [(-1.0, 0.0, 2.0)]},
        covarep={"v1": frames([[1.0, np.nan], [2.0, 3.0]]), "v2": frames(np.full((2, 2), -np.inf))},
        facet={v: frames([[3.0], [4.0]]) for v in ("v1", "v2")},
    )
    with caplog.at_level(logging.WARNING, logger="pipeline.data.align"):
        summary = align_dataset(raw, tmp_path / "a.h5", seq_len=4)
    named = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert len(named) == 1 and "covarep.csd: video 'v2' lost 2 of its 2 frames" in named[0]  # v1 lost half
    assert summary["videos_mostly_nonfinite"] == {"covarep.csd": 1, "facet.csd": 0}


def test_yaml_error_in_a_workflow_config_names_file_and_line(tmp_path):
    """Snakemake on a broken config/config.yaml (the Snakefile reads it first), and `python -m pipeline
    workflow` on a broken overlay (Snakemake parses --configfile files before any workflow code)."""
    args = ["--cores", "2", "--configfile", "a.yaml", "b.yaml", "-n", "--configfile=c.yaml", "all"]
    assert configfiles(args) == ["a.yaml", "b.yaml", "c.yaml"]
    copy_repository(REPO, tmp_path)
    overlay = tmp_path / "config" / "broken.yaml"
    overlay.write_text("seeds: [0, 1]\nbase:\n  model: {d: 8\n  x: 1\n")
    env = {**_env(), "PYTHONPATH": str(tmp_path)}
    argv = [sys.executable, "-m", "pipeline", "workflow", "-n", "--configfile", "config/broken.yaml"]
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: config/broken.yaml:4: not valid YAML: while parsing a flow mapping")
    config = tmp_path / "config" / "config.yaml"
    lines = config.read_text().splitlines()
    config.write_text("\n".join([*lines, "seeds: [0, 1", "base: {}"]) + "\n")
    for command in ([str(BIN / "snakemake"), "-n"], argv[:5]):
        proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0
        assert f"config/config.yaml:{len(lines) + 2}: not valid YAML" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- D4, D5, D9: the run folder


class Interrupted(Exception):
    """Raised by the epoch hook to stop a training after an epoch."""


def _stop_after_first_epoch(epoch: int, _row: dict) -> None:
    raise Interrupted


def test_interrupted_retrain_leaves_no_mixed_folder(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny["root"] / "run", run)  # complete: model.pt, train.json, metrics.json, ...
    other = {**SMALL, "loss.alpha": 0.5, "train.epochs": 3}
    with pytest.raises(Interrupted):
        train_run(other, tiny["data"], run, 0, tiny["features"], epoch_callback=_stop_after_first_epoch)
    assert {p.name for p in run.iterdir()} == {"last.pt"}  # the history is in last.pt until the end
    fails(["evaluate", "--run", str(run), *_data_args(tiny)], capsys, "no checkpoint")


def test_evaluate_refuses_a_model_that_train_json_does_not_describe(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny["root"] / "run", run)
    checkpoint = torch.load(run / "model.pt", weights_only=False)
    checkpoint["settings"]["loss"]["alpha"] = 0.5
    torch.save(checkpoint, run / "model.pt")
    fails(["evaluate", "--run", str(run), *_data_args(tiny)], capsys, "is not the one train.json describes")
    (run / "train.json").unlink()
    fails(["evaluate", "--run", str(run), *_data_args(tiny)], capsys, "incomplete run, no train.json")


def test_same_seed_gives_byte_identical_artefacts(tiny, tmp_path):
    first = tiny["root"] / "run"
    train_run(SMALL, tiny["data"], tmp_path, 0, tiny["features"])
    evaluate_run(tmp_path, tiny["data"], tiny["features"], experiment=first.parent.name)
    names = {p.name for p in first.iterdir()}
    assert names == {p.name for p in tmp_path.iterdir()}
    assert names == {"model.pt", "history.csv", "train.json", "timings.json"} | {
        "metrics.json",
        "predictions.csv",
        "embeddings.npz",
    }
    for name in names - {"timings.json"}:
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes(), name
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert len(timings["epoch_seconds"]) == 2 and timings["seconds"] > 0


def test_a_second_process_on_the_run_folder_is_refused(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny["root"] / "run", run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with run_lock(run):  # another process's lock: flock conflicts between open files, even in one process
        fails(train_argv(tiny["data"], run, tiny["features"]), capsys, "another process", str(run))
        fails(["evaluate", "--run", str(run), *_data_args(tiny)], capsys, "another process")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # untouched; the lock file is gone
    assert main(["evaluate", "--run", str(run), *_data_args(tiny)]) == 0  # released


# ---------------------------------------------------------------- issue 19: nothing read from disk is trusted


class Payload:
    """An object whose unpickling runs a shell command (creates `marker`): what a hostile checkpoint holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _copy_run(tiny: dict[str, Path], tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny["root"] / "run", run)
    return run


def _flip_bytes_of(path: Path, values: bytes) -> None:
    """Flip one byte in the middle of `values` where the file stores them (raw, uncompressed)."""
    data = bytearray(path.read_bytes())
    at = data.find(values)
    assert at >= 0 and data.find(values, at + 1) < 0, "the values are not stored once, raw"
    data[at + len(values) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _set_value(path: Path, dataset: str, row: int, value: float) -> str:
    """Set one segment's values of `dataset` (e.g. 'test/audio') to `value` with h5py (checksums rewritten
    as HDF5 writes them); return the segment's id."""
    with h5py.File(path, "r+") as handle:
        handle[dataset][row] = value
        return handle[dataset.split("/")[0]]["id"][row].decode()


def test_d19_1_checkpoint_payload_never_runs(tiny, tmp_path, capsys):
    """Defect 1: a model.pt (evaluate) or last.pt (train's resume) holding an object that runs code is refused
    with one line naming it, and the code never runs; an older checkpoint (numpy arrays) likewise, saying
    how to rebuild it."""
    marker = tmp_path / "ran"
    run = _copy_run(tiny, tmp_path)
    torch.save({"state_dict": {}, "settings": Payload(marker)}, run / "model.pt")
    fails(
        ["evaluate", "--run", str(run), *_data_args(tiny)], capsys, f"{run / 'model.pt'}: refused", "system"
    )
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    torch.save({"epoch": 1, "rng": Payload(marker)}, resumed / "last.pt")
    fails(train_argv(tiny["data"], resumed, tiny["features"]), capsys, f"{resumed / 'last.pt'}: refused")
    assert not marker.exists() and (resumed / "last.pt").is_file()  # refused, not replaced
    torch.save({"state_dict": {}, "normalization": {"audio_mean": np.zeros(3)}}, run / "model.pt")
    fails(["evaluate", "--run", str(run), *_data_args(tiny)], capsys, "numpy", "retrain the run")


def test_d19_2_flipped_weight_bytes_are_refused(tiny, tmp_path, capsys):
    """Defect 2: bytes flipped inside a tensor of model.pt (which torch reads without a CRC check)."""
    run = _copy_run(tiny, tmp_path)
    state = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    largest = max(state.values(), key=torch.Tensor.numel)
    _flip_bytes_of(run / "model.pt", largest.contiguous().view(torch.uint8).numpy().tobytes())
    fails(["evaluate", "--run", str(run), *_data_args(tiny)], capsys, "model.pt: its weights differ")
    assert (run / "metrics.json").read_bytes() == (tiny["root"] / "run" / "metrics.json").read_bytes()


def test_d19_3_flipped_feature_bytes_are_refused(tiny, tmp_path, capsys):
    """Defect 3: bytes flipped inside `test/features` of the features file: the HDF5 checksum fails."""
    features = tmp_path / "features.h5"
    shutil.copy(tiny["features"], features)
    with h5py.File(features) as handle:
        values = handle["test/features"][0, :4].tobytes()
    _flip_bytes_of(features, values)
    run = _copy_run(tiny, tmp_path)
    argv = ["evaluate", "--run", str(run), "--data", str(tiny["data"]), "--features", str(features)]
    fails(argv, capsys, f"{features}: damaged 'test/features'")


def test_d19_4_another_dataset_of_the_same_dims_is_refused(tiny, tmp_path, capsys):
    """Defect 4: evaluate on another aligned file of the same dimensions (another synthetic seed), with its
    own features: refused by content, whatever the path."""
    synthesize(tmp_path / "raw", videos=12, seed=1)
    other = tmp_path / "data.h5"
    align_dataset(tmp_path / "raw", other, seq_len=8)
    write_features(other, tmp_path / "features.h5", "tiny", max_tokens=16)
    run = _copy_run(tiny, tmp_path)
    argv = ["evaluate", "--run", str(run), "--data", str(other), "--features", str(tmp_path / "features.h5")]
    fails(argv, capsys, str(run), "aligned data given differ in content", str(tiny["data"]))


def test_d19_5_huge_values_are_refused_where_written_and_read(tiny, tmp_path, capsys):
    """Defect 5: a finite value a model cannot use (1e21 in one segment's audio): align refuses it naming the
    source file, split, segment and modality; evaluate on a file edited since refuses it the same way; and
    non-finite predictions (a model with an infinite bias) are one line naming the run and the segment."""
    raw = write_raw(
        tmp_path / "raw",
        words={"v1": [("hi", 0.0, 1.0)], "v2": [("yo", 0.0, 1.0)]},
        labels={"v1": [(1.0, 0.0, 1.0)], "v2": [(-1.0, 0.0, 1.0)]},
        covarep={"v1": frames([[1.0, 2.0]]), "v2": frames([[1e21, 2.0]])},
        facet={v: frames([[3.0]]) for v in ("v1", "v2")},
    )
    fails(
        ["align", str(raw), str(tmp_path / "a.h5")],
        capsys,
        f"{raw / 'covarep.csd'}: 'train/audio' has values beyond +-1e+06",
        "first: v2[0]",
    )
    assert not (tmp_path / "a.h5").exists()
    data = tmp_path / "data.h5"
    shutil.copy(tiny["data"], data)
    segment = _set_value(data, "test/audio", 1, 1e21)
    run = _copy_run(tiny, tmp_path)
    argv = ["evaluate", "--run", str(run), "--data", str(data), "--features", str(tiny["features"])]
    fails(argv, capsys, f"{data}: 'test/audio' has values beyond", f"first: {segment}", "value 1e+21")
    checkpoint = load_checkpoint(run)
    for name, tensor in checkpoint["state_dict"].items():
        if name.endswith("bias"):
            tensor.fill_(float("inf"))
    rewrite_model(run, checkpoint)
    fails(["evaluate", "--run", str(run), *_data_args(tiny)], capsys, f"{run}: valid split: non-finite")


def test_d19_13_divergence_on_bad_data_names_the_data(tiny, tmp_path, capsys):
    """Defect 13: a huge feature in one training segment (raw inputs, so normalisation does not hide it) is
    named (file, split, segment, modality) instead of "training diverged; lower train.lr"."""
    data = tmp_path / "data.h5"
    shutil.copy(tiny["data"], data)
    segment = _set_value(data, "train/audio", 3, 1e30)
    argv = train_argv(data, tmp_path / "run", tiny["features"], "--set", "data.normalize=none")
    err = fails(argv, capsys, str(data), "'train/audio'", f"first: {segment}")
    assert "lower train.lr" not in err


# ---------------------------------------------------------------- kills (slow)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"finished before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_of_train_resumes_to_the_same_bytes(tiny, tmp_path):
    settings = {**SMALL, "train.epochs": 6, "train.patience": 10}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train_run(settings, tiny["data"], straight, 0, tiny["features"])
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    argv = [sys.executable, "-m", "pipeline", "train", *_data_args(tiny), "--out", str(killed), *sets]
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(killed / "last.pt", proc)  # an epoch done
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "train.json").exists() and (killed / "last.pt").is_file()
    subprocess.run(argv, env=_env(), check=True, capture_output=True, timeout=300)
    assert json.loads((killed / "train.json").read_text())["resumed_from_epoch"] >= 1
    for run in (straight, killed):
        evaluate_run(run, tiny["data"], tiny["features"], experiment="x")
    for name in ("model.pt", "history.csv", "metrics.json", "predictions.csv", "embeddings.npz"):
        assert (straight / name).read_bytes() == (killed / name).read_bytes(), name


def _tiny_project(root: Path) -> Path:
    """A copy of the repository on the tiny config, one seed (config/config.yaml + config/test.yaml)."""
    copy_repository(REPO, root)
    config = load_config([REPO / "config" / "config.yaml", REPO / "config" / "test.yaml"])
    config["seeds"] = [0]
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return root


@pytest.mark.slow
def test_killed_workflow_reruns_to_the_same_tables(tmp_path):
    """kill -9 of Snakemake and its jobs (the whole session) mid-run, `--unlock`, rerun: the same table as a
    run never interrupted (both built side by side)."""
    target = [str(BIN / "snakemake"), "--cores", "1", "results/tables/table1.csv"]
    straight, killed = _tiny_project(tmp_path / "straight"), _tiny_project(tmp_path / "killed")
    env = {**_env(), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    reference = subprocess.Popen(
        target, cwd=straight, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    victim = subprocess.Popen(
        target,
        cwd=killed,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_for(killed / "logs/train/synthetic/hycon/seed0.log", victim, timeout=600)  # training has started
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (killed / "results/runs/synthetic/hycon/seed0/metrics.json").exists()
    locked = subprocess.run(target, cwd=killed, env=env, capture_output=True, text=True, timeout=600)
    assert locked.returncode != 0 and "cannot be locked" in locked.stdout + locked.stderr
    subprocess.run([*target, "--unlock"], cwd=killed, env=env, check=True, capture_output=True, timeout=600)
    subprocess.run(target, cwd=killed, env=env, check=True, capture_output=True, timeout=900)
    assert reference.wait(timeout=900) == 0
    for ext in ("csv", "md", "tex"):
        table = f"results/tables/table1.{ext}"
        assert (straight / table).read_bytes() == (killed / table).read_bytes(), table


# ======================================================== issue 19, defects 6-12 (branch trust-inputs)
# Each of these failed at 284a4d7: the search, its space and arguments; importer input; sweep spellings;
# output before input; workflow config errors.

SEARCH_SPACE = {"train.lr": {"log_uniform": [1e-4, 1e-2]}, "model.dropout": [0.0, 0.1, 0.2]}


def _search_spec(space: dict | None = None, trials: int = 6) -> dict:
    return {
        "settings": resolve_settings(SMALL),
        "space": space or SEARCH_SPACE,
        "trials": trials,
        "seed": 0,
        "sampler": "random",
    }


def _search_argv(tiny: dict[str, Path], out: Path, spec: dict) -> list[str]:
    return ["search", "--spec", json.dumps(spec), "--dataset", "tiny", *_data_args(tiny), "--out", str(out)]


def _search_until(tiny: dict[str, Path], out: Path, trial: int, mid_training: bool) -> None:
    """Start a search process and kill -9 it in trial `trial`: as soon as the trial is claimed, or once its
    first epoch has written last.pt."""
    argv = [sys.executable, "-m", "pipeline", *_search_argv(tiny, out, _search_spec())]
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if f"search: trial {trial}: " in line:
            break
    else:
        pytest.fail(f"the search finished before trial {trial}")
    deadline = time.monotonic() + 60
    while mid_training and not list(out.glob("trials/*/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not mid_training or list(out.glob("trials/*/last.pt"))  # killed mid-training: a resume to do


@pytest.mark.slow
def test_a_search_killed_in_trials_1_3_and_5_resumes_to_the_uninterrupted_trials(tiny, tmp_path, capsys):
    """Defect 6: kill -9 in trials 1, 3 and 5 (before training, and mid-training with last.pt to resume),
    rerun each time: trials.csv is the uninterrupted search's (numbers, parameters, order, values)."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(_search_argv(tiny, straight, _search_spec())) == 0
    for trial, mid_training in ((1, False), (3, True), (5, True)):
        _search_until(tiny, killed, trial, mid_training)
        assert not (killed / "trials.csv").exists()
    assert main(_search_argv(tiny, killed, _search_spec())) == 0
    frames = [pd.read_csv(out / "trials.csv").drop(columns="seconds") for out in (straight, killed)]
    pd.testing.assert_frame_equal(*frames)
    assert frames[0]["state"].tolist() == ["complete"] * 6
    best = [json.loads((out / "best.json").read_text()) for out in (straight, killed)]
    assert best[0]["trial"] == best[1]["trial"] and best[0]["score"] == best[1]["score"]


def test_a_failed_search_start_leaves_no_trial(tiny, tmp_path, capsys):
    """Defect 6: a start that fails on its inputs (here a missing --data) creates no trial in the journal."""
    argv = _search_argv(tiny, tmp_path / "s", _search_spec(trials=2))
    argv[argv.index("--data") + 1] = str(tmp_path / "missing.h5")
    fails(argv, capsys, f"{tmp_path / 'missing.h5'}: aligned dataset file does not exist")
    journal = tmp_path / "s" / "study.journal"
    assert not journal.exists() or "trial" not in journal.read_text()


@pytest.mark.parametrize(
    ("space", "fragments"),
    [
        ({"model.dropout": {"uniform": [0.0, 1.5]}}, ("search.space.model.dropout: bound 1.5", "in [0, 1)")),
        ({"train.batch_size": [32, 1]}, ("search.space.train.batch_size: choice 1", ">= 2")),
        ({"model.d": [8, 10], "model.heads": [2, 4]}, ("the combination", "must divide 'model.d'")),
    ],
)
def test_every_value_of_the_search_space_is_checked_before_any_trial(
    tiny, tmp_path, capsys, space, fragments
):
    """Defect 7: an impossible value anywhere in the space is one line before the first trial."""
    fails(_search_argv(tiny, tmp_path / "s", _search_spec(space)), capsys, *fragments)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("spec", "extra", "fragment"),
    [
        (None, ["--trials", "0"], "search.trials: must be an integer >= 1; got 0"),
        ({}, [], "search spec: missing settings, space, trials, seed"),
        ([], [], "search spec: expected a mapping"),
        ({"settings": SMALL, "trials": 2, "seed": 0}, [], "search spec: missing space"),
        (
            {"settings": SMALL, "space": {}, "trials": 2, "seed": 0, "sampler": "random"},
            [],
            "search.space: expected a non-empty",
        ),
    ],
)
def test_search_arguments_are_one_line(tiny, tmp_path, capsys, spec, extra, fragment):
    """Defect 8: `--trials 0` is refused (a search of no trial has no best), and so is a malformed spec."""
    argv = _search_argv(tiny, tmp_path / "s", _search_spec() if spec is None else spec)
    fails([*argv, *extra], capsys, fragment)
    assert not (tmp_path / "s").exists()


def _pickle(obj: object, path: Path) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def _mmsa_source(path: Path, split: str, change) -> Path:
    """An MMSA pickle of three splits of four clips (ids `<split><v>$_$<clip>`, 1-based clips), with
    `change(split_dict)` applied to one split."""
    data = {}
    for name in ("train", "valid", "test"):
        ids = [f"{name}{video}$_${clip}" for video in range(2) for clip in (1, 2)]
        data[name] = {
            "id": np.array(ids, dtype=object),
            "raw_text": np.array([f"words of {i}" for i in ids], dtype=object),
            "audio": np.ones((4, 3, 2), np.float32),
            "vision": np.ones((4, 3, 5), np.float32),
            "regression_labels": np.linspace(-1, 1, 4),
            "audio_lengths": np.full(4, 3.0),
        }
    change(data[split])
    return _pickle(data, path)


def _mag_source(path: Path, segment: object) -> Path:
    """A MAG-BERT pickle of three splits of two segments; the first training segment is named `segment`."""
    data = {
        name: [((["a", "b"], np.ones((2, 5)), np.ones((2, 3))), 0.5, f"{name}v[{k}]") for k in range(2)]
        for name in ("train", "dev", "test")
    }
    data["train"][0] = (*data["train"][0][:2], segment)
    return _pickle(data, path)


def _set_row(key: str, row: int, value: object):
    def change(split: dict) -> None:
        values = list(split[key])
        values[row] = value
        split[key] = np.array(values, dtype=object) if key != "audio_lengths" else np.array(values, float)

    return change


@pytest.mark.parametrize(
    ("fmt", "build", "fragments"),
    [
        (
            "mmsa",
            lambda p: _mmsa_source(p, "valid", _set_row("id", 1, b"v\xff$_$2")),
            ("split 'valid' segment 'v\\xff$_$2': id is not valid UTF-8",),
        ),
        (
            "mmsa",
            lambda p: _mmsa_source(p, "test", _set_row("id", 0, "v\ud800$_$1")),
            ("split 'test' segment 'v\\ud800$_$1': id is not valid UTF-8",),
        ),
        (
            "mmsa",
            lambda p: _mmsa_source(p, "train", _set_row("raw_text", 2, "so \udcff good")),
            ("split 'train' segment 'train1$_$1': text is not valid UTF-8",),
        ),
        (
            "mag",
            lambda p: _mag_source(p, b"vid\xfe[0]"),
            ("split 'train' segment 'vid\\xfe[0]': segment name is not valid UTF-8",),
        ),
        (
            "mmsa",
            lambda p: _mmsa_source(p, "train", _set_row("audio_lengths", 3, np.nan)),
            ("split 'train' segment 'train1$_$2': 'audio_lengths' is nan", "not a non-negative number"),
        ),
        (
            "mmsa",
            lambda p: _mmsa_source(p, "train", _set_row("audio_lengths", 0, np.inf)),
            ("'audio_lengths' is inf",),
        ),
    ],
)
def test_importer_input_that_hdf5_cannot_hold_is_one_line_naming_the_segment(
    tmp_path, capsys, fmt, build, fragments
):
    """Defect 9: undecodable bytes and lone surrogates in ids, names and text, NaN/inf lengths."""
    source, out = build(tmp_path / "src.pkl"), tmp_path / "out" / "a.h5"
    fails(["import", fmt, str(source), str(out)], capsys, str(source), *fragments)
    assert not out.parent.exists()


def test_sweep_values_are_compared_as_numbers(tmp_path):
    """Defect 10: `train.lr: [1e-3, 0.001]` (YAML 1.1 reads `1e-3` as a string) is one value, refused."""
    overlay = tmp_path / "sweep.yaml"
    overlay.write_text("sweeps:\n  lr:\n    dataset: synthetic\n    keys: {train.lr: [1e-3, 0.001]}\n")
    with pytest.raises(
        ConfigError, match=r"sweeps\.lr\.keys\.train\.lr: '1e-3' and 0\.001 are the same value"
    ):
        load_config([REPO / "config" / "config.yaml", overlay])


def test_import_refuses_an_impossible_output_before_reading_and_names_it(tmp_path, capsys):
    """Defect 11: the output is checked first (here the input does not even exist), and an unwritable
    folder the permission bits do not reveal (/proc, even as root) names the output, not a temporary file."""
    source = _mag_source(tmp_path / "src.pkl", "vid[0]")
    for out in (Path("/proc/a.h5"), Path("/proc/sub/a.h5")):
        fails(
            ["import", "mag", str(tmp_path / "absent.pkl"), str(out)], capsys, f"error: {out}: cannot write"
        )
        err = fails(["import", "mag", str(source), str(out)], capsys, f"error: {out}: cannot write in /proc")
        assert ".tmp" not in err


def _workflow_overlay(root: Path, text: str) -> str:
    (root / "config" / "bad.yaml").write_text(text)
    return "config/bad.yaml"


@pytest.mark.parametrize(
    ("where", "text", "line"),
    [
        ("overlay", "seeds: [0, zero]\n", "error: config/bad.yaml: seeds.1: 'zero' is not of type 'integer'"),
        (
            "overlay",
            "tables:\n  table1: {dataset: nowhere}\n",
            "error: config/bad.yaml: tables.table1.dataset: unknown dataset 'nowhere'",
        ),
        (
            "overlay",
            "datasets:\n  imp: {source: import, format: mag, path: data/raw/none.pkl}\n"
            "search: {datasets: [imp]}\n",
            "error: config/bad.yaml: datasets.imp.path: data/raw/none.pkl does not exist",
        ),
        # what `dvc exp run -S seeds=[0,zero]` writes: blamed on params.yaml, not on config/config.yaml
        ("params", "seeds: [0, zero]\ntables: null\n", "error: params.yaml: seeds.1: 'zero' is not of type"),
    ],
)
def test_workflow_config_errors_are_one_line_naming_the_file_and_key(tmp_path, where, text, line):
    """Defect 12: `python -m pipeline workflow` prints exactly that line (exit 2); plain `snakemake` ends with
    it and exits 2, without a frame of common.smk or MissingInputException (its own notices come first)."""
    copy_repository(REPO, tmp_path)
    if where == "params":
        (tmp_path / "params.yaml").write_text(text)
        args = ["-n"]
    else:
        args = ["-n", "--configfile", _workflow_overlay(tmp_path, text)]
    env = {**_env(), "PYTHONPATH": str(tmp_path)}
    for command in (
        [sys.executable, "-m", "pipeline", "workflow", *args],
        [str(BIN / "snakemake"), *args],
    ):
        proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith(line), proc.stderr
        if command[0] == sys.executable:
            assert len(lines) == 1 and not proc.stdout, proc.stderr
        output = proc.stdout + proc.stderr
        assert "common.smk" not in output and "Missing" not in output and "Traceback" not in output
