# Reporting: mean ± std over seeds (and the DVC metrics summaries), the paper's tables, figures.


rule aggregate:
    """Mean and sample std over seeds of one experiment's metrics, its mean learning curve and its flat test
    summary (DVC metrics: one file, so one row of `dvc metrics show`, per experiment)."""
    input:
        metrics=lambda w: run_file(w.dataset, w.experiment, "metrics.json"),
        histories=lambda w: run_file(w.dataset, w.experiment, "history.csv"),
    output:
        metrics=layout.AGGREGATE,
        curve=layout.CURVE,
        summary=layout.SUMMARY,
    log:
        "logs/aggregate/{dataset}/{experiment}.log",
    benchmark:
        benchmark_file("aggregate/{dataset}/{experiment}")
    localrule: True
    conda:
        PIPELINE_ENV
    params:
        code=CODE["reporting"],
    shell:
        "python -m pipeline aggregate --out {output.metrics} --curve {output.curve} --summary {output.summary}"
        " {input.metrics} > {log} 2>&1"


rule headline:
    """Every experiment's test Acc2, MAE and Corr in one JSON whose keys are unique (dataset, experiment,
    metric): the DVC metrics that `dvc exp show` lists in readable columns (pipeline/reporting/headline.py).
    """
    input:
        summary_targets(),
    output:
        layout.HEADLINE,
    log:
        "logs/headline.log",
    localrule: True
    conda:
        PIPELINE_ENV
    params:
        code=CODE["reporting"],
    shell:
        "python -m pipeline headline --out {output} {input} > {log} 2>&1"


rule tables:
    """One of the paper's tables, measured rows mean ± std, reported rows as the paper gives them; the
    other measured rows tested against the reference row (their per-seed predictions: the bootstrap)."""
    input:
        aggregates=table_inputs,
        predictions=table_predictions,
    output:
        md=f"{layout.TABLE}.md",
        tex=f"{layout.TABLE}.tex",
        csv=report(
            f"{layout.TABLE}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table=_alternatives(grid.active_tables(config)),
    localrule: True
    conda:
        PIPELINE_ENV
    params:
        spec=lambda w: json.dumps(grid.table_spec(config, w.table), sort_keys=True),
        caption=lambda w: grid.table_spec(config, w.table)["caption"],
        code=CODE["reporting"],
    shell:
        "python -m pipeline tables --spec {params.spec:q} --out "
        + layout.TABLE.format(table="{wildcards.table}")
        + " {input.aggregates}"
        " --predictions {input.predictions} > {log} 2>&1"


rule figures_forest:
    """Forest plot of a table: each row's difference from the reference row with its 95% interval."""
    input:
        rules.tables.output.csv,
    output:
        report(
            layout.FOREST_FIGURE,
            caption="../report/forest.rst",
            category="Figures",
            subcategory="Differences from the reference row",
            labels={"table": "{table}"},
        ),
    log:
        "logs/figures/{table}_forest.log",
    localrule: True
    conda:
        PIPELINE_ENV
    params:
        title=lambda w: grid.table_spec(config, w.table)["title"],
        caption=lambda w: grid.table_spec(config, w.table)["caption"],
        code=CODE["reporting"],
    shell:
        "python -m pipeline figures forest --table {input} --title {params.title:q} --out {output} > {log} 2>&1"


rule figures_curves:
    """Learning curves of one experiment: every seed's training loss and validation MAE per epoch."""
    input:
        lambda w: run_file(w.dataset, w.experiment, "history.csv"),
    output:
        report(
            layout.CURVES_FIGURE,
            caption="../report/curves.rst",
            category="Figures",
            subcategory="Learning curves",
            labels={"dataset": "{dataset}", "experiment": "{experiment}"},
        ),
    log:
        "logs/figures/curves/{dataset}/{experiment}.log",
    localrule: True
    conda:
        PIPELINE_ENV
    params:
        code=CODE["reporting"],
    shell:
        "python -m pipeline figures curves --title '{wildcards.dataset} / {wildcards.experiment}'"
        " --out {output} {input} > {log} 2>&1"


rule figures_tsne:
    """Fig. 3: t-SNE of the fused test embeddings learned with and without contrastive learning."""
    input:
        unpack(tsne_inputs),
    output:
        report(
            layout.TSNE_FIGURE,
            caption="../report/tsne.rst",
            category="Figures",
            subcategory="Embedding space (Fig. 3)",
            labels={"dataset": "{dataset}"},
        ),
    log:
        "logs/figures/tsne_{dataset}.log",
    benchmark:
        benchmark_file("figures/tsne_{dataset}")
    conda:
        PIPELINE_ENV
    threads: 1
    resources:
        **rule_resources("default", mem_mb=2000, runtime=30),
    params:
        perplexity=lambda w: grid.tsne_spec(config)["perplexity"],
        max_points=lambda w: grid.tsne_spec(config)["max_points"],
        label=lambda w: dataset_label(config["datasets"][w.dataset], w.dataset),
        code=CODE["reporting"],
    shell:
        "python -m pipeline figures tsne --with {input.with_cl} --without {input.without_cl}"
        " --perplexity {params.perplexity} --max-points {params.max_points} --title {params.label:q}"
        " --out {output} > {log} 2>&1"
