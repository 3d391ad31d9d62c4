# The skeleton bridge (ACAE): pseudo-GT from the initial model -> the affine-combining
# autoencoder -> consistency fine-tuning (one model per variant), the merged-joints baseline,
# the consistency metric of every model and the ACAE report. Settings: config `acae`; the
# helpers (ACAE_DIR, FINETUNE_*) are in common.smk.

rule pseudo_gt:
    """The initial model's predictions of every format on clean labeled training frames."""
    input:
        model="results/models/initial/model.pt",
        **dataset_inputs(labeled_datasets()),
    output:
        f"{ACAE_DIR}/pseudo_gt.npz",
    params:
        spec=as_json(ACAE["pseudo_gt"]),
        data=train_data_args(labeled_datasets()),
        seed=rule_seed("pseudo_gt"),
        device=config["device"],
    log:
        "logs/pseudo_gt.log",
    benchmark:
        "benchmarks/pseudo_gt.tsv"
    threads: config["threads"]["pseudo_gt"]
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge pseudo-gt --model results/models/initial {params.data} --spec {params.spec:q}"
        " --output {output} --seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"


rule fit_acae:
    """The affine-combining autoencoder on the pseudo-GT, with PCA and mean-pose baselines."""
    input:
        f"{ACAE_DIR}/pseudo_gt.npz",
    output:
        model=f"{ACAE_DIR}/acae.pt",
        metrics=f"{ACAE_DIR}/metrics.parquet",
        history=f"{ACAE_DIR}/history.parquet",
    params:
        spec=as_json(ACAE["fit"]),
        seed=rule_seed("fit_acae"),
    log:
        "logs/fit_acae.log",
    benchmark:
        "benchmarks/fit_acae.tsv"
    # one thread: the fit is sized for about a minute on one core (config.yaml acae.fit)
    threads: 1
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS=1 posebridge fit-acae --pseudo-gt {input} --spec {params.spec:q}"
        " --output {output.model} --metrics {output.metrics} --history {output.history}"
        " --seed {params.seed} --no-progress > {log} 2>&1"


rule finetune:
    """Fine-tune the initial model: continued (control), output_reg, latent or hybrid."""
    input:
        init="results/models/initial/model.pt",
        acae=lambda w: [] if w.variant == "continued" else [f"{ACAE_DIR}/acae.pt"],
        **dataset_inputs(labeled_datasets()),
    output:
        model="results/models/finetune_{variant}/model.pt",
        config="results/models/finetune_{variant}/config.yaml",
        train_log="results/models/finetune_{variant}/train_log.parquet",
    wildcard_constraints:
        variant=names_regex(FINETUNE_VARIANTS),
    params:
        spec=FINETUNE_SPEC,
        launcher=train_launcher(FINETUNE_SPEC),
        process_threads=lambda w, threads: process_threads(FINETUNE_SPEC, threads),
        data=train_data_args(labeled_datasets()),
        variant=lambda w: FINETUNE_ARGS[w.variant],
        out_dir=lambda w, output: os.path.dirname(output.model),
        checkpoint=lambda w: f"results/checkpoints/finetune_{w.variant}.pt",
        seed=lambda w: rule_seed("finetune", w.variant),
        device=config["device"],
    log:
        "logs/finetune/{variant}.log",
    benchmark:
        "benchmarks/finetune/{variant}.tsv"
    threads: config["threads"]["finetune"]
    resources:
        gpu=train_processes(FINETUNE_SPEC),
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "{params.launcher}posebridge finetune --variant {wildcards.variant} --init results/models/initial {params.variant} --spec {params.spec:q} {params.data}"
        " --out-dir {params.out_dir} --checkpoint {params.checkpoint}"
        " --seed {params.seed} --device {params.device} --threads {params.process_threads} > {log} 2>&1"


rule finetune_merged:
    """The merged-joints baseline (one output per joint name), trained from scratch like
    train_initial by the merged variant of `posebridge finetune`."""
    input:
        **dataset_inputs(labeled_datasets()),
        objectives=objective_inputs,
    output:
        model="results/models/merged/model.pt",
        config="results/models/merged/config.yaml",
        train_log="results/models/merged/train_log.parquet",
    params:
        spec=TRAIN_SPEC,
        launcher=train_launcher(TRAIN_SPEC),
        process_threads=lambda w, threads: process_threads(TRAIN_SPEC, threads),
        data=train_data_args(labeled_datasets()),
        objectives=objective_args,
        out_dir=lambda w, output: os.path.dirname(output.model),
        checkpoint="results/checkpoints/merged.pt",
        seed=rule_seed("train_merged"),
        device=config["device"],
    log:
        "logs/finetune_merged.log",
    benchmark:
        "benchmarks/finetune_merged.tsv"
    threads: config["threads"]["finetune_merged"]
    resources:
        gpu=train_processes(TRAIN_SPEC),
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "{params.launcher}posebridge finetune --variant merged --spec {params.spec:q} {params.data} {params.objectives}"
        " --out-dir {params.out_dir} --checkpoint {params.checkpoint}"
        " --seed {params.seed} --device {params.device} --threads {params.process_threads} > {log} 2>&1"


rule consistency:
    """How well each of a model's formats is explained by its other formats, on the test sets."""
    input:
        model="results/models/{model}/model.pt",
        acae=f"{ACAE_DIR}/acae.pt",
        **dataset_inputs(test_datasets()),
    output:
        "results/consistency/{model}.parquet",
    wildcard_constraints:
        model=names_regex(MODELS),
    params:
        model_dir=lambda w, input: os.path.dirname(input.model),
        data=" ".join(f"--dataset {dataset_h5(n)} --detections {detections_h5(n)}" for n in test_datasets()),
        max_frames=ACAE["consistency_max_frames"],
        device=config["device"],
    log:
        "logs/consistency/{model}.log",
    benchmark:
        "benchmarks/consistency/{model}.tsv"
    threads: config["threads"]["consistency"]
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge consistency --model {params.model_dir} {params.data} --acae {input.acae}"
        " --max-frames {params.max_frames} --output {output}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule report_acae:
    """The skeleton bridge's report: comparison table, ACAE weights, latent points, reconstruction."""
    input:
        tables=eval_tables(),
        consistency=expand("results/consistency/{model}.parquet", model=MODELS),
        acae=f"{ACAE_DIR}/acae.pt",
        metrics=f"{ACAE_DIR}/metrics.parquet",
        pseudo_gt=f"{ACAE_DIR}/pseudo_gt.npz",
    output:
        comparison=report(REPORT_FILES["acae_comparison"], caption="../report/acae_comparison.rst",
                          category="Skeleton bridge (ACAE)", labels={"table": "model comparison"}),
        comparison_csv=report(REPORT_FILES["acae_comparison_csv"], caption="../report/acae_comparison.rst",
                              category="Skeleton bridge (ACAE)", labels={"table": "model comparison (CSV)"}),
        reconstruction=report(REPORT_FILES["acae_reconstruction"], caption="../report/acae_reconstruction.rst",
                              category="Skeleton bridge (ACAE)", labels={"table": "ACAE vs PCA vs mean pose"}),
        weights=report(REPORT_FILES["acae_weights"], caption="../report/acae_weights.rst",
                       category="Skeleton bridge (ACAE)", labels={"figure": "encoder / decoder weights"}),
        latents=report(REPORT_FILES["acae_latents"], caption="../report/acae_latents.rst",
                       category="Skeleton bridge (ACAE)", labels={"figure": "latent points on a pose"}),
    params:
        out_dir=lambda w, output: os.path.dirname(output.comparison),
    log:
        "logs/report_acae.log",
    benchmark:
        "benchmarks/report_acae.tsv"
    threads: config["threads"]["report_acae"]
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS={threads} posebridge report-acae --eval {input.tables}"
        " --consistency {input.consistency} --acae {input.acae} --acae-metrics {input.metrics}"
        " --pseudo-gt {input.pseudo_gt} --output-dir {params.out_dir} > {log} 2>&1"
