"""Shared fixtures: the team's ../shared folder, deterministic single-threaded torch, and a small synthetic
dataset with cached features. Shared plain helpers are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.data.align import align_dataset
from pipeline.data.dataset import load_split
from pipeline.data.synthesize import synthesize
from pipeline.features import write_features

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's shared folder; tests that need it skip cleanly where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    """Pin torch to one thread: the suite runs on 2 cores and results must not depend on threading."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict:
    """30 synthetic videos aligned at T = 20, with cached frozen MiniLM features (default `mean` token)."""
    root = tmp_path_factory.mktemp("synthetic")
    synthesize(root / "raw", videos=30, seed=0)
    align_dataset(root / "raw", root / "syn.h5", seq_len=20)
    write_features(root / "syn.h5", root / "minilm.h5", "minilm")
    train_mean = load_split(root / "syn.h5", "train")["label"].mean()
    test_labels = load_split(root / "syn.h5", "test")["label"]
    return {
        "data": root / "syn.h5",
        "features": root / "minilm.h5",
        "constant_mae": float(np.abs(test_labels - train_mean).mean()),
    }


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reverse",
        action="store_true",
        help="run the collected tests in reverse order: no test may depend on what another left behind",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--reverse"):
        items.reverse()
