# Reporting: mean ± std over seeds (and the DVC metrics summaries), the paper's tables, figures.


rule aggregate:
    """Mean and sample std over seeds of one experiment's metrics, its mean learning curve and its flat test
    summary (DVC metrics: one file, so one row of `dvc metrics show`, per experiment)."""
    input:
        metrics=lambda w: run_file(w.dataset, w.experiment, "metrics.json"),
        histories=lambda w: run_file(w.dataset, w.experiment, "history.csv"),
    output:
        metrics="results/metrics/{dataset}/{experiment}.json",
        curve="results/curves/{dataset}/{experiment}.csv",
        summary="results/summary/{dataset}/{experiment}.json",
    params:
        code=CODE["reporting"],
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/aggregate/{dataset}/{experiment}.log",
    benchmark:
        "results/benchmarks/aggregate/{dataset}/{experiment}.tsv"
    localrule: True
    shell:
        "python -m pipeline aggregate --out {output.metrics} --curve {output.curve} --summary {output.summary}"
        " {input.metrics} > {log} 2>&1"


rule headline:
    """Every experiment's test Acc2, MAE and Corr in one JSON whose keys are unique (dataset, experiment,
    metric): the DVC metrics that `dvc exp show` lists in readable columns (pipeline/reporting/headline.py)."""
    input:
        [f"results/summary/{d}/{e}.json" for d, experiments in GRID.items() for e in experiments],
    output:
        "results/headline.json",
    params:
        code=CODE["reporting"],
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/headline.log",
    localrule: True
    shell:
        "python -m pipeline headline --out {output} {input} > {log} 2>&1"


rule tables:
    """One of the paper's tables, measured rows mean ± std, reported rows as the paper gives them; the
    other measured rows tested against the reference row (their per-seed predictions: the bootstrap)."""
    input:
        aggregates=table_inputs,
        predictions=table_predictions,
    output:
        md="results/tables/{table}.md",
        tex="results/tables/{table}.tex",
        csv=report(
            "results/tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
    params:
        spec=lambda w: json.dumps(grid.table_spec(config, w.table), sort_keys=True),
        caption=lambda w: grid.table_spec(config, w.table)["caption"],
        code=CODE["reporting"],
    wildcard_constraints:
        table=_alternatives(grid.active_tables(config)),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/tables/{table}.log",
    localrule: True
    shell:
        "python -m pipeline tables --spec {params.spec:q} --out results/tables/{wildcards.table} {input.aggregates}"
        " --predictions {input.predictions} > {log} 2>&1"


rule figures_forest:
    """Forest plot of a table: each row's difference from the reference row with its 95% interval."""
    input:
        rules.tables.output.csv,
    output:
        report(
            "results/figures/{table}_forest.png",
            caption="../report/forest.rst",
            category="Figures",
            subcategory="Differences from the reference row",
            labels={"table": "{table}"},
        ),
    params:
        title=lambda w: grid.table_spec(config, w.table)["title"],
        caption=lambda w: grid.table_spec(config, w.table)["caption"],
        code=CODE["reporting"],
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/figures/{table}_forest.log",
    localrule: True
    shell:
        "python -m pipeline figures forest --table {input} --title {params.title:q} --out {output} > {log} 2>&1"


rule figures_curves:
    """Learning curves of one experiment: every seed's training loss and validation MAE per epoch."""
    input:
        lambda w: run_file(w.dataset, w.experiment, "history.csv"),
    output:
        report(
            "results/figures/curves/{dataset}/{experiment}.png",
            caption="../report/curves.rst",
            category="Figures",
            subcategory="Learning curves",
            labels={"dataset": "{dataset}", "experiment": "{experiment}"},
        ),
    params:
        code=CODE["reporting"],
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/figures/curves/{dataset}/{experiment}.log",
    localrule: True
    shell:
        "python -m pipeline figures curves --title '{wildcards.dataset} / {wildcards.experiment}'"
        " --out {output} {input} > {log} 2>&1"


rule figures_tsne:
    """Fig. 3: t-SNE of the fused test embeddings learned with and without contrastive learning."""
    input:
        unpack(tsne_inputs),
    output:
        report(
            "results/figures/tsne_{dataset}.png",
            caption="../report/tsne.rst",
            category="Figures",
            subcategory="Embedding space (Fig. 3)",
            labels={"dataset": "{dataset}"},
        ),
    params:
        perplexity=lambda w: grid.tsne_spec(config)["perplexity"],
        max_points=lambda w: grid.tsne_spec(config)["max_points"],
        label=lambda w: dataset_label(config["datasets"][w.dataset], w.dataset),
        code=CODE["reporting"],
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/figures/tsne_{dataset}.log",
    benchmark:
        "results/benchmarks/figures/tsne_{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb", 2000),
        runtime=res("default", "runtime", 30),
        **placement("default"),
    shell:
        "python -m pipeline figures tsne --with {input.with_cl} --without {input.without_cl}"
        " --perplexity {params.perplexity} --max-points {params.max_points} --title {params.label:q}"
        " --out {output} > {log} 2>&1"
