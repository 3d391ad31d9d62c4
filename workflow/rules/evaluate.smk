# Evaluation: every model in MODELS on every test set (labeled datasets' test split and role
# `test` datasets), one Parquet table of metrics plus a few example frames for the report.


rule evaluate:
    """Evaluate one model on one test set."""
    input:
        model="results/models/{model}/model.pt",
        model_config="results/models/{model}/config.yaml",
        h5=lambda w: dataset_h5(w.dataset),
        index=lambda w: dataset_index(w.dataset),
        detections=lambda w: detections_h5(w.dataset),
    output:
        table="results/eval/{model}/{dataset}.parquet",
        examples="results/eval/{model}/{dataset}.examples.npz",
    wildcard_constraints:
        model=names_regex(MODELS),
        dataset=names_regex(test_datasets()),
    params:
        spec=as_json(config["evaluate"]),
        model_dir=lambda w, input: os.path.dirname(input.model),
        device=config["device"],
    log:
        "logs/evaluate/{model}/{dataset}.log",
    benchmark:
        "benchmarks/evaluate/{model}/{dataset}.tsv"
    threads: config["threads"]["evaluate"]
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge evaluate --model {params.model_dir}"
        " --dataset {input.h5} --detections {input.detections} --spec {params.spec:q}"
        " --output {output.table} --examples {output.examples}"
        " --device {params.device} --threads {threads} > {log} 2>&1"
