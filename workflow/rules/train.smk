# Training grid: one job per (dataset, experiment, seed), then its evaluation on the test set.


rule settings:
    """Write an experiment's resolved settings (base + its overrides); rewritten only when they change."""
    output:
        layout.SETTINGS,
    log:
        "logs/settings/{dataset}/{experiment}.log",
    wildcard_constraints:
        experiment=_alternatives(sweeps.experiment_overrides(config)),
    localrule: True
    conda:
        PIPELINE_ENV
    params:
        settings=lambda w: grid.run_settings(config, w.experiment),
    script:
        "../scripts/settings.py"


rule train:
    """Train one run (HyCon or a baseline, by model.arch); model selection on the validation set only."""
    input:
        settings=layout.SETTINGS,
        data=rules.align.output[0],
        features=lambda w: features_input(w.dataset, w.experiment),
        language_model=lambda w: run_language_model(w.experiment),
    output:
        model=f"{RUN_DIR}/model.pt",
        history=f"{RUN_DIR}/history.csv",
        timings=f"{RUN_DIR}/timings.json",
        summary=f"{RUN_DIR}/train.json",
    log:
        "logs/train/{dataset}/{experiment}/seed{seed}.log",
    benchmark:
        benchmark_file("train/{dataset}/{experiment}/seed{seed}")
    conda:
        PIPELINE_ENV
    threads: res("train", "threads", 1)
    resources:
        **rule_resources("train", mem_mb=4000, runtime=60, gpu=0),
    params:
        run_dir=lambda w, output: Path(output.model).parent,
        features=lambda w: features_arg(w.dataset, w.experiment),
        fingerprint=run_fingerprint,
    shell:
        "python -m pipeline train --config {input.settings} --data {input.data} {params.features}"
        " --seed {wildcards.seed} --out {params.run_dir} > {log} 2>&1"


rule evaluate:
    """Test-set metrics, predictions and representations of the best (validation-selected) checkpoint; the
    fused ones only for the experiments the t-SNE figure reads (tensor fusion's take 405 MB per run)."""
    input:
        model=rules.train.output.model,
        data=rules.align.output[0],
        features=lambda w: features_input(w.dataset, w.experiment),
        language_model=lambda w: run_language_model(w.experiment),
    output:
        metrics=f"{RUN_DIR}/metrics.json",
        predictions=f"{RUN_DIR}/predictions.csv",
        embeddings=f"{RUN_DIR}/embeddings.npz",
    log:
        "logs/evaluate/{dataset}/{experiment}/seed{seed}.log",
    benchmark:
        benchmark_file("evaluate/{dataset}/{experiment}/seed{seed}")
    conda:
        PIPELINE_ENV
    threads: res("evaluate", "threads", 1)
    resources:
        **rule_resources("evaluate", mem_mb=4000, runtime=30, gpu=0),
    params:
        run_dir=lambda w, input: Path(input.model).parent,
        features=lambda w: features_arg(w.dataset, w.experiment),
        fused=lambda w: "--fused" if w.experiment in fused_experiments() else "",
        fingerprint=run_fingerprint,
    shell:
        "python -m pipeline evaluate --run {params.run_dir} --data {input.data} {params.features}"
        " --dataset {wildcards.dataset} --experiment {wildcards.experiment} {params.fused} > {log} 2>&1"
