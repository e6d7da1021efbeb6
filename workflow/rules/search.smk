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
        touch("results/search/{dataset}/{experiment}/workers/{worker}.done"),
    params:
        spec=lambda w: json.dumps(grid.search_spec(config, w.experiment), sort_keys=True),
        out_dir=lambda w: f"results/search/{w.dataset}/{w.experiment}",
        features=lambda w: features_arg(w.dataset, w.experiment),
    wildcard_constraints:
        experiment=_alternatives(config["experiments"]),
        worker=r"\d+",
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/search/{dataset}/{experiment}.worker{worker}.log",
    threads: res("search", "threads", 1)
    resources:
        mem_mb=res("search", "mem_mb", 4000),
        runtime=res("search", "runtime", 720),
        gpu=res("search", "gpu", 0),
        **placement("search"),
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
        best="results/search/{dataset}/{experiment}/best.json",
        trials="results/search/{dataset}/{experiment}/trials.csv",
    params:
        spec=lambda w: json.dumps(grid.search_spec(config, w.experiment), sort_keys=True),
        out_dir=lambda w, output: Path(output.best).parent,
        features=lambda w: features_arg(w.dataset, w.experiment),
        fingerprint=lambda w: fingerprints.fingerprint(data_fp(w.dataset), CODE["model"]),
    wildcard_constraints:
        experiment=_alternatives(config["experiments"]),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/search/{dataset}/{experiment}.log",
    benchmark:
        "results/benchmarks/search/{dataset}/{experiment}.tsv"
    threads: res("search", "threads", 1)
    resources:
        mem_mb=res("search", "mem_mb", 4000),
        runtime=res("search", "runtime", 720),
        gpu=res("search", "gpu", 0),
        **placement("search"),
    shell:
        SEARCH_SHELL


rule search_settings:
    """An experiment's chosen setting as a run-settings file, trained as experiment searched_<experiment>."""
    input:
        "results/search/{dataset}/{experiment}/best.json",
    output:
        layout.SETTINGS.replace("{experiment}", f"{grid.SEARCHED_PREFIX}{{experiment}}"),
    wildcard_constraints:
        experiment=_alternatives(config["experiments"]),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"logs/settings/{{dataset}}/{grid.SEARCHED_PREFIX}{{experiment}}.log",
    localrule: True
    script:
        "../scripts/settings.py"


rule tables_searched:
    """One of the paper's tables with every measured row from its experiment's searched setting."""
    input:
        aggregates=lambda w: table_inputs(w, grid.searched_table_spec),
        predictions=lambda w: table_predictions(w, grid.searched_table_spec),
    output:
        md="results/tables/searched/{table}.md",
        tex="results/tables/searched/{table}.tex",
        csv="results/tables/searched/{table}.csv",
    params:
        spec=lambda w: json.dumps(grid.searched_table_spec(config, w.table), sort_keys=True),
        code=CODE["reporting"],
    wildcard_constraints:
        table=_alternatives(grid.searched_tables(config)),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/tables/searched/{table}.log",
    localrule: True
    shell:
        "python -m pipeline tables --spec {params.spec:q} --out results/tables/searched/{wildcards.table}"
        " {input.aggregates} --predictions {input.predictions} > {log} 2>&1"


rule search_all:
    """Target: search every table row, train each chosen setting with the search seeds, render the tables."""
    input:
        [f"results/tables/searched/{table}.{ext}" for table in grid.searched_tables(config) for ext in ("md", "tex", "csv")],
