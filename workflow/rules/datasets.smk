# Datasets: one rule per source, each writing results/datasets/{dataset}.h5 + .parquet
# (docs/internals.md "Converted dataset"). A rule's wildcard constraint admits exactly the
# configured datasets of its source, so adding a source (a download + convert rule for a real
# dataset) is a new rule here with its own constraint; no other rule changes.


rule synthesize:
    """Generate one synthetic dataset of the embedded benchmark."""
    output:
        h5="results/datasets/{dataset}.h5",
        index="results/datasets/{dataset}.parquet",
    wildcard_constraints:
        dataset=names_regex(datasets_where(source="synthetic")),
    params:
        spec=lambda w: as_json(DATASETS[w.dataset]["synth"]),
        role=lambda w: DATASETS[w.dataset]["role"],
        seed=lambda w: rule_seed("synthesize", w.dataset),
    log:
        "logs/synthesize/{dataset}.log",
    benchmark:
        "benchmarks/synthesize/{dataset}.tsv"
    threads: config["threads"]["synthesize"]
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS={threads} posebridge synth generate --name {wildcards.dataset}"
        " --spec {params.spec:q} --role {params.role} --seed {params.seed}"
        " --output {output.h5} > {log} 2>&1"
