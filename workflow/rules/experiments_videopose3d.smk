# VideoPose3D experiments (`snakemake experiments`; settings: semi_supervised.experiment):
# (a) MPJPE vs receptive field, (b) supervised-only vs semi-supervised with 3D labels on the first
# n training subjects of one labeled dataset. Every run is `posebridge train` + `posebridge
# evaluate` on that dataset's test split, + `posebridge evaluate-real` on the triangulated real
# footage where the run's 2D format is the real detector's; `posebridge videopose3d-experiments`
# tabulates and plots.
# Left out of `experiments` (EXPERIMENT_FILES) when the dataset or the video is not enabled.
# Helpers (VP3D_*, vp3d_*): common.smk.

rule train_vp3d:
    """One model of the VideoPose3D experiments."""
    input:
        vp3d_inputs,
    output:
        model=f"{VP3D_DIR}/models/{{run}}/model.pt",
        config=f"{VP3D_DIR}/models/{{run}}/config.yaml",
        train_log=f"{VP3D_DIR}/models/{{run}}/train_log.parquet",
    wildcard_constraints:
        run=names_regex(VP3D_RUNS),
    params:
        spec=vp3d_spec,
        launcher=lambda w: train_launcher(vp3d_spec(w)),
        process_threads=lambda w, threads: process_threads(vp3d_spec(w), threads),
        data=vp3d_data_args,
        semi=vp3d_semi_args,
        out_dir=lambda w, output: os.path.dirname(output.model),
        checkpoint=lambda w: f"{VP3D_DIR}/checkpoints/{w.run}.pt",
        # the supervised and semi-supervised runs of one label setting and seed index share their
        # seed: the comparison is of the objective alone
        seed=lambda w: rule_seed("vp3d_train", VP3D_RUNS[w.run]["family"], VP3D_RUNS[w.run]["seed"]),
        device=config["device"],
    log:
        "logs/train_vp3d/{run}.log",
    benchmark:
        "benchmarks/train_vp3d/{run}.tsv"
    threads: VP3D_SETTINGS["threads"]
    resources:
        gpu=lambda w: train_processes(vp3d_spec(w)),
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "{params.launcher}posebridge train --spec {params.spec:q} {params.data} {params.semi}"
        " --out-dir {params.out_dir} --checkpoint {params.checkpoint}"
        " --seed {params.seed} --device {params.device} --threads {params.process_threads} --no-progress > {log} 2>&1"


rule evaluate_vp3d:
    """A VideoPose3D experiment model on the labeled dataset's test split."""
    input:
        model=f"{VP3D_DIR}/models/{{run}}/model.pt",
        dataset=dataset_h5(VP3D_SETTINGS["dataset"]),
        index=dataset_index(VP3D_SETTINGS["dataset"]),
        detections=lambda w: vp3d_detections(VP3D_SETTINGS["dataset"], w.run) if VP3D_ENABLED else [],
    output:
        table=f"{VP3D_DIR}/eval/{{run}}.parquet",
        examples=f"{VP3D_DIR}/eval/{{run}}.examples.npz",
    wildcard_constraints:
        run=names_regex(VP3D_RUNS),
    params:
        spec=as_json({**config["evaluate"], "max_frames_per_sequence": VP3D_SETTINGS["max_frames_per_sequence"]}),
        model_dir=lambda w, input: os.path.dirname(input.model),
    log:
        "logs/evaluate_vp3d/{run}.log",
    benchmark:
        "benchmarks/evaluate_vp3d/{run}.tsv"
    threads: VP3D_SETTINGS["threads"]
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge evaluate --model {params.model_dir} --dataset {input.dataset} --detections {input.detections}"
        " --spec {params.spec:q} --output {output.table} --examples {output.examples} --device cpu"
        " --threads {threads} --no-progress > {log} 2>&1"


rule evaluate_real_vp3d:
    """A VideoPose3D experiment model on the triangulated real footage, each view lifted alone
    (runs whose 2D the real detector gives: vp3d_real_tables)."""
    input:
        model=f"{VP3D_DIR}/models/{{run}}/model.pt",
        datasets=[footage_h5(name) for name in EXPERIMENT_FOOTAGE],
        detections=[footage_detections(name) for name in EXPERIMENT_FOOTAGE],
    output:
        experiment_real_tables(VP3D_DIR, "{run}"),
    wildcard_constraints:
        run=names_regex(VP3D_RUNS),
    params:
        model_dir=lambda w, input: os.path.dirname(input.model),
        sets=lambda w: experiment_real_args(VP3D_DIR, w.run),
    log:
        "logs/evaluate_real_vp3d/{run}.log",
    benchmark:
        "benchmarks/evaluate_real_vp3d/{run}.tsv"
    threads: VP3D_SETTINGS["threads"]
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge evaluate-real --model {params.model_dir} {params.sets} --threads {threads} > {log} 2>&1"


rule videopose3d_experiments:
    """Table and figure of the VideoPose3D experiments (synthetic test split and real footage)."""
    input:
        evals=[run["eval"] for run in vp3d_run_table()],
        logs=[run["log"] for run in vp3d_run_table()],
        real=[table for run in vp3d_run_table() for table in run["real"]],
    output:
        csv=f"{VP3D_DIR}/experiments.csv",
        html=report(
            f"{VP3D_DIR}/experiments.html",
            caption="../report/experiments_videopose3d.rst",
            category="Experiments",
            labels={"table": "VideoPose3D experiments: synthetic and real footage"},
        ),
        figure=report(
            f"{VP3D_DIR}/experiments.png",
            caption="../report/experiments_videopose3d.rst",
            category="Experiments",
            labels={"figure": "VideoPose3D experiments: synthetic and real footage"},
        ),
    params:
        runs=as_json(vp3d_run_table()),
    log:
        "logs/videopose3d_experiments.log",
    benchmark:
        "benchmarks/videopose3d_experiments.tsv"
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge videopose3d-experiments --runs {params.runs:q} --csv {output.csv} --html {output.html}"
        " --figure {output.figure} > {log} 2>&1"

