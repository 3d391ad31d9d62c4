"""`posebridge evaluate`: score one model (and its mean-pose baseline) on one test set."""

from __future__ import annotations

from posebridge.commands.options import add_device, add_model, add_no_progress, load_model_from

HELP = "score a model and its mean-pose baseline on a test set (every metric per sequence x format)"
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
vs visible joints.
"""


def add_arguments(parser) -> None:
    add_model(parser)
    parser.add_argument("--dataset", required=True, metavar="H5",
                        help="converted dataset (.h5; its Parquet index beside it)")
    parser.add_argument("--detections", required=True, metavar="H5",
                        help="2D detections of that dataset (coco_17), from `posebridge detect-2d`")
    parser.add_argument("--spec", default="{}", metavar="JSON",
                        help="evaluation settings as a JSON object or the path of a JSON file; keys: "
                             "flip_test (true), pck_threshold (150), auc_threshold (150), cps_threshold "
                             "(200) in mm, max_frames_per_sequence (null = all), example_frames (4)")
    parser.add_argument("--output", required=True, metavar="PARQUET", help="metric table to write")
    parser.add_argument("--examples", metavar="NPZ", default=None,
                        help="example frames to write for the report (default: OUTPUT with the "
                             "suffix .examples.npz)")
    add_device(parser)
    add_no_progress(parser)


def main(args) -> int:
    from pathlib import Path

    from posebridge.atomic import write_parquet
    from posebridge.data.detections import read_detections
    from posebridge.errors import DataError
    from posebridge.evaluation.evaluate import EvalConfig, evaluate, write_examples
    from posebridge.data.store import open_dataset

    config = EvalConfig.parse(args.spec)
    model = load_model_from(args)
    with open_dataset(args.dataset) as dataset, read_detections(args.detections) as detections:
        detections.check_against(dataset)
        result = evaluate(model, dataset, detections, config, dataset_path=args.dataset,
                          detections_path=args.detections, progress=not args.no_progress)
    if result.table["mpjpe"].isna().all():  # nothing was scored: a table of NaN must not look like a result
        raise DataError(args.dataset, "no test frame has ground truth to score (every joint is missing)")
    examples = args.examples or Path(args.output).with_suffix(".examples.npz")
    write_parquet(args.output, result.table)
    write_examples(examples, result.examples)
    if len(result.breakdown):
        from posebridge.evaluation.breakdown import summary_lines

        write_parquet(Path(args.output).with_suffix(".breakdown.parquet"), result.breakdown)
        native = result.breakdown[result.breakdown["format"].isin(result.table.loc[result.table["native"], "format"])]
        for line in summary_lines(native):
            print(line)
    native = result.table[result.table["native"]]
    for model_name, group in native.groupby("model", sort=False):
        print(f"{model_name} on {group['dataset'].iloc[0]}: MPJPE "
              f"{(group['mpjpe'] * group['frames']).sum() / group['frames'].sum():.1f} mm "
              f"(native formats, frame-weighted)")
    return 0
