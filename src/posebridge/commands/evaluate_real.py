"""`posebridge evaluate-real`: one model on one real dataset, with or without triangulated 3D."""

from __future__ import annotations

HELP = "score a model on real footage: views lifted alone vs triangulation, or label-free measures"
DESCRIPTION = (
    "Lift every sequence x camera of a real dataset with a model. On a triangulated multi-view "
    "dataset (posebridge triangulate): PA-MPJPE and N-MPJPE of each view's pose against the "
    "triangulation on the 12 limb joints every skeleton format shares, beside the mean-pose and "
    "2D + mean-pose-depth baselines, the root depth against the triangulated distance and the "
    "cross-view consistency. On any dataset: the reprojection error of the lifted pose placed on "
    "its recovered trajectory, and the bone-length stability (posebridge.evaluation.label_free). "
    "Writes one Parquet row per sequence x camera x skeleton format."
)


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="trained model directory (model.pt)")
    parser.add_argument("--dataset", required=True, metavar="H5",
                        help="real dataset: triangulated (posebridge triangulate) or without 3D")
    parser.add_argument("--detections", required=True, metavar="H5", help="the dataset's 2D detections")
    parser.add_argument("--output", required=True, metavar="PARQUET", help="table to write")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where the model runs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")


def main(args) -> int:
    import time

    from posebridge.atomic import write_parquet
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation.real_footage import evaluate_real
    from posebridge.inference.lift import load_model

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.model, device=args.device)
    with open_dataset(args.dataset) as dataset, read_detections(args.detections) as detections:
        table = evaluate_real(model, dataset, detections)
        table.insert(0, "detector", detections.detector)
        table.insert(0, "dataset", dataset.name)
    table.insert(0, "model", model.name)
    write_parquet(args.output, table)
    columns = [c for c in ("pa_mpjpe", "n_mpjpe", "reprojection_px", "bone_std_mm") if c in table.columns]
    summary = table.groupby("format")[columns].median().round(1)
    print(f"{model.name} on {table['dataset'].iloc[0]} ({len(table)} rows, medians over views):")
    print(summary.to_string())
    print(f"{time.perf_counter() - t0:.1f} s -> {args.output}")
    return 0
