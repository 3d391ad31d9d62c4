import dataclasses
import functools
import json

import numpy as np
import pytest
import torch

from posebridge.geometry import cameras
from posebridge.geometry.cameras import (
    H36M_CAMERAS,
    H36M_FPS,
    Camera,
    distort,
    image_coordinates,
    normalize_screen,
    project_points,
    project_points_torch,
    undistort,
    undistort_points,
    videopose3d_intrinsics,
)
from posebridge.errors import ConfigError

H36M_IDS = ["54138969", "55011271", "58860488", "60457274"]


def _reference_distort(x, y, k1, k2, k3, p1, p2):
    """The OpenCV formula written out term by term, independently of the library."""
    r2 = x**2 + y**2
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x**2)
    yd = y * radial + p1 * (r2 + 2 * y**2) + 2 * p2 * x * y
    return xd, yd


def _rig_camera(dist=None, name="cam"):
    cam = H36M_CAMERAS["54138969"]
    return Camera.look_at(
        name,
        position=(3000.0, -2500.0, 1600.0),
        target=(0.0, 0.0, 900.0),
        intrinsics=cam.intrinsics,
        distortion=cam.distortion if dist is None else dist,
        image_size=cam.image_size,
    )


def _points_in_view(cam, n=200, seed=0, margin=0.05):
    """World points whose (undistorted) projection lies inside the image."""
    rng = np.random.default_rng(seed)
    w, h = cam.image_size
    uv = rng.uniform([margin * w, margin * h], [(1 - margin) * w, (1 - margin) * h], size=(n, 2))
    depth = rng.uniform(2000.0, 7000.0, size=n)
    fx, fy, cx, cy = cam.intrinsics
    X_cam = np.stack([(uv[:, 0] - cx) / fx * depth, (uv[:, 1] - cy) / fy * depth, depth], -1)
    return cam.camera_to_world(X_cam)


# ---------------------------------------------------------------------- constants


def test_h36m_cameras():
    assert H36M_FPS == 50
    assert list(H36M_CAMERAS) == H36M_IDS
    c = H36M_CAMERAS["54138969"]
    assert H36M_CAMERAS[54138969] is c and 54138969 in H36M_CAMERAS
    np.testing.assert_allclose(c.intrinsics, [1145.0494, 1143.7811, 512.5415, 515.4515], atol=1e-4)
    np.testing.assert_allclose(
        c.distortion, [-0.2070986, 0.2477752, -0.0030751, -0.0009757, -0.0014245], atol=1e-6
    )
    assert c.image_size == (1000, 1002)
    assert H36M_CAMERAS["55011271"].image_size == (1000, 1000)
    for cam in H36M_CAMERAS.values():
        np.testing.assert_array_equal(cam.R, np.eye(3))
        np.testing.assert_array_equal(cam.t, np.zeros(3))
    with pytest.raises(ValueError):
        c.intrinsics[0] = 1.0  # shared constants are read-only


def test_videopose3d_intrinsics():
    v = videopose3d_intrinsics(H36M_CAMERAS["54138969"])
    assert v.shape == (9,)
    assert v[0] == pytest.approx(1145.0494384765625 * 2 / 1000)
    assert v[0] == pytest.approx(1145.0494 * 2 / 1000, abs=1e-6)
    assert v[1] == pytest.approx(1143.7811279296875 * 2 / 1000)
    assert v[2] == pytest.approx(512.54150390625 / 1000 * 2 - 1)
    assert v[3] == pytest.approx(515.4514770507812 / 1000 * 2 - 1002 / 1000)
    np.testing.assert_array_equal(v[4:], H36M_CAMERAS["54138969"].distortion)


def test_videopose3d_projection_consistent():
    """Projecting in VideoPose3D's normalised frame equals normalising the pixel projection."""
    cam = H36M_CAMERAS["58860488"]
    X = _points_in_view(cam)
    v = videopose3d_intrinsics(cam)
    w, h = cam.image_size
    np.testing.assert_allclose(
        project_points(X, v[:4], v[4:], model=cam.distortion_model),
        normalize_screen(cam.project(X), w, h), atol=1e-12
    )


# ---------------------------------------------------------------------- projection


def test_zero_distortion_is_pinhole():
    rng = np.random.default_rng(1)
    X = rng.uniform([-1000, -1000, 1500], [1000, 1000, 6000], size=(50, 3))
    K = np.array([1100.0, 1050.0, 500.0, 480.0])
    expected = np.stack([K[0] * X[:, 0] / X[:, 2] + K[2], K[1] * X[:, 1] / X[:, 2] + K[3]], -1)
    np.testing.assert_allclose(project_points(X, K, np.zeros(5)), expected, rtol=1e-12)
    np.testing.assert_allclose(project_points(X, K), expected, rtol=1e-12)
    # and via the intrinsic matrix
    hom = X @ Camera("c", K, None, np.eye(3), np.zeros(3), (1000, 1000)).K.T
    np.testing.assert_allclose(hom[:, :2] / hom[:, 2:], expected, rtol=1e-12)


@pytest.mark.parametrize("cid", H36M_IDS)
def test_distortion_matches_written_out_formula(cid):
    # the OpenCV model with H36M's coefficients (the H36M cameras themselves use VideoPose3D's)
    cam = dataclasses.replace(H36M_CAMERAS[cid], distortion_model="opencv")
    rng = np.random.default_rng(2)
    X = rng.uniform([-1500, -1500, 2000], [1500, 1500, 6000], size=(100, 3))
    x, y = X[:, 0] / X[:, 2], X[:, 1] / X[:, 2]
    xd, yd = _reference_distort(x, y, *cam.distortion)
    fx, fy, cx, cy = cam.intrinsics
    expected = np.stack([fx * xd + cx, fy * yd + cy], -1)
    np.testing.assert_allclose(project_points(X, cam.intrinsics, cam.distortion), expected, rtol=1e-12)
    np.testing.assert_allclose(cam.project_camera(X), expected, rtol=1e-12)
    np.testing.assert_allclose(cam.project(X), expected, rtol=1e-12)  # identity extrinsics
    np.testing.assert_allclose(distort(np.stack([x, y], -1), cam.distortion), np.stack([xd, yd], -1))


def test_distortion_each_coefficient():
    """One coefficient at a time, including the asymmetric tangential terms."""
    xy = np.array([[0.3, -0.2], [-0.1, 0.4], [0.25, 0.25]])
    for i in range(5):
        d = np.zeros(5)
        d[i] = 0.1
        xd, yd = _reference_distort(xy[:, 0], xy[:, 1], *d)
        np.testing.assert_allclose(distort(xy, d), np.stack([xd, yd], -1), rtol=1e-14)


def test_numpy_and_torch_agree_and_broadcast():
    rng = np.random.default_rng(3)
    B, T, J = 4, 6, 17
    X = rng.uniform([-800, -800, 2500], [800, 800, 6000], size=(B, T, J, 3))
    K = np.stack([H36M_CAMERAS[c].intrinsics for c in H36M_IDS])
    D = np.stack([H36M_CAMERAS[c].distortion for c in H36M_IDS])
    ref = np.stack([project_points(X[b], K[b], D[b]) for b in range(B)])
    np.testing.assert_allclose(project_points(X, K, D), ref, rtol=1e-12)
    Xt = torch.as_tensor(X)
    out = project_points_torch(Xt, torch.as_tensor(K), torch.as_tensor(D))
    assert out.shape == (B, T, J, 2)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    # numpy parameters and a single camera broadcast
    np.testing.assert_allclose(
        project_points_torch(Xt, K[0], D[0]).numpy(), project_points(X, K[0], D[0]), rtol=1e-10
    )
    # float32
    out32 = project_points_torch(Xt.float(), K, D)
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), ref, atol=1e-2)
    # camera methods accept torch
    cam = _rig_camera()
    Xw = _points_in_view(cam)
    np.testing.assert_allclose(cam.project(torch.as_tensor(Xw)).numpy(), cam.project(Xw), rtol=1e-10)


def test_torch_gradients_finite():
    cam = H36M_CAMERAS["55011271"]
    X = torch.tensor(
        [
            [[100.0, -200.0, 3000.0], [0.0, 0.0, 0.0], [500.0, 300.0, -100.0]],
            [[0.0, 0.0, -2000.0], [1e4, -1e4, 1e-9], [-300.0, 50.0, 1.0]],
        ],
        requires_grad=True,
    )
    K = torch.as_tensor(np.stack([cam.intrinsics] * 2), dtype=torch.float32).requires_grad_()
    D = torch.as_tensor(np.stack([cam.distortion] * 2), dtype=torch.float32).requires_grad_()
    uv = project_points_torch(X, K, D)
    assert torch.isfinite(uv).all()
    uv.square().sum().backward()
    for g in (X.grad, K.grad, D.grad):
        assert g is not None and torch.isfinite(g).all()
    # points in front are not clamped: same as numpy
    np.testing.assert_allclose(
        uv[0, 0].detach().numpy(),
        project_points(np.array([100.0, -200.0, 3000.0]), cam.intrinsics, cam.distortion),
        rtol=1e-5,
    )
    # the clamp only acts at extreme angles: 89 degrees off-axis is still exact
    ang = np.deg2rad(89.0)
    P = np.array([np.sin(ang), 0.0, np.cos(ang)]) * 1000
    np.testing.assert_allclose(project_points(P, cam.intrinsics)[0], cam.intrinsics[0] * np.tan(ang) + cam.intrinsics[2])


def test_world_camera_round_trip_and_position():
    cam = _rig_camera()
    rng = np.random.default_rng(4)
    X = rng.normal(scale=2000.0, size=(30, 17, 3))
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(X)), X, atol=1e-9)
    np.testing.assert_allclose(cam.world_to_camera(cam.position), 0.0, atol=1e-9)
    np.testing.assert_allclose(cam.position, [3000.0, -2500.0, 1600.0], atol=1e-9)
    Xt = torch.as_tensor(X)
    np.testing.assert_allclose(cam.world_to_camera(Xt).numpy(), cam.world_to_camera(X), atol=1e-9)
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(Xt)).numpy(), X, atol=1e-9)


def test_look_at():
    cam = _rig_camera()
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cam.R) == pytest.approx(1.0)
    target = np.array([0.0, 0.0, 900.0])
    Xc = cam.world_to_camera(target)
    np.testing.assert_allclose(Xc[:2], 0.0, atol=1e-9)
    assert Xc[2] == pytest.approx(np.linalg.norm(target - cam.position))
    # the target projects to the principal point (distortion vanishes on the axis)
    np.testing.assert_allclose(cam.project(target), cam.intrinsics[2:], atol=1e-9)
    # world up is image up (smaller v); a point to the camera's right has larger u
    above = cam.project(target + [0.0, 0.0, 500.0])
    assert above[1] < cam.intrinsics[3]
    right = np.cross(target - cam.position, [0.0, 0.0, 1.0])
    assert cam.project(target + 300 * right / np.linalg.norm(right))[0] > cam.intrinsics[2]
    with pytest.raises(ConfigError):
        Camera.look_at("bad", (0, 0, 0), (0, 0, 10), cam.intrinsics, None, (100, 100))


@pytest.mark.parametrize("cid", H36M_IDS)
def test_flipped_camera_mirrors_image(cid):
    h = H36M_CAMERAS[cid]
    cam = _rig_camera(dist=h.distortion)
    cam = dataclasses.replace(cam, intrinsics=h.intrinsics, image_size=h.image_size)
    X = _points_in_view(cam, seed=5)
    uv = cam.project(X)
    X_mirrored = X * np.array([-1.0, 1.0, 1.0])
    flipped = cam.flipped()
    uv_f = flipped.project(X_mirrored)
    expected = np.stack([cam.width - uv[:, 0], uv[:, 1]], -1)
    np.testing.assert_allclose(uv_f, expected, atol=1e-9)
    # the flip is exact only with the p2 sign change: without it the images differ
    wrong = dataclasses.replace(flipped, distortion=cam.distortion)
    assert np.abs(wrong.project(X_mirrored) - expected).max() > 0.1
    # a proper rotation, the mirrored position, and flipping twice is the identity
    assert np.linalg.det(flipped.R) == pytest.approx(1.0)
    np.testing.assert_allclose(flipped.position, cam.position * [-1, 1, 1], atol=1e-9)
    twice = flipped.flipped()
    for k in ("intrinsics", "distortion", "R", "t"):
        np.testing.assert_allclose(getattr(twice, k), getattr(cam, k), atol=1e-12)
    np.testing.assert_array_equal(flipped.distortion, cam.distortion * [1, 1, 1, 1, -1])
    assert flipped.intrinsics[2] == cam.width - cam.intrinsics[2]


def test_flipped_camera_with_skeleton_flip():
    """Skeleton.flip of world joints seen through flipped() is the mirrored image, joints swapped."""
    from posebridge.geometry import skeletons

    s = skeletons.get("h36m_17")
    cam = _rig_camera()
    X = _points_in_view(cam, n=17, seed=6)
    uv = cam.project(X)
    uv_f = cam.flipped().project(s.flip(X))
    np.testing.assert_allclose(uv_f[list(s.mirror)] * [-1, 1] + [cam.width, 0], uv, atol=1e-9)


@pytest.mark.parametrize("cid", H36M_IDS)
@pytest.mark.parametrize("model", cameras.DISTORTION_MODELS)
def test_undistort_inverts_distort(cid, model):
    cam = dataclasses.replace(H36M_CAMERAS[cid], distortion_model=model)
    distort = functools.partial(cameras.distort, model=model)
    undistort = functools.partial(cameras.undistort, model=model)
    undistort_points = functools.partial(cameras.undistort_points, model=model)
    w, h = cam.image_size
    u, v = np.meshgrid(np.linspace(0, w, 41), np.linspace(0, h, 41))
    uv_ideal = np.stack([u, v], -1)  # pinhole pixels covering the whole image and corners
    xy = (uv_ideal - cam.intrinsics[2:]) / cam.intrinsics[:2]
    uv_dist = distort(xy, cam.distortion) * cam.intrinsics[:2] + cam.intrinsics[2:]
    back = undistort_points(uv_dist, cam.intrinsics, cam.distortion)
    assert np.abs(back - uv_ideal).max() < 1e-3
    np.testing.assert_allclose(
        undistort_points(uv_dist, cam.intrinsics, cam.distortion, normalised=True), xy, atol=1e-8
    )
    # the other direction: distort(undistort(pixels)) == pixels, for distorted pixels in the image
    uv_img = uv_ideal
    xy_u = undistort_points(uv_img, cam.intrinsics, cam.distortion, normalised=True)
    redo = distort(xy_u, cam.distortion) * cam.intrinsics[:2] + cam.intrinsics[2:]
    assert np.abs(redo - uv_img).max() < 1e-3
    # and from 3D: undistorting a projection gives the pinhole projection
    X = _points_in_view(cam, seed=7)
    np.testing.assert_allclose(
        undistort_points(cam.project(X), cam.intrinsics, cam.distortion),
        project_points(X, cam.intrinsics),
        atol=1e-6,
    )
    np.testing.assert_allclose(undistort(distort(xy, cam.distortion), cam.distortion), xy, atol=1e-8)


def test_normalize_screen_round_trip():
    rng = np.random.default_rng(8)
    w, h = 1000, 1002
    X = rng.uniform(0, [w, h], size=(10, 17, 2))
    N = normalize_screen(X, w, h)
    np.testing.assert_allclose(N, X / w * 2 - [1, h / w])
    np.testing.assert_allclose(image_coordinates(N, w, h), X, atol=1e-9)
    # the image centre column maps to x = 0, the corners to +-1 and +-h/w
    np.testing.assert_allclose(normalize_screen(np.array([w / 2, h / 2]), w, h), [0.0, 0.0])
    np.testing.assert_allclose(normalize_screen(np.array([[0.0, 0.0], [w, h]]), w, h),
                               [[-1, -h / w], [1, h / w]])
    np.testing.assert_allclose(normalize_screen(np.array([w / 2, 123.0]), w, h)[0], 0.0)
    # torch matches numpy and round-trips
    T = torch.as_tensor(X, dtype=torch.float32)
    Nt = normalize_screen(T, w, h)
    np.testing.assert_allclose(Nt.numpy(), N, atol=1e-6)
    np.testing.assert_allclose(image_coordinates(Nt, w, h).numpy(), X, atol=1e-3)
    # extra channels (confidence) pass through
    Xc = np.concatenate([X, rng.uniform(size=(10, 17, 1))], -1)
    Nc = normalize_screen(Xc, w, h)
    np.testing.assert_allclose(Nc[..., :2], N)
    np.testing.assert_array_equal(Nc[..., 2], Xc[..., 2])
    # flipping in the normalised frame is the pixel mirror u -> w - u
    np.testing.assert_allclose(image_coordinates(N * [-1, 1], w, h)[..., 0], w - X[..., 0])


def test_dict_round_trip_and_validation():
    cam = _rig_camera()
    d = cam.to_dict()
    json.dumps(d)
    back = Camera.from_dict(json.loads(json.dumps(d)))
    assert back == cam
    assert back != cam.flipped()
    with pytest.raises(ConfigError):
        Camera.from_dict({"name": "x"})
    with pytest.raises(ConfigError):
        Camera("x", [1, 2, 3], None, np.eye(3), np.zeros(3), (10, 10))
    with pytest.raises(ConfigError):
        Camera("x", [1, 1, 1, 1], None, np.diag([1.0, 1.0, -1.0]), np.zeros(3), (10, 10))
    with pytest.raises(ConfigError):
        Camera("x", [1, 1, 1, 1], None, np.eye(3), np.zeros(3), (0, 10))
    with pytest.raises(ValueError):
        project_points(np.zeros((3, 2)), [1, 1, 0, 0])
    assert cameras.MIN_DEPTH_RATIO > 0


# ---------------------------------------------------------------------- distortion models

# Human3.6M intrinsics as VideoPose3D publishes them (common/h36m_dataset.py): centre, focal
# length, radial (k1, k2, k3), tangential (p1, p2), resolution
_VIDEOPOSE3D_H36M = {
    "54138969": ([512.54150390625, 515.4514770507812], [1145.0494384765625, 1143.7811279296875],
                 [-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043],
                 [-0.0009756988729350269, -0.00142447161488235], (1000, 1002)),
    "55011271": ([508.8486328125, 508.0649108886719], [1149.6756591796875, 1147.5916748046875],
                 [-0.1942136287689209, 0.2404085397720337, 0.006819975562393665],
                 [-0.0016190266469493508, -0.0027408944442868233], (1000, 1000)),
    "58860488": ([519.8158569335938, 501.40264892578125], [1149.1407470703125, 1148.7989501953125],
                 [-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427],
                 [0.0014843869721516967, -0.0007599993259645998], (1000, 1000)),
    "60457274": ([514.9682006835938, 501.88201904296875], [1145.5113525390625, 1144.77392578125],
                 [-0.198384091258049, 0.21832367777824402, -0.008947807364165783],
                 [-0.0005872055771760643, -0.0018133620033040643], (1000, 1002)),
}


def _videopose3d_pixels(X_cam, cid):
    """VideoPose3D's Human3.6M projection evaluated independently: its 9-vector in normalised
    screen units, ``project_to_2d`` (clamp, radial, ``tan = p . XX``, ``XX (radial + tan) + p r2``),
    then ``image_coordinates``."""
    c, f, k, p = (np.asarray(v, dtype=np.float64) for v in _VIDEOPOSE3D_H36M[cid][:4])
    w, h = _VIDEOPOSE3D_H36M[cid][4]
    f_n = f / w * 2
    c_n = c / w * 2 - [1, h / w]
    XX = np.clip(X_cam[..., :2] / X_cam[..., 2:], -1, 1)
    r2 = np.sum(XX ** 2, axis=-1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tan = np.sum(p * XX, axis=-1, keepdims=True)
    screen = f_n * (XX * (radial + tan) + p * r2) + c_n
    return (screen + [1, h / w]) * w / 2


def test_h36m_cameras_are_videopose3ds():
    for cid, (c, f, k, p, size) in _VIDEOPOSE3D_H36M.items():
        cam = H36M_CAMERAS[cid]
        np.testing.assert_array_equal(cam.intrinsics, [*f, *c])
        np.testing.assert_array_equal(cam.distortion, [*k, *p])  # k3 of 60457274 included
        assert cam.image_size == size and cam.distortion_model == "h36m_videopose3d"


@pytest.mark.parametrize("cid", H36M_IDS)
def test_h36m_projection_reproduces_videopose3d(cid):
    """Numpy and torch projection of every H36M camera agree with VideoPose3D's formula to 1e-4 px
    over the whole image (the OpenCV model would not: up to ~0.6 px)."""
    cam = H36M_CAMERAS[cid]
    w, h = cam.image_size
    u, v = np.meshgrid(np.linspace(0, w, 31), np.linspace(0, h, 31))
    rays = cam.undistort_pixels(np.stack([u, v], -1).reshape(-1, 2), normalised=True)
    X = np.concatenate([rays, np.ones((len(rays), 1))], -1) * np.linspace(2000, 7000, len(rays))[:, None]
    expected = _videopose3d_pixels(X, cid)
    assert np.abs(cam.project_camera(X) - expected).max() < 1e-4
    torch_px = cam.project_camera(torch.as_tensor(X)).numpy()
    assert np.abs(torch_px - expected).max() < 1e-4
    opencv = dataclasses.replace(cam, distortion_model="opencv")
    assert np.abs(opencv.project_camera(X) - expected).max() > 0.05


@pytest.mark.parametrize("model", cameras.DISTORTION_MODELS)
@pytest.mark.parametrize("cid", H36M_IDS)
def test_flip_exact_for_each_model(cid, model):
    h = H36M_CAMERAS[cid]
    cam = dataclasses.replace(_rig_camera(dist=h.distortion), intrinsics=h.intrinsics,
                              image_size=h.image_size, distortion_model=model)
    X = _points_in_view(cam, seed=8)
    expected = cam.project(X) * [-1, 1] + [cam.width, 0]
    flipped = cam.flipped()
    assert flipped.distortion_model == model
    np.testing.assert_allclose(flipped.project(X * [-1.0, 1.0, 1.0]), expected, atol=1e-9)
    negated = 3 if model == "h36m_videopose3d" else 4
    sign = np.ones(5)
    sign[negated] = -1
    np.testing.assert_array_equal(flipped.distortion, cam.distortion * sign)
    # the other model's sign change is not a mirror image
    wrong = dataclasses.replace(flipped, distortion=cam.distortion * sign[::-1] * sign[[0, 1, 2, 4, 3]])
    assert np.abs(wrong.project(X * [-1.0, 1.0, 1.0]) - expected).max() > 0.05
    assert flipped.flipped() == cam


def test_per_camera_model_codes_numpy_and_torch():
    """Arrays of cameras carry their models as codes; each row projects, undistorts and flips as
    its own Camera does."""
    cams = [H36M_CAMERAS[c] for c in H36M_IDS]
    cams[1] = dataclasses.replace(cams[1], distortion_model="opencv")
    codes = np.array([cameras.distortion_model_code(c.distortion_model) for c in cams])
    assert codes.tolist() == [1, 0, 1, 1]
    K = np.stack([c.intrinsics for c in cams])
    D = np.stack([c.distortion for c in cams])
    rng = np.random.default_rng(9)
    X = rng.uniform([-800, -800, 2500], [800, 800, 6000], size=(4, 5, 17, 3))
    ref = np.stack([c.project_camera(X[b]) for b, c in enumerate(cams)])
    np.testing.assert_allclose(project_points(X, K, D, model=codes), ref, rtol=1e-12)
    out = project_points_torch(torch.as_tensor(X), torch.as_tensor(K), torch.as_tensor(D), torch.as_tensor(codes))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    back = undistort_points(ref, K, D, model=codes)
    np.testing.assert_allclose(back, project_points(X, K, None), atol=1e-6)
    flipped = np.stack([c.flipped().distortion for c in cams])
    np.testing.assert_array_equal(cameras.flip_distortion(D, codes), flipped)
    np.testing.assert_array_equal(cameras.flip_distortion(torch.as_tensor(D), torch.as_tensor(codes)).numpy(), flipped)
    with pytest.raises(ConfigError, match="unknown distortion model"):
        Camera("c", K[0], D[0], np.eye(3), np.zeros(3), (10, 10), "fisheye")


def test_distortion_model_stored_in_dict():
    cam = H36M_CAMERAS["58860488"]
    again = Camera.from_dict(json.loads(json.dumps(cam.to_dict())))
    assert again == cam and again.distortion_model == "h36m_videopose3d"
    old = {k: v for k, v in cam.to_dict().items() if k != "distortion_model"}
    assert Camera.from_dict(old).distortion_model == "opencv"  # descriptions from before models
