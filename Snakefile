# posebridge: 3D human pose from labeled datasets in many skeleton formats and from unlabeled
# monocular and multi-view video. Every rule runs one `posebridge <step>` command; the
# wiring is here and in workflow/rules/, the work in the Python package (src/posebridge/).
#
#   snakemake --cores all                        whole workflow -> results/report.html
#   snakemake -n                                 what would run, and why
#   snakemake --configfile my.yaml --cores all   with your settings merged over config.yaml
#   snakemake --workflow-profile profiles/slurm  on a SLURM cluster (edit account/partition)

from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# the embedded default, found beside this file whatever the working directory (--directory)
configfile: os.path.join(workflow.basedir, "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/multiview.smk"
include: "workflow/rules/semi_supervised.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/acae.smk"  # adds models: before evaluate.smk
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
# experiments beside the main pipeline: `snakemake experiments` (not part of `all`)
for _experiment in sorted(Path(workflow.basedir, "workflow", "rules").glob("experiments_*.smk")):

    include: str(_experiment)


rule all:
    """The report's tables and figures (and everything upstream of them)."""
    default_target: True
    input:
        list(REPORT_FILES.values()),


rule experiments:
    """The experiments (receptive field, semi-supervised, multi-view...): tables and figures
    under results/experiments/."""
    input:
        EXPERIMENT_FILES,


onsuccess:
    build_html_report()
