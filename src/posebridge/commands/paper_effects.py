"""`posebridge paper-effects`: which paper effects hold on the synthetic benchmark and on real footage."""

from __future__ import annotations

HELP = "tabulate which VideoPose3D, MCSS and ACAE effects hold on synthetic data and on real footage"
DESCRIPTION = """\
Compare, for each effect the VideoPose3D, MCSS and ACAE papers claim, the control and the
treatment on the synthetic test split (the experiment's own metric) and on the real-footage
yardstick (PA-MPJPE of the triangulated Pose2Sim views, each lifted alone; the skeleton
formats' consistency of the ACAE models' predictions on them), and state for each
whether it holds: the difference in the paper's direction beyond the noise margin (the larger
seed range of the two sides, at least 2 % of the larger figure), does not hold (reversed beyond
it), is within noise, or is not measured (posebridge.reporting.paper_effects). Writes a CSV and an
HTML table and prints one line per effect. Used by workflow/rules/experiments_paper_effects.smk.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--videopose3d", metavar="CSV",
                        help="the VideoPose3D experiments' table (posebridge videopose3d-experiments --csv)")
    parser.add_argument("--mcss", nargs=2, metavar=("NMPJPE_CSV", "RETRIEVAL_CSV"),
                        help="the MCSS experiment's tables (posebridge mcss-eval: nmpjpe.csv, retrieval.csv)")
    parser.add_argument("--acae", metavar="CSV", help="the skeleton bridge's comparison (posebridge report-acae: "
                        "acae_comparison.csv)")
    parser.add_argument("--real", nargs="*", default=[], metavar="PARQUET",
                        help="the ACAE models' real-footage tables (posebridge evaluate-real)")
    parser.add_argument("--real-consistency", nargs="*", default=[], metavar="PARQUET",
                        help="the ACAE models' consistency tables on the real footage (posebridge consistency)")
    parser.add_argument("--csv", required=True, metavar="CSV", help="table to write (CSV)")
    parser.add_argument("--html", required=True, metavar="HTML", help="table to write (HTML)")


# the columns each input table needs
COLUMNS = {"videopose3d": ("experiment", "run", "receptive_field", "labeled_subjects", "method", "seed", "mpjpe"),
           "nmpjpe": ("model", "labeled_subjects", "multiview_weight", "n_mpjpe"),
           "retrieval": ("model", "hit_instant"), "acae": ("model", "mpjpe_mean", "affine_mm")}
TABLES = {"videopose3d": "VideoPose3D experiments' table", "nmpjpe": "MCSS N-MPJPE table",
          "retrieval": "MCSS retrieval table", "acae": "skeleton bridge's comparison (acae_comparison.csv)"}


def _read_csv(path, kind: str):
    """The CSV table at ``path``, checked to have the ``COLUMNS`` of its ``kind``."""
    import pandas as pd

    from posebridge.errors import DataError

    try:
        table = pd.read_csv(path)
    except Exception as err:
        raise DataError(path, f"not a readable CSV table ({type(err).__name__})") from None
    missing = [c for c in COLUMNS[kind] if c not in table.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)} of the {TABLES[kind]}")
    return table


def main(args) -> int:
    import pandas as pd

    from posebridge.errors import ConfigError
    from posebridge.reporting import paper_effects as effects

    if not (args.videopose3d or args.mcss or args.acae):
        raise ConfigError("paper-effects: give at least one of --videopose3d, --mcss, --acae")
    rows = []
    if args.videopose3d:
        rows += effects.videopose3d_effects(_read_csv(args.videopose3d, "videopose3d"))
    if args.mcss:
        rows += effects.mcss_effects(_read_csv(args.mcss[0], "nmpjpe"), _read_csv(args.mcss[1], "retrieval"))
    if args.acae:
        real = effects.read_real_figures(args.real) if args.real else pd.DataFrame(columns=["real_pa_mpjpe"])
        consistency = effects.read_consistency(args.real_consistency) if args.real_consistency else None
        rows += effects.acae_effects(_read_csv(args.acae, "acae"), real, consistency)
    table = pd.DataFrame(rows)
    effects.write_outputs(table, args.csv, args.html)
    for line in effects.sentences(table):
        print(line)
    return 0
