# Which paper effects hold where (`snakemake experiments`): the VideoPose3D and MCSS experiments'
# tables and the default run's skeleton-bridge comparison and real-footage tables, each effect
# judged on the synthetic benchmark and on the triangulated real footage
# (posebridge.reporting.paper_effects). Helpers (PAPER_EFFECTS, paper_effects_inputs): common.smk.


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
    log:
        "logs/paper_effects.log",
    benchmark:
        "benchmarks/paper_effects.tsv"
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge paper-effects {params.videopose3d} {params.mcss} --acae {input.acae} {params.real}"
        " --csv {output.csv} --html {output.html} > {log} 2>&1"
