"""BVH and CSV export of predicted motion (interop/bvh.py, interop/motion_csv.py, export-motion):
the BVH parsed back by bvhio (a maintained BVH library) and run through its forward kinematics
reproduces the exported joints within 1 mm, for every skeleton format and large rotations."""

import csv

import numpy as np
import pytest

from posebridge import cli
from posebridge.geometry import skeletons
from posebridge.interop import bvh
from posebridge.interop.motion_csv import write_csv
from posebridge.sources.synth import body as B
from posebridge.sources.synth import motion as M

bvhio = pytest.importorskip("bvhio")

FPS = 30


def _random_rotations(rng, n, max_angle):
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    return bvh._axis_angle(axis, rng.uniform(-max_angle, max_angle, n))


def rigid_motion(fmt, T=40, seed=0):
    """(T, J, 3) mm: a rigid skeleton of ``fmt`` (random bone offsets 40-400 mm) under random local
    rotations of up to 180 degrees, gimbal-lock frames (x rotation +-90 degrees) included, its
    root moving 2 m."""
    skeleton = skeletons.get(fmt)
    rng = np.random.default_rng(seed)
    offsets = rng.normal(size=(skeleton.num_joints, 3))
    offsets *= rng.uniform(40, 400, (skeleton.num_joints, 1)) / np.linalg.norm(offsets, axis=1, keepdims=True)
    local = np.stack([_random_rotations(rng, T, np.pi) for _ in range(skeleton.num_joints)], axis=1)
    local[0] = bvh.rotation_zxy(np.broadcast_to([30.0, 90.0, -40.0], (skeleton.num_joints, 3)))
    local[1] = bvh.rotation_zxy(np.broadcast_to([-120.0, -90.0, 10.0], (skeleton.num_joints, 3)))
    world, joints = np.empty_like(local), np.empty((T, skeleton.num_joints, 3))
    for j in bvh.depth_first(skeleton):
        p = skeleton.parents[j]
        world[:, j] = local[:, j] if p < 0 else world[:, p] @ local[:, j]
        joints[:, j] = (np.linspace([0, 0, 3000], [2000, 100, 4000], T) if p < 0
                        else joints[:, p] + world[:, p] @ offsets[j])
    return joints


def bvhio_joints(path, skeleton):
    """(T, J, 3) joints of ``skeleton`` in BVH axes and units, by bvhio's forward kinematics."""
    root = bvhio.readAsHierarchy(str(path))
    by_name = {joint.Name: joint for joint, _, _ in root.layout()}
    frames = bvhio.readAsBvh(str(path)).FrameCount
    out = np.empty((frames, skeleton.num_joints, 3))
    for t in range(frames):
        root.loadPose(t)
        for j, name in enumerate(skeleton.joint_names):
            out[t, j] = np.array(by_name[name].PositionWorld)
    return out


@pytest.mark.parametrize("fmt", skeletons.names())
def test_bvh_of_a_rigid_motion_reproduces_it_through_bvhio(tmp_path, fmt):
    joints = rigid_motion(fmt)
    path = tmp_path / f"{fmt}.bvh"
    motion = bvh.write_bvh(path, joints, fmt, fps=FPS)
    np.testing.assert_allclose(motion.joints(), joints, atol=1e-6)  # a rigid motion is fitted exactly
    parsed = bvhio_joints(path, skeletons.get(fmt))
    error_mm = np.abs(parsed - bvh.camera_to_bvh(joints)).max() * 1000
    assert error_mm < 1.0, f"{fmt}: bvhio's forward kinematics is {error_mm:.3f} mm off"


def synthetic_performance(T=90):
    """Every format's joints of a synthetic person running (the synthetic body), turned into
    camera-like axes (y down): a real motion, not rigid per format."""
    rng = np.random.default_rng(3)
    body = B.sample_body(rng, "s")
    clip = M.generate_clip("running", T / FPS, FPS, M.sample_style(rng, body.height), rng)
    pos, rot = M.perform(body, clip, rng, centre=(0.0, 0.0), radius=1500.0)
    world = B.all_format_joints(body, pos, rot)
    return {f: np.stack([j[..., 0], -j[..., 2], j[..., 1] + 4000], axis=-1) for f, j in world.items()}


def test_bvh_of_a_synthetic_performance_in_every_format(tmp_path):
    """A motion that is not rigid: the file describes the fitted rigid motion exactly (bvhio within
    1 mm of ``RigidMotion.joints``), which stays close to the input joints."""
    means = {}
    for fmt, joints in synthetic_performance().items():
        path = tmp_path / f"{fmt}.bvh"
        motion = bvh.write_bvh(path, joints, fmt, fps=FPS, unit="cm")
        parsed = bvhio_joints(path, skeletons.get(fmt))
        exported = bvh.camera_to_bvh(motion.joints(), "cm")
        assert np.abs(parsed - exported).max() * 10 < 1.0, fmt
        fit = np.linalg.norm(motion.joints() - joints, axis=-1)
        means[fmt] = fit.mean()
    # joint-centre formats: a few mm; COCO and MediaPipe (surface points in a tree rooted at a hip) more
    assert np.median(list(means.values())) < 10 and max(means.values()) < 40, means


def test_bvh_header_channels_and_axes(tmp_path):
    joints = rigid_motion("h36m_17", T=3)
    path = tmp_path / "m.bvh"
    bvh.write_bvh(path, joints, "h36m_17", fps=50)
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT pelvis\n")
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    assert text.count("CHANNELS 3 Zrotation Xrotation Yrotation") == 16
    assert "Frames: 3\nFrame Time: 0.02000000\n" in text
    first = np.array(text.split("Frame Time: 0.02000000\n")[1].splitlines()[0].split(), float)
    # root position: metres, y up, z towards the camera
    np.testing.assert_allclose(first[:3], joints[0, 0] * [0.001, -0.001, -0.001], atol=1e-6)


def test_euler_round_trip_and_unwrapping():
    rng = np.random.default_rng(1)
    R = _random_rotations(rng, 500, np.pi)
    np.testing.assert_allclose(bvh.rotation_zxy(bvh.euler_zxy(R)), R, atol=1e-9)
    # a steady turn about y: the angles keep growing instead of jumping by 360 degrees
    turn = bvh.rotation_zxy(np.stack([np.zeros(50), np.zeros(50), np.linspace(0, 700, 50)], axis=1))
    angles = bvh._unwrap_euler(bvh.euler_zxy(turn)[:, None])[:, 0]
    assert np.abs(np.diff(angles, axis=0)).max() < 20
    np.testing.assert_allclose(bvh.rotation_zxy(angles), turn, atol=1e-9)


def test_missing_frames_take_the_nearest_pose():
    joints = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    joints[[0, 2, 3]] = np.nan
    filled = bvh.fill_missing_frames(joints)
    np.testing.assert_array_equal(filled[[0, 1, 2, 3, 4]], joints[[1, 1, 1, 4, 4]])
    with pytest.raises(ValueError, match="no frame"):
        bvh.fill_missing_frames(np.full((3, 2, 3), np.nan))


def test_csv_columns_units_and_missing_frames(tmp_path):
    joints = rigid_motion("coco_17", T=4)
    rel = joints - joints[:, 11:12]
    trajectory = joints[:, 11]
    rel[2] = np.nan
    path = tmp_path / "m.csv"
    write_csv(path, rel, "coco_17", fps=25, root_trajectory=trajectory)
    rows = list(csv.reader(path.open()))
    assert rows[0][:5] == ["frame", "time_s", "nose_x", "nose_y", "nose_z"] and len(rows[0]) == 2 + 17 * 3
    assert len(rows) == 5 and rows[2][1] == "0.040000"
    np.testing.assert_allclose(np.array(rows[1][2:], float), joints[0].ravel(), atol=1e-3)
    assert rows[3][2:] == [""] * 51


def _prediction(tmp_path, **extra):
    perf = synthetic_performance(T=30)
    poses = {f: (j - j[:, skeletons.get(f).root:skeletons.get(f).root + 1]).astype(np.float32)
             for f, j in perf.items() if f in ("h36m_17", "smpl_24")}
    poses["h36m_17"][5] = np.nan  # a frame without the person (infer writes NaN)
    path = tmp_path / "clip_3d.npz"
    np.savez(path, **poses, trajectory=perf["h36m_17"][:, 0].astype(np.float32), **extra)
    return path


def test_export_motion_command_writes_every_requested_format(tmp_path, capsys):
    path = _prediction(tmp_path, fps=np.float64(25.0))
    assert cli.main(["export-motion", str(path), "--format", "bvh", "--skeleton", "all",
                     "--output-dir", str(tmp_path / "out")]) == 0
    assert "30 frames at 25 frames/s" in capsys.readouterr().out
    for fmt in ("h36m_17", "smpl_24"):
        parsed = bvhio_joints(tmp_path / "out" / f"clip_3d_{fmt}.bvh", skeletons.get(fmt))
        assert parsed.shape == (30, skeletons.get(fmt).num_joints, 3) and np.isfinite(parsed).all()
    assert cli.main(["export-motion", str(path), "--format", "csv", "--output-dir", str(tmp_path / "out")]) == 0
    rows = list(csv.reader((tmp_path / "out" / "clip_3d_h36m_17.csv").open()))
    assert len(rows) == 31 and rows[1][1] == "0.000000" and rows[2][1] == "0.040000"


def test_export_motion_refuses_a_format_the_file_lacks(tmp_path, capsys):
    path = _prediction(tmp_path)
    assert cli.main(["export-motion", str(path), "--format", "bvh", "--skeleton", "coco_19",
                     "--output-dir", str(tmp_path / "out")]) == 1
    assert "coco_19 not in the prediction" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bvh_with_joint_positions_reproduces_the_predicted_joints(tmp_path):
    """With position channels on every joint the file reproduces non-rigid joints themselves
    (bone lengths varying) within 1 mm, through bvhio."""
    for fmt, joints in synthetic_performance(T=30).items():
        path = tmp_path / f"{fmt}.bvh"
        bvh.write_bvh(path, joints, fmt, fps=FPS, joint_positions=True)
        parsed = bvhio_joints(path, skeletons.get(fmt))
        assert np.abs(parsed - bvh.camera_to_bvh(joints)).max() * 1000 < 1.0, fmt
