"""Ray placement (models.rays): output joints with an input keypoint on that keypoint's camera ray."""

import numpy as np
import pytest
import torch

from posebridge.data.keypoints import CAMERA_SCALE, InputCodec
from posebridge.errors import ConfigError, DataError
from posebridge.geometry import skeletons
from posebridge.inference.lift import LiftingModel, lift, load_model
from posebridge.models import SeparateHeadLifter
from posebridge.models.files import write_torch_file
from posebridge.models.rays import RayPlacement
from posebridge.training.losses import recover_translation
from posebridge.training.loop import train
from posebridge.training.settings import TrainConfig

from test_train import TINY, coco_keypoints, make_camera, make_sequences, make_set

CODEC = InputCodec("camera", "visible")
JOINTS, KEYPOINTS = skeletons.keypoint_correspondence("h36m_17", "coco_17")


def ray_lifter(seed=0, placement="rays", formats=("h36m_17",)):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SeparateHeadLifter(list(formats), codec=CODEC, filter_widths=[3, 3], channels=16,
                                  placement=placement)


def scene(frames=30, seed=2):
    """(world h36m_17 mm (T, 17, 3), COCO pixels + confidence (T, 17, 3), camera); a few missed."""
    camera = make_camera()
    world = make_sequences(1, frames, seed)[0]
    return world, coco_keypoints(world, camera, np.random.default_rng(seed)), camera


def off_ray(pose_mm, keypoints, joints=JOINTS, key=KEYPOINTS, camera=None):
    """Largest distance (normalised image units) between a pose's joints, at the translation that
    fits them best, and the rays of their found input keypoints."""
    camera = camera or make_camera()
    rays = CODEC.encode(keypoints, *camera.image_size, camera.intrinsics, camera.distortion)[..., :2] / CAMERA_SCALE
    found = torch.as_tensor(keypoints[:, key, 2] > 0, dtype=torch.float64)
    part = torch.as_tensor(pose_mm[:, joints], dtype=torch.float64)
    uv = torch.as_tensor(rays[:, key], dtype=torch.float64)
    placed = part + recover_translation(part, uv, found)[:, None]
    error = (placed[..., :2] / placed[..., 2:] - uv).abs().amax(-1)
    return float(error[found > 0].max()), float(error[found == 0].max()) if (found == 0).any() else 0.0


def test_a_placed_joint_lies_on_its_ray_at_its_predicted_depth_and_the_others_stay():
    world, keypoints, camera = scene()
    inputs = torch.as_tensor(CODEC.encode(keypoints, *camera.image_size, camera.intrinsics, camera.distortion),
                             dtype=torch.float64)
    truth = torch.as_tensor(camera.world_to_camera(world) / 1000)
    rng = np.random.default_rng(0)
    pose = truth - truth[:, :1] + torch.as_tensor(rng.normal(0, 0.05, truth.shape))  # a noisy guess, pelvis origin
    placement = RayPlacement(["h36m_17"], {"h36m_17": slice(0, 17)}, "coco_17", CODEC).double()
    out = placement(pose, inputs)
    on_ray, missed = off_ray(out.numpy(), keypoints, camera=camera)
    assert on_ray < 1e-9  # exact: the pose reprojects onto every found keypoint it has
    assert missed > 1e-3  # a missed keypoint's joint keeps its predicted position
    found = keypoints[:, KEYPOINTS, 2] > 0
    np.testing.assert_array_equal(out[:, JOINTS][~torch.as_tensor(found)], pose[:, JOINTS][~torch.as_tensor(found)])
    others = [j for j in range(17) if j not in JOINTS]  # pelvis, spine, hips, shoulders, head: no hinge keypoint
    np.testing.assert_array_equal(out[:, others], pose[:, others])
    # the network decides the depth: each placed joint keeps its depth relative to the others
    translation = recover_translation(pose[:, JOINTS], inputs[:, KEYPOINTS, :2] / CAMERA_SCALE,
                                      torch.as_tensor(found, dtype=torch.float64))
    moved = out[:, JOINTS] - pose[:, JOINTS]
    assert float(moved[..., 2].abs().max()) < 1e-12
    depth = pose[:, JOINTS][..., 2:] + translation[:, None, 2:]
    expected = depth * inputs[:, KEYPOINTS, :2] / CAMERA_SCALE - translation[:, None, :2]
    found = torch.as_tensor(found)
    torch.testing.assert_close(out[:, JOINTS][..., :2][found], expected[found], atol=1e-12, rtol=0)


def test_a_pose_placed_at_or_behind_the_camera_is_left_alone():
    world, keypoints, camera = scene(frames=5)
    inputs = torch.as_tensor(CODEC.encode(keypoints, *camera.image_size, camera.intrinsics, camera.distortion))
    placement = RayPlacement(["h36m_17"], {"h36m_17": slice(0, 17)}, "coco_17", CODEC)
    flat = torch.zeros(5, 17, 3)  # a collapsed pose: no depth to place it at
    assert torch.equal(placement(flat, inputs), flat)


def at_depth(lifter, camera, world):
    """``lifter`` with the body's first pose in ``camera`` added to its output (a random network's
    output fits no rays: the best translation puts it behind the camera, where nothing is placed)."""
    pose = torch.as_tensor(camera.world_to_camera(world[0]) / 1000, dtype=torch.float32)
    with torch.no_grad():
        lifter.temporal.shrink.bias.view(-1, 3).add_(pose)
    return lifter


def test_the_lifter_places_in_training_and_inference_alike_and_lift_reprojects_exactly():
    world, keypoints, camera = scene(frames=40)
    lifter = at_depth(ray_lifter(), camera, world)
    inputs = torch.as_tensor(CODEC.encode(keypoints, *camera.image_size, camera.intrinsics, camera.distortion))
    # the strided training model on one 9-frame window = the dilated model's output for that frame
    strided = lifter.variant(strided=True).eval()
    with torch.no_grad():
        dilated_out = lifter.eval()(inputs[None, :9])
        strided_out = strided(inputs[None, :9])
    torch.testing.assert_close(strided_out, dilated_out, atol=1e-5, rtol=1e-5)
    free = at_depth(ray_lifter(placement="free"), camera, world).eval()
    with torch.no_grad():
        assert (free(inputs[None, :9]) - dilated_out).abs().max() > 1e-3  # placement moved joints
    # lift (folded BatchNorm, pieces, flip averaging) keeps every found keypoint's joint on its ray
    model = LiftingModel.from_lifter(lifter)
    pose = lift(model, keypoints, *camera.image_size, flip=True, intrinsics=camera.intrinsics,
                distortion=camera.distortion, chunk_frames=16)["h36m_17"]
    on_ray, _ = off_ray(pose.astype(np.float64), keypoints, camera=camera)
    assert on_ray < 1e-5
    unplaced = lift(LiftingModel.from_lifter(free), keypoints, *camera.image_size, flip=True,
                    intrinsics=camera.intrinsics, distortion=camera.distortion)["h36m_17"]
    assert off_ray(unplaced.astype(np.float64), keypoints, camera=camera)[0] > 1e-2


def test_the_placement_is_stored_in_the_model_file_and_checked(tmp_path):
    lifter = ray_lifter()
    payload = lifter.file_dict()
    assert payload["output_placement"] == "rays"
    for name, entry in (("rays", payload), ("old", {k: v for k, v in payload.items() if k != "output_placement"})):
        (tmp_path / name).mkdir()
        write_torch_file(tmp_path / name / "model.pt", entry)
    assert load_model(tmp_path / "rays").lifter.placement == "rays"
    assert load_model(tmp_path / "old").lifter.placement == "free"  # files before the choice
    for name, entry in (("bad", dict(payload, output_placement="sideways")),
                        ("screen", dict(payload, input={**payload["input"], "normalisation": "screen"},))):
        entry["input"].pop("camera_scale", None) if name == "screen" else None
        (tmp_path / name).mkdir()
        write_torch_file(tmp_path / name / "model.pt", entry)
        with pytest.raises(DataError, match="output_placement"):
            load_model(tmp_path / name)
    with pytest.raises(ConfigError, match="camera"):
        SeparateHeadLifter(["h36m_17"], codec=InputCodec("screen", "raw"), channels=8, placement="rays")
    with pytest.raises(ConfigError, match="free, rays"):
        TrainConfig.from_dict({"output_placement": "snap"})
    with pytest.raises(ConfigError, match="camera"):
        TrainConfig.from_dict({"output_placement": "rays", "input_normalisation": "screen"})


def test_a_lifter_trains_free_or_placed_and_comes_out_placed():
    data, val = make_set(rows=6, frames=80, seed=0), make_set(rows=2, frames=80, seed=1)
    base = {**TINY, "epochs": 3, "samples_per_epoch": 640, "lr": 3e-3}
    runs = {}
    for name, extra in (("free", {"output_placement": "free"}), ("after", {"output_placement": "rays"}),
                        ("during", {"output_placement": "rays", "placement_in_training": True})):
        runs[name] = train(TrainConfig(**base, **extra), data, val, seed=0, progress=False, log=lambda m: None)
    assert [runs[n][0].placement for n in ("free", "after", "during")] == ["free", "rays", "rays"]
    weights = {n: runs[n][0].temporal.state_dict() for n in runs}
    # placed after training: the network trained exactly as the free one; placed during: otherwise
    assert all(torch.equal(weights["free"][k], weights["after"][k]) for k in weights["free"])
    assert any(not torch.equal(weights["free"][k], weights["during"][k]) for k in weights["free"])
    log = runs["during"][1]
    assert log["loss"].iloc[-1] < 0.6 * log["loss"].iloc[0] and log["val_mpjpe"].iloc[-1] < log["val_mpjpe"].iloc[0]
    with pytest.raises(ConfigError, match="placement_in_training"):
        TrainConfig.from_dict({"placement_in_training": "yes"})


def test_fine_tuning_refuses_a_model_placed_otherwise(tmp_path):
    from posebridge.bridge.finetune import prepare_run

    (tmp_path / "init").mkdir()
    write_torch_file(tmp_path / "init" / "model.pt", ray_lifter(placement="free").file_dict())
    settings = {"input_normalisation": "camera", "input_confidence": "visible", "finetune": {"variant": "continued"}}
    with pytest.raises(DataError, match="places its output 'free'"):
        prepare_run(TrainConfig.from_dict({**settings, "output_placement": "rays"}), ["h36m_17"],
                    init=tmp_path / "init")
    same = TrainConfig.from_dict({**settings, "output_placement": "free"})
    assert "init_state" in prepare_run(same, ["h36m_17"], init=tmp_path / "init").train_kwargs
