"""The SLURM profile: the jobs it plans (dry runs, no cluster needed) and, against a real scheduler, the
tiny config's `all` run as docs/cluster.md says, with tables byte-identical to a local run.

The real-scheduler test skips where no cluster answers (`sbatch` absent or `sinfo` failing); `make
cluster-check` brings up the single-node cluster of ../shared/tools/slurm-single-node.sh and runs this file.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import REPO, TINY, run

from pipeline.devtools.repository import copy_repository
from pipeline.grid import active_tables

DOCS = REPO / "docs" / "cluster.md"
PROFILE = ["--workflow-profile", "workflow/profiles/slurm"]
LOCAL_COMMAND = ["snakemake", "--cores", "2", "all", "--configfile", "config/test.yaml"]
TABLE_SUFFIXES = (".md", ".csv", ".tex")
# Rules whose jobs go to SLURM on the tiny config (the others are localrules, run on the submitting host).
SUBMITTED_RULES = {"synthesize", "align", "features", "train", "evaluate", "figures_tsne"}
PLACEMENT = {"slurm_partition", "slurm_account", "gpu_model"}
CAPTURE = {"capture_output": True, "text": True, "timeout": 60}
# The rules a workflow with the SLURM executor runs on the submitting host (Snakemake's own record of
# `localrule: True`; a dry run does not print it).
LOCAL_RULES_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, ResourceSettings
with SnakemakeApi() as api:
    config = ConfigSettings(configfiles=[Path(p) for p in sys.argv[1:]])
    workflow = api.workflow(ResourceSettings(), config, snakefile=Path("workflow/Snakefile"))._workflow
    print(json.dumps(sorted(workflow._localrules)))
"""


def _cluster_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo"], capture_output=True, timeout=30).returncode == 0


def planned_jobs(*args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run of `all` through the SLURM profile plans."""
    output = run(["snakemake", "-n", "--forceall", *PROFILE, "all", *args], REPO).stdout
    jobs = []
    for rule, body in re.findall(r"^rule (\w+):\n((?:    .*\n)*)", output, re.M):
        line = re.search(r"^    resources: (.*)$", body, re.M)
        jobs.append((rule, dict(item.split("=", 1) for item in line.group(1).split(", ")) if line else {}))
    return jobs


def local_rules(*configfiles: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", LOCAL_RULES_SCRIPT, *configfiles], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.splitlines()[-1]))


# ---------------------------------------------------------------- the plan (dry runs, no cluster)


def test_profile_leaves_every_resource_to_the_config():
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    default = yaml.safe_load((REPO / "workflow/profiles/default/config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    assert not {"default-resources", "set-resources", "set-threads", "resources", "cores"} & set(profile)
    assert profile["max-checksum-file-size"] == default["max-checksum-file-size"]
    assert profile["latency-wait"] >= 30
    jobs = planned_jobs("--configfile", "config/test.yaml")
    assert {rule for rule, _ in jobs} >= SUBMITTED_RULES
    for rule, resources in jobs:
        assert not (PLACEMENT | {"cpus_per_task"}) & set(resources), rule  # threads give --cpus-per-task
        assert resources.get("gpu", "0") == "0", rule  # the CPU default asks no GPU anywhere
    features = next(resources for rule, resources in jobs if rule == "features")
    assert features["mem_mb"] == str(TINY["resources"]["features"]["mem_mb"])


def test_paper_overlay_asks_gpus_and_fetches_on_the_submitting_host(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("resources:\n  default: {slurm_partition: gpu2, slurm_account: lab, gpu_model: a100}\n")
    jobs = planned_jobs("--configfile", "config/mosi.yaml", str(site))
    rules = {rule for rule, _ in jobs}
    assert {"download", "fetch", "train", "evaluate"} <= rules
    for rule, resources in jobs:
        if rule in {"train", "evaluate"}:
            assert resources["gpu"] == "1" and resources["gpu_model"] == "a100", rule
        if rule in {"align", "figures_tsne"}:
            assert "gpu_model" not in resources and resources.get("gpu", "0") == "0", rule
        if rule in rules - {"download", "fetch"}:
            assert resources.get("slurm_partition") in (None, "gpu2"), rule
    train = next(resources for rule, resources in jobs if rule == "train")
    assert (train["slurm_partition"], train["slurm_account"]) == ("gpu2", "lab")
    local = local_rules("config/mosi.yaml")
    assert {"download", "fetch"} <= local
    assert not {"align", "train", "evaluate", "search"} & local


# ---------------------------------------------------------------- against a real scheduler


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
        **CAPTURE,
    )
    if proc.returncode != 0:
        return None
    rows = (line.split("|") for line in proc.stdout.splitlines() if line)
    return {job_id: (state, int(cpus)) for job_id, state, cpus in rows}


@pytest.mark.slow
@pytest.mark.skipif(not _cluster_answers(), reason="no SLURM cluster answers (sbatch/sinfo)")
def test_tiny_workflow_under_slurm_equals_a_local_run(tmp_path):
    # A job asking more CPUs than any node has pends for ever (reason PartitionConfig): fail at once.
    node_cpus = max(int(n) for n in subprocess.run(["sinfo", "-h", "-o", "%c"], **CAPTURE).stdout.split())
    threads = max(entry.get("threads", 1) for entry in TINY["resources"].values())
    assert node_cpus >= threads, f"the cluster's nodes have {node_cpus} CPUs; the tiny config asks {threads}"
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    for project in (local, cluster):
        copy_repository(REPO, project)
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
