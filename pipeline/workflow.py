"""Run Snakemake after reading every config file it will read (stage `workflow`), and the one-line form of a
workflow config error that both this stage and the Snakefile print.

`python -m pipeline workflow ARGS...` runs `snakemake ARGS...` (the Snakemake beside this interpreter) once
config/config.yaml and every file given with `--configfile` parse: Snakemake reads `--configfile` files in its
command line, before any workflow code can check them, and reports a YAML error with neither the file nor
the line. Here it reads `error: config/x.yaml:3: not valid YAML: ...` (exit status 2).

The rest of the config (schema, cross-references, an imported dataset's missing source file) is checked by
the Snakefile itself (workflow/rules/common.smk, `check_workflow_config`) as soon as Snakemake has merged
the files, before it plans a job, so that plain `snakemake` gets the same line: `error: config/x.yaml:
key: message`, exit status 2. The file named is the one defining the key (`config_file_of`); a value given
with Snakemake's `--config KEY=VALUE` is blamed on the file it overrides, or the last file.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline import grid
from pipeline.errors import ConfigError

CONFIG_OPTIONS = ("--configfile", "--configfiles")
WORKFLOW_CONFIG = Path("config/config.yaml")  # the Snakefile's `configfile:`, relative to the project
# The overlay `dvc exp run -S` writes (DVC's default params file): every key null (sets nothing) unless an
# experiment sets one; the Snakefile merges it over WORKFLOW_CONFIG, before any --configfile.
PARAMS_FILE = Path("params.yaml")
# Snakemake options after which the config it merges is not the files' alone (or not found from here).
SNAKEMAKE_MERGE_OPTIONS = ("--config", "-C", "--directory", "-d", "--snakefile", "-s")


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


def params_overrides(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """The top-level keys `path` (params.yaml) sets, its nulls left out; {} when there is no such file."""
    if not path.is_file():
        return {}
    return {key: value for key, value in grid.read_config_file(path).items() if value is not None}


def merged_files(extra: Sequence[str | Path]) -> list[Path]:
    """The files Snakemake's config comes from, in the order they overlay: config/config.yaml and
    params.yaml where present, then `extra` (the --configfile files)."""
    return [path for path in (WORKFLOW_CONFIG, PARAMS_FILE) if path.is_file()] + list(map(Path, extra))


def import_sources(spec: Mapping[str, Any]) -> list[Path]:
    """The files an imported dataset is read from: its pickle, or the three of MISA's folder."""
    from pipeline.data.formats import misa_files  # numpy and h5py: only when the config imports

    if spec["format"] == "misa":
        return list(misa_files(spec["path"]).values())
    return [Path(spec["path"])]


def check_import_sources(config: Mapping[str, Any]) -> None:
    """ConfigError naming `datasets.<name>.path` when a used imported dataset's source file is missing
    (paths relative to the project folder): Snakemake would otherwise list it among ~40 lines of
    MissingInputException."""
    for name in grid.used_datasets(config):
        spec = config["datasets"][name]
        if spec["source"] != "import":
            continue
        for path in import_sources(spec):
            if not path.is_file():
                raise ConfigError(f"datasets.{name}.path: {path} does not exist")


def config_file_of(message: str, files: Sequence[str | Path]) -> Path:
    """The config file a ConfigError `message` (which starts with the dotted key it is about) is most
    likely due to: the one defining the longest part of that key, the later one on a tie (an overlay
    replaces what it defines); the last file when none defines any. A null value defines nothing (the
    overlays merge it away: params.yaml is all nulls until `dvc exp run -S` sets a key)."""
    key = re.split(r"[:\s]", message, maxsplit=1)[0].split(".")
    best, depth = Path(files[-1]), 0
    for path in map(Path, files):
        try:
            node: Any = grid.read_config_file(path)
        except ConfigError:
            continue
        reached = 0
        while reached < len(key) and isinstance(node, Mapping) and node.get(key[reached]) is not None:
            node, reached = node[key[reached]], reached + 1
        if reached and reached >= depth:
            best, depth = path, reached
    return best


def _shown(path: Path) -> str:
    """`path` relative to the working folder when it lies below it (as the user typed it), else as is."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def check_workflow_config(config: dict[str, Any], files: Sequence[str | Path]) -> None:
    """Validate the config Snakemake merged from `files` (filling the schema's defaults in place) and the
    imported datasets' sources; a ConfigError is `config/x.yaml: key: message`."""
    try:
        grid.validate_config(config)
        check_import_sources(config)
    except ConfigError as err:
        raise ConfigError(f"{_shown(config_file_of(str(err), files))}: {err}") from None


def exit_on_config_error(err: ConfigError) -> None:
    """What the Snakefile does with a config error: one line `error: ...` and exit status 2 (Snakemake
    lets SystemExit through; any other exception would be three lines with a frame and status 1)."""
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every argument, options included, is Snakemake's: none is taken as an option of this stage."""
    parser.prefix_chars = "+"
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER, metavar="SNAKEMAKE_ARG")


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline workflow`: check the config files, then become Snakemake.

    The merged config is checked here too (as the Snakefile will), so that the error line is the only
    output: Snakemake prints its profile and config notices before the Snakefile runs. Not with options
    that change what Snakemake merges or where (`--config`, `--directory`): the Snakefile checks those.
    """
    files = merged_files(configfiles(args.snakemake_args))
    config: dict[str, Any] = {}
    for path in files:
        layer = params_overrides(path) if path == PARAMS_FILE else grid.read_config_file(path)
        config = grid.deep_merge(config, layer)
    options = {arg.partition("=")[0] for arg in args.snakemake_args}
    if files and not options & {*SNAKEMAKE_MERGE_OPTIONS}:
        check_workflow_config(config, files)
    beside = Path(sys.executable).with_name("snakemake")
    snakemake = str(beside) if beside.is_file() else shutil.which("snakemake") or "snakemake"
    os.execv(snakemake, [snakemake, *args.snakemake_args])
