"""`posebridge mcss-eval`: the MCSS experiment's tables and figures."""

from __future__ import annotations

HELP = "MCSS experiment: canonical N-MPJPE and cross-view retrieval of multi-view embedding models"
DESCRIPTION = (
    "Score models trained with the multi-view objective (posebridge train --multiview; a triplet "
    "weight of 0 is the baseline) on the test split of a dataset seen by synchronised cameras: "
    "N-MPJPE in the MCSS canonical frame of the pose regressed from the embedding (and of the "
    "lifter's prediction, canonicalised), cross-view retrieval hit rates (same instant / pose within "
    "--pose-threshold) against the raw normalised 2D keypoints, and the embedding distance matrix "
    "(same pose from different views vs different poses). With --real, the N-MPJPE table gets each "
    "model's real-footage figures beside them (posebridge evaluate-real on triangulated takes: "
    "real_pa_mpjpe, the frame-weighted mean over views of PA-MPJPE on the 12 limb joints). Writes the two tables (CSV), their "
    "figures and an HTML page into OUT_DIR (names: posebridge.evaluation.mcss.OUTPUT_FILES) and "
    "prints each path."
)


def add_arguments(parser) -> None:
    parser.add_argument("--model", action="append", required=True, metavar="DIR",
                        help="a model directory trained with --multiview; repeat for every setting")
    parser.add_argument("--dataset", required=True, metavar="H5",
                        help="converted dataset whose test split has synchronised cameras (.h5)")
    parser.add_argument("--detections", required=True, metavar="H5", help="2D detections of that dataset")
    parser.add_argument("--format", default=None, metavar="FORMAT",
                        help="skeleton format to score (default: the first model's first format)")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="where the tables and figures go")
    parser.add_argument("--stride", type=int, default=5, metavar="FRAMES",
                        help="retrieval uses every this-many-th test frame (queries and gallery)")
    parser.add_argument("--pose-threshold", type=float, default=50.0, metavar="MM",
                        help="a retrieved frame whose canonical pose is within this MPJPE counts as a pose hit")
    parser.add_argument("--matrix-poses", type=int, default=12, metavar="N",
                        help="poses (test takes) in the distance-matrix figure")
    parser.add_argument("--real", nargs="*", default=[], metavar="PARQUET",
                        help="the models' real-footage tables (posebridge evaluate-real on triangulated takes)")
    parser.add_argument("--real-dataset", metavar="H5", default=None,
                        help="triangulated real footage of synchronised cameras (posebridge triangulate): "
                             "cross-view retrieval on it too (real_hit_instant, real_hit_pose in the retrieval table)")
    parser.add_argument("--real-detections", metavar="H5", default=None, help="the 2D of --real-dataset")
    parser.add_argument("--real-stride", type=int, default=1, metavar="FRAMES",
                        help="retrieval on the real footage uses every this-many-th frame")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where the models run (auto: CUDA when available)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch (default: torch's choice)")


def main(args) -> int:
    import torch

    from posebridge.data.detections import read_detections
    from posebridge.errors import ConfigError, DataError
    from posebridge.inference.lift import load_model
    from posebridge.reporting.paper_effects import read_real_figures
    from posebridge.evaluation.mcss import evaluate_models, load_test_views, write_outputs
    from posebridge.data.store import open_dataset
    from posebridge.device import resolve_device

    if args.stride < 1 or args.matrix_poses < 2 or args.pose_threshold <= 0:
        raise ConfigError("mcss-eval: --stride >= 1, --matrix-poses >= 2 and --pose-threshold > 0 are needed")
    if (args.real_dataset is None) != (args.real_detections is None) or args.real_stride < 1:
        raise ConfigError("mcss-eval: give --real-dataset and --real-detections together, and --real-stride >= 1")
    # the real inputs read first: a bad file stops before the work
    real = read_real_figures(args.real) if args.real else None
    real_views = _real_views(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    fmt = args.format or load_model(args.model[0]).formats[0]
    with open_dataset(args.dataset) as dataset, read_detections(args.detections) as detections:
        views = load_test_views(dataset, detections, fmt)
        train_subjects = dataset.rows("train")["subject"].nunique()
        name = dataset.name
    print(f"{len(views.take)} test rows, {len(views.canonical)} takes, format {fmt}", flush=True)
    nmpjpe, retrieval, matrices = evaluate_models(
        args.model, views, name, train_subjects, stride=args.stride, pose_threshold=args.pose_threshold,
        matrix_poses=args.matrix_poses, device=device, log=lambda m: print(m, flush=True))
    if real is not None:
        missing = sorted(set(nmpjpe["model"]) - set(real.index))
        if missing:
            raise DataError(args.real[0], f"no triangulated-take rows of model(s) {', '.join(missing)}")
        nmpjpe = nmpjpe.join(real, on="model")
    if real_views is not None:
        retrieval = retrieval.merge(_real_retrieval(args, real_views, device), on="model", how="left")
    for path in write_outputs(args.out_dir, nmpjpe, retrieval, matrices, title=f"MCSS on {name}"):
        print(f"wrote {path}", flush=True)
    return 0


def _real_views(args):
    """The triangulated real footage's views in its own skeleton format (the triangulation's), or None."""
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation.mcss import load_test_views

    if not args.real_dataset:
        return None
    with open_dataset(args.real_dataset) as dataset, read_detections(args.real_detections) as detections:
        return load_test_views(dataset, detections, dataset.skeleton.name)


def _real_retrieval(args, views, device):
    """model -> real_hit_instant, real_hit_pose (%): cross-view retrieval on the real footage's views."""
    from posebridge.evaluation.mcss import retrieval_only

    table = retrieval_only(args.model, views, stride=args.real_stride, pose_threshold=args.pose_threshold,
                           device=device)
    print(f"real footage {args.real_dataset}: retrieval of the same instant, % "
          + ", ".join(f"{m} {v:.1f}" for m, v in zip(table["model"], table["hit_instant"])), flush=True)
    return table.rename(columns={"hit_instant": "real_hit_instant", "hit_pose": "real_hit_pose"})
