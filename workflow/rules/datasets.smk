# Datasets: one rule per source, each writing results/datasets/{dataset}.h5 + .parquet
# (docs/internals.md "Converted dataset"). A rule's wildcard constraint admits exactly the
# configured datasets of its source(s): `synth_generate` the synthetic ones, `convert` every real one,
# so no output is claimed by two rules.


rule synth_generate:
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
        "logs/synth_generate/{dataset}.log",
    benchmark:
        "benchmarks/synth_generate/{dataset}.tsv"
    threads: rule_threads("synth_generate")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS={threads} posebridge synth generate --name {wildcards.dataset}"
        " --spec {params.spec:q} --role {params.role} --seed {params.seed}"
        " --output {output.h5} > {log} 2>&1"


rule convert:
    """Convert one real dataset from the files in its configured folder (`path`)."""
    # No input: the folder is checked when the job runs (`posebridge convert` names every missing
    # file and where to get it), so a dry run works before the data is in place. Changing the
    # entry (path, role, convert options) reruns it through params; replacing the files does not.
    output:
        h5="results/datasets/{dataset}.h5",
        index="results/datasets/{dataset}.parquet",
    wildcard_constraints:
        dataset=names_regex(real_datasets()),
    params:
        # the entry minus what only later rules read: choosing another detector reconverts nothing
        entry=lambda w: as_json({k: v for k, v in DATASETS[w.dataset].items()
                                 if k not in ("detector", "train_format")}),
        source=lambda w: DATASETS[w.dataset]["source"],
        path=lambda w: DATASETS[w.dataset]["path"],
        role=lambda w: DATASETS[w.dataset]["role"],
        options=lambda w: convert_args(w.dataset),
    log:
        "logs/convert/{dataset}.log",
    benchmark:
        "benchmarks/convert/{dataset}.tsv"
    threads: rule_threads("convert")
    resources:
        mem_mb=8000,
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS={threads} posebridge convert --dataset {params.source} --source {params.path:q}"
        " --name {wildcards.dataset} --role {params.role} {params.options}"
        " --output {output.h5} > {log} 2>&1"
