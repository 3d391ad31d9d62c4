# The ensemble: the trained models named in config `ensemble` as one model whose poses are their
# mean (posebridge.inference.ensemble), evaluated beside them as results/models/ensemble/.


rule ensemble:
    """One model file holding the members' lifters; every step that lifts averages their poses."""
    input:
        members=expand("results/models/{model}/model.pt", model=ENSEMBLE_MEMBERS),
    output:
        model="results/models/ensemble/model.pt",
        config="results/models/ensemble/config.yaml",
    params:
        members=lambda w, input: " ".join(f"--model {os.path.dirname(p)}" for p in input.members),
        out_dir=lambda w, output: os.path.dirname(output.model),
    log:
        "logs/ensemble.log",
    benchmark:
        "benchmarks/ensemble.tsv"
    threads: rule_threads("ensemble")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge ensemble {params.members} --out-dir {params.out_dir} > {log} 2>&1"
