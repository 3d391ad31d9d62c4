"""`posebridge evaluate`: score one model (and its mean-pose baseline) on one or more test sets."""

from __future__ import annotations

from posebridge.commands.options import (
    add_datasets_with_detections,
    add_device,
    add_model,
    add_no_progress,
    load_model_from,
    paired,
)

HELP = "score a model and its mean-pose baseline on test sets (every metric per sequence x format)"
DESCRIPTION = """\
Lift the 2D detections of every test row of a dataset (split == test; every row of a dataset whose
role is 'test') with a trained model, compare with the ground truth moved into each camera
(root-relative, mm) in every skeleton format the model predicts and the dataset has (its own
skeleton and, for the synthetic benchmark, its extra formats), and write one Parquet row per model x
format x sequence x camera with MPJPE, PA-MPJPE, N-MPJPE, MPJVE, PCK, AUC and CPS (thresholds in the
pck_threshold/auc_threshold/cps_threshold columns). Rows with model 'mean_pose' score the trivial
baseline (the model's mean training pose for every frame). Also writes a few example frames (.npz)
for the report's renderings, and, for datasets whose frames carry labels, the breakdown table
(OUTPUT with the suffix .breakdown.parquet): MPI-INF-3DHP's test set per activity, MuPoTS's occluded
vs visible joints. Repeat --dataset/--detections/--output (and --examples) to score several test
sets in one run: one table per test set, as separate runs would write, with the model loaded once.
"""


def add_arguments(parser) -> None:
    add_model(parser)
    add_datasets_with_detections(parser, "converted dataset (.h5; its Parquet index beside it); "
                                 "repeat for several test sets")
    parser.add_argument("--spec", default="{}", metavar="JSON",
                        help="evaluation settings as a JSON object or the path of a JSON file; keys: "
                             "flip_test (true), pck_threshold (150), auc_threshold (150), cps_threshold "
                             "(200) in mm, max_frames_per_sequence (null = all), example_frames (4)")
    parser.add_argument("--output", action="append", required=True, metavar="PARQUET",
                        help="metric table of the dataset at the same position")
    parser.add_argument("--examples", action="append", metavar="NPZ", default=None,
                        help="example frames of the dataset at the same position, for the report "
                             "(default: its OUTPUT with the suffix .examples.npz)")
    add_device(parser)
    add_no_progress(parser)


def scored_sets(args) -> list[tuple[str, str, str, str]]:
    """(dataset, detections, output, examples) per test set, paired by position."""
    from pathlib import Path

    if args.examples:
        return paired("evaluate", dataset=args.dataset, detections=args.detections, output=args.output,
                      examples=args.examples)
    sets = paired("evaluate", dataset=args.dataset, detections=args.detections, output=args.output)
    return [(h5, det, out, str(Path(out).with_suffix(".examples.npz"))) for h5, det, out in sets]


def main(args) -> int:
    from posebridge.atomic import write_parquet
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.errors import DataError
    from posebridge.evaluation.evaluate import EvalConfig, evaluate, write_examples

    config = EvalConfig.parse(args.spec)
    sets = scored_sets(args)
    model = load_model_from(args)
    results = []  # every test set scored before any file is written: a bad one leaves none half done
    for h5, det, _, _ in sets:
        with open_dataset(h5) as dataset, read_detections(det) as detections:
            detections.check_against(dataset)
            result = evaluate(model, dataset, detections, config, dataset_path=h5,
                              detections_path=det, progress=not args.no_progress)
        if result.table["mpjpe"].isna().all():  # nothing was scored: a table of NaN must not look like a result
            raise DataError(h5, "no test frame has ground truth to score (every joint is missing)")
        results.append(result)
    for (_, _, output, examples), result in zip(sets, results):
        write_parquet(output, result.table)
        write_examples(examples, result.examples)
        write_breakdown(output, result)
        native = result.table[result.table["native"]]
        for model_name, group in native.groupby("model", sort=False):
            print(f"{model_name} on {group['dataset'].iloc[0]}: MPJPE "
                  f"{(group['mpjpe'] * group['frames']).sum() / group['frames'].sum():.1f} mm "
                  f"(native formats, frame-weighted)")
    return 0


def write_breakdown(output: str, result) -> None:
    """The labelled frames' breakdown (3DHP per activity, MuPoTS occluded vs visible) beside
    ``output`` (suffix .breakdown.parquet) with a summary line each, when the test set has labels."""
    from pathlib import Path

    from posebridge.atomic import write_parquet
    from posebridge.evaluation.breakdown import summary_lines

    if not len(result.breakdown):
        return
    write_parquet(Path(output).with_suffix(".breakdown.parquet"), result.breakdown)
    native = result.breakdown[result.breakdown["format"].isin(result.table.loc[result.table["native"], "format"])]
    for line in summary_lines(native):
        print(line)
