"""`posebridge infer`: 3D poses from your own video with a trained model."""

from __future__ import annotations

from posebridge.commands.options import (add_device, add_model, add_no_progress, add_smoothing, load_model_from,
                                         smoothing_from)

HELP = "3D poses from a video: every person's 2D (MediaPipe), tracked, lifted with a trained model"
DESCRIPTION = """\
Find every person in every frame of VIDEO (a video file or a folder of frame images): OpenCV's HOG
people detector and MediaPipe Pose (bundled model, CPU, offline) on each person's crop; link them
into one track per person (Hungarian assignment on keypoint distance), interpolate misses of up to
--max-gap frames, lift each track to 3D with the trained model in every skeleton format it knows,
and write OUTPUT_DIR/<video>_person<k>_3d.npz and .json per person (k = 1 for the person seen
longest, largest and most clearly): per format (T, J, 3) root-relative camera-space millimetres
(x right, y down, z forward; NaN / null on frames without the person), the joint names, the root's
camera-space trajectory and the 2D keypoints. --max-people 1 is the single-person run
(MediaPipe's own tracking on the full frame, the main person only) and writes <video>_3d.npz and
.json; so does --detections. The camera is assumed to have a 55 degree horizontal field of view
unless --focal-length is given. --render writes the video with the 2D keypoints beside the 3D
skeletons, one colour per person.
"""


def add_arguments(parser) -> None:
    parser.add_argument("video", metavar="VIDEO", help="video file (.mp4, .avi, ...) or folder of frame images")
    add_model(parser)
    parser.add_argument("--output-dir", required=True, metavar="DIR",
                        help="where <video>_person<k>_3d.npz and .json (one person: <video>_3d.*) are written")
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
    parser.add_argument("--max-people", type=int, metavar="N",
                        help="keep the N people with the most evidence (default: all); 1 = the single-person "
                             "run (MediaPipe tracking the main person), <video>_3d.npz")
    parser.add_argument("--detections", metavar="NPZ",
                        help="use this Detectron-style detection file of the video (boxes, keypoints; its "
                             "highest-scoring person per frame) instead of running MediaPipe: one person")
    parser.add_argument("--max-gap", type=int, default=5, metavar="FRAMES",
                        help="interpolate misses of up to this many frames; longer ones stay missing")
    parser.add_argument("--keep-sides", action="store_true",
                        help="keep the detector's left/right labels; by default frames where it mirrored "
                             "them (a jump that motion explains as a swap) are swapped back")
    parser.add_argument("--focal-length", type=float, metavar="PX",
                        help="the camera's focal length in pixels (default: a 55 degree horizontal field of view)")
    parser.add_argument("--static-image-mode", action="store_true",
                        help="one person: detect afresh in every frame instead of tracking (unrelated "
                             "images); several people are always detected afresh on crops")
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


def _infer(args, model, smoothing) -> list:
    """The results of the run ``args`` asks for: one person (``infer_video``), or every person."""
    from posebridge.inference.infer import infer_people, infer_video

    common = dict(max_gap=args.max_gap, flip=not args.no_flip, limit=args.limit, focal_length=args.focal_length,
                  progress=not args.no_progress, smoothing=smoothing, repair_sides=not args.keep_sides)
    if args.max_people == 1 or args.detections is not None:
        return [infer_video(args.video, model, detections=args.detections, **common,
                            detector_settings={"static_image_mode": True} if args.static_image_mode else None)]
    return infer_people(args.video, model, max_people=args.max_people, **common)


def main(args) -> int:
    import time

    from posebridge.errors import ConfigError
    from posebridge.inference.infer import render_format, render_video, write_people

    if args.max_gap < 0:
        raise ConfigError(f"--max-gap must be >= 0, got {args.max_gap}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    if args.max_people is not None and args.max_people < 1:
        raise ConfigError(f"--max-people must be >= 1, got {args.max_people}")
    if args.detections is not None and args.max_people not in (None, 1):
        raise ConfigError("--detections reads one person per frame; use it without --max-people or with 1")
    frames = _frame_list(args.render_frames)
    smoothing = smoothing_from(args)
    start = time.perf_counter()
    model = load_model_from(args)
    if args.render is not None:
        render_format(model.formats, args.render_format)  # fail before the slow part
    results = _infer(args, model, smoothing)
    paths = write_people(results, args.output_dir)
    if args.render is not None and results:
        t0 = time.perf_counter()
        render_video(results, args.render, fmt=args.render_format, height=args.render_height,
                     progress=not args.no_progress, frames=frames)
        results[0].timings["render"] = time.perf_counter() - t0
    _summary(args, results, paths, time.perf_counter() - start)
    return 0


def _summary(args, results: list, paths: list[dict], total: float) -> None:
    """One line per run: who was found in how many frames, the speed of every step, the files."""
    if not results:
        print(f"{args.video}: nobody found in any frame; nothing written")
        return
    first = results[0]
    rates = ", ".join(f"{k} {first.frames / max(v, 1e-9):.1f}" for k, v in first.timings.items())
    found = ", ".join(f"{'person' if r.person is None else f'person {r.person}'} in {int(r.valid.sum())}"
                      for r in results)
    files = ", ".join(str(p[key]) for p in paths for key in ("npz", "json"))
    print(f"{first.video.name}: {first.frames} frames, {found} ({first.detector}); frames/s: {rates}; "
          f"total {total:.1f} s ({first.frames / total:.1f} frames/s) -> {files}"
          + (f", {args.render}" if args.render else ""))
