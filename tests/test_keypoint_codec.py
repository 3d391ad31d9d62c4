"""The input codec (data.keypoints.InputCodec): known values of both normalisations and the three
confidence modes, exact horizontal flips in camera mode, and model files that carry the codec so
lift() feeds a model as it was trained (old files without the keys: screen + raw)."""

import numpy as np
import pytest
import torch

from posebridge.data.frames import FrameTable
from posebridge.data.keypoints import CAMERA_SCALE, InputCodec, keypoints_to_input
from posebridge.errors import ConfigError, DataError
from posebridge.geometry import skeletons
from posebridge.geometry.cameras import Camera
from posebridge.inference.lift import LiftingModel, lift, lift_network_input, load_model
from posebridge.models import SeparateHeadLifter
from posebridge.models.files import write_torch_file
from posebridge.training.data import flip_cameras
from posebridge.training.objectives.semi_supervised import reprojection_error
from posebridge.training.settings import TrainConfig

from test_train import coco_keypoints, frame_columns, make_camera, make_sequences

CAMERA = InputCodec("camera", "raw")


def pinhole(intrinsics=(1200.0, 1180.0, 530.0, 960.0), size=(1088, 1920)):
    """A portrait phone-like camera without distortion."""
    return Camera.look_at("phone", (0.0, -3300.0, 1200.0), (0.0, 0.0, 1000.0), intrinsics, (0.0,) * 5, size)


def test_camera_normalisation_puts_the_principal_point_at_zero_and_an_offset_at_offset_over_f():
    fx, fy, cx, cy = 1200.0, 1180.0, 530.0, 960.0
    kp = np.array([[[cx, cy, 0.9], [cx + 120.0, cy - 59.0, 0.4], [cx - 600.0, cy + 236.0, 1.0]]], np.float32)
    x = CAMERA.encode(kp, 1088, 1920, (fx, fy, cx, cy))
    assert x.dtype == np.float32 and x.shape == (1, 3, 3)
    np.testing.assert_allclose(x[0, :, :2], [[0, 0], [120 / fx * CAMERA_SCALE, -59 / fy * CAMERA_SCALE],
                                             [-600 / fx * CAMERA_SCALE, 236 / fy * CAMERA_SCALE]], atol=1e-6)
    np.testing.assert_array_equal(x[0, :, 2], kp[0, :, 2])
    # the same person at the same distance: the same input under another focal length and image size
    world = make_sequences(1, 5, 0)[0][:, :17]
    near = pinhole()
    other = pinhole((800.0, 800.0, 960.0, 540.0), (1920, 1080))
    a = CAMERA.encode(near.project(world), 1088, 1920, near.intrinsics)
    b = CAMERA.encode(other.project(world), 1920, 1080, other.intrinsics)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_screen_normalisation_is_videopose3d_formula():
    rng = np.random.default_rng(1)
    w, h = 1000.0, 1002.0
    kp = np.concatenate([rng.uniform(0, 1000, (4, 17, 2)), rng.uniform(0.1, 1, (4, 17, 1))], -1).astype(np.float32)
    x = keypoints_to_input(kp, w, h)  # the default codec: screen + raw
    np.testing.assert_allclose(x[..., 0], kp[..., 0] / w * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(x[..., 1], kp[..., 1] / w * 2 - h / w, atol=1e-6)
    np.testing.assert_array_equal(x[..., 2], kp[..., 2])
    np.testing.assert_array_equal(InputCodec("screen", "raw").encode(kp, w, h), x)
    # per-frame image sizes broadcast like scalars
    sizes = np.full(4, w)
    np.testing.assert_array_equal(keypoints_to_input(kp, sizes, np.full(4, h)), x)


def test_confidence_modes_and_missed_joints():
    kp = np.array([[[500.0, 400.0, 0.3], [700.0, 100.0, 0.0], [100.0, 900.0, 1.0]]], np.float32)
    intrinsics = (1000.0, 1000.0, 500.0, 500.0)
    raw = InputCodec("camera", "raw").encode(kp, 1000, 1000, intrinsics)
    visible = InputCodec("camera", "visible").encode(kp, 1000, 1000, intrinsics)
    none = InputCodec("camera", "none").encode(kp, 1000, 1000, intrinsics)
    np.testing.assert_array_equal(raw[..., 2], kp[..., 2])
    np.testing.assert_array_equal(visible[..., 2], [[1.0, 0.0, 1.0]])
    assert none.shape == (1, 3, 2)
    for x in (raw, visible, none):
        np.testing.assert_array_equal(x[0, 1, :2], [0.0, 0.0])  # a missed joint has no position
        np.testing.assert_array_equal(x[..., :2], raw[..., :2])
    assert [InputCodec(confidence=c).in_features for c in ("raw", "visible", "none")] == [3, 3, 2]
    with pytest.raises(ConfigError, match="intrinsics"):
        InputCodec("camera").encode(kp, 1000, 1000)
    with pytest.raises(ConfigError, match="screen, camera"):
        InputCodec("pixels")


def test_camera_normalisation_undistorts_to_the_ray():
    camera = make_camera()  # Human3.6M-like distortion
    world = make_sequences(2, 6, 3)[0]
    cam = camera.world_to_camera(world)
    x = CAMERA.encode(camera.project(world), *camera.image_size, camera.intrinsics, camera.distortion)
    np.testing.assert_allclose(x[..., :2], cam[..., :2] / cam[..., 2:] * CAMERA_SCALE, atol=1e-5)
    # and the semi-supervised reprojection, in the codec's units, is zero for the exact points
    points = torch.tensor(cam / 1000, dtype=torch.float32)
    params = [torch.tensor(np.repeat(np.asarray(a)[None], len(cam), 0), dtype=torch.float32)
              for a in (camera.intrinsics, camera.distortion)]
    size = [torch.full((len(cam),), float(v)) for v in camera.image_size]
    err = reprojection_error(points, torch.from_numpy(x), *params, *size, CAMERA)
    assert err.item() == pytest.approx(0, abs=1e-5)
    rays = CAMERA.rays(x[..., :2], *params, *size)
    np.testing.assert_allclose(rays, cam[..., :2] / cam[..., 2:], atol=1e-6)


@pytest.mark.parametrize("confidence", ["raw", "visible", "none"])
def test_flips_stay_exact_in_camera_mode(confidence):
    """The mirrored training table (left/right swapped, x negated) is the encoding of the mirrored
    image (u -> width - u) seen by the mirrored camera (cx -> width - cx, p2 -> -p2)."""
    codec = InputCodec("camera", confidence)
    rng = np.random.default_rng(0)
    cameras = [make_camera("c0"), make_camera("c1", 3000.0), pinhole()]
    keypoints = [coco_keypoints(world, cameras[r], rng) for r, world in enumerate(make_sequences(3, 20, 5))]
    inputs = [codec.encode(kp, *c.image_size, c.intrinsics, c.distortion) for kp, c in zip(keypoints, cameras)]
    table = FrameTable(**frame_columns(inputs, cameras, codec=codec, confidence=[kp[..., 2] for kp in keypoints]))
    mirrored = table.mirrored_inputs()[table.num_frames:]
    flipped_intrinsics, flipped_distortion = flip_cameras(torch.tensor(table.row_intrinsics),
                                                          torch.tensor(table.row_distortion),
                                                          torch.tensor(table.row_size[:, 0]))
    mirror = list(skeletons.get("coco_17").mirror)
    start = 0
    for r, (kp, camera) in enumerate(zip(keypoints, cameras)):
        image = kp[:, mirror].astype(np.float64)
        image[..., 0] = camera.width - image[..., 0]
        expected = codec.encode(image, *camera.image_size, flipped_intrinsics[r].numpy(), flipped_distortion[r].numpy())
        np.testing.assert_allclose(mirrored[start:start + len(kp)], expected, atol=1e-5)
        np.testing.assert_allclose(expected[..., :2], codec.encode(
            image, *camera.image_size, camera.flipped().intrinsics, camera.flipped().distortion)[..., :2], atol=1e-6)
        start += len(kp)


def small_lifter(codec=None, in_features=None, seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SeparateHeadLifter(["h36m_17"], codec=codec, in_features=in_features, filter_widths=[3, 3],
                                  channels=16)


def test_a_camera_visible_model_file_is_read_back_and_fed_the_same_way(tmp_path):
    codec = InputCodec("camera", "visible")
    lifter = small_lifter(codec)
    assert lifter.in_features == 3
    payload = lifter.file_dict()
    assert payload["input"] == {"keypoint_format": "coco_17", "features": ["x", "y", "visible"],
                                "normalisation": "camera", "confidence": "visible", "camera_scale": CAMERA_SCALE}
    (tmp_path / "m").mkdir()
    write_torch_file(tmp_path / "m" / "model.pt", payload)
    model = load_model(tmp_path / "m")
    assert model.codec == codec
    camera = make_camera()
    kp = coco_keypoints(make_sequences(1, 30, 2)[0], camera, np.random.default_rng(4))
    got = lift(model, kp, *camera.image_size, flip=False, intrinsics=camera.intrinsics, distortion=camera.distortion)
    direct = lift_network_input(model, codec.encode(kp, *camera.image_size, camera.intrinsics, camera.distortion),
                                flip=False).numpy()
    expected = (direct - direct[:, :1]) * 1000
    np.testing.assert_allclose(got["h36m_17"], expected, atol=1e-3)
    screen = lift_network_input(model, keypoints_to_input(kp, *camera.image_size), flip=False).numpy()
    assert np.abs((screen - screen[:, :1]) * 1000 - expected).max() > 1.0  # the codec matters
    with pytest.raises(ConfigError, match="intrinsics"):
        lift(model, kp, *camera.image_size)


@pytest.mark.parametrize("input_entry", [
    {"keypoint_format": "coco_17", "features": ["x", "y", "confidence"]},
    {"keypoint_format": "coco_17", "features": ["x", "y", "confidence"], "normalisation": "videopose3d_screen"},
])
def test_an_old_model_file_without_the_keys_is_fed_screen_and_raw_confidence(tmp_path, input_entry):
    lifter = small_lifter()
    payload = {**lifter.file_dict(), "input": input_entry}
    (tmp_path / "m").mkdir()
    write_torch_file(tmp_path / "m" / "model.pt", payload)
    model = load_model(tmp_path / "m")
    assert model.codec == InputCodec("screen", "raw")
    kp = coco_keypoints(make_sequences(1, 20, 1)[0], make_camera(), np.random.default_rng(2))
    got = lift(model, kp, 1000, 1000, flip=False)
    direct = lift_network_input(model, keypoints_to_input(kp, 1000, 1000), flip=False).numpy()
    np.testing.assert_allclose(got["h36m_17"], (direct - direct[:, :1]) * 1000, atol=1e-3)


def test_videopose3d_shaped_lifters_and_bad_input_entries(tmp_path):
    assert small_lifter(in_features=2).codec == InputCodec("screen", "none")
    with pytest.raises(ConfigError, match="does not match"):
        small_lifter(InputCodec("camera", "none"), in_features=3)
    lifter = small_lifter(InputCodec("camera", "none"))
    payload = {**lifter.file_dict(), "input": {"keypoint_format": "coco_17", "features": ["x", "y"],
                                               "normalisation": "camera", "confidence": "raw"}}
    (tmp_path / "m").mkdir()
    write_torch_file(tmp_path / "m" / "model.pt", payload)
    with pytest.raises(DataError, match="does not match its codec"):
        load_model(tmp_path / "m")


def test_train_config_takes_the_codec_keys():
    config = TrainConfig.from_dict({"input_normalisation": "camera", "input_confidence": "none"})
    assert config.input_codec() == InputCodec("camera", "none")
    assert TrainConfig(**config.to_dict()).input_codec() == InputCodec("camera", "none")
    for key, value in (("input_normalisation", "image"), ("input_confidence", "soft")):
        with pytest.raises(ConfigError, match="input"):
            TrainConfig.from_dict({key: value})


def test_an_in_memory_lifter_keeps_its_codec_for_lift():
    codec = InputCodec("camera", "none")
    model = LiftingModel.from_lifter(small_lifter(codec), name="toy")
    assert model.codec == codec and model.in_features == 2
    kp = coco_keypoints(make_sequences(1, 12, 1)[0], pinhole(), np.random.default_rng(0))
    out = lift(model, kp, 1088, 1920, intrinsics=pinhole().intrinsics)
    assert out["h36m_17"].shape == (12, 17, 3) and np.isfinite(out["h36m_17"]).all()


def test_fine_tuning_refuses_a_model_trained_with_another_codec(tmp_path):
    from posebridge.bridge.finetune import prepare_run

    (tmp_path / "init").mkdir()
    write_torch_file(tmp_path / "init" / "model.pt", small_lifter(InputCodec("screen", "raw")).file_dict())
    config = TrainConfig.from_dict({"input_normalisation": "camera", "input_confidence": "visible",
                                    "finetune": {"variant": "continued"}})
    with pytest.raises(DataError, match="encoded by"):
        prepare_run(config, ["h36m_17"], init=tmp_path / "init")
    same = TrainConfig.from_dict({"input_normalisation": "screen", "input_confidence": "raw", "output_placement": "free",
                                  "finetune": {"variant": "continued"}})
    assert "init_state" in prepare_run(same, ["h36m_17"], init=tmp_path / "init").train_kwargs
