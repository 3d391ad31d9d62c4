# Real footage (README "Real footage"): datasets of real cameras without 3D ground truth (sources
# in REAL_FOOTAGE_SOURCES, common.smk), never trained on. Multi-view takes are triangulated from
# their 2D; every model is scored on each (posebridge evaluate-real); the report gets a section.


rule triangulate:
    """3D joints of a calibrated multi-view dataset from its detector's 2D, and the triangulated
    person's 2D in every view (what evaluate_real lifts)."""
    input:
        h5=lambda w: dataset_h5(w.dataset),
        index=lambda w: dataset_index(w.dataset),
        detections="results/detections/{dataset}/{detector}.h5",
    output:
        h5="results/triangulated/{dataset}/{detector}.h5",
        index="results/triangulated/{dataset}/{detector}.parquet",
        keypoints="results/triangulated/{dataset}/{detector}_2d.h5",
    wildcard_constraints:
        dataset=names_regex(multiview_footage()),
        detector=names_regex(config["detect"]),
    params:
        spec=as_json(config["triangulate"]),
    log:
        "logs/triangulate/{dataset}/{detector}.log",
    benchmark:
        "benchmarks/triangulate/{dataset}/{detector}.tsv"
    threads: rule_threads("triangulate")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS={threads} posebridge triangulate --dataset {input.h5} --detections {input.detections}"
        " --spec {params.spec:q} --output {output.h5} --output-keypoints {output.keypoints} > {log} 2>&1"


rule evaluate_real:
    """One model on every real dataset: against the triangulation, or label-free (one job per
    model, like evaluate: the model and torch load once)."""
    input:
        model="results/models/{model}/model.pt",
        datasets=[footage_h5(name) for name in real_footage_datasets()],
        detections=[footage_detections(name) for name in real_footage_datasets()],
    output:
        real_tables(["{model}"]),
    wildcard_constraints:
        model=names_regex(MODELS),
    params:
        model_dir=lambda w, input: os.path.dirname(input.model),
        sets=lambda w: evaluate_real_args(w.model),
    log:
        "logs/evaluate_real/{model}.log",
    benchmark:
        "benchmarks/evaluate_real/{model}.tsv"
    threads: rule_threads("evaluate_real")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge evaluate-real --model {params.model_dir} {params.sets} --threads {threads} > {log} 2>&1"


rule report_real:
    """The report's real-footage section: figures beside the synthetic ones, rendered frames."""
    input:
        real=real_tables(),
        eval=eval_tables(),
        model=f"results/models/{FINAL_MODEL}/model.pt",
        datasets=[footage_h5(name) for name in real_footage_datasets()],
        detections=[footage_detections(name) for name in real_footage_datasets()],
    output:
        html=report(
            REAL_FOOTAGE_REPORT["real_footage"],
            caption="../report/real_footage.rst",
            category="Real footage",
            labels={"table": "models on real cameras beside the synthetic benchmark"},
        ),
        frames=report(
            REAL_FOOTAGE_REPORT["real_footage_frames"],
            caption="../report/real_footage_frames.rst",
            category="Real footage",
            labels={"figure": "real frames: 2D, lifted 3D, triangulated 3D"},
        ),
    params:
        model_dir=lambda w, input: os.path.dirname(input.model),
        out_dir=lambda w, output: os.path.dirname(output.html),
    log:
        "logs/report_real.log",
    benchmark:
        "benchmarks/report_real.tsv"
    threads: rule_threads("report_real")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS={threads} posebridge report-real --real {input.real} --eval {input.eval}"
        " --model-dir {params.model_dir} --dataset {input.datasets} --detections {input.detections}"
        " --output-dir {params.out_dir} > {log} 2>&1"
