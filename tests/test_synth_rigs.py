"""Camera rigs: realistic intrinsics, distortion, placement, and the subject in view."""

import numpy as np
import pytest

from posebridge.geometry.cameras import H36M_CAMERAS
from posebridge.sources.synth import rigs


@pytest.mark.parametrize("template", list(rigs.TEMPLATES))
def test_rig_cameras_are_realistic_and_look_at_the_volume(template):
    tpl = rigs.TEMPLATES[template]
    rng = np.random.default_rng(0)
    for _ in range(5):
        cams = rigs.make_rig(template, rng, centre=(300.0, -200.0))
        assert len(cams) == tpl.cameras
        assert len({c.name for c in cams}) == len(cams)
        for cam in cams:
            w, h = cam.image_size
            assert (w, h) == tpl.image_size
            focal = cam.intrinsics[0] / min(w, h)
            assert 0.95 <= focal <= 1.65  # ~1.0-1.5 x the image's shorter side
            pos = cam.position
            horizontal = np.hypot(pos[0] - 300.0, pos[1] + 200.0)
            assert 3000.0 <= horizontal <= 6000.0
            assert 300.0 <= pos[2] <= 3200.0
            # the capture volume's centre at hip height is in front of the camera and in the image
            uv = cam.project(np.array([300.0, -200.0, 900.0]))
            assert cam.world_to_camera(np.array([300.0, -200.0, 900.0]))[2] > 2500.0
            assert 0.2 * w < uv[0] < 0.8 * w and 0.2 * h < uv[1] < 0.8 * h
            # image rows are level (up to a handheld roll) and world up points up in the image
            assert abs(cam.R[0, 2]) < 0.15
            assert (cam.R @ np.array([0.0, 0.0, 1.0]))[1] < -0.5
            # distortion of realistic size and without fold-over inside the image
            k1, k2, k3, p1, p2 = cam.distortion
            assert -0.3 <= k1 <= 0.05 and abs(p1) < 5e-3 and abs(p2) < 5e-3
            r_max = np.hypot(w, h) / 2 / cam.intrinsics[0]
            assert rigs._monotonic(k1, k2, k3, r_max)


def test_h36m_rig_starts_from_the_published_calibration():
    cams = rigs.make_rig("h36m", np.random.default_rng(1))
    published = list(H36M_CAMERAS.values())
    for cam, ref in zip(cams, published):
        assert np.allclose(cam.intrinsics[:2], ref.intrinsics[:2], rtol=0.04)
        assert np.allclose(cam.distortion[:2], ref.distortion[:2], rtol=0.25)
    heights = [c.position[2] for c in cams]
    assert 1200 <= min(heights) and max(heights) <= 2000


def test_3dhp_rig_has_elevated_cameras_looking_down():
    cams = rigs.make_rig("3dhp", np.random.default_rng(2), count=12)
    high = [c for c in cams if c.position[2] > 2300.0]
    assert len(high) >= 3
    for cam in high:
        assert cam.R[2, 2] < -0.2  # the optical axis points down
    assert min(c.position[2] for c in cams) < 1000.0


def test_rigs_are_seeded():
    a = rigs.make_rig("panoptic", np.random.default_rng(5))
    b = rigs.make_rig("panoptic", np.random.default_rng(5))
    c = rigs.make_rig("panoptic", np.random.default_rng(6))
    assert all(x == y for x, y in zip(a, b))
    assert not all(x == y for x, y in zip(a, c))
