"""The simulated 2D detector and the synth / detect-2d commands."""

import numpy as np
import pytest

from posebridge.data import store
from posebridge.cli import main as cli
from posebridge.data.detections import read_detections
from posebridge.errors import ConfigError, DataError
from posebridge.sources.detectors import simulated as D
from posebridge.sources.synth import generate as G

SPEC = {"template": "h36m", "train_subjects": 2, "test_subjects": 1, "seconds_per_take": 3.0,
        "actions": ["walking", "turning", "reaching", "dancing"]}


@pytest.fixture(scope="module")
def h36m(tmp_path_factory):
    path = tmp_path_factory.mktemp("det") / "synth_h36m.h5"
    G.generate_dataset("synth_h36m", SPEC, "labeled", 1, path)
    ds = store.open_dataset(path)
    truth = np.concatenate([ds.camera_for(r).project(ds.sequence_extra("coco_17", r["sequence"]).astype(np.float64))
                            for _, r in ds.index.iterrows()])
    yield path, ds, truth
    ds.close()


def _errors(keypoints, truth):
    found = keypoints[..., 2] > 0
    return np.linalg.norm(keypoints[..., :2] - truth, axis=-1), found


def test_zero_error_scale_gives_the_projections(h36m):
    _, ds, truth = h36m
    kp = D.simulate_detections(ds, {"error_scale": 0.0}, 0)
    assert kp.shape == (int(ds.index["frames"].sum()), 17, 3) and kp.dtype == np.float32
    err, found = _errors(kp, truth)
    assert found.mean() > 0.99
    assert err[found].max() < 1e-3


def test_error_level_confidence_and_lost_frames(h36m):
    _, ds, truth = h36m
    kp1 = D.simulate_detections(ds, {"error_scale": 1.0}, 0)
    kp2 = D.simulate_detections(ds, {"error_scale": 2.0}, 0)
    e1, f1 = _errors(kp1, truth)
    e2, f2 = _errors(kp2, truth)
    mean1, mean2 = np.median(e1[f1]), np.median(e2[f2])
    assert 2.5 < mean1 < 8.0  # a good detector at ~1000 px: a few pixels
    assert 1.7 < mean2 / mean1 < 2.3  # the configured level scales the error
    # the confidence says nothing about the error (MediaPipe: correlation -0.11) ...
    assert abs(np.corrcoef(kp1[..., 2][f1], e1[f1])[0, 1]) < 0.15
    assert kp1[..., 2][f1].min() > 0 and kp1[..., 2].max() <= 1
    # ... and follows MediaPipe's per-joint distribution: face ~1, wrists lower and spread out
    conf = kp1[..., 2]
    for j in range(17):
        assert abs(np.median(conf[f1[:, j], j]) - np.interp(0.5, D.CONFIDENCE_LEVELS, D.CONFIDENCE_QUANTILES[j])) < 0.03
    assert np.percentile(conf[f1[:, 9], 9], 10) < 0.5 < np.percentile(conf[f1[:, 1], 1], 1)
    # lost frames: the whole person, confidence 0 and x = y = 0; more at a higher error level
    assert np.all(kp1[~f1] == 0) and np.array_equal(f1.all(axis=1), f1.any(axis=1))
    assert 1 - f1.mean() < 0.05 and (1 - f2.mean()) >= (1 - f1.mean())
    # hard joints (wrists, ankles) are worse than easy ones (shoulders, eyes)
    per_joint = np.array([np.median(e1[:, j][f1[:, j]]) for j in range(17)])
    assert per_joint[[9, 10, 15, 16]].mean() > 1.3 * per_joint[[1, 2, 5, 6]].mean()
    # errors are temporally correlated (drift), not white
    d = kp1[1:, 11, :2] - truth[1:, 11] - (kp1[:-1, 11, :2] - truth[:-1, 11])
    both = f1[1:, 11] & f1[:-1, 11]
    assert np.median(np.abs(d[both])) < 1.2 * np.median(np.abs(kp1[..., 11, :2] - truth[:, 11])[f1[:, 11]])


def _profile_person(T):
    """coco_17 joints of a person facing +x (left side at +y), and a camera on their right."""
    from posebridge.geometry.cameras import Camera

    joints = np.zeros((T, 17, 3))
    names = D._COCO.joint_names
    for j, n in enumerate(names):
        y = 200.0 if n.startswith("l") else -200.0 if n.startswith("r") else 0.0
        z = {"nose": 1600.0, "leye": 1630.0, "reye": 1630.0, "lear": 1620.0, "rear": 1620.0, "lshoulder": 1450.0,
             "rshoulder": 1450.0, "lelbow": 1150.0, "relbow": 1150.0, "lwrist": 900.0, "rwrist": 900.0,
             "lknee": 500.0, "rknee": 500.0, "lankle": 80.0, "rankle": 80.0}.get(n, 900.0)
        joints[:, j] = [0.0, y, z]
    cam = Camera.look_at("side", (0.0, -5000.0, 1200.0), (0.0, 0.0, 1000.0), (1150, 1150, 500, 500),
                         None, (1000, 1000))  # on the person's right: the left side is hidden
    return joints, cam


def test_confidence_does_not_reveal_the_hidden_side():
    joints, cam = _profile_person(20000)
    names = D._COCO.joint_names
    occlusion, profile = D.visibility(joints, cam.position)
    assert occlusion[:, names.index("lhip")].min() > 0.9 and occlusion[:, names.index("rhip")].max() == 0
    assert profile.min() > 0.9
    kp = D.detect_row(joints, cam, 50.0, 1.0, np.random.default_rng(0))
    found = kp[..., 2] > 0
    left = [i for i, n in enumerate(names) if n.startswith("l")]
    right = list(np.array(D._COCO.mirror)[left])
    assert np.array_equal(found[:, left], found[:, right])  # hidden joints are not missed more
    # the hidden side is as confident as the visible one (the confidence drifts slowly, so
    # the means of 400 s still scatter by about 0.01)
    assert abs(kp[found[:, 0]][:, left, 2].mean() - kp[found[:, 0]][:, right, 2].mean()) < 0.02


def test_confidently_wrong_left_right_swaps():
    T, fps = 30000, 50.0
    joints, cam = _profile_person(T)
    truth = cam.project(joints)
    kp = D.detect_row(joints, cam, fps, 1.0, np.random.default_rng(1))
    legs = np.array([11, 13, 15])
    mirror = np.array(D._COCO.mirror)[legs]
    found = kp[:, legs, 2].min(axis=1) > 0
    straight = np.linalg.norm(kp[:, legs, :2] - truth[:, legs], axis=-1).mean(axis=1)
    crossed = np.linalg.norm(kp[:, legs, :2] - truth[:, mirror], axis=-1).mean(axis=1)
    swapped = found & (crossed < straight)
    # the stated model: rate x mean duration x share of swaps that include the legs
    expected = D.SWAPS_PER_SECOND * np.mean(D.SWAP_SECONDS) * (D.SWAP_GROUP_SHARES[1] + D.SWAP_GROUP_SHARES[2])
    assert 0.6 * expected < swapped.mean() < 1.4 * expected
    # swapped joints are as confident as correct ones
    assert abs(kp[swapped][:, legs, 2].mean() - kp[found & ~swapped][:, legs, 2].mean()) < 0.02


def test_a_person_out_of_the_image_is_not_found(h36m):
    _, ds, _ = h36m
    row = ds.index.iloc[0]
    cam = ds.camera_for(row)
    truth = ds.sequence_extra("coco_17", row["sequence"]).astype(np.float64)
    shifted = truth + (cam.R[0] * 6000.0)  # far to the right of the image
    kp = D.detect_row(shifted, cam, 50.0, 1.0, np.random.default_rng(0))
    assert np.all(kp[..., 2] == 0)


def test_detections_are_seeded(h36m):
    _, ds, _ = h36m
    a = D.simulate_detections(ds, None, 5)
    b = D.simulate_detections(ds, {}, 5)
    c = D.simulate_detections(ds, {}, 6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_detector_spec_validation():
    assert D.DetectorSpec.from_dict({}).error_scale == 1.0
    with pytest.raises(ConfigError, match="valid keys: error_scale"):
        D.DetectorSpec.from_dict({"noise": 2})
    with pytest.raises(ConfigError, match="error_scale"):
        D.DetectorSpec.from_dict({"error_scale": -1})


def test_commands_generate_detect_and_preview(tmp_path, capsys):
    out = tmp_path / "datasets" / "tiny.h5"
    spec = '{"template": "3dhp", "train_subjects": 1, "test_subjects": 1, "seconds_per_take": 0.6, "cameras": 4}'
    assert cli(["synth", "generate", "--name", "tiny", "--spec", spec, "--role", "labeled", "--seed", "2",
                "--output", str(out), "--no-progress"]) == 0
    assert out.with_suffix(".parquet").is_file()
    det = tmp_path / "detections" / "tiny" / "simulated.h5"
    assert cli(["detect-2d", "--dataset", str(out), "--detector", "simulated", "--spec",
                '{"error_scale": 1.5}', "--seed", "1", "--output", str(det), "--no-progress"]) == 0
    with read_detections(det) as d, store.open_dataset(out) as ds:
        d.check_against(ds)
        assert d.detector == "simulated" and d.keypoint_format == "coco_17"
    png = tmp_path / "preview.png"
    assert cli(["synth", "preview", "--dataset", str(out), "--detections", str(det), "--output", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    capsys.readouterr()
    # unknown detectors and datasets without the synthetic landmarks are clear errors
    assert cli(["detect-2d", "--dataset", str(out), "--detector", "openpose", "--output", str(det)]) == 1
    assert "known kinds: simulated" in capsys.readouterr().err
    bare = tmp_path / "bare.h5"
    with store.open_dataset(out) as ds:
        store.write_dataset(bare, name="bare", skeleton=ds.skeleton.name, role="labeled",
                            joints_3d=ds.joints_3d_all(), cameras=ds.cameras, index=ds.index)
    assert cli(["detect-2d", "--dataset", str(bare), "--detector", "simulated", "--output", str(det)]) == 1
    assert "extra/coco_17" in capsys.readouterr().err
    with store.open_dataset(bare) as ds, pytest.raises(DataError, match="coco_17"):
        D.simulate_detections(ds, {}, 0)
