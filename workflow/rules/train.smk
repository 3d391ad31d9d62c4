# Training. train_initial: the separate-head VideoPose3D lifter on every labeled dataset at once.
# The resumable checkpoint is deliberately not an output: Snakemake deletes the outputs of a
# job it reruns, and a killed job must find its checkpoint to resume from.


rule train_initial:
    """Train the initial separate-head lifter on all labeled datasets."""
    input:
        **dataset_inputs(labeled_datasets()),
        objectives=objective_inputs,
    output:
        model="results/models/initial/model.pt",
        config="results/models/initial/config.yaml",
        train_log="results/models/initial/train_log.parquet",
    params:
        spec=TRAIN_SPEC,
        launcher=train_launcher(TRAIN_SPEC),
        process_threads=lambda w, threads: process_threads(TRAIN_SPEC, threads),
        data=train_data_args(labeled_datasets()),
        objectives=objective_args,
        out_dir=lambda w, output: os.path.dirname(output.model),
        checkpoint="results/checkpoints/initial.pt",
        seed=rule_seed("train_initial"),
        device=config["device"],
    log:
        "logs/train_initial.log",
    benchmark:
        "benchmarks/train_initial.tsv"
    threads: config["threads"]["train_initial"]
    resources:
        gpu=train_processes(TRAIN_SPEC),
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "{params.launcher}posebridge train --spec {params.spec:q} {params.data} {params.objectives}"
        " --out-dir {params.out_dir} --checkpoint {params.checkpoint}"
        " --seed {params.seed} --device {params.device} --threads {params.process_threads} > {log} 2>&1"
