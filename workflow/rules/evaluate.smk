# Evaluation: every model in MODELS on every test set (labeled datasets' test split and role
# `test` datasets), one Parquet table of metrics plus a few example frames per test set for the
# report. One job per model scores all its test sets: the model and torch load once, not once
# per test set (most of a small test set's time).


rule evaluate:
    """Evaluate one model on every test set."""
    input:
        model="results/models/{model}/model.pt",
        model_config="results/models/{model}/config.yaml",
        **dataset_inputs(test_datasets()),
    output:
        tables=eval_tables(["{model}"]),
        examples=eval_examples(["{model}"]),
    wildcard_constraints:
        model=names_regex(MODELS),
    params:
        spec=as_json(config["evaluate"]),
        model_dir=lambda w, input: os.path.dirname(input.model),
        sets=lambda w: evaluate_args(w.model),
        device=config["device"],
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    threads: rule_threads("evaluate")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge evaluate --model {params.model_dir} {params.sets} --spec {params.spec:q}"
        " --device {params.device} --threads {threads} > {log} 2>&1"
