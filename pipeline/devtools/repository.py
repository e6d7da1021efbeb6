"""A checkout's files as a fresh clone has them, for end-to-end tests and benchmarks that run the workflow."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def copy_repository(source: Path, dest: Path) -> None:
    """Copy the files of the checkout `source` (tracked and untracked, not ignored) into `dest`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        path = source / name
        if path.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / name)
