# The MCSS experiment (`snakemake experiments`): canonical-frame N-MPJPE vs the amount of 3D
# supervision, without and with the multi-view loss, plus cross-view retrieval and the embedding
# distance matrix, under results/experiments/mcss/. Settings: config `multiview.experiment`.
# Every model trains the embedding head and pose regressor (posebridge.training.objectives.multiview); "base" sets the
# triplet weight to 0, so the two variants differ only in the multi-view loss (same seed, same
# labeled data, the multi-view windows in the same forward pass). Each model is also lifted on the
# triangulated real footage (evaluate_real_mcss). Helpers (MCSS*, mcss_*): common.smk.

if mcss_enabled():

    rule train_mcss:
        """A lifter with the MCSS embedding and pose regressor, 3D labels from {labels} subjects,
        without (base) or with (mv) the multi-view triplet loss."""
        input:
            **dataset_inputs([MCSS["dataset"]]),
            multiview=dataset_files(multiview_datasets()),
        output:
            model=f"{MCSS_DIR}/models/{{variant}}_{{labels}}/model.pt",
            config=f"{MCSS_DIR}/models/{{variant}}_{{labels}}/config.yaml",
            train_log=f"{MCSS_DIR}/models/{{variant}}_{{labels}}/train_log.parquet",
        wildcard_constraints:
            variant=names_regex(MCSS_VARIANTS),
            labels=names_regex(MCSS_LABELS),
        params:
            spec=lambda w: mcss_spec(w.labels, w.variant),
            launcher=lambda w: train_launcher(mcss_spec(w.labels, w.variant)),
            process_threads=lambda w, threads: process_threads(mcss_spec(w.labels, w.variant), threads),
            data=train_data_args([MCSS["dataset"]]),
            objective=lambda w: mcss_objective_args(w.variant),
            out_dir=lambda w, output: os.path.dirname(output.model),
            checkpoint=lambda w: f"results/checkpoints/mcss_{w.variant}_{w.labels}.pt",
            # one seed per amount of labels: both variants start from the same weights and batches
            seed=lambda w: rule_seed("mcss_train", w.labels),
            device=config["device"],
        log:
            "logs/train_mcss/{variant}_{labels}.log",
        benchmark:
            "benchmarks/train_mcss/{variant}_{labels}.tsv"
        threads: MCSS["threads"]
        resources:
            gpu=lambda w: train_processes(mcss_spec(w.labels, w.variant)),
        conda:
            "../../envs/posebridge.yaml"
        shell:
            "{params.launcher}posebridge train --spec {params.spec:q} {params.data} {params.objective}"
            " --out-dir {params.out_dir} --checkpoint {params.checkpoint}"
            " --seed {params.seed} --device {params.device} --threads {params.process_threads} --no-progress > {log} 2>&1"

    rule evaluate_real_mcss:
        """An MCSS model on the triangulated real footage, each view lifted alone."""
        input:
            model=f"{MCSS_DIR}/models/{{variant}}_{{labels}}/model.pt",
            datasets=[footage_h5(name) for name in EXPERIMENT_FOOTAGE],
            detections=[footage_detections(name) for name in EXPERIMENT_FOOTAGE],
        output:
            experiment_real_tables(MCSS_DIR, "{variant}_{labels}"),
        wildcard_constraints:
            variant=names_regex(MCSS_VARIANTS),
            labels=names_regex(MCSS_LABELS),
        params:
            model_dir=lambda w, input: os.path.dirname(input.model),
            sets=lambda w: experiment_real_args(MCSS_DIR, f"{w.variant}_{w.labels}"),
        log:
            "logs/evaluate_real_mcss/{variant}_{labels}.log",
        benchmark:
            "benchmarks/evaluate_real_mcss/{variant}_{labels}.tsv"
        threads: MCSS["threads"]
        conda:
            "../../envs/posebridge.yaml"
        shell:
            "posebridge evaluate-real --model {params.model_dir} {params.sets} --threads {threads} > {log} 2>&1"

    rule mcss_eval:
        """Canonical N-MPJPE, cross-view retrieval and distance matrices of the MCSS models, with
        each model's real-footage PA-MPJPE beside its N-MPJPE."""
        input:
            models=[mcss_model(v, n) for n in MCSS_LABELS for v in MCSS_VARIANTS],
            dataset=dataset_h5(MCSS["dataset"]),
            index=dataset_index(MCSS["dataset"]),
            detections=detections_h5(MCSS["dataset"]),
            real=mcss_real_tables(),
            real_footage=mcss_retrieval_footage(),
        output:
            [report(f"{MCSS_DIR}/{name}", caption="../report/experiments_mcss.rst", category="Experiments",
                    labels={"table": "MCSS experiment: synthetic and real footage"})
             if name.endswith(".html") else f"{MCSS_DIR}/{name}" for name in MCSS_OUTPUTS],
        params:
            models=lambda w, input: " ".join(f"--model {os.path.dirname(m)}" for m in input.models),
            real=lambda w, input: f"--real {' '.join(input.real)}" if input.real else "",
            real_footage=lambda w, input: ("--real-dataset {} --real-detections {}".format(*input.real_footage)
                                           if input.real_footage else ""),
            out_dir=lambda w, output: os.path.dirname(output[0]),
            stride=MCSS["stride"],
            pose_threshold=MCSS["pose_threshold"],
        log:
            "logs/mcss_eval.log",
        benchmark:
            "benchmarks/mcss_eval.tsv"
        threads: MCSS["threads"]
        conda:
            "../../envs/posebridge.yaml"
        shell:
            "posebridge mcss-eval {params.models} --dataset {input.dataset} --detections {input.detections}"
            " {params.real} {params.real_footage} --out-dir {params.out_dir} --stride {params.stride} --pose-threshold {params.pose_threshold}"
            " --device cpu --threads {threads} > {log} 2>&1"

