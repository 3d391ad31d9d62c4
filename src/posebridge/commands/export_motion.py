"""`posebridge export-motion`: a prediction file as BVH (Blender, game engines) or CSV."""

from __future__ import annotations

HELP = "write a prediction (.npz of predict or infer) as BVH motion or CSV, per skeleton format"
DESCRIPTION = """\
Read PREDICTION (the .npz that `posebridge predict` or `posebridge infer` writes) and write one
file per requested skeleton format to OUTPUT_DIR/<prediction>_<format>.bvh or .csv.

BVH: the format's kinematic tree as the joint hierarchy, a rigid rest pose (the sequence's median
bone lengths), per-frame joint rotations fitted to the predicted joints and the root's
trajectory. Axes and units for Blender's importer with its defaults (Forward -Z, Up Y): Y up, X to
the camera's right, Z towards the camera; metres (--unit cm for tools that expect centimetres).
Channels: root Xposition Yposition Zposition Zrotation Xrotation Yrotation, other joints
Zrotation Xrotation Yrotation (degrees); with --joint-positions every joint has position channels
too and the file reproduces the predicted joints exactly. Frames without a pose repeat the
nearest pose.

CSV: a row per frame: frame, time_s, then <joint>_x, <joint>_y, <joint>_z in millimetres, camera
frame (x right, y down, z forward), absolute when the file has a trajectory; empty cells on frames
without a pose.
"""

FORMATS = ("bvh", "csv")


def add_arguments(parser) -> None:
    parser.add_argument("prediction", metavar="PREDICTION", help="prediction .npz (predict --output, infer's _3d.npz)")
    parser.add_argument("--format", required=True, metavar="|".join(FORMATS), help="file format to write")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="where the files are written")
    parser.add_argument("--skeleton", action="append", metavar="FORMAT",
                        help="skeleton format to export (repeatable; 'all': every format in the file; "
                             "default: h36m_17 when present, else the file's first)")
    parser.add_argument("--fps", type=float, metavar="HZ",
                        help="frames per second (default: the file's 'fps', else 30)")
    parser.add_argument("--unit", default="m", metavar="UNIT", help="BVH length unit: m, cm or mm")
    parser.add_argument("--joint-positions", action="store_true",
                        help="BVH: position channels on every joint, so the file reproduces the predicted joints "
                             "exactly (bone lengths vary); default: a rigid skeleton, joints fitted by rotations")
    parser.add_argument("--in-place", action="store_true",
                        help="ignore the root trajectory: the root stays at the origin")


def _skeletons(requested: list[str] | None, available: list[str]) -> list[str]:
    from posebridge.errors import ConfigError
    from posebridge.inference.infer import RENDER_FORMAT_PREFERENCE

    if not requested:
        return [next((f for f in RENDER_FORMAT_PREFERENCE if f in available), available[0])]
    missing = [f for f in requested if f != "all" and f not in available]
    if missing:
        raise ConfigError(f"--skeleton {', '.join(missing)} not in the prediction; it has {', '.join(available)}")
    return list(available) if "all" in requested else list(dict.fromkeys(requested))


def main(args) -> int:
    from pathlib import Path

    from posebridge.atomic import write_text
    from posebridge.errors import ConfigError, DataError
    from posebridge.inference.predict import read_prediction
    from posebridge.interop.bvh import UNITS, bvh_text, fit_motion
    from posebridge.interop.motion_csv import absolute_joints, csv_text

    if args.format not in FORMATS:
        raise ConfigError(f"unknown --format {args.format!r}; one of {', '.join(FORMATS)}")
    if args.unit not in UNITS:
        raise ConfigError(f"unknown --unit {args.unit!r}; one of {', '.join(UNITS)}")
    if args.fps is not None and not args.fps > 0:
        raise ConfigError(f"--fps must be positive, got {args.fps}")
    prediction = read_prediction(args.prediction)
    fps = args.fps or prediction.fps or 30.0
    trajectory = None if args.in_place else prediction.trajectory
    files = {}  # every file's text first: a format that cannot be exported leaves no files
    for fmt in _skeletons(args.skeleton, list(prediction.poses)):
        path = Path(args.output_dir) / f"{Path(args.prediction).stem}_{fmt}.{args.format}"
        poses = prediction.poses[fmt]
        try:
            if args.format == "bvh":
                files[path] = bvh_text(fit_motion(poses, fmt, trajectory), fps, args.unit, args.joint_positions)
            else:
                files[path] = csv_text(absolute_joints(poses, fmt, trajectory), fmt, fps)
        except ValueError as err:
            raise DataError(args.prediction, f"cannot export {fmt}: {err}") from None
    for path, text in files.items():
        write_text(path, text)
    print(f"{len(poses)} frames at {fps:g} frames/s -> {', '.join(map(str, files))}")
    return 0
