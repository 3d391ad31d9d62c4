import numpy as np
import pytest
import torch

from posebridge.geometry import canonical, skeletons
from posebridge.errors import ConfigError

H36M = skeletons.get("h36m_17")
PELVIS, LHIP = H36M.index("pelvis"), H36M.index("lhip")


def _poses(rng, n=50, skeleton=H36M):
    """Random poses (n, J, 3) in mm, somewhere in the room."""
    return rng.normal(size=(n, skeleton.num_joints, 3)) * 200.0 + rng.normal(size=(n, 1, 3)) * 2000.0


def _rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, -s, 0 * c], -1), np.stack([s, c, 0 * c], -1),
                     np.stack([0 * c, 0 * c, 1 + 0 * c], -1)], -2)


def _rot_x(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _random_rotations(rng, n):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def test_invariant_to_rotation_about_the_vertical_and_to_translation():
    rng = np.random.default_rng(0)
    poses = _poses(rng)
    yaw = _rot_z(rng.uniform(-np.pi, np.pi, len(poses)))  # one heading per pose
    moved = poses @ np.swapaxes(yaw, -1, -2) + rng.normal(size=(len(poses), 1, 3)) * 3000.0
    expected = canonical.canonicalize(poses, H36M)
    np.testing.assert_allclose(canonical.canonicalize(moved, H36M), expected, atol=1e-8)
    # the rotation really is about z only, so the pose did change before canonicalisation
    assert np.abs(moved - poses).max() > 100.0


def test_preserves_bone_lengths_and_all_distances():
    rng = np.random.default_rng(1)
    poses = _poses(rng)
    out = canonical.canonicalize(poses, "h36m_17")
    bones = np.array(H36M.bones)
    length = lambda p: np.linalg.norm(p[:, bones[:, 1]] - p[:, bones[:, 0]], axis=-1)
    np.testing.assert_allclose(length(out), length(poses), rtol=1e-12)
    pairwise = lambda p: np.linalg.norm(p[:, :, None] - p[:, None], axis=-1)
    np.testing.assert_allclose(pairwise(out), pairwise(poses), atol=1e-8)


def test_not_invariant_to_tilt():
    rng = np.random.default_rng(2)
    poses = _poses(rng)
    tilted = poses @ _rot_x(np.radians(20.0)).T
    diff = np.linalg.norm(canonical.canonicalize(tilted, H36M) - canonical.canonicalize(poses, H36M), axis=-1)
    assert diff.mean(axis=-1).min() > 10.0  # every pose changes by centimetres


def test_left_hip_in_xz_plane_with_positive_x_and_pelvis_at_origin():
    rng = np.random.default_rng(3)
    out = canonical.canonicalize(_poses(rng, 200), H36M)
    np.testing.assert_allclose(out[:, PELVIS], 0.0, atol=1e-9)
    np.testing.assert_allclose(out[:, LHIP, 1], 0.0, atol=1e-9)
    assert (out[:, LHIP, 0] > 0).all()


def test_hand_made_example():
    pose = np.zeros((17, 3))
    pose[:] = [100.0, 200.0, 0.0]
    pose[LHIP] = [100.0, 300.0, 50.0]  # left hip along +y (and 50 mm up): a -90 degree yaw
    pose[H36M.index("rhip")] = [101.0, 200.0, 0.0]  # 1 mm along +x -> along -y after the yaw
    pose[H36M.index("head")] = [100.0, 200.0, 700.0]  # straight up stays straight up
    out = canonical.canonicalize(pose, H36M)
    np.testing.assert_allclose(out[LHIP], [100.0, 0.0, 50.0], atol=1e-12)
    np.testing.assert_allclose(out[H36M.index("rhip")], [0.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[H36M.index("head")], [0.0, 0.0, 700.0], atol=1e-12)
    R = canonical.canonical_rotation(pose, H36M)
    np.testing.assert_allclose(R, _rot_z(-np.pi / 2), atol=1e-12)


def test_rotation_is_proper_and_about_z():
    rng = np.random.default_rng(4)
    R = canonical.canonical_rotation(_poses(rng), H36M)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(R[:, 2], np.broadcast_to([0, 0, 1.0], (len(R), 3)), atol=1e-12)


def test_camera_frame_with_up_vector_gives_the_world_canonical_pose():
    """Poses seen by tilted cameras (OpenCV frames, y roughly down) canonicalise to the same pose
    as in the Z-up world when told the camera's up vector R @ z; the up vectors of C cameras (C, 3)
    apply to all poses of that camera (C, T, J, 3)."""
    rng = np.random.default_rng(5)
    world = _poses(rng, 10)
    R = _random_rotations(rng, 4)  # world -> camera, arbitrary tilt
    t = rng.normal(size=(4, 3)) * 1000.0
    cam = np.einsum("cij,tkj->ctki", R, world) + t[:, None, None]
    up = R[:, :, 2]  # R @ (0, 0, 1)
    expected = np.broadcast_to(canonical.canonicalize(world, H36M), cam.shape)
    np.testing.assert_allclose(canonical.canonicalize(cam, H36M, up_axis=up), expected, atol=1e-8)
    # a level camera's up is -y
    level = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # looks along world +y, rows level
    cam_level = world @ level.T
    np.testing.assert_allclose(canonical.canonicalize(cam_level, H36M, up_axis="-y"),
                               canonical.canonicalize(world, H36M), atol=1e-8)


def test_torch_matches_numpy_keeps_dtype_and_is_differentiable():
    rng = np.random.default_rng(6)
    poses = _poses(rng, 8)
    expected = canonical.canonicalize(poses, H36M)
    t = torch.tensor(poses, dtype=torch.float64, requires_grad=True)
    out = canonical.canonicalize(t, H36M)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-9)
    out.square().sum().backward()
    assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    out32 = canonical.canonicalize(torch.tensor(poses, dtype=torch.float32), H36M)
    assert out32.dtype == torch.float32
    assert canonical.canonicalize(poses.astype(np.float32), H36M).dtype == np.float32


def test_format_without_pelvis_centres_on_hip_midpoint():
    coco = skeletons.get("coco_17")
    rng = np.random.default_rng(7)
    poses = _poses(rng, 20, coco)
    out = canonical.canonicalize(poses, coco)
    lhip, rhip = coco.index("lhip"), coco.index("rhip")
    np.testing.assert_allclose(out[:, lhip] + out[:, rhip], 0.0, atol=1e-9)
    np.testing.assert_allclose(out[:, lhip, 1], 0.0, atol=1e-9)
    moved = poses @ _rot_z(0.7).T + [5.0, -3.0, 2.0]
    np.testing.assert_allclose(canonical.canonicalize(moved, coco), out, atol=1e-8)


def test_undefined_heading_is_nan_and_bad_arguments_raise():
    pose = np.zeros((17, 3))
    pose[LHIP] = [0.0, 0.0, 100.0]  # straight above the pelvis: no heading
    assert np.isnan(canonical.canonicalize(pose, H36M)).all()
    with pytest.raises(ConfigError):
        canonical.canonicalize(pose, H36M, up_axis="w")
    with pytest.raises(ConfigError):
        canonical.canonicalize(pose, H36M, up_axis=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        canonical.canonicalize(np.zeros((16, 3)), H36M)
