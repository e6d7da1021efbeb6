"""Run Snakemake after reading every config file it will read (stage `workflow`).

`python -m pipeline workflow ARGS...` runs `snakemake ARGS...` (the Snakemake beside this interpreter) once
config/config.yaml and every file given with `--configfile` parse: Snakemake reads `--configfile` files in its
command line, before any workflow code can check them, and reports a YAML error with neither the file nor
the line. Here it reads `error: config/x.yaml:3: not valid YAML: ...` (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from pipeline.grid import read_config_file

CONFIG_OPTIONS = ("--configfile", "--configfiles")
WORKFLOW_CONFIG = Path("config/config.yaml")  # the Snakefile's `configfile:`, relative to the project


def configfiles(args: list[str]) -> list[str]:
    """The files Snakemake arguments give with `--configfile FILE...` or `--configfile=FILE`."""
    files: list[str] = []
    taking = False
    for arg in args:
        if arg.startswith("-"):
            name, equals, value = arg.partition("=")
            taking = name in CONFIG_OPTIONS and not equals
            if name in CONFIG_OPTIONS and equals:
                files.append(value)
        elif taking:
            files.append(arg)
    return files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every argument, options included, is Snakemake's: none is taken as an option of this stage."""
    parser.prefix_chars = "+"
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER, metavar="SNAKEMAKE_ARG")


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline workflow`: check the config files, then become Snakemake."""
    files = [WORKFLOW_CONFIG] if WORKFLOW_CONFIG.is_file() else []
    for path in [*files, *configfiles(args.snakemake_args)]:
        read_config_file(path)
    beside = Path(sys.executable).with_name("snakemake")
    snakemake = str(beside) if beside.is_file() else shutil.which("snakemake") or "snakemake"
    os.execv(snakemake, [snakemake, *args.snakemake_args])
