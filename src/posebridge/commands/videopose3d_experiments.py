"""`posebridge videopose3d-experiments`: the VideoPose3D experiments' table and figure."""

from __future__ import annotations

HELP = "tabulate and plot the VideoPose3D experiments (receptive field; semi-supervised vs supervised)"
DESCRIPTION = """\
Reduce each experiment run's evaluation table (posebridge evaluate) to frame-weighted MPJPE,
PA-MPJPE and N-MPJPE of the native format, add its training time (train_log.parquet), and write a
CSV table, an HTML table stating whether each experiment shows VideoPose3D's direction, and a PNG
with (a) MPJPE vs receptive field and (b) supervised-only vs semi-supervised per number of
3D-labeled subjects (mean and range over the seeds of each method). Used by
workflow/rules/experiments_videopose3d.smk.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--runs", required=True, metavar="JSON",
                        help="the runs as a JSON list (or the path of a JSON file) of objects with keys name, "
                             "experiment (receptive_field | labels), receptive_field, labeled_subjects, placement "
                             "(null: supervised only; trajectory | depth: semi-supervised), seed (index), "
                             "eval (Parquet from posebridge evaluate), log (train_log.parquet)")
    parser.add_argument("--csv", required=True, metavar="CSV", help="table to write (CSV)")
    parser.add_argument("--html", required=True, metavar="HTML", help="table to write (HTML)")
    parser.add_argument("--figure", required=True, metavar="PNG", help="figure to write")


def main(args) -> int:
    import json
    from pathlib import Path

    from posebridge.errors import ConfigError
    from posebridge.reporting.videopose3d_experiments import main_from_runs, verdicts

    text = args.runs.strip()
    if not text.startswith("[") and Path(text).is_file():
        text = Path(text).read_text()
    try:
        runs = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"videopose3d-experiments: --runs is not valid JSON ({err.msg})") from None
    if not isinstance(runs, list) or not runs:
        raise ConfigError("videopose3d-experiments: --runs must be a non-empty JSON list of runs")
    summary = main_from_runs(runs, args.csv, args.html, args.figure)
    for sentence in verdicts(summary):
        print(sentence)
    return 0
