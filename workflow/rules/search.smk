# The paper's protocol (Section 4.4): a random search over `search.space`, chosen on validation, then the
# chosen setting trained with `search.seeds` (5 in the paper). Not part of `all`:
#   snakemake --cores 4 search_all


rule search:
    """Train `trials` sampled settings on one dataset and keep the best on the validation set."""
    input:
        data=rules.align.output[0],
        features=lambda w: features_input(w.dataset, SEARCH_EXPERIMENT),
    output:
        best="results/search/{dataset}/best.json",
        trials="results/search/{dataset}/trials.csv",
    params:
        spec=lambda w: json.dumps(search_spec(), sort_keys=True),
        out_dir=lambda w, output: Path(output.best).parent,
        features=lambda w: features_arg(w.dataset, SEARCH_EXPERIMENT),
        fingerprint=lambda w: fingerprints.fingerprint(data_fp(w.dataset), CODE["model"]),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/search/{dataset}.log",
    benchmark:
        "results/benchmarks/search/{dataset}.tsv"
    threads: res("search", "threads", 1)
    resources:
        mem_mb=res("search", "mem_mb", 4000),
        runtime=res("search", "runtime", 720),
        gpu=res("search", "gpu", 0),
    shell:
        "python -m pipeline search --spec {params.spec:q} --dataset {wildcards.dataset} --data {input.data}"
        " {params.features} --out {params.out_dir} > {log} 2>&1"


rule search_settings:
    """The chosen setting as a run-settings file, trained like any experiment (name: search_best)."""
    input:
        rules.search.output.best,
    output:
        layout.SETTINGS.replace("{experiment}", SEARCH_EXPERIMENT),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"logs/settings/{{dataset}}/{SEARCH_EXPERIMENT}.log",
    localrule: True
    script:
        "../scripts/settings.py"


rule search_all:
    """Target: search, then the chosen setting's mean ± std over the search seeds, per dataset."""
    input:
        [aggregate_path(d, SEARCH_EXPERIMENT) for d in (grid.search_datasets(config) if config.get("search") else [])],
