"""The file-layout contract between stages (docs/architecture.md): raw file names and path templates.

Every stage, rule and test takes these names from here; the templates use the workflow's wildcard names
(`{dataset}`, `{lm}`, `{experiment}`, `{seed}`) so that the Snakefile can use them as they are.
"""

from __future__ import annotations

from pathlib import Path

# Raw dataset folder (data/raw/<dataset>/), as `download` and `synthesize` write it and `align` reads it.
WORDS = "words.csd"
LABELS = "labels.csd"
# Aligned-HDF5 dataset -> the raw computational sequence it is averaged from.
FRAME_FILES: dict[str, str] = {"audio": "covarep.csd", "visual": "facet.csd"}
# The token words.csd uses for silence (b"sp" in the CMU SDK's files): align drops it, synthesize writes it.
SILENCE = "sp"
FOLDS = "folds.json"
MANIFEST = "manifest.json"  # file name -> SHA-256 of the files above
CSD_FILES: tuple[str, ...] = (WORDS, *FRAME_FILES.values(), LABELS)
HASHED_FILES: tuple[str, ...] = (*CSD_FILES, FOLDS)  # what align reads: the manifest's entries
RAW_FILES: tuple[str, ...] = (*HASHED_FILES, MANIFEST)

# Display names of the CMU datasets that `download` can fetch.
CMU_DATASETS: dict[str, str] = {"mosi": "CMU-MOSI", "mosei": "CMU-MOSEI"}

# Paths of the workflow's data and results, relative to the repository root.
RAW_DIR = "data/raw/{dataset}"
ALIGNED = "data/aligned/{dataset}.h5"
FEATURES = "data/features/{dataset}-{lm}.h5"
# Templates without an extension (TABLE, SEARCHED_TABLE, SWEEP) are the stem each format's file adds to.
SETTINGS = "results/settings/{dataset}/{experiment}.yaml"  # one experiment's resolved run settings
RUN_DIR = "results/runs/{dataset}/{experiment}/seed{seed}"
AGGREGATE = "results/metrics/{dataset}/{experiment}.json"  # mean, std over seeds
CURVE = "results/curves/{dataset}/{experiment}.csv"  # mean learning curve (DVC plots)
SUMMARY = "results/summary/{dataset}/{experiment}.json"  # flat test means, stds (DVC metrics)
HEADLINE = "results/headline.json"  # every summary's headline metrics (`dvc exp show`)
TABLE = "results/tables/{table}"  # .md, .tex, .csv
FIGURES_DIR = "results/figures"
FOREST_FIGURE = f"{FIGURES_DIR}/{{table}}_forest.png"
CURVES_FIGURE = f"{FIGURES_DIR}/curves/{{dataset}}/{{experiment}}.png"
TSNE_FIGURE = f"{FIGURES_DIR}/tsne_{{dataset}}.png"
SEARCH_DIR = "results/search/{dataset}/{experiment}"  # study.journal, trials.csv, best.json, workers/
SEARCHED_TABLE = "results/tables/searched/{table}"  # .md, .tex, .csv
SWEEP = "results/sweeps/{sweep}"  # .md, .csv
SWEEP_FIGURE = f"{FIGURES_DIR}/sweep_{{sweep}}.png"
BENCHMARKS_DIR = "results/benchmarks"  # Snakemake's per-job time and memory, <rule>/<job>.tsv

# history.csv of a run (pipeline/checkpoint.py writes it, one row per epoch): the epoch, the training losses
# and the validation metrics, `valid_<metric>`; aggregate averages its CURVE_COLUMNS over seeds.
TRAIN_LOSS_COLUMNS: tuple[str, ...] = ("train_loss", "train_pred_loss", "train_hybrid_loss")
VALID_COLUMNS: tuple[str, ...] = ("mae", "corr", "acc7", "acc2_non0", "f1_non0")
HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    *TRAIN_LOSS_COLUMNS,
    *(f"valid_{name}" for name in VALID_COLUMNS),
)
CURVE_COLUMNS: tuple[str, ...] = (*TRAIN_LOSS_COLUMNS, "valid_mae", "valid_corr")

# A hub language model's project copy (`model.language_model` other than a bundled name or a local path):
# fetched once, on the submitting host, by `python -m pipeline fetch`; every job loads it from there.
BUNDLED_MODELS: tuple[str, ...] = ("minilm", "tiny")
MODELS_DIR = "data/models"


def hub_model_dir(name: str) -> Path | None:
    """The project folder of a hub model (`org/name` -> data/models/org--name); None for a bundled name or
    an existing local path. Relative to the working directory (the repository root for every stage)."""
    if name in BUNDLED_MODELS or Path(name).exists():
        return None
    return Path(MODELS_DIR) / name.replace("/", "--")
