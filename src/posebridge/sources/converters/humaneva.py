"""HumanEva-I from VideoPose3D's npz files (``humaneva_15`` skeleton, 60 fps, 640 x 480).

``data_3d_humaneva15.npz``: ``positions_3d["Train/S1"]["Walking 1 chunk0"]`` = (T, 15, 3) metres
(VideoPose3D cuts each take into chunks of valid motion capture). ``Train/<subject>`` becomes the
``train`` split and ``Validate/<subject>`` the ``test`` split (VideoPose3D's protocol). The index
columns ``source_subject`` / ``source_action`` ("Train/S1", "Walking 1 chunk0") keep the keys of
VideoPose3D's files, so its 2D files match each sequence x camera exactly.

Cameras C1, C2, C3 per subject: extrinsics as published in VideoPose3D's
``common/humaneva_dataset.py`` (orientation quaternion (w, x, y, z), position mm; that file gives
S3 the same values as S1). VideoPose3D does not publish the intrinsics, so they are recovered by
least squares from the ground-truth 2D file ``data_2d_humaneva15_gt.npz`` (the 3D projected by
HumanEva's own calibration): a pinhole camera per subject x camera, its RMS residual reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebridge.geometry import skeletons
from posebridge.errors import DataError
from posebridge.sources.converters.common import (
    Converted,
    DatasetBuilder,
    camera_from_pose,
    check_array,
    fit_pinhole,
    keypoint_format_of,
    load_npz_dict,
    load_npz_metadata,
    resolve_2d_file,
    videopose3d_2d,
)

FPS = 60
IMAGE_SIZE = (640, 480)
CAMERA_IDS = ("C1", "C2", "C3")
SPLITS = {"Train": "train", "Validate": "test"}
FILE_3D = "data_3d_humaneva15.npz"
FILE_2D_GT = "data_2d_humaneva15_gt.npz"
PREFIX_2D = "data_2d_humaneva15_"
NUM_JOINTS = 15

# (orientation (w, x, y, z), position mm) per subject x camera, from VideoPose3D's humaneva_dataset.py
EXTRINSICS = {
    "S1": [((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.227, 663.2477, 1528.397)),
           ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
           ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.67377, 3916.3174, 1433.6602))],
    "S2": [((0.4214752, -0.4961493, -0.5838273, 0.4851187), (4112.9121, 626.4929, 1545.2988)),
           ((0.6501393, -0.7476588, -0.0954617, 0.0959808), (923.5740, -3877.9243, 1504.5518)),
           ((0.0699353, -0.0712403, 0.7421637, -0.662742), (-781.4915, 3838.8853, 1444.9929))],
    "S3": [((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.2271, 663.2477, 1528.3970)),
           ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
           ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.6738, 3916.3174, 1433.6602))],
}


def _parse_subject(path: Path, key) -> tuple[str, str] | None:
    """"Train/S1" -> ("train", "S1"); None for other prefixes (e.g. Unlabeled/)."""
    parts = str(key).split("/")
    if len(parts) != 2 or parts[0] not in SPLITS:
        return None
    if parts[1] not in EXTRINSICS:
        raise DataError(path, f"subject {key!r} has no published extrinsics (known: {', '.join(EXTRINSICS)})")
    return SPLITS[parts[0]], parts[1]


def _read_takes(path: Path) -> list[tuple[str, str, str, str, np.ndarray]]:
    """(key, subject, split, action, (T, 15, 3) world mm) of every Train/ and Validate/ take."""
    positions = load_npz_dict(path, "positions_3d")
    takes = []
    for key, actions in positions.items():
        parsed = _parse_subject(path, key)
        if parsed is None:
            continue
        if not isinstance(actions, dict):
            raise DataError(path, f"positions_3d[{key!r}] is not a dict of actions")
        split, subject = parsed
        for action, joints in sorted(actions.items()):
            joints = check_array(path, f"{key} {action!r}", joints, (None, NUM_JOINTS, 3))
            takes.append((str(key), subject, split, str(action), np.asarray(joints, np.float64) * 1000.0))
    if not takes:
        raise DataError(path, "holds no Train/ or Validate/ subjects")
    return takes


def _fitted_cameras(builder: DatasetBuilder, takes: list, gt_path: Path, gt_2d: dict) -> dict:
    """Add each subject's cameras to ``builder`` and return (subject, camera id) -> camera name.

    The extrinsics are the published ones; the pinhole intrinsics are fitted to the ground-truth
    2D of all the subject's takes (the VideoPose3D files carry no intrinsics for HumanEva).
    """
    cameras = {}
    for subject in sorted({t[1] for t in takes}):
        for k, cid in enumerate(CAMERA_IDS):
            orientation, position = EXTRINSICS[subject][k]
            pose = camera_from_pose(f"{subject}/{cid}", orientation, position, (1, 1, 0, 0), None, IMAGE_SIZE)
            points, pixels = [], []
            for key, s, _, action, joints in takes:
                if s == subject:
                    points.append(pose.world_to_camera(joints))
                    xy = videopose3d_2d(gt_path, gt_2d, key, action, len(CAMERA_IDS), len(joints), NUM_JOINTS)[k]
                    pixels.append(xy[..., :2])
            intrinsics, rms = fit_pinhole(np.concatenate(points), np.concatenate(pixels), gt_path,
                                          f"camera {subject}/{cid}")
            builder.notes.append(f"camera {subject}/{cid}: intrinsics fitted to the ground-truth 2D, "
                                 f"RMS {rms:.2f} px")
            cameras[(subject, cid)] = builder.add_camera(
                camera_from_pose(pose.name, orientation, position, intrinsics, None, IMAGE_SIZE))
    return cameras


def convert(source: str | Path, detections: str | None = None) -> Converted:
    """Convert ``<source>/data_3d_humaneva15.npz``; intrinsics from ``data_2d_humaneva15_gt.npz``.

    detections: a VideoPose3D HumanEva 2D file (path or detector suffix, e.g. ``gt`` or
    ``detectron_pt_coco``) whose keypoints become the result's 2D.
    """
    from posebridge.sources.download import require_source

    source = Path(source)
    require_source("humaneva", source)
    path = source / FILE_3D
    takes = _read_takes(path)
    gt_path = source / FILE_2D_GT
    keypoint_format_of(gt_path, load_npz_metadata(gt_path), "humaneva_15")
    gt_2d = load_npz_dict(gt_path, "positions_2d")
    builder = DatasetBuilder("humaneva_15")
    cameras = _fitted_cameras(builder, takes, gt_path, gt_2d)

    positions_2d = path_2d = keypoint_format = detector = None
    if detections is not None:
        path_2d, detector = resolve_2d_file(source, detections, PREFIX_2D)
        keypoint_format = keypoint_format_of(path_2d, load_npz_metadata(path_2d), "humaneva_15")
        positions_2d = gt_2d if path_2d == gt_path else load_npz_dict(path_2d, "positions_2d")
    for key, subject, split, action, joints in takes:
        keypoints = None
        if positions_2d is not None:
            keypoints = videopose3d_2d(path_2d, positions_2d, key, action, len(CAMERA_IDS), len(joints),
                                       skeletons.get(keypoint_format).num_joints)
        builder.add_take(sequence=f"{key}/{action}", subject=subject, action=action.split(" ")[0],
                         split=split, fps=FPS, joints=joints,
                         cameras=[cameras[(subject, cid)] for cid in CAMERA_IDS], keypoints=keypoints,
                         source_subject=key, source_action=action)
    return builder.finish(keypoint_format, detector)
