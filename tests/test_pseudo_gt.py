"""Pseudo-GT: the chosen frames respect the confidence, stride, cap and held-out takes, and the
stored poses are the model's lift() of those frames, placed at the ground-truth root."""

import numpy as np
import pytest
import torch

from posebridge.inference.lift import LiftingModel, lift
from posebridge.models.lifter import SeparateHeadLifter
from posebridge.bridge.pseudo_gt import (
    PseudoGTConfig,
    predict_frames,
    read_pseudo_gt,
    select_frames,
    write_pseudo_gt,
)
from posebridge.errors import ConfigError, DataError

from test_train import make_set


def test_selection_follows_confidence_stride_cap_and_holds_out_whole_takes():
    data = make_set(rows=6, frames=80, seed=0)
    config = PseudoGTConfig(min_confidence=0.7, stride=3, max_poses=10_000, holdout=0.34)
    chosen, holdout = select_frames(data, config, seed=0)
    confidence = data.keypoint_confidence().mean(axis=1)  # the detector's, whatever the input codec
    assert (confidence[chosen] >= 0.7).all()
    for start, frames in zip(data.row_start, data.row_frames):
        confident = start + np.flatnonzero(confidence[start:start + frames] >= 0.7)
        assert np.array_equal(chosen[(chosen >= start) & (chosen < start + frames)], confident[::3])
    # held out by take: every frame of a take is on the same side; 2 of 6 takes held out
    row = np.repeat(np.arange(6), 80)[chosen]
    for r in range(6):
        assert len(set(holdout[row == r])) == 1
    assert len(set(row[holdout])) == 2

    capped, _ = select_frames(data, PseudoGTConfig(min_confidence=0.0, stride=1, max_poses=50), seed=1)
    assert len(capped) == 50 and len(np.unique(capped)) == 50 and np.all(np.diff(capped) > 0)
    with pytest.raises(ConfigError):
        PseudoGTConfig.from_dict({"stride": 0})
    with pytest.raises(ConfigError):
        PseudoGTConfig.from_dict({"strde": 2})


def test_pseudo_gt_is_lift_of_the_chosen_frames_at_the_true_root(tmp_path):
    data = make_set(rows=3, frames=40, seed=2)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        lifter = SeparateHeadLifter(["h36m_17", "humaneva_15"], filter_widths=[3, 3], channels=16).eval()
    model = LiftingModel.from_lifter(lifter, name="toy")
    chosen, holdout = select_frames(data, PseudoGTConfig(min_confidence=0.0, stride=5), seed=0)
    points = predict_frames(model, data, chosen, flip=True)
    assert points.shape == (len(chosen), 32, 3)

    row = np.repeat(np.arange(3), 40)[chosen]
    for r in range(3):
        start = data.row_start[r]
        # lift() from the row's network input: the same model, pixels undone by a unit camera
        from posebridge.inference.lift import lift_network_input

        full = lift_network_input(model, data.inputs[start:start + 40], flip=True).numpy() * 1000
        sel = row == r
        local = chosen[sel] - start
        for fmt, sl in lifter.slices.items():
            root = sl.start  # both formats' root is joint 0
            got = points[sel, sl] - points[sel, root:root + 1]
            want = full[local, sl] - full[local, root:root + 1]
            np.testing.assert_allclose(got, want, atol=1e-2)
        # the h36m_17 root sits at its ground-truth position (mm)
        np.testing.assert_allclose(points[sel, 0], data.targets[0][chosen[sel], 0] * 1000, atol=1e-2)

    arrays = {"points": points, "joint_names": np.array([f"j{i}" for i in range(32)]), "holdout": holdout,
              "formats": np.array(["h36m_17", "humaneva_15"])}
    write_pseudo_gt(tmp_path / "p.npz", arrays)
    back = read_pseudo_gt(tmp_path / "p.npz")
    assert np.array_equal(back["points"], points) and np.array_equal(back["holdout"], holdout)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError):
        read_pseudo_gt(tmp_path / "bad.npz")
    whole = (tmp_path / "p.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cut.npz: not a readable pseudo-GT .npz, truncated or corrupt"):
        read_pseudo_gt(tmp_path / "cut.npz")


def test_root_relative_pseudo_gt_equals_lift_on_keypoints():
    """lift() on pixels and predict_frames on the same frames' network input agree (root-relative)."""
    from test_train import coco_keypoints, frame_columns, make_camera, make_sequences
    from posebridge.models.lifter import keypoints_to_input
    from posebridge.training.data import LabeledSet

    camera = make_camera()
    world = make_sequences(1, 30, 5)[0]
    kp = coco_keypoints(world, camera, np.random.default_rng(0))
    with torch.random.fork_rng():
        torch.manual_seed(1)
        lifter = SeparateHeadLifter(["h36m_17"], filter_widths=[3, 3], channels=16).eval()
    model = LiftingModel.from_lifter(lifter, name="toy")
    data = LabeledSet(**frame_columns([keypoints_to_input(kp, *camera.image_size)], [camera], "t", codec=model.codec),
                      formats=["h36m_17"], targets=[(camera.world_to_camera(world) / 1000).astype(np.float32)])
    chosen = np.array([0, 7, 29])
    points = predict_frames(model, data, chosen)
    lifted = lift(model, kp, *camera.image_size)["h36m_17"][chosen]
    np.testing.assert_allclose(points - points[:, :1], lifted, atol=1e-2)


def test_poses_reaching_behind_the_camera_plane_are_left_out():
    from posebridge.bridge.pseudo_gt import MIN_DEPTH_MM, in_front

    points = np.full((3, 4, 3), 2000.0, np.float32)
    points[1, 2, 2] = MIN_DEPTH_MM  # on the bound: out (the projected loss divides by depth)
    points[2, 0, 2] = -50.0
    assert in_front(points).tolist() == [True, False, False]
