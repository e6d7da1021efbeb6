"""The SLURM profile against a real scheduler: the tiny config's `all`, run as docs/cluster.md says, equals
a local run byte for byte.

Skipped where no cluster answers (`sbatch` absent or `sinfo` failing). `make cluster-check` brings up the
single-node cluster of ../shared/tools/slurm-single-node.sh and runs this file.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_workflow import TINY, copy_repository, run

from pipeline.workflow_config import active_tables

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "cluster.md"
LOCAL_COMMAND = ["snakemake", "--cores", "2", "all", "--configfile", "config/test.yaml"]
TABLE_SUFFIXES = (".md", ".csv", ".tex")
# Rules whose jobs go to SLURM on the tiny config (the others are localrules, run on the submitting host).
SUBMITTED_RULES = {"synthesize", "align", "features", "train", "evaluate", "figure_tsne"}


def _cluster_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo"], capture_output=True, timeout=30).returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _cluster_answers(), reason="no SLURM cluster answers (sbatch/sinfo)"),
]


def documented_command() -> list[str]:
    """The smoke-test command docs/cluster.md gives users: the line running `all` on config/test.yaml."""
    for line in DOCS.read_text().splitlines():
        words = shlex.split(line, comments=True) if line.startswith("snakemake ") else []
        if "--workflow-profile" in words and "config/test.yaml" in words:
            return words
    raise AssertionError(f"{DOCS} gives no `snakemake --workflow-profile ... config/test.yaml` command")


def timed_run(args: list[str], cwd: Path) -> tuple[str, float]:
    """Run a command of the project's environment; its output and wall time in seconds."""
    start = time.monotonic()
    proc = run(args, cwd, timeout=1200)
    return proc.stdout + proc.stderr, time.monotonic() - start


def tables(project: Path) -> dict[str, bytes]:
    """Every table file (Markdown, CSV, LaTeX) by name."""
    return {
        path.name: path.read_bytes()
        for path in sorted((project / "results" / "tables").iterdir())
        if path.suffix in TABLE_SUFFIXES
    }


def submitted_jobs(log: str) -> dict[str, str]:
    """SLURM job id -> rule, from the Snakemake log of a cluster run."""
    rule_of = {
        jobid: rule for rule, jobid in re.findall(r"^rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", log, re.M)
    }
    return {
        slurm_id: rule_of[jobid]
        for jobid, slurm_id in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
    }


def accounting(job_ids: list[str]) -> dict[str, tuple[str, int]] | None:
    """State and allocated CPUs of SLURM jobs from `sacct`, or None where accounting is off."""
    proc = subprocess.run(
        ["sacct", "-X", "-n", "--parsable2", "-o", "JobIdRaw,State,AllocCPUS", "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        return None
    rows = (line.split("|") for line in proc.stdout.splitlines() if line)
    return {job_id: (state, int(cpus)) for job_id, state, cpus in rows}


def test_tiny_workflow_under_slurm_equals_a_local_run(tmp_path):
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    for project in (local, cluster):
        copy_repository(project)
    _, local_seconds = timed_run(LOCAL_COMMAND, local)
    log, cluster_seconds = timed_run(documented_command(), cluster)
    print(f"tiny workflow: local {local_seconds:.0f} s, SLURM {cluster_seconds:.0f} s")

    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
    assert steps and steps[-1][0] == steps[-1][1], "the cluster run did not finish every job"
    jobs = submitted_jobs(log)
    assert set(jobs.values()) == SUBMITTED_RULES
    states = accounting(list(jobs))
    if states is not None:  # with accounting: every job COMPLETED, with the CPUs its rule's threads ask
        resources = TINY["resources"]
        threads = {rule: resources.get(rule, resources["default"])["threads"] for rule in jobs.values()}
        assert {job_id: states.get(job_id) for job_id in jobs} == {
            job_id: ("COMPLETED", threads[rule]) for job_id, rule in jobs.items()
        }

    produced = tables(local)
    assert len(produced) == len(TABLE_SUFFIXES) * len(active_tables(TINY))
    assert tables(cluster) == produced
