"""HumanEva-I converter on VideoPose3D's npz files (3D + ground-truth 2D, real key structure)."""

import numpy as np
import pytest

from posebridge.sources.converters import convert, humaneva
from posebridge.sources.converters.common import quaternion_to_matrix
from posebridge.errors import DataError

HUMANEVA_SYMMETRY = [[2, 3, 4, 8, 9, 10], [5, 6, 7, 11, 12, 13]]
# (fx, fy, cx, cy) per subject x camera: what the fit must recover
INTRINSICS = {(s, k): (760.0 + 10 * k + j, 765.0 + 10 * k - j, 320.0 + k, 240.0 - j)
              for j, s in enumerate(("S1", "S2", "S3")) for k in range(3)}
TAKES = {"Train/S1": {"Walking 1 chunk0": 5, "Jog 1 chunk0": 4, "Jog 1 chunk2": 3}, "Validate/S1": {"Box 1 chunk0": 4},
         "Train/S2": {"Gestures 1 chunk0": 6}, "Validate/S3": {"ThrowCatch 1 chunk0": 5}}


def _project(subject, k, world_mm):
    """HumanEva 2D as VideoPose3D made it: the mocap seen by the (pinhole) calibrated camera."""
    q, position = humaneva.EXTRINSICS[subject][k]
    camera = (world_mm - position) @ quaternion_to_matrix(q)  # R^T (X - c) with R = camera -> world
    fx, fy, cx, cy = INTRINSICS[(subject, k)]
    return camera[..., :2] / camera[..., 2:] * [fx, fy] + [cx, cy]


def _write(folder, seed=0, extra_frames=0):
    rng = np.random.default_rng(seed)
    positions_3d, positions_2d = {}, {}
    for key, actions in TAKES.items():
        subject = key.split("/")[1]
        positions_3d[key], positions_2d[key] = {}, {}
        for action, frames in actions.items():
            world = rng.normal(size=(frames, 15, 3)) * [300, 300, 400] + [0, 0, 1000]
            positions_3d[key][action] = (world / 1000).astype(np.float32)
            positions_2d[key][action] = [np.concatenate([_project(subject, k, world),
                                                         np.zeros((extra_frames, 15, 2))]).astype(np.float32)
                                         for k in range(3)]
    positions_2d["Unlabeled/S4"] = {"Walking 1": [np.zeros((3, 15, 2), np.float32)] * 3}
    metadata = {"layout_name": "humaneva15", "num_joints": 15, "keypoints_symmetry": HUMANEVA_SYMMETRY}
    np.savez_compressed(folder / "data_3d_humaneva15.npz", positions_3d=positions_3d)
    np.savez_compressed(folder / "data_2d_humaneva15_gt.npz", positions_2d=positions_2d, metadata=metadata)
    return positions_3d, positions_2d


def test_takes_splits_and_fitted_cameras(tmp_path):
    positions_3d, _ = _write(tmp_path)
    out = convert("humaneva", tmp_path)
    assert out.skeleton == "humaneva_15"
    takes = out.index.drop_duplicates("sequence").set_index("sequence")
    assert sorted(takes.index) == sorted(f"{k}/{a}" for k, actions in TAKES.items() for a in actions)
    assert takes.loc["Train/S1/Jog 1 chunk2", "action"] == "Jog" and takes.loc["Train/S1/Jog 1 chunk2", "split"] == "train"
    assert takes.loc["Validate/S1/Box 1 chunk0", "split"] == "test"
    assert (out.index["fps"] == 60).all() and (out.index.groupby("sequence").size() == 3).all()
    row = takes.loc["Train/S2/Gestures 1 chunk0"]
    np.testing.assert_allclose(out.joints_3d[row["start"]:row["start"] + row["frames"]],
                               positions_3d["Train/S2"]["Gestures 1 chunk0"] * 1000, rtol=1e-6)
    cameras = {c.name: c for c in out.cameras}
    assert sorted(cameras) == [f"{s}/C{k}" for s in ("S1", "S2", "S3") for k in (1, 2, 3)]
    for (subject, k), intrinsics in INTRINSICS.items():
        cam = cameras[f"{subject}/C{k + 1}"]
        np.testing.assert_allclose(cam.intrinsics, intrinsics, rtol=1e-5)
        np.testing.assert_allclose(cam.position, humaneva.EXTRINSICS[subject][k][1], atol=1e-6)
        assert cam.image_size == (640, 480)
        world = positions_3d["Train/S1"]["Walking 1 chunk0"].astype(np.float64) * 1000
        np.testing.assert_allclose(cam.project(world), _project(subject, k, world), atol=2e-3)
    # every HumanEva camera looks at the capture volume
    for cam in out.cameras:
        assert cam.R[2] @ (-cam.position / np.linalg.norm(cam.position)) > 0.9


def test_detections_from_a_2d_file(tmp_path):
    _, positions_2d = _write(tmp_path, extra_frames=2)
    out = convert("humaneva", tmp_path, detections="gt")
    assert (out.detector, out.keypoint_format) == ("gt", "humaneva_15")
    first = out.index.iloc[0]
    key, action = first["sequence"].rsplit("/", 1)
    np.testing.assert_allclose(out.keypoints[:first["frames"], :, :2], positions_2d[key][action][0][:first["frames"]])
    # a detector file with the COCO layout
    coco = {k: {a: [np.ones((n + 1, 17, 2), np.float32)] * 3 for a, n in actions.items()} for k, actions in TAKES.items()}
    np.savez_compressed(tmp_path / "data_2d_humaneva15_detectron_pt_coco.npz", positions_2d=coco, metadata={
        "layout_name": "coco", "num_joints": 17,
        "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]})
    out = convert("humaneva", tmp_path, detections=str(tmp_path / "data_2d_humaneva15_detectron_pt_coco.npz"))
    assert (out.detector, out.keypoint_format, out.keypoints.shape[1]) == ("detectron_pt_coco", "coco_17", 17)


def test_inconsistent_ground_truth_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="place VideoPose3D's ground-truth 2D poses.*under"):
        np.savez_compressed(tmp_path / "data_3d_humaneva15.npz", positions_3d={})
        convert("humaneva", tmp_path)
    _, positions_2d = _write(tmp_path)
    gestures = positions_2d["Train/S2"]["Gestures 1 chunk0"]
    gestures[1] = gestures[1][:, ::-1].copy()  # camera C2 of S2: joints in the wrong order
    np.savez_compressed(tmp_path / "data_2d_humaneva15_gt.npz", positions_2d=positions_2d,
                        metadata={"layout_name": "humaneva15", "num_joints": 15})
    with pytest.raises(DataError, match="data_2d_humaneva15_gt.npz: camera S2/C2: the 2D annotations are not a pinhole"):
        convert("humaneva", tmp_path)
    np.savez_compressed(tmp_path / "data_3d_humaneva15.npz", positions_3d={"Train/S7": {"Walk": np.zeros((2, 15, 3))}})
    with pytest.raises(DataError, match="subject 'Train/S7' has no published extrinsics"):
        convert("humaneva", tmp_path)
