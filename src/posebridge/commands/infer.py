"""`posebridge infer`: 3D poses from your own video with a trained model."""

from __future__ import annotations

from posebridge.commands.options import (add_device, add_model, add_no_progress, add_smoothing, load_model_from,
                                         smoothing_from)

HELP = "3D poses from a video: MediaPipe 2D on every frame, main person, lift with a trained model"
DESCRIPTION = """\
Run MediaPipe Pose (bundled model, CPU, offline) on every frame of VIDEO (a video file or a folder
of frame images), keep the main person (the longest, largest, most confident track), interpolate
misses of up to --max-gap frames, lift to 3D with the trained model in every skeleton format it
knows, and write OUTPUT_DIR/<video>_3d.npz and <video>_3d.json: per format (T, J, 3) root-relative
camera-space millimetres (x right, y down, z forward; NaN / null on frames without the person), the
joint names, the root's camera-space trajectory and the 2D keypoints. The camera is assumed to have
a 55 degree horizontal field of view unless --focal-length is given. --render writes the video with
the 2D keypoints beside the 3D skeleton.
"""


def add_arguments(parser) -> None:
    parser.add_argument("video", metavar="VIDEO", help="video file (.mp4, .avi, ...) or folder of frame images")
    add_model(parser)
    parser.add_argument("--output-dir", required=True, metavar="DIR",
                        help="where <video>_3d.npz and <video>_3d.json are written")
    parser.add_argument("--render", metavar="FILE",
                        help="also write a rendering: .mp4 (H.264), .gif, or .png (one image per frame, "
                             "FILE_<frame>.png; with --render-frames only those)")
    parser.add_argument("--render-format", metavar="FORMAT",
                        help="skeleton format drawn in 3D (default: h36m_17 when the model has it)")
    parser.add_argument("--render-height", type=int, metavar="PX",
                        help="rendering height in pixels (default: the video's, at most 480)")
    parser.add_argument("--render-frames", metavar="LIST",
                        help="with --render NAME.png: the frame indices to render, one PNG each "
                             "(NAME_000100.png), comma-separated (e.g. 0,100,200); ignored for a video")
    parser.add_argument("--detections", metavar="NPZ",
                        help="use this Detectron-style detection file of the video (boxes, keypoints) "
                             "instead of running MediaPipe")
    parser.add_argument("--max-gap", type=int, default=5, metavar="FRAMES",
                        help="interpolate misses of up to this many frames; longer ones stay missing")
    parser.add_argument("--focal-length", type=float, metavar="PX",
                        help="the camera's focal length in pixels (default: a 55 degree horizontal field of view)")
    parser.add_argument("--static-image-mode", action="store_true",
                        help="detect afresh in every frame instead of tracking (unrelated images)")
    parser.add_argument("--limit", type=int, metavar="FRAMES", help="process only the first FRAMES frames")
    parser.add_argument("--no-flip", action="store_true", help="skip test-time flip averaging")
    add_smoothing(parser)
    add_device(parser, threads=False)
    add_no_progress(parser)


def _frame_list(text: str | None) -> list[int] | None:
    from posebridge.errors import ConfigError

    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--render-frames must be comma-separated integers, got {text!r}") from None


def main(args) -> int:
    import time

    from posebridge.errors import ConfigError
    from posebridge.inference.infer import infer_video, render_format, render_video, write_outputs

    if args.max_gap < 0:
        raise ConfigError(f"--max-gap must be >= 0, got {args.max_gap}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    frames = _frame_list(args.render_frames)
    smoothing = smoothing_from(args)
    start = time.perf_counter()
    model = load_model_from(args)
    if args.render is not None:
        render_format(model.formats, args.render_format)  # fail before the slow part
    result = infer_video(args.video, model, max_gap=args.max_gap, flip=not args.no_flip, limit=args.limit,
                         detections=args.detections, focal_length=args.focal_length,
                         progress=not args.no_progress, smoothing=smoothing,
                         detector_settings={"static_image_mode": True} if args.static_image_mode else None)
    paths = write_outputs(result, args.output_dir)
    if args.render is not None:
        t0 = time.perf_counter()
        render_video(result, args.render, fmt=args.render_format, height=args.render_height,
                     progress=not args.no_progress, frames=frames)
        result.timings["render"] = time.perf_counter() - t0
    total = time.perf_counter() - start
    rates = ", ".join(f"{k} {result.frames / max(v, 1e-9):.1f}" for k, v in result.timings.items())
    print(f"{result.video.name}: {result.frames} frames, person in {int(result.valid.sum())} "
          f"({result.detector}); frames/s: {rates}; total {total:.1f} s "
          f"({result.frames / total:.1f} frames/s) -> {paths['npz']}, {paths['json']}"
          + (f", {args.render}" if args.render else ""))
    return 0
