# Sweeps (config `sweeps`, pipeline/sweeps.py): every cell is an experiment trained and aggregated by the
# rules of train.smk and reporting.smk; here each sweep's table and heatmap. Not part of `all`:
#   snakemake --cores 4 sweep


rule sweep_report:
    """A sweep's table (CSV, Markdown) and heatmap of test MAE and Acc2 over its keys, from its cells' aggregates."""
    input:
        lambda w: [aggregate_path(sweep_dataset(w.sweep), cell) for cell in SWEEPS[w.sweep]],
    output:
        md=f"{layout.SWEEP}.md",
        csv=report(
            f"{layout.SWEEP}.csv",
            caption="../report/sweep_table.rst",
            category="Sweeps",
            labels={"sweep": "{sweep}", "file": "table"},
        ),
        figure=report(
            layout.SWEEP_FIGURE,
            caption="../report/sweep.rst",
            category="Sweeps",
            labels={"sweep": "{sweep}", "file": "heatmap"},
        ),
    log:
        "logs/sweeps/{sweep}.log",
    wildcard_constraints:
        sweep=_alternatives(SWEEPS),
    localrule: True
    conda:
        PIPELINE_ENV
    params:
        spec=lambda w: json.dumps(sweeps.sweep_spec(config, w.sweep), sort_keys=True),
        label=lambda w: sweeps.sweep_spec(config, w.sweep)["dataset_label"],
        code=CODE["reporting"],
    shell:
        "python -m pipeline sweep --spec {params.spec:q} --out "
        + layout.SWEEP.format(sweep="{wildcards.sweep}")
        + " --figure {output.figure} {input} > {log} 2>&1"


rule sweep:
    """Target: every sweep's runs, table and heatmap."""
    input:
        [f"{layout.SWEEP}.{ext}".format(sweep=s) for s in SWEEPS for ext in ("md", "csv")],
        [layout.SWEEP_FIGURE.format(sweep=s) for s in SWEEPS],
