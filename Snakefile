# posebridge: 3D human pose from labeled datasets in many skeleton formats and from unlabeled
# monocular and multi-view video. Every rule runs one `posebridge <subcommand>` and is named after
# it (docs/internals.md "Rules": rule -> command -> module); the rules are in workflow/rules/,
# every helper they share in workflow/rules/common.smk, the work in the package (src/posebridge/).
#
#   snakemake --cores all                        whole workflow -> results/report.html
#   snakemake -n                                 what would run, and why
#   snakemake --configfile my.yaml --cores all   with your settings merged over config.yaml
#                                                (`make run CONFIG=my.yaml` first names the file
#                                                and line of a YAML syntax error, which Snakemake
#                                                does not: `posebridge check-config my.yaml`)
#   snakemake --workflow-profile profiles/slurm  on a SLURM cluster (edit account/partition)

from snakemake.utils import min_version

min_version("9.0")


# the embedded default, found beside this file whatever the working directory (--directory)
configfile: os.path.join(workflow.basedir, "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/acae.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/real_footage.smk"
include: "workflow/rules/report.smk"
# experiments beside the main pipeline: `snakemake experiments` (not part of `all`)
include: "workflow/rules/experiments_mcss.smk"
include: "workflow/rules/experiments_videopose3d.smk"
include: "workflow/rules/experiments_paper_effects.smk"

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
