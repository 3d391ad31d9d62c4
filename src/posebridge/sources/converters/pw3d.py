"""3DPW: ``sequenceFiles/{train,validation,test}/<sequence>.pkl`` (latin1 pickles), ``smpl_24`` joints.

Each pickle is a dict with (per actor, lists) ``jointPositions`` (N x 72, world, metres),
``campose_valid`` (N booleans), ``poses2d`` (N x 3 x 18: OpenPose COCO-18 x, y, confidence), and
(per sequence) ``cam_poses`` (N x 4 x 4 world -> camera, metres), ``cam_intrinsics`` (3 x 3) and
``sequence``. 3DPW films with a hand-held phone, so the camera moves every frame while a store
camera is static: the joints are therefore stored in the camera frame of each frame (the camera
is the identity, R = I, t = 0; Z is the viewing direction, not up). Frames whose camera pose is
not aligned (``campose_valid`` false) are NaN. Images are 1080 x 1920 (portrait), 30 fps.

Each actor of a sequence is one take ("<sequence>/<actor>"). Folders map to splits: train ->
``train``, test -> ``test``, validation -> ``train`` (3DPW's test split stays the evaluation set);
the index column ``source_split`` keeps the folder name. The 2D keypoints of the result are the
pickles' OpenPose detections mapped to ``coco_17`` (detector ``openpose``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebridge.geometry.cameras import Camera
from posebridge.data.pickles import load_pickle
from posebridge.errors import DataError
from posebridge.sources.converters.common import (
    Converted,
    DatasetBuilder,
    check_array,
    keypoints_with_confidence,
    reading,
)

FPS = 30
IMAGE_SIZE = (1080, 1920)
FOLDER_SPLITS = {"train": "train", "validation": "train", "test": "test"}
# coco_17 joint k is OpenPose COCO-18 joint OPENPOSE18_TO_COCO17[k]
# (OpenPose order: nose, neck, rsho, relb, rwri, lsho, lelb, lwri, rhip, rknee, rank, lhip, lknee,
#  lank, reye, leye, rear, lear)
OPENPOSE18_TO_COCO17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)


def sequence_files(source: Path) -> list[tuple[str, Path]]:
    """(folder, pkl path) of every sequence under ``source/sequenceFiles`` (or ``source`` itself)."""
    root = source / "sequenceFiles" if (source / "sequenceFiles").is_dir() else source
    return [(folder, path) for folder in FOLDER_SPLITS for path in sorted((root / folder).glob("*.pkl"))]


def read_sequence(path: Path) -> dict:
    with reading(path, "3DPW pickle"):
        data = load_pickle(path, encoding="latin1")
    if not isinstance(data, dict):
        raise DataError(path, f"holds a {type(data).__name__}, expected a dict")
    missing = [k for k in ("jointPositions", "cam_poses", "cam_intrinsics", "campose_valid") if k not in data]
    if missing:
        raise DataError(path, f"lacks the key(s) {', '.join(missing)}")
    return data


def _per_actor(path: Path, data: dict, key: str, actors: int) -> list:
    value = data[key]
    if not isinstance(value, (list, tuple)) or len(value) != actors:
        raise DataError(path, f"{key} must be a list with one entry per actor ({actors})")
    return list(value)


def convert_sequence(path: Path, data: dict, folder: str, builder: DatasetBuilder) -> None:
    name = str(data.get("sequence", path.stem))
    joints = data["jointPositions"]
    if not isinstance(joints, (list, tuple)) or not joints:
        raise DataError(path, "jointPositions must be a list with one (N, 72) array per actor")
    actors = len(joints)
    valid = _per_actor(path, data, "campose_valid", actors)
    poses2d_key = "poses2d" if "poses2d" in data else "poses2D" if "poses2D" in data else None
    poses2d = _per_actor(path, data, poses2d_key, actors) if poses2d_key else None
    cam_poses = check_array(path, "cam_poses", np.asarray(data["cam_poses"]), (None, 4, 4)).astype(np.float64)
    K = check_array(path, "cam_intrinsics", np.asarray(data["cam_intrinsics"]), (3, 3)).astype(np.float64)
    frames = len(cam_poses)
    camera = builder.add_camera(Camera(name, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), None, np.eye(3),
                                       np.zeros(3), IMAGE_SIZE))
    R, t = cam_poses[:, :3, :3], cam_poses[:, :3, 3]
    for a in range(actors):
        world = check_array(path, f"jointPositions[{a}]", np.asarray(joints[a]), (frames, 72))
        world = world.reshape(frames, 24, 3).astype(np.float64)
        # per-frame world -> camera, metres -> millimetres
        in_camera = (np.einsum("tij,tkj->tki", R, world) + t[:, None, :]) * 1000.0
        ok = np.asarray(valid[a]).reshape(-1)
        if ok.shape != (frames,):
            raise DataError(path, f"campose_valid[{a}] has {ok.size} entries for {frames} frames")
        in_camera[~ok.astype(bool)] = np.nan
        keypoints = None
        if poses2d is not None:
            detected = check_array(path, f"{poses2d_key}[{a}]", np.asarray(poses2d[a]), (frames, 3, 18))
            detected = detected.transpose(0, 2, 1)[:, OPENPOSE18_TO_COCO17].astype(np.float64)
            xy = np.where(detected[..., 2:3] > 0, detected[..., :2], np.nan)
            keypoints = [keypoints_with_confidence(xy, np.clip(detected[..., 2], 0.0, 1.0))]
        builder.add_take(sequence=f"{name}/{a}", subject=f"{name}/{a}", action=name.rsplit("_", 1)[0],
                         split=FOLDER_SPLITS[folder], fps=FPS, joints=in_camera, cameras=[camera],
                         keypoints=keypoints, source_split=folder)


def convert(source: str | Path) -> Converted:
    """Convert every sequence pickle under ``source`` (the folder holding sequenceFiles/)."""
    from posebridge.sources.download import require_source

    source = Path(source)
    require_source("3dpw", source)
    builder = DatasetBuilder("smpl_24")
    for folder, path in sequence_files(source):
        convert_sequence(path, read_sequence(path), folder, builder)
    return builder.finish("coco_17", "openpose")
