"""Command-line entry: `python -m pipeline <stage> ...`, one sub-command per pipeline stage.

Each stage lives in its own module exposing `add_arguments(parser)` and `run(args) -> None`; modules are
imported lazily so `--help` and the light stages do not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import logging
import sys

from pipeline.errors import PipelineError

# stage name -> (package, one-line help). The module is `<package>.<stage>`: a stage's name finds its file.
STAGES: dict[str, tuple[str, str]] = {
    "download": ("pipeline.data", "fetch CMU-MOSI/MOSEI computational sequences and folds"),
    "synthesize": ("pipeline.data", "generate the embedded synthetic dataset (offline)"),
    "import": ("pipeline.data", "import MMSA, MAG-BERT or MISA pickles into the aligned HDF5"),
    "align": ("pipeline.data", "align audio/visual frames to words and segments into HDF5"),
    "fetch": ("pipeline.models", "fetch a hub language model into data/models (on the submitting host)"),
    "features": ("pipeline", "cache frozen language-model features for an aligned dataset"),
    "train": ("pipeline", "train one model (config file plus overrides)"),
    "evaluate": ("pipeline", "evaluate a trained checkpoint: metrics, predictions, embeddings"),
    "aggregate": ("pipeline.reporting", "mean and std of run metrics over seeds"),
    "headline": (
        "pipeline.reporting",
        "every experiment's test Acc2, MAE and Corr in one JSON (DVC metrics)",
    ),
    "tables": ("pipeline.reporting", "render the paper's tables (Markdown, LaTeX, CSV)"),
    "figures": ("pipeline.reporting", "t-SNE, learning curves and forest plots of the differences"),
    "sweep": ("pipeline.reporting", "table and heatmap of a sweep over one or two settings keys"),
    "search": ("pipeline", "random hyper-parameter search chosen on validation"),
    "workflow": ("pipeline", "run snakemake ARGS once every config file it will read parses"),
}


def stage_module(stage: str) -> str:
    """Dotted module of a stage; a stage named after a Python keyword lives in `<stage>_.py`."""
    package, _ = STAGES[stage]
    return f"{package}.{stage}_" if keyword.iskeyword(stage) else f"{package}.{stage}"


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; only the selected stage's module is imported."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="stage")
    wanted = next((a for a in (argv or []) if a in STAGES), None)
    for name, (_, help_text) in STAGES.items():
        stage_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            importlib.import_module(stage_module(name)).add_arguments(stage_parser)
    return parser


def describe_os_error(err: OSError) -> str:
    """One line for an operating-system error: the path(s) it names, then what went wrong."""
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {err.strerror or err}" if paths else str(err)


def main(argv: list[str] | None = None) -> int:
    """Run one stage; a PipelineError or an operating-system error (unwritable output, full disk, a file
    where a folder should be) becomes a one-line message and exit status 2."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(stage_module(args.stage))
    try:
        module.run(args)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
