"""`posebridge report-acae`: the skeleton bridge's tables and figures."""

from __future__ import annotations

HELP = "the skeleton bridge's report: model comparison, ACAE weights, latent points, reconstruction"
DESCRIPTION = """\
Write the comparison of separate heads, merged joints and the ACAE fine-tuning variants (accuracy
per test set and skeleton consistency; HTML and CSV), the autoencoder vs PCA vs mean-pose
reconstruction table, the encoder/decoder weight heatmaps and the latent points drawn on a held-out
pseudo-GT pose (posebridge.reporting.acae).
"""


def add_arguments(parser) -> None:
    parser.add_argument("--eval", nargs="+", required=True, metavar="PARQUET",
                        help="evaluation tables (posebridge evaluate) of every compared model")
    parser.add_argument("--consistency", nargs="+", required=True, metavar="PARQUET",
                        help="consistency tables (posebridge consistency), one per model, in table order")
    parser.add_argument("--acae", required=True, metavar="PT", help="the fitted autoencoder")
    parser.add_argument("--acae-metrics", required=True, metavar="PARQUET",
                        help="the reconstruction table of posebridge fit-acae")
    parser.add_argument("--pseudo-gt", required=True, metavar="NPZ", help="the pseudo-GT (a pose to draw)")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="directory to write the files into")


def main(args) -> int:
    from posebridge.reporting.acae import build_acae_report

    paths = build_acae_report(args.eval, args.consistency, args.acae, args.acae_metrics, args.pseudo_gt,
                              args.output_dir)
    for path in paths.values():
        print(f"wrote {path}", flush=True)
    return 0
