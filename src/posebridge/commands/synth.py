"""`posebridge synth`: generate a synthetic dataset, or preview one as a PNG."""

from __future__ import annotations

from posebridge.commands.options import add_no_progress

HELP = "generate a synthetic dataset (synth generate) or render a preview PNG (synth preview)"
DESCRIPTION = """\
The embedded default data: synthetic bodies (subjects with varied height and proportions) performing
several kinds of motion, filmed by camera rigs modelled on Human3.6M, MPI-INF-3DHP, 3DPW, CMU
Panoptic and HumanEva, with the 3D in every skeleton format (the dataset's own in joints_3d, the
others in extra/<format>). `synth generate` writes one dataset through the dataset store; `synth
preview` draws one frame in several formats and a few camera views.
"""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    g = sub.add_parser("generate", help="generate one synthetic dataset (.h5 + .parquet index)",
                       description="Generate one synthetic dataset and write it through the dataset "
                                   "store: OUTPUT (.h5) and its Parquet index beside it.")
    g.add_argument("--name", required=True, help="dataset name (stored in the file; seeds its own "
                                                 "subjects, so differently named datasets differ)")
    g.add_argument("--spec", required=True, metavar="JSON",
                   help="the DatasetSpec as a JSON object or the path of a JSON file: template "
                        "(h36m | 3dhp | 3dpw | panoptic | humaneva | video | multiview), "
                        "train_subjects (5), test_subjects (2), actions (template's), "
                        "takes_per_action (1), seconds_per_take (8), fps, cameras and skeleton "
                        "(template's)")
    g.add_argument("--role", required=True,
                   choices=["labeled", "unlabeled_video", "unlabeled_multiview", "test"],
                   help="how the workflow may use the dataset")
    g.add_argument("--seed", type=int, default=0, help="random seed (runs with one seed are identical)")
    g.add_argument("--output", required=True, metavar="H5", help="dataset file to write (.h5)")
    add_no_progress(g)

    p = sub.add_parser("preview", help="render one frame of a dataset as a PNG",
                       description="Draw one frame of a synthetic dataset: its 3D in several skeleton "
                                   "formats overlaid (the same body, each format's own joint "
                                   "definitions) and a few camera views with the projected skeleton "
                                   "and, if given, the 2D detections.")
    p.add_argument("--dataset", required=True, metavar="H5", help="synthetic dataset (.h5)")
    p.add_argument("--detections", metavar="H5", default=None,
                   help="2D detections of that dataset (from `posebridge detect-2d`) to draw")
    p.add_argument("--sequence", default=None,
                   help="sequence to show (default: the first sequence of the dataset)")
    p.add_argument("--frame", type=int, default=None,
                   help="frame within the sequence (default: the middle frame)")
    p.add_argument("--views", type=int, default=3, help="camera views to draw (at most)")
    p.add_argument("--output", required=True, metavar="PNG", help="image to write")


def main(args) -> int:
    if args.action == "generate":
        import time

        from posebridge.specs import load_spec
        from posebridge.sources.synth.generate import DatasetSpec, generate_dataset

        spec = DatasetSpec.from_dict(load_spec(args.spec, "--spec"))
        t0 = time.perf_counter()
        data = generate_dataset(args.name, spec, args.role, args.seed, args.output,
                                progress=not args.no_progress)
        frames = len(next(iter(data.joints.values())))
        samples = int(data.index["frames"].sum())
        print(f"{args.name}: {len(data.bodies)} subjects, {data.index['sequence'].nunique()} takes, "
              f"{frames} frames, {len(data.cameras)} cameras, {samples} frame x camera samples, "
              f"{time.perf_counter() - t0:.1f} s -> {args.output}")
        return 0
    from posebridge.sources.synth.preview import render_preview

    render_preview(args.dataset, args.output, detections_path=args.detections, sequence=args.sequence,
                   frame=args.frame, views=args.views)
    print(f"preview -> {args.output}")
    return 0
