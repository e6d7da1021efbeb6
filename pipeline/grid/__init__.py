"""The workflow's configuration (config/*.yaml): loading, validation and expansion of the experiment grid.

One place for the grid: the Snakefile, the reporting stages and the search read it through this package;
DVC tracks config/config.yaml as params, and params.yaml, the overlay `dvc exp run -S` writes (docs/dvc.md).
Three modules, by responsibility, layered so that none imports one above it:

- `config.py` (top): `load_config(paths)` merges YAML files the way Snakemake merges `--configfile` onto
  the Snakefile's `configfile:` (mappings recursively, everything else replaced), then validates;
  `validate_config(config)` checks the JSON schema (workflow/schemas/config.schema.yaml, filling its
  defaults) and then `check_config`: every table and sweep names a defined dataset and defined
  experiments, every reported row exists in the paper, every experiment's overrides are valid settings,
  every imported dataset names its format and path. Each failure is one ConfigError naming the key,
  raised before any job is planned.
- `specs.py`: `table_spec`, `searched_table_spec`, `search_spec`, `search_experiments`: the plain-JSON
  specs of the tables and of the per-row search of `search_all` (captions: pipeline/reporting/captions.py).
- `expand.py` (bottom): `runs`, `experiment_settings`, `experiment_seeds`, `features_key`, ... expand the
  grid for the Snakefile; `searched_name`, `searched_of`, `run_seeds`, `run_settings` name a searched
  setting's runs (the rules call these rather than re-deriving them).

Callers import from `pipeline.grid`; the names below are the package's interface.
"""

from pipeline.grid.config import (
    DEFAULT_CONFIG,
    IMPORT_KEYS,
    REPO,
    SCHEMA,
    check_config,
    check_dataset,
    deep_merge,
    load_config,
    read_config_file,
    validate_config,
)
from pipeline.grid.expand import (
    SEARCHED_PREFIX,
    active_tables,
    dataset_experiments,
    dataset_seq_len,
    experiment_seeds,
    experiment_settings,
    feature_settings,
    features_key,
    is_synthetic,
    run_seeds,
    run_settings,
    runs,
    search_datasets,
    searched_name,
    searched_of,
    tsne_spec,
    used_datasets,
)
from pipeline.grid.specs import (
    search_experiments,
    search_spec,
    searched_table_spec,
    searched_tables,
    table_spec,
    trimmed_rows,
)

__all__ = [
    "DEFAULT_CONFIG",
    "IMPORT_KEYS",
    "REPO",
    "SCHEMA",
    "SEARCHED_PREFIX",
    "active_tables",
    "check_config",
    "check_dataset",
    "dataset_experiments",
    "dataset_seq_len",
    "deep_merge",
    "experiment_seeds",
    "experiment_settings",
    "feature_settings",
    "features_key",
    "is_synthetic",
    "load_config",
    "read_config_file",
    "run_seeds",
    "run_settings",
    "runs",
    "search_datasets",
    "search_experiments",
    "search_spec",
    "searched_name",
    "searched_of",
    "searched_table_spec",
    "searched_tables",
    "table_spec",
    "trimmed_rows",
    "tsne_spec",
    "used_datasets",
    "validate_config",
]
