"""`posebridge viewer`: an interactive 3D viewer (one offline HTML page) of predictions against ground truth."""

from __future__ import annotations

from posebridge.commands.options import add_device, set_threads

HELP = "interactive 3D viewer (offline HTML, plotly) of models' predictions against ground truth on one test row"
DESCRIPTION = """\
Lift one test row (a sequence seen by one camera; default: the dataset's first test row) with every
--model and write OUTPUT: one HTML page with plotly.js embedded (opens offline, no CDN) showing the
ground truth (black) and each model's prediction (one colour per model) in 3D, root-relative camera
space in millimetres, with a frame slider and play / pause. The legend gives each model's MPJPE over
the frames shown, the note at the top left each model's MPJPE in the current frame.
"""


def add_arguments(parser) -> None:
    from posebridge.reporting.viewer import DEFAULT_MAX_FRAMES, DEFAULT_STRIDE

    parser.add_argument("--model", required=True, nargs="+", action="extend", metavar="DIR",
                        help="trained model directories (any number; repeatable)")
    parser.add_argument("--dataset", required=True, metavar="H5", help="a converted dataset with test rows")
    parser.add_argument("--detections", required=True, metavar="H5", help="the dataset's 2D detections")
    parser.add_argument("--output", required=True, metavar="HTML", help="the page to write")
    parser.add_argument("--sequence", metavar="NAME", help="the test sequence to show (default: the first)")
    parser.add_argument("--camera", metavar="NAME", help="the camera to show (default: the sequence's first)")
    parser.add_argument("--format", metavar="FORMAT",
                        help="skeleton format drawn (default: the dataset's own, or the first every model predicts)")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES, metavar="N",
                        help="at most this many frames in the slider")
    parser.add_argument("--stride", type=int, default=DEFAULT_STRIDE, metavar="K",
                        help="show every K-th frame (the models still see every frame)")
    parser.add_argument("--no-flip", action="store_true", help="skip test-time flip averaging")
    add_device(parser)


def main(args) -> int:
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.errors import ConfigError
    from posebridge.inference.lift import load_model
    from posebridge.reporting.viewer import viewer_figure, viewer_sequence, write_viewer

    for option, value in (("--max-frames", args.max_frames), ("--stride", args.stride)):
        if value < 1:
            raise ConfigError(f"{option} must be >= 1, got {value}")
    set_threads(args)
    models = [load_model(path, device=args.device) for path in args.model]
    with open_dataset(args.dataset) as dataset, read_detections(args.detections) as detections:
        detections.check_against(dataset)
        data = viewer_sequence(models, dataset, detections, sequence=args.sequence, camera=args.camera,
                               fmt=args.format, max_frames=args.max_frames, stride=args.stride,
                               flip=not args.no_flip, dataset_path=args.dataset)
    write_viewer(args.output, viewer_figure(data))
    print(f"{data.title}: {len(data.frames)} frames, {len(models)} model(s) -> {args.output}")
    return 0
