"""The pose2sim source: Qualisys .qca.txt and Pose2Sim .toml calibrations read into OpenCV cameras
(checked against each file's own convention, written out here by hand), and the shipped demo rig
converted and checked on real frames."""

import math

import numpy as np
import pytest

from posebridge.errors import DataError
from posebridge.sources.converters.pose2sim import (
    convert,
    matrix_to_rodrigues,
    read_calibration,
    read_qca,
    read_toml,
    rodrigues_to_matrix,
    write_toml,
)

POINTS = np.array([[0.0, 0.0, 0.0], [300.0, -200.0, 1500.0], [-450.0, 250.0, 900.0]])  # world mm


def qualisys_axes(centre, target) -> np.ndarray:
    """Rows x (right), y (up), z (backwards: the camera looks along -z) of a camera at ``centre``
    looking at ``target`` with world Z up -- Qualisys' camera frame, built from its definition."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    back = -forward
    return np.stack([right, np.cross(back, right), back])


def opencv_pixel(R, t, K, k1, k2, p1, p2, X):
    """OpenCV's model written out: X_cam = R X + t, then radial + tangential distortion."""
    Xc = R @ X + t
    x, y = Xc[0] / Xc[2], Xc[1] / Xc[2]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.array([K[0][0] * xd + K[0][2], K[1][1] * yd + K[1][2]])


@pytest.mark.parametrize("rvec", [(0.3, -1.2, 0.5), (0.0, 0.0, 0.0), (math.pi, 0.0, 0.0), (2.0, 1.0, -0.5)])
def test_rodrigues_round_trip(rvec):
    R = rodrigues_to_matrix(rvec)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rodrigues_to_matrix(matrix_to_rodrigues(R)), R, atol=1e-9)


def test_toml_cameras_project_as_pose2sim_does(tmp_path):
    rvec, tvec = (1.9, -0.4, 0.3), (0.2, 0.8, 4.1)  # world -> camera, metres
    K = [[1500.0, 0.0, 530.0], [0.0, 1502.0, 965.0], [0.0, 0.0, 1.0]]
    dist = (-0.05, 0.12, 0.001, -0.0005)
    path = tmp_path / "Calib.toml"
    path.write_text(f'[int_cam7_img]\nname = "cam7"\nsize = [ 1080.0, 1920.0]\nmatrix = {K}\n'
                    f"distortions = {list(dist)}\nrotation = {list(rvec)}\ntranslation = {list(tvec)}\n"
                    "fisheye = false\n\n[metadata]\nadjusted = false\nerror = 0.0\n")
    (camera,) = read_calibration(path)
    assert camera.name == "cam7" and camera.image_size == (1080, 1920)
    R = rodrigues_to_matrix(rvec)
    for X in POINTS:
        expected = opencv_pixel(R, np.array(tvec), K, *dist, X / 1000.0)  # Pose2Sim works in metres
        np.testing.assert_allclose(camera.project(X), expected, atol=1e-6)
    write_toml(tmp_path / "again.toml", [camera])
    (again,) = read_toml(tmp_path / "again.toml")
    for field in ("intrinsics", "distortion", "R", "t"):
        np.testing.assert_allclose(getattr(again, field), getattr(camera, field), atol=1e-9)


def test_qca_cameras_follow_the_qualisys_convention(tmp_path):
    centre = np.array([2400.0, -1800.0, 1700.0])
    M = qualisys_axes(centre, np.array([0.0, 0.0, 900.0]))
    f, c, k, p = (1650.0, 1655.0), (530.0, 960.0), (-0.04, 0.13, 0.0), (0.0006, -0.0003)
    attrs = " ".join(f'r{i + 1}{j + 1}="{float(M[i, j])!r}"' for i in range(3) for j in range(3))
    path = tmp_path / "Calib.qca.txt"
    path.write_text(
        "<?xml version='1.0' encoding='ASCII'?>\n<calibration><cameras>"
        '<camera serial="camA"><fov_video bottom="1919" left="0" right="1087" top="0"/>'
        f'<transform {attrs} x="{centre[0]}" y="{centre[1]}" z="{centre[2]}"/>'
        f'<intrinsic focalLengthU="{f[0] * 64}" focalLengthV="{f[1] * 64}" centerPointU="{c[0] * 64}" '
        f'centerPointV="{c[1] * 64}" radialDistortion1="{k[0]}" radialDistortion2="{k[1]}" '
        f'radialDistortion3="{k[2]}" tangentalDistortion1="{p[0]}" tangentalDistortion2="{p[1]}"/>'
        "</camera></cameras></calibration>\n")
    (camera,) = read_qca(path)
    assert camera.image_size == (1088, 1920)
    np.testing.assert_allclose(camera.position, centre, atol=1e-9)
    for X in POINTS:
        q = M @ (X - centre)  # Qualisys camera frame: the point is in front when q_z < 0
        assert q[2] < 0
        opencv = np.array([q[0], -q[1], -q[2]])
        expected = opencv_pixel(np.eye(3), opencv, [[f[0], 0, c[0]], [0, f[1], c[1]]], k[0], k[1], p[0], p[1],
                                np.zeros(3))
        np.testing.assert_allclose(camera.project(X), expected, atol=1e-6)


def test_bad_calibration_files_name_the_file(tmp_path):
    path = tmp_path / "Calib.qca.txt"
    path.write_text("<calibration><cameras><camera serial='a'><transform r11='x'/></camera></cameras></calibration>")
    with pytest.raises(DataError, match="Calib.qca.txt"):
        read_qca(path)
    toml = tmp_path / "Calib.toml"
    toml.write_text('[c]\nname = "c"\nmatrix = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n')
    with pytest.raises(DataError, match="Calib.toml.*lacks"):
        read_toml(toml)


def test_shipped_demo_rig_triangulates_mediapipe_2d():
    """The installed pose2sim demos: 2 takes x 4 cameras, 100 frames at 60 fps; MediaPipe 2D of a few
    frames triangulated through the converted calibration lands on a standing adult (Z up)."""
    from posebridge.geometry import skeletons
    from posebridge.geometry.triangulation import triangulate
    from posebridge.sources.detectors import get_detector

    converted = convert("pose2sim-demos")
    index = converted.index
    assert sorted(index["sequence"].unique()) == ["Demo_MultiPerson", "Demo_SinglePerson"]
    assert (index["frames"] == 100).all() and (index["fps"] == 60).all() and len(converted.cameras) == 4
    for camera in converted.cameras:  # above the floor, the world origin (the treadmill) in view
        assert camera.position[2] > 1000
        u, v = camera.project(np.zeros(3))
        assert 0 < u < camera.width and 0 < v < camera.height
        assert camera.project(np.array([0.0, 0.0, 1000.0]))[1] < v  # up in the world is up in the image
    rows = index[index["sequence"] == "Demo_SinglePerson"]
    detector = get_detector("mediapipe")
    keypoints = np.stack([detector.detect(video, limit=6) for video in rows["video"]])
    result = triangulate(keypoints, converted.cameras, skeletons.get("coco_17"))
    assert np.nanmedian(result.errors) < 25  # px; a careful triangulation reaches ~12 over the take
    height = result.joints[:, 0, 2] - result.joints[:, 15:17, 2].mean(axis=1)  # nose over ankles, mm
    assert 1300 < np.median(height) < 1900


def test_shipped_distortion_is_stored_as_is():
    """Qualisys stores focal lengths and principal points x64 but the distortion as it is: the demo's
    checkerboard photos of cam01, undistorted with the coefficients as stored, fit a plane better
    than with them divided by 64 (Pose2Sim's reading) or doubled."""
    import cv2

    from posebridge.geometry.cameras import undistort_points
    from posebridge.sources.converters.pose2sim import installed_demos

    folder = installed_demos()[0] / "calibration"
    camera = {c.name: c for c in read_qca(folder / "Calib.qca.txt")}["cam01"]
    grid = np.stack(np.meshgrid(np.arange(4), np.arange(7)), -1).reshape(-1, 2).astype(np.float32)
    corners = []
    for photo in sorted((folder / "intrinsics" / "int_cam01_img").glob("*.jpg")):
        image = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
        found, points = cv2.findChessboardCorners(image, (4, 7))
        if found:
            corners.append(cv2.cornerSubPix(image, points, (5, 5), (-1, -1), (3, 30, 0.01)).reshape(-1, 2))
    assert len(corners) >= 4

    def plane_rms(scale: float) -> float:
        errors = []
        for points in corners:
            flat = undistort_points(points, camera.intrinsics, camera.distortion * scale).astype(np.float32)
            H, _ = cv2.findHomography(grid, flat, 0)
            errors.append(np.sqrt(np.mean(np.sum((cv2.perspectiveTransform(grid[None], H)[0] - flat) ** 2, axis=1))))
        return float(np.mean(errors))

    assert plane_rms(1.0) < plane_rms(1 / 64) - 0.02 and plane_rms(1.0) < plane_rms(2.0)
