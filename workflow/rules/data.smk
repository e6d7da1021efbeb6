# Data stage: raw dataset (synthesized offline, or downloaded) -> word-aligned HDF5 -> cached frozen
# language-model features. The `data` target builds all of it (the DVC `data` stage runs it).

rule synthesize:
    """Generate the embedded synthetic dataset (offline, deterministic for its seed)."""
    output:
        expand("data/raw/{{dataset}}/{name}", name=RAW_FILES),
    params:
        options=lambda w: synthesize_options(dataset_spec(w)),
        code=CODE["data"],
    wildcard_constraints:
        dataset=_alternatives(SYNTHETIC),
    log:
        "logs/synthesize/{dataset}.log",
    benchmark:
        "results/benchmarks/synthesize/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb", 2000),
        runtime=res("default", "runtime", 30),
    shell:
        "python -m pipeline synthesize data/raw/{wildcards.dataset} {params.options} > {log} 2>&1"


rule download:
    """Fetch the CMU-MOSI/MOSEI computational sequences and standard folds (needs the network)."""
    output:
        expand("data/raw/{{dataset}}/{name}", name=RAW_FILES),
    params:
        name=lambda w: dataset_spec(w).get("name", w.dataset),
        mirror=lambda w: f"--mirror {shlex.quote(dataset_spec(w)['mirror'])}" if "mirror" in dataset_spec(w) else "",
    wildcard_constraints:
        dataset=_alternatives(DOWNLOADED),
    log:
        "logs/download/{dataset}.log",
    benchmark:
        "results/benchmarks/download/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb", 2000),
        runtime=res("default", "runtime", 30),
    shell:
        "python -m pipeline download {params.name} data/raw/{wildcards.dataset} {params.mirror} > {log} 2>&1"


rule align:
    """Average the acoustic and visual frames over each word; one HDF5 with the train/valid/test splits."""
    input:
        expand("data/raw/{{dataset}}/{name}", name=RAW_FILES),
    output:
        "data/aligned/{dataset}.h5",
    params:
        seq_len=lambda w: wc.dataset_seq_len(config, w.dataset),
        data=lambda w: data_fp(w.dataset),
    log:
        "logs/align/{dataset}.log",
    benchmark:
        "results/benchmarks/align/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb", 2000),
        runtime=res("default", "runtime", 30),
    shell:
        "python -m pipeline align data/raw/{wildcards.dataset} {output} --seq-len {params.seq_len} > {log} 2>&1"


rule features:
    """Cache the frozen language model's text features once per dataset (frozen-encoder runs)."""
    input:
        "data/aligned/{dataset}.h5",
    output:
        "data/features/{dataset}-{lm}.h5",
    params:
        model=lambda w: shlex.quote(FEATURES[w.lm]["language_model"]),
        token=lambda w: FEATURES[w.lm]["text_token"],
        max_tokens=lambda w: FEATURES[w.lm]["max_text_tokens"],
        fingerprint=lambda w: wc.fingerprint(data_fp(w.dataset), CODE["features"]),
    wildcard_constraints:
        lm=_alternatives(FEATURES),
    log:
        "logs/features/{dataset}-{lm}.log",
    benchmark:
        "results/benchmarks/features/{dataset}-{lm}.tsv"
    threads: res("features", "threads", 2)
    resources:
        mem_mb=res("features", "mem_mb", 4000),
        runtime=res("features", "runtime", 60),
        gpu=res("features", "gpu", 0),
    shell:
        "python -m pipeline features --data {input} --model {params.model} --token {params.token}"
        " --max-tokens {params.max_tokens} --out {output} > {log} 2>&1"


rule data:
    """Target: raw, aligned and feature-cached data of every dataset the tables use (DVC stage `data`)."""
    input:
        data_targets(),
