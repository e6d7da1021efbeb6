"""benchmarks/gpu.py: its CPU-side logic in smoke mode, and the one-line exit without CUDA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: the script would run")
def test_without_cuda_one_line_and_a_distinct_status(gpu_check, capsys):
    assert gpu_check.main([]) == gpu_check.NO_CUDA == 3
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "no CUDA device" in out[0]


def test_smoke_run_on_the_cpu_passes_every_check_and_prints_one_table(gpu_check, capsys):
    assert gpu_check.main(["--device", "cpu", "--smoke"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("gpu-check on") :].splitlines()
    results = {line.split("  ")[0]: line for line in table[3:]}
    assert len(results) == 5 and all(" PASS " in results[name] for name in list(results)[:3])
    assert "resumed from epoch 2" in out and "max |difference| 0.00e+00" in out  # the CPU is exact
    assert "cpu: " in results["throughput, fine-tuned tiny random BERT"]


def test_a_check_that_fails_is_reported_and_sets_the_status(gpu_check, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "max_difference", lambda a, b: 1.0)  # as if the runs diverged
    assert gpu_check.main(["--device", "cpu", "--smoke", "--cpu-samples", "16"]) == 1
    assert "FAIL" in capsys.readouterr().out
