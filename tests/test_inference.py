"""Inference: lifting long sequences equals the plain model over the edge-padded sequence,
chunking changes nothing, flip averaging is what it says, causal models ignore the future."""

import numpy as np
import pytest
import torch

from posebridge import atomic
from posebridge.errors import DataError
from posebridge.inference.lift import LiftingModel, lift, load_model
from posebridge.models import SeparateHeadLifter
from posebridge.models.lifter import keypoints_to_input


def make_model(causal=False, seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        lifter = SeparateHeadLifter(["h36m_17", "humaneva_15"], filter_widths=[3, 3, 3], channels=24,
                                    causal=causal)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        g = torch.Generator().manual_seed(seed)
        for bn in [lifter.temporal.expand_bn, *lifter.temporal.layers_bn]:
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 0.2)
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
    return LiftingModel.from_lifter(lifter, {"h36m_17": np.zeros((17, 3))}, name="toy")


def keypoints(T=100, seed=0):
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 3, (T, 17, 2)), 0) + rng.uniform(300, 700, (1, 17, 2))
    conf = rng.uniform(0, 1, (T, 17, 1))
    conf[conf < 0.1] = 0
    return np.concatenate([walk, conf], -1).astype(np.float32)


def reference(model, kp, width, height):
    """The plain (unfolded) dilated model over the edge-padded sequence, no flip."""
    x = keypoints_to_input(kp, width, height)
    before, after = model.lifter.window()
    x = np.pad(x, ((before, after), (0, 0), (0, 0)), mode="edge")
    with torch.enable_grad():
        out = model.lifter(torch.from_numpy(x)[None])[0].detach()
    result = {}
    for fmt, pose in model.lifter.split(out).items():
        root = {"h36m_17": 0, "humaneva_15": 0}[fmt]
        result[fmt] = ((pose - pose[:, root:root + 1]) * 1000).numpy()
    return result


def test_lift_equals_the_model_over_the_padded_sequence_in_any_chunking():
    model = make_model()
    kp = keypoints(100)
    ref = reference(model, kp, 1000, 800)
    for chunk in (1, 7, 64, 10_000):
        got = lift(model, kp, 1000, 800, flip=False, chunk_frames=chunk)
        assert set(got) == {"h36m_17", "humaneva_15"}
        assert got["h36m_17"].shape == (100, 17, 3) and got["humaneva_15"].shape == (100, 15, 3)
        for fmt in got:
            np.testing.assert_allclose(got[fmt], ref[fmt], atol=1e-3, rtol=1e-4)  # mm


def test_flip_averaging_is_the_mean_with_the_mirrored_prediction():
    model = make_model()
    kp = keypoints(40)
    width = 1000
    mirrored = kp.copy()
    mirrored[..., 0] = width - mirrored[..., 0]
    mirrored = mirrored[:, list(model.lifter.input_mirror)]
    plain = lift(model, kp, width, 800, flip=False)
    other = lift(model, mirrored, width, 800, flip=False)
    both = lift(model, kp, width, 800, flip=True)
    for fmt, sl in model.lifter.slices.items():
        mirror = (model.lifter.output_mirror[sl] - sl.start).numpy()
        back = other[fmt][:, mirror] * np.array([-1.0, 1.0, 1.0])
        np.testing.assert_allclose(both[fmt], (plain[fmt] + back) / 2, atol=1e-3)


def test_short_sequences_and_two_channel_keypoints():
    model = make_model()
    for T in (1, 5):
        out = lift(model, keypoints(T), 640, 480)
        assert out["h36m_17"].shape == (T, 17, 3)
    kp = keypoints(20)
    two = lift(model, kp[..., :2], 640, 480)
    ones = kp.copy()
    ones[..., 2] = 1
    np.testing.assert_allclose(two["h36m_17"], lift(model, ones, 640, 480)["h36m_17"], atol=1e-5)
    with pytest.raises(ValueError):
        lift(model, kp[:, :15], 640, 480)


def test_causal_lift_ignores_future_frames():
    model = make_model(causal=True)
    kp = keypoints(60)
    a = lift(model, kp, 1000, 1000, flip=True)
    changed = kp.copy()
    changed[45:, :, :2] += 50
    b = lift(model, changed, 1000, 1000, flip=True)
    for fmt in a:
        np.testing.assert_array_equal(a[fmt][:45], b[fmt][:45])
        assert not np.allclose(a[fmt][45], b[fmt][45])


def test_load_model_round_trip_and_errors(tmp_path):
    model = make_model()
    atomic.torch_save(tmp_path / "m" / "model.pt", model.lifter.file_dict({"h36m_17": np.ones((17, 3))}))
    loaded = load_model(tmp_path / "m")
    assert loaded.name == "m" and loaded.formats == ["h36m_17", "humaneva_15"]
    np.testing.assert_array_equal(loaded.mean_pose["h36m_17"], np.ones((17, 3)))
    kp = keypoints(30)
    np.testing.assert_array_equal(lift(loaded, kp, 900, 900)["h36m_17"], lift(model, kp, 900, 900)["h36m_17"])
    with pytest.raises(DataError, match="no model file"):
        load_model(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.pt").write_bytes(b"not a model")
    with pytest.raises(DataError, match="not a readable model file"):
        load_model(tmp_path / "bad")


def test_load_model_refuses_nan_weights_and_names_a_mismatch_on_one_line(tmp_path):
    import torch

    payload = make_model().lifter.file_dict({})
    payload["state_dict"] = dict(payload["state_dict"])
    key = next(k for k in payload["state_dict"] if k.endswith("weight"))
    payload["state_dict"][key] = torch.full_like(payload["state_dict"][key], float("nan"))
    atomic.torch_save(tmp_path / "nan" / "model.pt", payload)
    with pytest.raises(DataError, match=f"state_dict holds NaN or inf weights \\({key}"):
        load_model(tmp_path / "nan")
    payload = make_model().lifter.file_dict({})
    payload["architecture"] = dict(payload["architecture"], channels=payload["architecture"]["channels"] * 2)
    atomic.torch_save(tmp_path / "wide" / "model.pt", payload)
    with pytest.raises(DataError) as err:
        load_model(tmp_path / "wide")
    message = str(err.value)
    assert "\n" not in message and "size mismatch" in message and "more mismatched tensors" in message, message


def test_chunk_length_splits_into_equal_pieces_within_the_budget():
    from posebridge.inference.lift import chunk_length

    assert chunk_length(5000, 2, 1024) == 1667  # budget 2048 frames -> three equal pieces
    assert chunk_length(5000, 2, 256) == 5000  # the small model takes the sequence in one piece
    assert chunk_length(100, 2, 1024, chunk_frames=30) == 25  # 4 pieces of 25, not 30+30+30+10
    assert chunk_length(1, 2, 1024) == 1
