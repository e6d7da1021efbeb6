"""Small I/O helpers shared by every stage: output checks, atomic and reproducible writes, JSON."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import PipelineError

# The timestamp of every member of the zip archives written here: the same arrays give the same bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def check_output(*targets: str | os.PathLike) -> None:
    """Refuse, before any work, outputs that cannot be written: PipelineError naming the path.

    A target must not be a folder, and its nearest existing ancestor (the folders below it are made on
    writing) must be a folder this user may write in: its permission bits allow it and a file can be
    created there (an empty probe, removed at once).
    """
    for target in map(Path, targets):
        if target.is_dir():
            raise PipelineError(f"{target}: the output is a folder, not a file")
        parent = target.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise PipelineError(f"{target}: cannot create it, {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PipelineError(f"{target}: cannot write in {parent} (permission denied)")
        try:  # what the permission bits do not say (root, /proc, a read-only mount): create a file there
            fd, probe = tempfile.mkstemp(prefix=".probe.", dir=parent)
        except OSError as err:
            raise PipelineError(f"{target}: cannot write in {parent} ({err.strerror})") from None
        os.close(fd)
        os.unlink(probe)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    A crash or exception leaves no half-written output that a later stage could take as complete; a target
    that cannot be written is refused before the block runs (`check_output`).
    """
    target = Path(target)
    check_output(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:  # the error would name the temporary file, which the user never asked for
        raise PipelineError(f"{target}: cannot write it ({err.strerror})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the output the permissions a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(target: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npz(target: str | os.PathLike, **arrays: np.ndarray) -> None:
    """`numpy.savez_compressed` atomically, with fixed member timestamps: the same arrays give the same
    bytes."""
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, array in arrays.items():
            with zf.open(zipfile.ZipInfo(f"{name}.npy", ZIP_DATE), "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def digest_json(obj: Any, length: int = 16) -> str:
    """Short hex SHA-256 of `obj` as key-sorted JSON (non-JSON values by `str`): stable across runs."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def background_checksums(paths: Mapping[str, Path]) -> Iterator[dict[str, Future[str]]]:
    """`sha256sum` of each file (by name), started on another thread at once: hashing releases the GIL and
    needs nothing validated, so it runs on another core alongside the caller's reading of the same files.
    Leaving the block cancels the queued hashes and does not wait for a running one (on bad input the
    error is raised at once); read the results inside it."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        yield {name: pool.submit(sha256sum, path) for name, path in paths.items()}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
