"""Rerun fingerprints of the workflow: digests of what defines each job's output.

Snakemake's code trigger sees only a rule's shell command, not the Python modules it runs. Each rule
therefore carries, as params, a digest of its stage's source files and of the settings and data that
define its output; Snakemake compares params by value with its job metadata, so a real change reruns the
affected jobs (and only those), whatever the files' modification times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.grid import REPO, dataset_seq_len
from pipeline.io import digest_json

# Source files whose content identifies each stage group's code; a change reruns that group's jobs.
CODE_GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("pipeline/data/*.py", "pipeline/layout.py"),
    # the features' tokenisation and token choice (tokenize, select_token) live in models/language.py
    "features": ("pipeline/features.py", "pipeline/models/language.py", "pipeline/data/dataset.py"),
    "model": ("pipeline/*.py", "pipeline/models/*.py", "pipeline/data/dataset.py", "pipeline/data/loader.py"),
    "reporting": ("pipeline/reporting/*.py",),
}
# Workflow plumbing, not stage code: editing it reruns nothing (pipeline/grid/, the config's loading and
# expansion, is outside every group's patterns).
CODE_EXCLUDED = frozenset(
    {
        "pipeline/__init__.py",
        "pipeline/__main__.py",
        "pipeline/fingerprints.py",
        "pipeline/search.py",
        "pipeline/space.py",  # the search's space and study, split out of search.py
        "pipeline/study.py",
        "pipeline/sweeps.py",
        "pipeline/workflow.py",
    }
)


def fingerprint(*parts: Any) -> str:
    """Short stable digest of JSON-able parts, used as a Snakemake param so content changes trigger reruns."""
    return digest_json(parts)


def code_digest(group: str, root: Path = REPO) -> str:
    """Digest of the source files of one stage group (CODE_GROUPS) under `root`; missing files are skipped."""
    files: set[Path] = set()
    for pattern in CODE_GROUPS[group]:
        files.update(p for p in root.glob(pattern) if p.relative_to(root).as_posix() not in CODE_EXCLUDED)
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def data_fingerprint(config: Mapping[str, Any], dataset: str, root: Path = REPO) -> str:
    """Identity of a dataset's aligned data: its source settings, sequence length and the data code."""
    return fingerprint(
        config["datasets"][dataset], dataset_seq_len(config, dataset), code_digest("data", root)
    )
