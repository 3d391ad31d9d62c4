"""`posebridge report`: metric tables, baseline comparison, training curves and skeleton renderings."""

from __future__ import annotations

HELP = "build the report's tables and figures from evaluation tables and model directories"
DESCRIPTION = """\
Writes exactly these files into --output-dir: metrics.html (every model x test set x format,
averaged per action then over actions as in Human3.6M), baseline.html (each lifter's MPJPE against
its mean-pose baseline: the improvement in percent and the ratio), summary.csv (the numbers of
both), training_curves.png (losses and validation MPJPE per epoch from each model's
train_log.parquet) and skeletons.png (prediction vs ground truth for a few test frames in several
formats, from the <eval>.examples.npz files next to the evaluation tables).
"""


def add_arguments(parser) -> None:
    parser.add_argument("--eval", required=True, nargs="+", action="extend", metavar="PARQUET",
                        help="evaluation tables from `posebridge evaluate` (any number; repeatable)")
    parser.add_argument("--model-dir", nargs="+", action="extend", default=[], metavar="DIR",
                        help="model directories whose train_log.parquet to plot (any number; repeatable)")
    parser.add_argument("--output-dir", required=True, metavar="DIR",
                        help="directory for metrics.html, baseline.html, summary.csv, "
                             "training_curves.png, skeletons.png")


def main(args) -> int:
    from posebridge.reporting.report import build_report, verdict

    report = build_report(args.eval, args.model_dir, args.output_dir)
    print(verdict(report.comparison))
    print("wrote " + ", ".join(str(p) for p in report.paths.values()))
    return 0
