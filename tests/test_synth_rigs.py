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


def _sample_varied(kind, n=1500, seed=0):
    rng = np.random.default_rng(seed)
    centre = np.array([400.0, -300.0])
    return [rigs.varied_camera(rng, f"c{i}", rigs.RIG_KINDS[kind], centre) for i in range(n)], centre


@pytest.mark.parametrize("kind", ["varied", "heldout"])
def test_varied_cameras_cover_the_stated_ranges(kind):
    ranges = rigs.RIG_KINDS[kind]
    cams, centre = _sample_varied(kind)
    sizes = [c.image_size for c in cams]
    assert set(sizes) == set(ranges.image_sizes)  # every size drawn, portrait and landscape
    assert any(w < h for w, h in sizes) and any(w > h for w, h in sizes)
    focal = np.array([c.intrinsics[0] / min(c.image_size) for c in cams])
    lo, hi = ranges.focal
    assert focal.min() >= lo * 0.99 and focal.max() <= hi * 1.01
    assert focal.min() < lo * 1.1 and focal.max() > hi * 0.9  # the whole range, wide to tele
    height = np.array([c.position[2] for c in cams])
    for tier in ranges.heights:
        in_tier = (height >= tier[0]) & (height <= tier[1])
        assert in_tier.mean() > 0.05
    assert np.all(np.any([(height >= a) & (height <= b) for a, b in ranges.heights], axis=0))
    distance = np.array([np.hypot(*(c.position[:2] - centre)) for c in cams])
    assert distance.min() >= ranges.distance[0] - 1e-6 and distance.max() <= ranges.distance[1] + 1e-6
    assert distance.max() / distance.min() > (3.0 if kind == "varied" else 1.5)  # ultra-wide: mostly near
    # pitch (optical axis against the horizon) and roll (image rows against the horizon)
    pitch = np.degrees(np.arcsin(np.array([c.R[2, 2] for c in cams])))
    assert pitch.min() < -15.0 and pitch.max() > 5.0
    roll = np.degrees(np.arctan2(np.array([c.R[0, 2] for c in cams]), -np.array([c.R[1, 2] for c in cams])))
    assert np.abs(roll).max() > 0.7 * ranges.wild_roll and np.median(np.abs(roll)) < 2 * ranges.roll_sd
    # people off-centre: the aimed-at point lands anywhere within +-offset of the image centre
    shift = []
    for c in cams:
        target = c.world_to_camera(np.array([centre[0], centre[1], 900.0]))
        w, h = c.image_size
        shift.append((c.intrinsics[0] * target[0] / target[2] / w, c.intrinsics[1] * target[1] / target[2] / h))
    shift = np.abs(np.array(shift))
    assert np.percentile(shift, 90) > 0.6 * ranges.offset


def test_heldout_set_ups_are_outside_the_training_variety():
    varied, heldout = rigs.VARIED, rigs.HELDOUT
    assert not set(varied.image_sizes) & set(heldout.image_sizes)
    assert heldout.focal[1] < varied.focal[0]  # wider lenses than any training camera
    lowest, highest = min(a for a, _ in varied.heights), max(b for _, b in varied.heights)
    assert all(b < lowest or a > highest for a, b in heldout.heights)
    for template in rigs.TEMPLATES.values():  # nor does any template rig have them
        assert template.image_size not in heldout.image_sizes
        assert min(template.focal) > heldout.focal[1]


def test_make_rig_draws_varied_cameras_seeded():
    a = rigs.make_rig("video", np.random.default_rng(4), 3, prefix="x", kind="varied")
    b = rigs.make_rig("video", np.random.default_rng(4), 3, prefix="x", kind="varied")
    assert [c.name for c in a] == ["x1", "x2", "x3"] and a == b
    assert len({c.image_size for c in a} | {tuple(np.round(c.position)) for c in a}) > 3
