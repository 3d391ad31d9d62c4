"""`posebridge report-real`: the report's "Real footage" section."""

from __future__ import annotations

HELP = "write the report's real-footage section (tables beside the synthetic figures, rendered frames)"
DESCRIPTION = (
    "Gather the tables of posebridge evaluate-real (every model on every real dataset) and, for "
    "comparison, those of posebridge evaluate (the synthetic test sets); write real_footage.html "
    "(per model and format: synthetic and real figures side by side, the triangulation's quality) "
    "and real_footage_frames.png (a frame of every real sequence: video and 2D, a model's lifted "
    "3D, the triangulated 3D)."
)


def add_arguments(parser) -> None:
    parser.add_argument("--real", nargs="+", required=True, metavar="PARQUET", help="evaluate-real tables")
    parser.add_argument("--eval", nargs="*", default=[], metavar="PARQUET",
                        help="evaluate tables of the synthetic test sets (the figures shown beside)")
    parser.add_argument("--model-dir", required=True, metavar="DIR", help="the model whose lifts are drawn")
    parser.add_argument("--dataset", nargs="+", required=True, metavar="H5",
                        help="real datasets to draw (triangulated ones with their 3D)")
    parser.add_argument("--detections", nargs="+", required=True, metavar="H5",
                        help="their detection files, in the same order")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="report folder")


def main(args) -> int:
    from posebridge.errors import ConfigError
    from posebridge.reporting.real_footage import build_real_footage

    if len(args.dataset) != len(args.detections):
        raise ConfigError(f"--dataset names {len(args.dataset)} files, --detections {len(args.detections)}")
    paths = build_real_footage(args.real, args.eval, args.model_dir, list(zip(args.dataset, args.detections)),
                               args.output_dir)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
