# Which paper effects hold where (`snakemake experiments`): the VideoPose3D and MCSS experiments'
# tables and the default run's skeleton-bridge comparison and real-footage tables (with the default
# models' skeleton consistency on the real footage: consistency_real), each effect judged on the
# synthetic benchmark and on the triangulated real footage
# (posebridge.reporting.paper_effects). Helpers (PAPER_EFFECTS, paper_effects_inputs): common.smk.


rule consistency_real:
    """A default model's skeleton consistency on the triangulated real footage: each format's joints
    as the best affine combination of the other formats' (no ground truth needed)."""
    input:
        model="results/models/{model}/model.pt",
        datasets=[footage_h5(name) for name in EXPERIMENT_FOOTAGE],
        detections=[footage_detections(name) for name in EXPERIMENT_FOOTAGE],
    output:
        real_consistency_table("{model}"),
    wildcard_constraints:
        model=names_regex(MODELS),
    params:
        model_dir=lambda w, input: os.path.dirname(input.model),
        data=" ".join(f"--dataset {footage_h5(n)} --detections {footage_detections(n)}" for n in EXPERIMENT_FOOTAGE),
    log:
        "logs/consistency_real/{model}.log",
    benchmark:
        "benchmarks/consistency_real/{model}.tsv"
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge consistency --model {params.model_dir} {params.data} --output {output}"
        " --device cpu --threads {threads} > {log} 2>&1"


rule paper_effects:
    """The paper effects: control vs treatment, synthetic and real, and whether each holds."""
    input:
        **paper_effects_inputs(),
    output:
        csv=PAPER_EFFECTS[0],
        html=report(
            PAPER_EFFECTS[1],
            caption="../report/paper_effects.rst",
            category="Experiments",
            labels={"table": "paper effects: synthetic and real footage"},
        ),
    params:
        videopose3d=lambda w, input: f"--videopose3d {input.videopose3d}" if input.videopose3d else "",
        mcss=lambda w, input: f"--mcss {' '.join(input.mcss)}" if input.mcss else "",
        real=lambda w, input: f"--real {' '.join(input.real)}" if input.real else "",
        consistency=lambda w, input: f"--real-consistency {' '.join(input.consistency)}" if input.consistency else "",
    log:
        "logs/paper_effects.log",
    benchmark:
        "benchmarks/paper_effects.tsv"
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge paper-effects {params.videopose3d} {params.mcss} --acae {input.acae} {params.real} {params.consistency}"
        " --csv {output.csv} --html {output.html} > {log} 2>&1"
