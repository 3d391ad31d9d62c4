"""posebridge.inference.predict: input validation, output layout, the assumed camera, the trajectory."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

from posebridge.geometry import skeletons
from posebridge.errors import DataError
from posebridge.inference.predict import (
    default_intrinsics,
    predict,
    read_keypoints,
    write_prediction,
)

FORMATS = ["h36m_17", "smpl_24"]
ABSOLUTE = np.array([50.0, -80.0, 3000.0])  # a translation the stub adds; predict must remove it


class StubModel:
    """LiftingModel-like: returns fixed root-relative poses plus an absolute offset."""

    name = "stub"
    formats = FORMATS

    def __init__(self, frames, seed=0):
        rng = np.random.default_rng(seed)
        self.poses = {}
        for fmt in FORMATS:
            pose = rng.normal(0, 300, (frames, skeletons.get(fmt).num_joints, 3))
            self.poses[fmt] = pose - pose[:, skeletons.get(fmt).root][:, None]
        self.calls = []

    def lift(self, model, keypoints, width, height, flip=True, intrinsics=None):
        self.calls.append(dict(keypoints=keypoints, width=width, height=height, flip=flip,
                               intrinsics=np.asarray(intrinsics)))
        return {f: p + ABSOLUTE for f, p in self.poses.items()}


def _keypoints_of(model, trajectory, intrinsics, rng):
    """coco_17 pixels: the h36m_17 joints that share a coco name, projected from pose + trajectory;
    the face keypoints are noise (no h36m_17 joint has their names, so they must not matter)."""
    h36m, coco = skeletons.get("h36m_17"), skeletons.get("coco_17")
    fx, fy, cx, cy = intrinsics
    frames = len(trajectory)
    kp = np.concatenate([rng.uniform(0, 1000, (frames, 17, 2)), np.ones((frames, 17, 1))], axis=-1)
    for k, name in enumerate(coco.joint_names):
        if name in h36m.joint_names:
            x = model.poses["h36m_17"][:, h36m.index(name)] + trajectory
            kp[:, k, 0] = fx * x[:, 0] / x[:, 2] + cx
            kp[:, k, 1] = fy * x[:, 1] / x[:, 2] + cy
    return kp


def _save(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def test_default_intrinsics_is_a_55_degree_field_of_view():
    fx, fy, cx, cy = default_intrinsics(1920, 1080)
    assert 2 * math.degrees(math.atan(960 / fx)) == pytest.approx(55.0)
    assert fx == fy and (cx, cy) == (960, 540)


def test_outputs_per_format_and_trajectory(tmp_path):
    frames = 9
    model = StubModel(frames)
    rng = np.random.default_rng(1)
    trajectory = np.stack([rng.uniform(-500, 500, frames), rng.uniform(-300, 300, frames),
                           rng.uniform(3000, 6000, frames)], axis=-1)
    kp = _keypoints_of(model, trajectory, default_intrinsics(1000, 800), rng)
    path = _save(tmp_path / "kp.npz", keypoints=kp[..., :2], width=1000, height=800)  # no confidence
    inputs = read_keypoints(path)
    assert inputs.keypoints.shape == (frames, 17, 3) and (inputs.keypoints[..., 2] == 1).all()
    assert inputs.intrinsics_assumed
    out = predict(model, inputs, flip=False, lift=model.lift)
    assert model.calls[0]["flip"] is False and (model.calls[0]["width"], model.calls[0]["height"]) == (1000, 800)
    assert set(out) == {*FORMATS, *(f"joint_names_{f}" for f in FORMATS), "intrinsics", "trajectory"}
    for fmt in FORMATS:
        assert out[fmt].shape == (frames, skeletons.get(fmt).num_joints, 3) and out[fmt].dtype == np.float32
        assert np.allclose(out[fmt], model.poses[fmt], atol=1e-2)  # the stub's absolute offset removed
        assert list(out[f"joint_names_{fmt}"]) == list(skeletons.get(fmt).joint_names)
    # noise-free projections of the shared joints: the trajectory comes back exactly
    assert out["trajectory"].shape == (frames, 3)
    assert np.allclose(out["trajectory"], trajectory, rtol=1e-4, atol=0.5)

    write_prediction(tmp_path / "out.npz", out)
    with np.load(tmp_path / "out.npz", allow_pickle=False) as saved:
        assert np.array_equal(saved["smpl_24"], out["smpl_24"])


def test_given_intrinsics(tmp_path):
    kp = np.full((4, 17, 3), 100.0)
    kp[..., 2] = 0.5
    inputs = read_keypoints(_save(tmp_path / "kp.npz", keypoints=kp, width=640, height=480, fx=500.0))
    assert np.allclose(inputs.intrinsics, (500, 500, 320, 240)) and not inputs.intrinsics_assumed
    inputs = read_keypoints(_save(tmp_path / "kp.npz", keypoints=kp, width=640, height=480,
                                  fx=500.0, fy=510.0, cx=300.0, cy=250.0))
    assert np.allclose(inputs.intrinsics, (500, 510, 300, 250))
    assert np.allclose(inputs.keypoints[..., 2], 0.5)


@pytest.mark.parametrize("arrays, message", [
    (dict(keypoints=np.zeros((5, 18, 2)), width=100, height=100), r"shape \(T, 17, 2\).*got \(5, 18, 2\)"),
    (dict(keypoints=np.zeros((5, 17)), width=100, height=100), "shape"),
    (dict(keypoints=np.zeros((5, 17, 4)), width=100, height=100), "shape"),
    (dict(keypoints=np.zeros((0, 17, 2)), width=100, height=100), "no frames"),
    (dict(keypoints=np.zeros((5, 17, 2)), width=100), "missing key.*height"),
    (dict(points=np.zeros((5, 17, 2)), width=100, height=100), "missing key.*keypoints.*found: height, points"),
    (dict(keypoints=np.full((5, 17, 2), np.nan), width=100, height=100), "NaN"),
    (dict(keypoints=np.full((5, 17, 3), 2.0), width=100, height=100), r"confidences must lie in \[0, 1\]"),
    (dict(keypoints=np.zeros((5, 17, 2)), width=-1, height=100), "'width' must be a positive"),
    (dict(keypoints=np.zeros((5, 17, 2)), width=100, height=100, fx=[1, 2]), "'fx' must be a single number"),
    (dict(keypoints=np.zeros((5, 17, 2)), width=100, height=100, keypoint_format="h36m_17"), "coco_17"),
])
def test_bad_input_names_the_file(tmp_path, arrays, message):
    path = _save(tmp_path / "bad_input.npz", **arrays)
    with pytest.raises(DataError, match=message) as err:
        read_keypoints(path)
    assert "bad_input.npz" in str(err.value) and "\n" not in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_keypoints(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        read_keypoints(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros((3, 17, 2)))
    with pytest.raises(DataError, match="single .npy array"):
        read_keypoints(tmp_path / "single.npy")


def test_command(tmp_path, monkeypatch, capsys):
    from posebridge import cli

    model = StubModel(6)
    fake = types.ModuleType("posebridge.inference.lift")
    fake.load_model = lambda path, device="auto": model
    fake.lift = model.lift
    monkeypatch.setitem(sys.modules, "posebridge.inference.lift", fake)
    kp = _keypoints_of(model, np.tile([0.0, 0.0, 4000.0], (6, 1)), default_intrinsics(640, 480),
                       np.random.default_rng(0))
    path = _save(tmp_path / "kp.npz", keypoints=kp, width=640, height=480)
    assert cli.main(["predict", "--model", "m", "--keypoints", str(path), "--output", str(tmp_path / "o.npz")]) == 0
    assert "55 deg" in capsys.readouterr().out
    with np.load(tmp_path / "o.npz", allow_pickle=False) as out:
        assert out["h36m_17"].shape == (6, 17, 3) and out["smpl_24"].shape == (6, 24, 3)
    bad = _save(tmp_path / "bad.npz", keypoints=np.zeros((6, 16, 2)), width=640, height=480)
    assert cli.main(["predict", "--model", "m", "--keypoints", str(bad), "--output", str(tmp_path / "x.npz")]) == 1
    assert "bad.npz" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_predict_refuses_a_model_that_takes_other_keypoints():
    from types import SimpleNamespace

    from posebridge.errors import ConfigError
    from posebridge.inference.predict import KeypointInput, predict

    model = SimpleNamespace(keypoint_format="h36m_17", formats=["h36m_17"])
    inputs = KeypointInput(np.zeros((5, 17, 3), np.float32), 100, 100, np.array([90.0, 90, 50, 50]), True)
    with pytest.raises(ConfigError, match="takes h36m_17 keypoints"):
        predict(model, inputs, lift=lambda *a, **k: pytest.fail("must not lift"))
