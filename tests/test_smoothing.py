"""posebridge.inference.smoothing: Savitzky-Golay over time, within runs of valid frames, and its
use by predict (2D before lifting, 3D after) and the predict command's options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posebridge.errors import ConfigError
from posebridge.inference.smoothing import Smoothing, smooth_keypoints, smooth_poses, smooth_runs
from test_inference import make_model


def _jitter(poses: np.ndarray) -> float:
    """Mean magnitude of the second differences along time."""
    return float(np.linalg.norm(poses[2:] - 2 * poses[1:-1] + poses[:-2], axis=-1).mean())


def test_a_polynomial_passes_unchanged_and_noise_is_reduced():
    t = np.arange(60, dtype=np.float64)
    quadratic = np.stack([0.3 * t ** 2 - 2 * t + 5, -t + 1.0, 0.01 * t ** 2], axis=-1)[:, None]  # (T, 1, 3)
    assert np.allclose(smooth_runs(quadratic, np.ones(60, bool), 9, 2), quadratic, atol=1e-8)

    rng = np.random.default_rng(0)
    truth = np.stack([100 * np.sin(t / 10), 50 * np.cos(t / 7), t], axis=-1)[:, None]
    noisy = truth + rng.normal(0, 5, truth.shape)
    smoothed = smooth_poses(noisy, np.ones(60, bool), Smoothing("3d", 9))
    assert _jitter(smoothed) < 0.3 * _jitter(noisy)
    assert np.abs(smoothed - truth).mean() < np.abs(noisy - truth).mean()


def test_invalid_frames_are_neither_smoothed_nor_spread():
    values = np.ones((30, 2, 3))
    values[10:13] = 1e6  # garbage where nothing was detected
    valid = np.ones(30, bool)
    valid[10:13] = False
    out = smooth_runs(values, valid, 9, 2)
    assert np.array_equal(out[10:13], values[10:13])
    assert np.allclose(out[valid], 1.0)
    # a run shorter than the window uses the longest odd window it holds; too short ones stay
    short = np.array([0.0, 10.0, 0.0, 10.0, 0.0, 5.0, 9.0])[:, None]
    kept = smooth_runs(short, np.array([1, 1, 1, 1, 1, 0, 1], bool), 9, 2)
    assert not np.allclose(kept[:5], short[:5]) and np.array_equal(kept[5:], short[5:])


def test_keypoints_smoothed_per_keypoint_where_detected():
    rng = np.random.default_rng(1)
    kp = np.concatenate([rng.normal(300, 4, (40, 17, 2)), np.ones((40, 17, 1))], axis=-1).astype(np.float32)
    kp[5:9, 3, 2] = 0.0  # keypoint 3 missed: its (meaningless) coordinates stay as they are
    kp[5:9, 3, :2] = -1.0
    out = smooth_keypoints(kp, Smoothing("2d", 7))
    assert out.dtype == np.float32 and np.array_equal(out[..., 2], kp[..., 2])
    assert np.array_equal(out[5:9, 3], kp[5:9, 3])
    assert (out[:, :, :2] > 250).sum() == (kp[:, :, :2] > 250).sum()  # the missed values spread nowhere
    assert _jitter(out[:, :, :2]) < 0.5 * _jitter(kp[:, :, :2])


@pytest.mark.parametrize("stage, window, order, message", [
    ("4d", 9, 2, "stage"), ("3d", 8, 2, "--smooth-window"), ("3d", 1, 0, "--smooth-window"),
    ("3d", 5, 5, "--smooth-order"), ("3d", 5, -1, "--smooth-order")])
def test_bad_settings_are_refused(stage, window, order, message):
    with pytest.raises(ConfigError, match=message):
        Smoothing(stage, window, order)


def test_parse_is_off_by_default():
    assert Smoothing.parse(None) is None and Smoothing.parse("none") is None
    both = Smoothing.parse("both", 5, 1)
    assert both.before and both.after and not Smoothing("3d").before and not Smoothing("2d").after


def _toy_inputs(frames=80, seed=0):
    from posebridge.inference.predict import KeypointInput, default_intrinsics

    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None]
    base = rng.uniform(200, 440, (1, 17, 2)) + 20 * np.sin(t / 9.0)
    kp = np.concatenate([base + rng.normal(0, 3, (frames, 17, 2)), np.ones((frames, 17, 1))], axis=-1)
    kp[30:34, :, 2] = 0.0  # the person missed for four frames
    return KeypointInput(kp.astype(np.float32), 640, 480, default_intrinsics(640, 480), True)


def test_predict_smooths_the_2d_it_lifts_and_the_3d_it_returns():
    from posebridge.inference.predict import KeypointInput, predict, recover_trajectory

    model = make_model()
    inputs = _toy_inputs()
    plain = predict(model, inputs, flip=False)
    seen = (inputs.keypoints[..., 2] > 0).any(axis=1)

    after = predict(model, inputs, flip=False, smoothing=Smoothing("3d", 9))
    assert "keypoints_2d_smoothed" not in after
    assert np.allclose(after["h36m_17"], smooth_poses(plain["h36m_17"], seen, Smoothing("3d", 9)), atol=1e-4)
    assert np.array_equal(after["h36m_17"][30:34], plain["h36m_17"][30:34])  # no person: untouched
    assert _jitter(after["h36m_17"][:30]) < _jitter(plain["h36m_17"][:30])
    # the trajectory: recovered from the smoothed poses, then smoothed itself
    recovered = recover_trajectory({f: after[f].astype(np.float64) for f in model.formats}, inputs.keypoints,
                                   inputs.intrinsics)
    assert np.allclose(after["trajectory"], smooth_poses(recovered, seen, Smoothing("3d", 9)), atol=1e-2)
    assert _jitter(after["trajectory"][:30]) < _jitter(plain["trajectory"][:30])

    before = predict(model, inputs, flip=False, smoothing=Smoothing("2d", 9))
    smoothed = smooth_keypoints(inputs.keypoints, Smoothing("2d", 9))
    assert np.array_equal(before["keypoints_2d_smoothed"], smoothed)
    given = predict(model, KeypointInput(smoothed, 640, 480, inputs.intrinsics, True), flip=False)
    assert np.allclose(before["h36m_17"], given["h36m_17"], atol=1e-5)


def test_predict_command_options(tmp_path, capsys):
    from posebridge import atomic, cli

    model = make_model()
    model_dir = tmp_path / "model"
    atomic.torch_save(model_dir / "model.pt", model.lifter.file_dict({"h36m_17": np.zeros((17, 3))}))
    inputs = _toy_inputs(40)
    kp = tmp_path / "kp.npz"
    with open(kp, "wb") as handle:
        np.savez(handle, keypoints=inputs.keypoints, width=640, height=480)
    out = tmp_path / "o.npz"
    args = ["predict", "--model", str(model_dir), "--keypoints", str(kp), "--device", "cpu", "--no-flip"]
    assert cli.main(args + ["--output", str(out), "--smooth", "both", "--smooth-window", "7"]) == 0
    with np.load(out) as saved:
        assert saved["keypoints_2d_smoothed"].shape == (40, 17, 3)
    assert cli.main(args + ["--output", str(tmp_path / "x.npz"), "--smooth", "3d", "--smooth-window", "6"]) == 1
    assert "--smooth-window" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


def test_infer_lifts_and_writes_the_smoothed_keypoints_of_the_main_track():
    from posebridge.data.video import VideoInfo
    from posebridge.inference.infer import lift_detections

    model = make_model()
    raw = _toy_inputs(60).keypoints.copy()
    raw[:5, :, 2] = 0.0  # the person appears at frame 5
    info = VideoInfo(640, 480, 30.0, 60)
    plain = lift_detections(Path("v.mp4"), info, raw, "test", model, max_gap=0, flip=False)
    smooth = lift_detections(Path("v.mp4"), info, raw, "test", model, max_gap=0, flip=False,
                             smoothing=Smoothing("both", 7))
    assert np.array_equal(smooth.valid, plain.valid) and not smooth.valid[:5].any()
    span = slice(5, 60)
    assert np.array_equal(smooth.keypoints[span], smooth_keypoints(plain.keypoints[span], Smoothing("2d", 7)))
    assert np.isnan(smooth.poses["h36m_17"][:5]).all()
    first, last = np.flatnonzero(plain.valid)[[0, -1]]  # the main track (frames 30-33 missed)
    seen = slice(first, last + 1)
    assert plain.valid[seen].all() and last - first > 20
    assert _jitter(smooth.poses["h36m_17"][seen]) < 0.7 * _jitter(plain.poses["h36m_17"][seen])
