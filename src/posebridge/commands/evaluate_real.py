"""`posebridge evaluate-real`: one model on real datasets, with or without triangulated 3D."""

from __future__ import annotations

from posebridge.commands.options import add_datasets_with_detections, add_device, add_model, load_model_from, paired

HELP = "score a model on real footage: views lifted alone vs triangulation, or label-free measures"
DESCRIPTION = (
    "Lift every sequence x camera of a real dataset with a model. On a triangulated multi-view "
    "dataset (posebridge triangulate): PA-MPJPE and N-MPJPE of each view's pose against the "
    "triangulation on the 12 limb joints every skeleton format shares, beside the mean-pose and "
    "2D + mean-pose-depth baselines, the root depth against the triangulated distance and the "
    "cross-view consistency. On any dataset: the reprojection error of the lifted pose placed on "
    "its recovered trajectory, and the bone-length stability (posebridge.evaluation.label_free). "
    "Writes one Parquet row per sequence x camera x skeleton format. Repeat --dataset/--detections/"
    "--output to score several datasets in one run (one table each, the model loaded once)."
)


def add_arguments(parser) -> None:
    add_model(parser)
    add_datasets_with_detections(parser, "real dataset: triangulated (posebridge triangulate) or without 3D; "
                                 "repeat for several")
    parser.add_argument("--output", action="append", required=True, metavar="PARQUET",
                        help="table of the dataset at the same position")
    add_device(parser, default="cpu", help="where the model runs")


def main(args) -> int:
    import time

    from posebridge.atomic import write_parquet
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation.real_footage import evaluate_real, summarise_views

    sets = paired("evaluate-real", dataset=args.dataset, detections=args.detections, output=args.output)
    t0 = time.perf_counter()
    model = load_model_from(args)
    tables = []  # every dataset scored before any file is written
    for h5, det, _ in sets:
        with open_dataset(h5) as dataset, read_detections(det) as detections:
            table = evaluate_real(model, dataset, detections)
            table.insert(0, "detector", detections.detector)
            table.insert(0, "dataset", dataset.name)
        table.insert(0, "model", model.name)
        tables.append(table)
    for output, table in zip(args.output, tables):
        write_parquet(output, table)
        columns = [c for c in ("pa_mpjpe", "n_mpjpe", "reprojection_px", "bone_std_mm") if c in table.columns]
        summary = summarise_views(table, ("format",), columns).round(1)
        print(f"{model.name} on {table['dataset'].iloc[0]} ({len(table)} rows, means over views weighted by frames):")
        print(summary.to_string())
        print(f"-> {output}")
    print(f"{time.perf_counter() - t0:.1f} s")
    return 0
