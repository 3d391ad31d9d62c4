"""3DPW: ``sequenceFiles/{train,validation,test}/<sequence>.pkl`` (latin1 pickles), ``smpl_24`` joints.

Each pickle is a dict with (per actor, lists) ``jointPositions`` (N x 72, world, metres),
``campose_valid`` (N booleans), ``poses2d`` (N x 3 x 18: OpenPose COCO-18 x, y, confidence), and
(per sequence) ``cam_poses`` (N x 4 x 4 world -> camera, metres), ``cam_intrinsics`` (3 x 3) and
``sequence``. 3DPW films with a hand-held phone, so the camera moves every frame.

World and camera: the up direction of 3DPW's world is estimated per sequence from all its actors
(``common.estimate_up``: the plane their feet touch as they move, else their mean body axis) and
the world is turned Z-up. Every consumer of the store projects through a static camera, so
``joints_3d`` holds each frame's camera-frame joints levelled by one rotation ``G`` (the mean up
direction as the phone saw it taken to +z; the phone's tilt away from that mean remains), with the
camera ``R = G^T, t = 0``: it sees exactly 3DPW's camera-frame joints. The motion is kept: the
annotations ``camera_R`` / ``camera_t`` hold the phone's true pose per frame in the Z-up world
(mm), from which ``store.Dataset.sequence_world_3d`` recovers the world joints. Frames whose camera
pose is not aligned (``campose_valid`` false) are NaN (joints and pose). Images are 1080 x 1920
(portrait), 30 fps.

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
    available_parts,
    check_array,
    estimate_up,
    keypoints_with_confidence,
    reading,
    rotation_between,
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


def _actor_joints(path: Path, data: dict, frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per actor: world joints (T, 24, 3) mm and whether the camera pose is aligned (T,) bool."""
    joints = data["jointPositions"]
    if not isinstance(joints, (list, tuple)) or not joints:
        raise DataError(path, "jointPositions must be a list with one (N, 72) array per actor")
    valid = _per_actor(path, data, "campose_valid", len(joints))
    out = []
    for a in range(len(joints)):
        world = check_array(path, f"jointPositions[{a}]", np.asarray(joints[a]), (frames, 72))
        ok = np.asarray(valid[a]).reshape(-1)
        if ok.shape != (frames,):
            raise DataError(path, f"campose_valid[{a}] has {ok.size} entries for {frames} frames")
        out.append((world.reshape(frames, 24, 3).astype(np.float64) * 1000.0, ok.astype(bool)))
    return out


def _levelling(actors, R: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(G_world: 3DPW world -> Z-up world, G: camera frame -> stored frame, how up was found)."""
    world = np.concatenate([np.where(ok[:, None, None], joints, np.nan) for joints, ok in actors])
    up, how = estimate_up(world, "smpl_24")
    up_in_camera = (R @ up).mean(axis=0)  # the phone's mean view of up
    return rotation_between(up, [0.0, 0.0, 1.0]), rotation_between(up_in_camera, [0.0, 0.0, 1.0]), how


def convert_sequence(path: Path, data: dict, folder: str, builder: DatasetBuilder) -> None:
    name = str(data.get("sequence", path.stem))
    cam_poses = check_array(path, "cam_poses", np.asarray(data["cam_poses"]), (None, 4, 4)).astype(np.float64)
    K = check_array(path, "cam_intrinsics", np.asarray(data["cam_intrinsics"]), (3, 3)).astype(np.float64)
    frames = len(cam_poses)
    actors = _actor_joints(path, data, frames)
    poses2d_key = "poses2d" if "poses2d" in data else "poses2D" if "poses2D" in data else None
    poses2d = _per_actor(path, data, poses2d_key, len(actors)) if poses2d_key else None
    R, t = cam_poses[:, :3, :3], cam_poses[:, :3, 3] * 1000.0  # world -> camera, mm
    level_world, level, how = _levelling(actors, R)
    builder.notes.append(f"{name}: up from the {how}")
    camera = builder.add_camera(Camera(name, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), None, level.T,
                                       np.zeros(3), IMAGE_SIZE))
    for a, (world, ok) in enumerate(actors):
        in_camera = np.einsum("tij,tkj->tki", R, world) + t[:, None, :]
        stored = np.where(ok[:, None, None], in_camera @ level.T, np.nan)
        motion = {"camera_R": np.where(ok[:, None, None], R @ level_world.T, np.nan),
                  "camera_t": np.where(ok[:, None], t, np.nan)}
        keypoints = None
        if poses2d is not None:
            detected = check_array(path, f"{poses2d_key}[{a}]", np.asarray(poses2d[a]), (frames, 3, 18))
            detected = detected.transpose(0, 2, 1)[:, OPENPOSE18_TO_COCO17].astype(np.float64)
            xy = np.where(detected[..., 2:3] > 0, detected[..., :2], np.nan)
            keypoints = [keypoints_with_confidence(xy, np.clip(detected[..., 2], 0.0, 1.0))]
        builder.add_take(sequence=f"{name}/{a}", subject=f"{name}/{a}", action=name.rsplit("_", 1)[0],
                         split=FOLDER_SPLITS[folder], fps=FPS, joints=stored, cameras=[camera],
                         keypoints=keypoints, annotations=motion, source_split=folder)


def convert(source: str | Path, strict: bool = False) -> Converted:
    """Convert every sequence pickle under ``source`` (the folder holding sequenceFiles/); a
    missing split folder (train, validation, test) is noted, or refused with ``strict``."""
    source = Path(source)
    builder = DatasetBuilder("smpl_24")
    files = sequence_files(source)
    present = {folder: any(f == folder for f, _ in files) for folder in FOLDER_SPLITS}
    available_parts("3dpw", source, present, strict, builder)
    for folder, path in files:
        convert_sequence(path, read_sequence(path), folder, builder)
    return builder.finish("coco_17", "openpose")
