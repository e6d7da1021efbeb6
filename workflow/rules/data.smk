# Data stage: raw dataset (synthesized offline, or downloaded) -> word-aligned HDF5 -> cached frozen
# language-model features; or, for `source: import`, the researcher's pickles -> the same aligned HDF5.
# The `data` target builds all of it (the DVC `data` stage runs it).


rule synthesize:
    """Generate the embedded synthetic dataset (offline, deterministic for its seed)."""
    output:
        RAW_FILES,
    log:
        "logs/synthesize/{dataset}.log",
    benchmark:
        benchmark_file("synthesize/{dataset}")
    wildcard_constraints:
        dataset=_alternatives(SYNTHETIC),
    conda:
        PIPELINE_ENV
    threads: 1
    resources:
        **rule_resources("default", mem_mb=2000, runtime=30),
    params:
        raw_dir=lambda w, output: Path(output[0]).parent,
        options=lambda w: synthesize_options(dataset_spec(w)),
        code=CODE["data"],
    shell:
        "python -m pipeline synthesize {params.raw_dir} {params.options} > {log} 2>&1"


rule download:
    """Fetch the CMU-MOSI/MOSEI computational sequences and standard folds (needs the network)."""
    output:
        RAW_FILES,
    log:
        "logs/download/{dataset}.log",
    benchmark:
        benchmark_file("download/{dataset}")
    wildcard_constraints:
        dataset=_alternatives(DOWNLOADED),
    localrule: True  # on the submitting host: compute nodes often have no network
    conda:
        PIPELINE_ENV
    params:
        raw_dir=lambda w, output: Path(output[0]).parent,
        name=lambda w: dataset_spec(w).get("name", w.dataset),
        mirror=lambda w: (
            f"--mirror {shlex.quote(dataset_spec(w)['mirror'])}" if "mirror" in dataset_spec(w) else ""
        ),
    shell:
        "python -m pipeline download {params.name} {params.raw_dir} {params.mirror} > {log} 2>&1"


rule align:
    """Average the acoustic and visual frames over each word; one HDF5 with the train/valid/test splits."""
    input:
        RAW_FILES,
    output:
        layout.ALIGNED,
    log:
        "logs/align/{dataset}.log",
    benchmark:
        benchmark_file("align/{dataset}")
    wildcard_constraints:
        dataset=f"(?!(?:{_alternatives(IMPORTED)})$)[A-Za-z0-9_]+",  # imported datasets: rule import_
    conda:
        PIPELINE_ENV
    threads: 1
    resources:
        **rule_resources("default", mem_mb=2000, runtime=30),
    params:
        raw_dir=lambda w, input: Path(input[0]).parent,
        seq_len=lambda w: grid.dataset_seq_len(config, w.dataset),
        data=lambda w: data_fp(w.dataset),
    shell:
        "python -m pipeline align {params.raw_dir} {output} --seq-len {params.seq_len} > {log} 2>&1"


rule import_:
    """Read MMSA / MAG-BERT / MISA pickles (restricted unpickler) into the aligned HDF5 that align writes."""
    input:
        lambda w: [str(path) for path in import_sources(dataset_spec(w))],
    output:
        layout.ALIGNED,
    log:
        "logs/import/{dataset}.log",
    benchmark:
        benchmark_file("import/{dataset}")
    wildcard_constraints:
        dataset=_alternatives(IMPORTED),
    conda:
        PIPELINE_ENV
    threads: 1
    resources:
        **rule_resources("default", mem_mb=2000, runtime=30),
    params:
        format=lambda w: dataset_spec(w)["format"],
        path=lambda w: shlex.quote(dataset_spec(w)["path"]),
        seq_len=lambda w: grid.dataset_seq_len(config, w.dataset),
        clip_base=lambda w: (
            f"--clip-base {dataset_spec(w)['clip_base']}" if "clip_base" in dataset_spec(w) else ""
        ),
        data=lambda w: data_fp(w.dataset),
    shell:
        "python -m pipeline import {params.format} {params.path} {output} --seq-len {params.seq_len}"
        " --dataset {wildcards.dataset} {params.clip_base} > {log} 2>&1"


rule fetch:
    """Copy a hub language model into data/models/<name> once, for every job to load with the hub offline."""
    output:
        f"{layout.MODELS_DIR}/{{model}}/config.json",
    log:
        "logs/fetch/{model}.log",
    wildcard_constraints:
        model=_alternatives(HUB_MODELS),
    localrule: True  # on the submitting host, with its own HF_HUB_OFFLINE (jobs run with the hub offline)
    conda:
        PIPELINE_ENV
    params:
        name=lambda w: HUB_MODELS[w.model],
        folder=lambda w, output: Path(output[0]).parent,
    shell:
        'HF_HUB_OFFLINE="$SUBMIT_HF_HUB_OFFLINE" python -m pipeline fetch {params.name:q} --out {params.folder}'
        " > {log} 2>&1"


rule features:
    """Cache the frozen language model's text features once per dataset (frozen-encoder runs)."""
    input:
        data=rules.align.output,
        model=lambda w: language_model_input(FEATURES[w.lm]["language_model"]),
    output:
        layout.FEATURES,
    log:
        "logs/features/{dataset}-{lm}.log",
    benchmark:
        benchmark_file("features/{dataset}-{lm}")
    wildcard_constraints:
        lm=_alternatives(FEATURES),
    conda:
        PIPELINE_ENV
    threads: res("features", "threads", 2)
    resources:
        **rule_resources("features", mem_mb=4000, runtime=60, gpu=0),
    params:
        model=lambda w: shlex.quote(FEATURES[w.lm]["language_model"]),
        token=lambda w: FEATURES[w.lm]["text_token"],
        max_tokens=lambda w: FEATURES[w.lm]["max_text_tokens"],
        fingerprint=lambda w: fingerprints.fingerprint(data_fp(w.dataset), CODE["features"]),
    shell:
        "python -m pipeline features --data {input.data} --model {params.model} --token {params.token}"
        " --max-tokens {params.max_tokens} --out {output} > {log} 2>&1"


rule data:
    """Target: raw, aligned and feature-cached data of every dataset the tables use (DVC stage `data`)."""
    input:
        data_targets(),
