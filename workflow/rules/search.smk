# The paper's protocol (Section 4.4), per table row: each experiment searched within what it leaves free
# (`search.space`, chosen on validation), then its chosen setting trained with `search.seeds` (5 in the
# paper) and the tables rendered from those runs under results/tables/searched/. Not part of `all`:
#   snakemake --cores 4 search_all


rule search_worker:
    """One of `search.workers` processes sharing a study (each its own job: cores or cluster nodes)."""
    input:
        data=rules.align.output[0],
        features=lambda w: features_input(w.dataset, w.experiment),
        language_model=lambda w: run_language_model(w.experiment),
    output:
        touch(f"{layout.SEARCH_DIR}/workers/{{worker}}.done"),
    log:
        "logs/search/{dataset}/{experiment}.worker{worker}.log",
    wildcard_constraints:
        experiment=_alternatives(config["experiments"]),
        worker=r"\d+",
    conda:
        PIPELINE_ENV
    threads: res("search", "threads", 1)
    resources:
        **rule_resources("search", mem_mb=4000, runtime=720, gpu=0),
    params:
        spec=lambda w: json.dumps(grid.search_spec(config, w.experiment), sort_keys=True),
        out_dir=lambda w: layout.SEARCH_DIR.format(dataset=w.dataset, experiment=w.experiment),
        features=lambda w: features_arg(w.dataset, w.experiment),
    shell:
        SEARCH_SHELL


rule search:
    """Search one experiment (an Optuna study in study.journal, resumed if interrupted); keep the best.
    With search.workers > 1 the workers train the trials and this job only writes the results."""
    input:
        data=rules.align.output[0],
        features=lambda w: features_input(w.dataset, w.experiment),
        language_model=lambda w: run_language_model(w.experiment),
        workers=search_workers,
    output:
        best=f"{layout.SEARCH_DIR}/best.json",
        trials=f"{layout.SEARCH_DIR}/trials.csv",
    log:
        "logs/search/{dataset}/{experiment}.log",
    benchmark:
        benchmark_file("search/{dataset}/{experiment}")
    wildcard_constraints:
        experiment=_alternatives(config["experiments"]),
    conda:
        PIPELINE_ENV
    threads: res("search", "threads", 1)
    resources:
        **rule_resources("search", mem_mb=4000, runtime=720, gpu=0),
    params:
        spec=lambda w: json.dumps(grid.search_spec(config, w.experiment), sort_keys=True),
        out_dir=lambda w, output: Path(output.best).parent,
        features=lambda w: features_arg(w.dataset, w.experiment),
        fingerprint=lambda w: fingerprints.fingerprint(data_fp(w.dataset), CODE["model"]),
    shell:
        SEARCH_SHELL


rule search_settings:
    """An experiment's chosen setting as a run-settings file, trained as experiment searched_<experiment>."""
    input:
        rules.search.output.best,
    output:
        layout.SETTINGS.replace("{experiment}", f"{grid.SEARCHED_PREFIX}{{experiment}}"),
    log:
        f"logs/settings/{{dataset}}/{grid.SEARCHED_PREFIX}{{experiment}}.log",
    wildcard_constraints:
        experiment=_alternatives(config["experiments"]),
    localrule: True
    conda:
        PIPELINE_ENV
    script:
        "../scripts/settings.py"


rule tables_searched:
    """One of the paper's tables with every measured row from its experiment's searched setting."""
    input:
        aggregates=lambda w: table_inputs(w, grid.searched_table_spec),
        predictions=lambda w: table_predictions(w, grid.searched_table_spec),
    output:
        md=f"{layout.SEARCHED_TABLE}.md",
        tex=f"{layout.SEARCHED_TABLE}.tex",
        csv=f"{layout.SEARCHED_TABLE}.csv",
    log:
        "logs/tables/searched/{table}.log",
    wildcard_constraints:
        table=_alternatives(grid.searched_tables(config)),
    localrule: True
    conda:
        PIPELINE_ENV
    params:
        spec=lambda w: json.dumps(grid.searched_table_spec(config, w.table), sort_keys=True),
        code=CODE["reporting"],
    shell:
        "python -m pipeline tables --spec {params.spec:q} --out "
        + layout.SEARCHED_TABLE.format(table="{wildcards.table}")
        + " {input.aggregates} --predictions {input.predictions} > {log} 2>&1"


rule search_all:
    """Target: search every table row, train each chosen setting with the search seeds, render the tables."""
    input:
        [
            f"{layout.SEARCHED_TABLE}.{ext}".format(table=table)
            for table in grid.searched_tables(config)
            for ext in ("md", "tex", "csv")
        ],
