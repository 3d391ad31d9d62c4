# The report: metric tables, the baseline comparison, training curves, skeleton renderings and the
# interactive 3D viewer, each flagged for `snakemake --report` with a caption from workflow/report/.


rule report:
    """Tables and figures of every evaluation and training run."""
    input:
        tables=eval_tables(),
        examples=eval_examples(),
        train_logs=expand("results/models/{model}/train_log.parquet", model=TRAINED_MODELS),
    output:
        metrics=report(
            REPORT_FILES["metrics"],
            caption="../report/metrics.rst",
            category="Evaluation",
            labels={"table": "metrics per model, test set and format"},
        ),
        baseline=report(
            REPORT_FILES["baseline"],
            caption="../report/baseline.rst",
            category="Evaluation",
            labels={"table": "lifter vs mean-pose baseline"},
        ),
        summary=report(
            REPORT_FILES["summary"],
            caption="../report/summary.rst",
            category="Evaluation",
            labels={"table": "summary (CSV)"},
        ),
        curves=report(
            REPORT_FILES["curves"],
            caption="../report/training_curves.rst",
            category="Training",
            labels={"figure": "training curves"},
        ),
        skeletons=report(
            REPORT_FILES["skeletons"],
            caption="../report/skeletons.rst",
            category="Predictions",
            labels={"figure": "predicted vs ground-truth skeletons"},
        ),
    params:
        model_dirs=lambda w, input: [os.path.dirname(p) for p in input.train_logs],
        out_dir=lambda w, output: os.path.dirname(output.metrics),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    threads: rule_threads("report")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS={threads} posebridge report --eval {input.tables}"
        " --model-dir {params.model_dirs} --output-dir {params.out_dir} > {log} 2>&1"


rule viewer:
    """An interactive 3D viewer (offline HTML) of every model's predictions against ground truth."""
    input:
        models=expand("results/models/{model}/model.pt", model=MODELS),
        h5=lambda w: dataset_h5(VIEWER_DATASET),
        index=lambda w: dataset_index(VIEWER_DATASET),
        detections=lambda w: detections_h5(VIEWER_DATASET),
    output:
        viewer=report(
            REPORT_FILES.get("viewer", f"{REPORT_DIR}/viewer.html"),
            caption="../report/viewer.rst",
            category="Predictions",
            labels={"figure": "interactive 3D viewer (prediction vs ground truth)"},
        ),
    params:
        model_dirs=lambda w, input: [os.path.dirname(p) for p in input.models],
        device=config["device"],
    log:
        "logs/viewer.log",
    benchmark:
        "benchmarks/viewer.tsv"
    threads: rule_threads("viewer")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge viewer --model {params.model_dirs} --dataset {input.h5} --detections {input.detections}"
        " --output {output.viewer} --device {params.device} --threads {threads} > {log} 2>&1"
