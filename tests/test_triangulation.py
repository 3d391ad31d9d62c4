"""Robust triangulation (geometry.triangulation) and `posebridge triangulate` on synthetic cameras
with known 3D: exact recovery, a left/right swap repaired, an outlier view rejected, the person
chosen across views, the temporal filter."""

import numpy as np
import pandas as pd
import pytest

from posebridge.geometry import skeletons
from posebridge.geometry.cameras import Camera
from posebridge.geometry.triangulation import (
    TriangulationConfig,
    fill_gaps,
    hampel_outliers,
    triangulate,
    weighted_dlt,
)

COCO = skeletons.get("coco_17")
# a standing person (world mm, Z up), COCO-17 order, facing -y
STANDING = np.array([
    [0, -80, 1650], [-35, -70, 1690], [35, -70, 1690], [-75, -20, 1670], [75, -20, 1670],
    [-190, 0, 1450], [190, 0, 1450], [-230, 0, 1170], [230, 0, 1170], [-250, -40, 900],
    [250, -40, 900], [-110, 0, 950], [110, 0, 950], [-120, -20, 500], [120, -20, 500],
    [-125, 20, 80], [125, 20, 80]], dtype=np.float64)


def rig(distortion=(0.0, 0.0, 0.0, 0.0, 0.0)) -> list:
    """Four portrait cameras around the origin, 3-4 m away, 1.5-2 m up."""
    positions = [(2500, -2500, 1800), (3000, 1200, 1500), (-2600, 2400, 2000), (-3200, -1500, 1700)]
    return [Camera.look_at(f"cam{k}", p, (0, 0, 900), (1600, 1600, 540, 960), distortion, (1080, 1920))
            for k, p in enumerate(positions)]


def motion(frames: int = 12) -> np.ndarray:
    """(T, 17, 3): the standing pose walking along x and swinging its arms."""
    t = np.arange(frames)[:, None, None]
    poses = np.repeat(STANDING[None], frames, axis=0) + t * np.array([15.0, 5.0, 0.0])
    poses[:, 9, 1] += 60 * np.sin(t[:, 0, 0] / 3)  # left wrist swings
    return poses


def observe(cameras, joints) -> np.ndarray:
    """(V, T, 17, 3) exact projections with confidence 1."""
    uv = np.stack([c.project(joints) for c in cameras])
    return np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)


@pytest.mark.parametrize("distortion", [(0, 0, 0, 0, 0), (-0.12, 0.08, 0.0, 0.001, -0.002)])
def test_exact_views_are_recovered_exactly(distortion):
    cameras, truth = rig(distortion), motion()
    result = triangulate(observe(cameras, truth), cameras, COCO)
    np.testing.assert_allclose(result.joints, truth, atol=0.05)
    assert np.nanmax(result.errors) < 0.01
    assert result.used.all() and result.person.all() and result.swaps.sum() == 0 and not result.filtered.any()


def test_weighted_dlt_ignores_zero_weight_views_and_needs_two():
    cameras, truth = rig(), motion(1)[0]
    from posebridge.geometry.triangulation import _projections, _rays

    keypoints = observe(cameras, truth)
    rays = _rays(keypoints, cameras)
    rays[2] += 0.3  # a wildly wrong view ...
    weights = np.ones((4, 17))
    weights[2] = 0.0  # ... that does not count
    np.testing.assert_allclose(weighted_dlt(rays, weights, _projections(cameras)), truth, atol=0.05)
    weights[1:] = 0.0
    assert np.isnan(weighted_dlt(rays, weights, _projections(cameras))).all()


def test_a_view_with_left_and_right_swapped_is_repaired():
    cameras, truth = rig(), motion()
    keypoints = observe(cameras, truth)
    mirrored = keypoints[1, 3:9][:, list(COCO.mirror)]  # view 1 reads the person mirrored in frames 3-8
    keypoints[1, 3:9] = mirrored
    result = triangulate(keypoints, cameras, COCO)
    np.testing.assert_allclose(result.joints, truth, atol=0.05)
    assert (result.swaps[1, 3:9] == len(COCO.left)).all()
    assert result.swaps.sum() == 6 * len(COCO.left)


def test_an_outlier_view_is_rejected():
    cameras, truth = rig(), motion()
    keypoints = observe(cameras, truth)
    keypoints[2, :, 10, :2] += (150.0, -90.0)  # view 2 puts the right wrist elsewhere
    result = triangulate(keypoints, cameras, COCO)
    np.testing.assert_allclose(result.joints, truth, atol=0.05)
    assert not result.used[2, :, 10].any() and result.used[[0, 1, 3], :, 10].all()
    assert np.nanmin(result.errors[2, :, 10]) > 100  # the rejected view's error is recorded


def test_the_person_is_chosen_across_views():
    cameras, truth = rig(), motion()
    other = truth + np.array([1200.0, -900.0, 0.0])  # a second person
    keypoints = observe(cameras, truth)
    keypoints[3] = observe(cameras, other)[3]  # view 3 follows the other person throughout
    keypoints[0, 6:] = observe(cameras, other)[0, 6:]  # view 0 switches to them half-way
    result = triangulate(keypoints, cameras, COCO)
    np.testing.assert_allclose(result.joints, truth, atol=0.05)
    assert not result.person[3].any() and result.person[0, :6].all() and not result.person[0, 6:].any()
    assert np.isnan(result.errors[3]).all()


def test_a_view_following_someone_else_takes_the_person_from_its_others():
    cameras, truth = rig(), motion()
    other = truth + np.array([1200.0, -900.0, 0.0])
    keypoints, elsewhere = observe(cameras, truth), observe(cameras, other)
    keypoints[3] = elsewhere[3]  # view 3's main detection is the other person throughout ...
    others = np.zeros((4, len(truth), 2, 17, 3))
    others[3, :, 1] = observe(cameras, truth)[3]  # ... and the person is among the others it found,
    others[3, :, 1, 5:, :2] += 25.0  # 25 px off (partly hidden): it must not move the joints
    others[0, :, 0] = elsewhere[0]  # a view whose own 2D is the person keeps it
    result = triangulate(keypoints, cameras, COCO, others=others)
    np.testing.assert_allclose(result.joints, truth, atol=0.05)  # from the three views that agree
    assert not result.person[3].any() and result.person[:3].all()
    assert result.taken_from_others[3].all() and not result.taken_from_others[:3].any()
    np.testing.assert_allclose(result.keypoints[3], others[3, :, 1])
    np.testing.assert_allclose(result.keypoints[:3], keypoints[:3])
    alone = triangulate(keypoints, cameras, COCO)  # without the others the view has no 2D of the person
    assert not alone.taken_from_others.any()
    np.testing.assert_allclose(alone.keypoints, keypoints)
    np.testing.assert_allclose(alone.joints, result.joints)
    far = others.copy()
    far[3, :, 1, :, :2] += 80.0  # farther than person_error_px: nobody is taken
    assert not triangulate(keypoints, cameras, COCO, others=far).taken_from_others.any()
    with pytest.raises(ValueError, match="others"):
        triangulate(keypoints, cameras, COCO, others=others[:, :5])


def test_temporal_filter_drops_a_spike_and_fills_it():
    joints = motion(20)
    spiked = joints.copy()
    spiked[9, 4] += (0.0, 0.0, 400.0)
    outliers = hampel_outliers(spiked, window=7, sigmas=3.0, min_mm=40.0)
    assert outliers[9, 4] and outliers.sum() == 1
    filled = fill_gaps(np.where(outliers[..., None], np.nan, spiked), max_gap=5)
    np.testing.assert_allclose(filled, joints, atol=1e-9)  # the motion is linear there


def test_unknown_setting_is_refused():
    from posebridge.errors import ConfigError

    with pytest.raises(ConfigError, match="max_eror_px"):
        TriangulationConfig.from_dict({"max_eror_px": 10})


def test_command_writes_the_dataset_with_joints_and_view_errors(tmp_path):
    from posebridge.cli import main
    from posebridge.data.detections import read_detections, write_detections
    from posebridge.data.store import open_dataset, write_dataset

    cameras, truth = rig(), motion()
    T = len(truth)
    index = pd.DataFrame([{"sequence": "take", "subject": "s", "action": "a", "split": "test",
                           "camera": c.name, "camera_index": k, "start": 0, "frames": T, "fps": 60.0,
                           "role": "test", "group": "take"} for k, c in enumerate(cameras)])
    write_dataset(tmp_path / "rig.h5", name="rig", skeleton="coco_17", role="test",
                  joints_3d=np.full((T, 17, 3), np.nan), cameras=cameras, index=index, has_3d=False)
    keypoints = observe(cameras, truth)
    person = keypoints.copy()
    keypoints[2, :3] = observe(cameras, truth + np.array([1500.0, 800.0, 0.0]))[2, :3]  # someone else ...
    others = np.zeros((4, T, 1, 17, 3), np.float32)
    others[2, :3, 0] = person[2, :3]  # ... and the person among the others found
    write_detections(tmp_path / "det.h5", dataset="rig", detector="exact", keypoint_format="coco_17",
                     rows=index[["sequence", "camera", "frames"]], keypoints=keypoints.reshape(-1, 17, 3),
                     others=others.reshape(-1, 1, 17, 3))
    assert main(["triangulate", "--dataset", str(tmp_path / "rig.h5"), "--detections", str(tmp_path / "det.h5"),
                 "--spec", '{"max_error_px": 20}', "--output", str(tmp_path / "rig_3d.h5"),
                 "--output-keypoints", str(tmp_path / "person_2d.h5")]) == 0
    with open_dataset(tmp_path / "rig_3d.h5") as out:
        np.testing.assert_allclose(out.sequence_3d("take"), truth, atol=0.05)
        assert out.name == "rig" and out.skeleton.name == "coco_17" and out.has_3d
        assert (out.index["reprojection_p90_px"] < 0.01).all()
        np.testing.assert_allclose(out.index["person_share"], [1, 1, 1 - 3 / T, 1])
        np.testing.assert_allclose(out.index["others_share"], [0, 0, 3 / T, 0])
    with read_detections(tmp_path / "person_2d.h5") as chosen:
        assert chosen.dataset == "rig" and chosen.detector == "exact" and chosen.num_others == 0
        for k, camera in enumerate(cameras):
            np.testing.assert_allclose(chosen.get("take", camera.name), person[k], atol=1e-3)
