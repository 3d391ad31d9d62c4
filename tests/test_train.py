"""Training: config parsing, flip augmentation consistency, a tiny run that learns, bit-identical
kill-and-resume, and the `posebridge train` command on tiny dataset files."""

import numpy as np
import pandas as pd
import pytest
import torch

from posebridge.geometry import skeletons
from posebridge.geometry.cameras import Camera
from posebridge.data.windows import ChunkSampler
from posebridge.errors import ConfigError
from posebridge.training.loop import (
    RECALIBRATED_COLUMN,
    Objective,
    TrainConfig,
    build_lifter,
    compute_losses,
    epoch_seed,
    train,
)
from posebridge.training.data import BatchAssembler, LabeledSet, flip_cameras

H36M = skeletons.get("h36m_17")
COCO = skeletons.get("coco_17")

# a standing h36m_17 body in its own frame (x left, y forward, z up), metres
BODY = {
    "pelvis": (0, 0, 1.0), "rhip": (-0.13, 0, 0.97), "rknee": (-0.14, 0.02, 0.52),
    "rankle": (-0.14, 0, 0.08), "lhip": (0.13, 0, 0.97), "lknee": (0.14, 0.02, 0.52),
    "lankle": (0.14, 0, 0.08), "spine": (0, 0, 1.23), "neck": (0, 0, 1.5), "head": (0, 0.08, 1.6),
    "headtop": (0, 0, 1.75), "lshoulder": (0.19, 0, 1.45), "lelbow": (0.23, 0.05, 1.18),
    "lwrist": (0.25, 0.15, 0.98), "rshoulder": (-0.19, 0, 1.45), "relbow": (-0.23, 0.05, 1.18),
    "rwrist": (-0.25, 0.15, 0.98),
}
# COCO keypoints as h36m joints (face points collapse onto head / headtop; mirror-consistent)
COCO_FROM_H36M = {"nose": "head", "leye": "head", "reye": "head", "lear": "headtop", "rear": "headtop"}


def make_camera(name="c0", distance=4500.0):
    return Camera.look_at(name, (300.0, -distance, 1400.0), (0.0, 0.0, 1000.0),
                          (1000.0, 980.0, 510.0, 495.0), (-0.2, 0.24, -0.003, 0.001, -0.0014), (1000, 1000))


def make_sequences(rows=6, frames=80, seed=0):
    """World h36m_17 motion (mm) per row: the body turns, sways and swings its limbs."""
    rng = np.random.default_rng(seed)
    base = np.array([BODY[n] for n in H36M.joint_names]) * 1000
    out = []
    t = np.arange(frames)[:, None] / 25.0
    for _ in range(rows):
        yaw = rng.uniform(-np.pi, np.pi) + 0.6 * np.sin(rng.uniform(0.3, 1.0) * t[:, 0])
        pose = np.repeat(base[None], frames, 0).copy()
        swing = 250 * np.sin(rng.uniform(1, 3) * t + rng.uniform(0, 6))  # (T, 1)
        for j in ("lwrist", "relbow", "lknee"):
            pose[:, H36M.index(j), 1] += swing[:, 0]
        for j in ("rwrist", "lelbow", "rankle"):
            pose[:, H36M.index(j), 1] -= swing[:, 0]
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        x, y = pose[..., 0].copy(), pose[..., 1].copy()
        pose[..., 0], pose[..., 1] = c * x - s * y, s * x + c * y
        pose[..., :2] += (rng.uniform(-600, 600, 2) + 100 * np.sin(0.5 * t))[:, None]
        out.append(pose)
    return out


def coco_keypoints(world_mm, camera, rng):
    """(T, 17, 3) pixels + confidence of the COCO points of an h36m_17 body, a few missed."""
    index = [H36M.index(COCO_FROM_H36M.get(n, n)) for n in COCO.joint_names]
    px = camera.project(world_mm[:, index])
    conf = rng.uniform(0.5, 1.0, px.shape[:2])
    conf[rng.random(conf.shape) < 0.05] = 0.0
    return np.concatenate([px, conf[..., None]], -1).astype(np.float32)


CODEC = TrainConfig().input_codec()
"""The input codec a training run encodes its 2D with by default."""


def encode(keypoints, camera, codec=CODEC):
    """Network input of pixels + confidence (T, K, 3) seen by ``camera``, as FrameTableBuilder makes it."""
    return codec.encode(keypoints, *camera.image_size, camera.intrinsics, camera.distortion)


def frame_columns(inputs, cameras, name="toy", keypoint_format="coco_17", codec=CODEC, confidence=None) -> dict:
    """The FrameTable fields of one source whose rows are ``inputs`` (per row (T, K, F) network
    input, encoded by ``codec``) seen by ``cameras`` (one per row), as FrameTableBuilder makes them;
    ``confidence``: per row (T, K) the detector's confidence (None: the inputs' raw confidence)."""
    frames = np.array([len(x) for x in inputs])
    return dict(
        names=[name], keypoint_format=keypoint_format, inputs=np.concatenate(inputs), group_start=np.array([0]),
        row_group=np.zeros(len(inputs), np.int64), row_start=np.concatenate([[0], np.cumsum(frames)[:-1]]),
        row_frames=frames, row_intrinsics=np.array([c.intrinsics for c in cameras]),
        row_distortion=np.array([c.distortion for c in cameras]),
        row_size=np.array([c.image_size for c in cameras], dtype=np.float64),
        row_sequence=np.array([f"s{r}" for r in range(len(inputs))], dtype=object),
        row_camera=np.array([c.name for c in cameras], dtype=object), codec=codec,
        confidence=None if confidence is None else np.concatenate(confidence).astype(np.float32))


def make_set(rows=6, frames=80, seed=0, cameras=None) -> LabeledSet:
    """An in-memory LabeledSet (one group, h36m_17) built like training.data.load_labeled does."""
    rng = np.random.default_rng(seed + 100)
    cameras = cameras or [make_camera("c0"), make_camera("c1", 3500.0)]
    inputs, confidence, targets, row_cameras = [], [], [], []
    for r, world in enumerate(make_sequences(rows, frames, seed)):
        camera = cameras[r % len(cameras)]
        targets.append((camera.world_to_camera(world) / 1000).astype(np.float32))
        keypoints = coco_keypoints(world, camera, rng)
        inputs.append(encode(keypoints, camera))
        confidence.append(keypoints[..., 2])
        row_cameras.append(camera)
    return LabeledSet(**frame_columns(inputs, row_cameras, confidence=confidence), formats=["h36m_17"],
                      targets=[np.concatenate(targets)])


TINY = dict(filter_widths=[3, 3], channels=32, batch_size=64, samples_per_epoch=320, val_windows=128)


class Killed(Exception):
    """A test's stand-in for a job killed mid-training."""


def kill_at(epoch: int, batch: int):
    """An ``on_batch`` callback that raises ``Killed`` after step ``batch`` of ``epoch``."""
    def kill(e, b):
        if (e, b) == (epoch, batch):
            raise Killed
    return kill


# ----------------------------------------------------------------------------- config


def test_config_defaults_and_unknown_keys():
    config = TrainConfig.from_dict({})
    assert config.filter_widths == [3, 3, 3] and config.channels == 256 and config.batch_size == 1024
    assert config.loss_weights == {"meanrel": 1.0, "proj": 1.0, "abs": 0.1}
    with pytest.raises(ConfigError, match="valid keys: .*filter_widths"):
        TrainConfig.from_dict({"epoch": 3})
    assert TrainConfig.from_dict({"loss_weights": {"abs": 0.5}}).loss_weights == {"meanrel": 1.0, "proj": 1.0, "abs": 0.5}
    for bad in ({"filter_widths": [3, 2]}, {"dropout": 1.0}, {"epochs": 0}, {"lr_decay": 0},
                {"loss_weights": {"bogus": 1}}, {"causal": "yes"}, {"samples_per_epoch": -1}):
        with pytest.raises(ConfigError):
            TrainConfig.from_dict(bad)
    assert TrainConfig.parse('{"epochs": 2}').epochs == 2
    with pytest.raises(ConfigError, match="JSON"):
        TrainConfig.parse("{nope")


def test_weight_decay_shrinks_weights_by_lr_times_decay_each_step():
    from posebridge.training.loop import make_optimizer

    for decay, kind in ((0.0, torch.optim.Adam), (0.05, torch.optim.AdamW)):
        weight = torch.nn.Parameter(torch.full((4,), 2.0))
        config = TrainConfig.from_dict({"lr": 0.01, "weight_decay": decay})
        optimizer = make_optimizer([weight], config)
        assert type(optimizer) is kind
        for _ in range(3):  # a zero gradient: only the decay moves the weight
            weight.grad = torch.zeros_like(weight)
            optimizer.step()
        torch.testing.assert_close(weight.detach(), torch.full((4,), 2.0 * (1 - 0.01 * decay) ** 3))
    for bad in (-0.1, 1.0, "0.1", True):
        with pytest.raises(ConfigError, match="weight_decay"):
            TrainConfig.from_dict({"weight_decay": bad})


def test_bn_momentum_and_lr_schedules():
    config = TrainConfig(epochs=10)
    assert config.bn_momentum_at(0) == pytest.approx(0.1)
    assert config.bn_momentum_at(10) == pytest.approx(0.001)
    assert config.bn_momentum_at(5) == pytest.approx(0.01)
    assert config.lr_at(2) == pytest.approx(1e-3 * 0.95 ** 2)


# ----------------------------------------------------------------------------- augmentation


def test_camera_flip_matches_camera_flipped_and_mirrors_the_image():
    camera = make_camera()
    flipped = camera.flipped()
    fi, fd = flip_cameras(torch.tensor(camera.intrinsics)[None], torch.tensor(camera.distortion)[None],
                          torch.tensor([float(camera.width)]))
    np.testing.assert_allclose(fi[0].numpy(), flipped.intrinsics)
    np.testing.assert_allclose(fd[0].numpy(), flipped.distortion)
    # flipped 2D of flipped 3D through the flipped camera == the flipped 2D
    world = make_sequences(1, 5)[0]
    px = camera.project(world)
    mirrored_world = world * np.array([-1.0, 1.0, 1.0])
    px_flip = flipped.project(mirrored_world)
    np.testing.assert_allclose(px_flip[..., 0], camera.width - px[..., 0], atol=1e-6)
    np.testing.assert_allclose(px_flip[..., 1], px[..., 1], atol=1e-6)


def test_flipped_batch_is_consistent_with_the_unflipped_one():
    data = make_set(rows=3, frames=40)
    lifter = build_lifter(TrainConfig(**TINY), ["h36m_17"], 0)
    assembler = BatchAssembler(data, lifter)
    batch = next(ChunkSampler(data.frames_per_group(), 32, seed=1).batches(0))
    plain = assembler.assemble(batch)
    flip = np.ones(32, bool)
    flipped = assembler.assemble(batch, flip)
    # 2D input: negate x, swap left/right keypoints
    expected = plain.inputs[:, :, list(COCO.mirror)].clone()
    expected[..., 0] *= -1
    assert torch.equal(flipped.inputs, expected)
    # camera-space 3D: negate x, swap left/right joints
    expected3d = plain.target[:, list(H36M.mirror)].clone()
    expected3d[..., 0] *= -1
    assert torch.equal(flipped.target, expected3d)
    # projecting the flipped 3D through the flipped camera mirrors the image
    from posebridge.geometry.cameras import project_points_torch

    a = project_points_torch(plain.target.double(), plain.intrinsics.double(), plain.distortion.double())
    b = project_points_torch(flipped.target.double(), flipped.intrinsics.double(), flipped.distortion.double())
    width = torch.from_numpy(data.row_size[batch.row, 0])[:, None]
    assert torch.allclose(b[..., 0], width - a[:, list(H36M.mirror), 0], atol=1e-3)
    assert torch.allclose(b[..., 1], a[:, list(H36M.mirror), 1], atol=1e-3)
    # the precomputed target pixels are those projections
    for tb, px in ((plain, a), (flipped, b)):
        ok = tb.valid
        assert torch.allclose(tb.target_px.double()[ok], px[ok], atol=1e-3)
    # and the loss of the mirrored truth on the mirrored batch is zero, like the plain one
    config = TrainConfig(**TINY)
    for tb in (plain, flipped):
        terms = compute_losses(torch.nan_to_num(tb.target), tb, config)
        assert terms["total"].item() < 1e-5


def test_keypoint_dropout_zeroes_coordinates_and_confidence():
    data = make_set(rows=2, frames=30)
    lifter = build_lifter(TrainConfig(**TINY), ["h36m_17"], 0)
    assembler = BatchAssembler(data, lifter)
    batch = next(ChunkSampler(data.frames_per_group(), 16, seed=0).batches(0))
    keep = np.random.default_rng(0).random((16, 9, 17)) >= 0.5
    tb = assembler.assemble(batch, keypoint_keep=keep)
    assert (tb.inputs[torch.from_numpy(~keep)] == 0).all()
    plain = assembler.assemble(batch)
    assert torch.equal(tb.inputs[torch.from_numpy(keep)], plain.inputs[torch.from_numpy(keep)])


def _rotation(axis: str, degrees: float) -> np.ndarray:
    """The 3x3 rotation about the camera's x (pitch) or z (optical axis: roll) by ``degrees``."""
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    return {"x": np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]),
            "z": np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])}[axis]


@pytest.mark.parametrize("pitch, roll", [(None, 25.0), (20.0, None), (20.0, -30.0)])
def test_turned_batch_equals_the_batch_of_a_turned_camera(pitch, roll):
    """roll_examples and pitch_examples turn input rays, 3D and pixels together: a batch pitched
    (camera turned about its x axis) and / or rolled (then about its optical axis) is the batch the
    same people make in a camera turned so. The lens has distortion: the pitch must project the
    target pixels again, the roll may turn them (radial distortion commutes with it)."""
    square = Camera.look_at("c0", (300.0, -4500.0, 1400.0), (0.0, 0.0, 1000.0), (1000.0, 1000.0, 510.0, 495.0),
                            (-0.2, 0.24, -0.0014, 0.0, 0.0), (1000, 1000))  # fx = fy, radial lens
    R = _rotation("z", roll or 0.0) @ _rotation("x", pitch or 0.0)
    turned_camera = Camera("c0", square.intrinsics, square.distortion, R @ square.R, R @ square.t, (1000, 1000))
    config = TrainConfig(**TINY)
    lifter = build_lifter(config, ["h36m_17"], 0)
    plain_set, turned_set = make_set(rows=2, frames=40, cameras=[square]), make_set(rows=2, frames=40, cameras=[turned_camera])
    batch = next(ChunkSampler(plain_set.frames_per_group(), 32, seed=1).batches(0))
    angles = {k: None if v is None else np.full(32, v) for k, v in (("pitch", pitch), ("roll", roll))}
    turned = BatchAssembler(plain_set, lifter).assemble(batch, **angles)
    truth = BatchAssembler(turned_set, lifter).assemble(batch)
    found = truth.inputs[..., 2] > 0  # missed keypoints stay zero in both
    assert found.float().mean() > 0.5  # the comparison is not vacuous
    assert torch.allclose(turned.inputs[found], truth.inputs[found], atol=1e-4)
    assert (turned.inputs[~found] == 0).all()
    assert torch.allclose(turned.target[truth.valid], truth.target[truth.valid], atol=1e-5)
    assert torch.allclose(turned.target_px[truth.valid], truth.target_px[truth.valid], atol=1e-2)
    assert not torch.allclose(turned.target, BatchAssembler(plain_set, lifter).assemble(batch).target, atol=1e-2)
    # and the truth's loss on the turned batch is zero, as on the plain one
    assert compute_losses(torch.nan_to_num(turned.target), turned, config)["total"].item() < 1e-5


@pytest.mark.parametrize("key, bad", [("roll_augment", -1), ("roll_augment", 200), ("pitch_augment", -1),
                                      ("pitch_augment", 50), ("pitch_augment", "20")])
def test_camera_turn_settings_are_checked(key, bad):
    with pytest.raises(ConfigError, match=key):
        TrainConfig(**{key: bad}).validate()
    with pytest.raises(ConfigError, match=key):  # a screen-normalised input cannot be turned exactly
        TrainConfig(**{key: 10}, input_normalisation="screen", output_placement="free").validate()


# ----------------------------------------------------------------------------- training


def test_tiny_training_run_reduces_the_loss():
    data, val = make_set(rows=6, frames=80, seed=0), make_set(rows=2, frames=80, seed=1)
    config = TrainConfig(**{**TINY, "epochs": 5, "samples_per_epoch": 640, "lr": 3e-3})
    lifter, log = train(config, data, val, seed=0, progress=False, log=lambda m: None)
    assert list(log["epoch"]) == [1, 2, 3, 4, 5]
    assert log["loss"].iloc[-1] < 0.6 * log["loss"].iloc[0]
    assert log["loss_meanrel"].iloc[-1] < log["loss_meanrel"].iloc[0]
    assert log["val_mpjpe"].iloc[-1] < log["val_mpjpe"].iloc[0]
    assert not lifter.training and not lifter.strided


def test_killed_run_resumes_to_bit_identical_weights(tmp_path):
    data, val = make_set(rows=4, frames=60), make_set(rows=1, frames=60, seed=3)
    config = TrainConfig(**{**TINY, "epochs": 3, "samples_per_epoch": 192})
    reference, ref_log = train(config, data, val, seed=7, checkpoint=tmp_path / "a.pt", progress=False,
                               log=lambda m: None)

    kill = kill_at(1, 1)  # mid-epoch, after a checkpoint exists

    with pytest.raises(Killed):
        train(config, data, val, seed=7, checkpoint=tmp_path / "b.pt", progress=False, on_batch=kill,
              log=lambda m: None)
    messages = []
    resumed, log = train(config, data, val, seed=7, checkpoint=tmp_path / "b.pt", progress=False,
                         log=messages.append)
    assert any("resuming" in m and "after epoch 1" in m for m in messages)
    a, b = reference.temporal.state_dict(), resumed.temporal.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    pd.testing.assert_frame_equal(log.drop(columns="seconds"), ref_log.drop(columns="seconds"))
    # another seed does not resume from that checkpoint
    messages.clear()
    other, _ = train(TrainConfig(**{**TINY, "epochs": 1, "samples_per_epoch": 64}), data, None, seed=8,
                     checkpoint=tmp_path / "b.pt", progress=False, log=messages.append)
    assert any("different run" in m for m in messages)
    # nor does the same-sized data with other content (a regenerated dataset)
    messages.clear()
    train(config, make_set(rows=4, frames=60, seed=5), val, seed=7, checkpoint=tmp_path / "a.pt",
          progress=False, log=messages.append)
    assert any("different run" in m for m in messages)


class _ExtraWindows(Objective):
    """A test objective: extra random windows through the shared forward pass, an extra module,
    and a weighted term pulling the extra windows' trunk features through a linear map."""

    name = "extra"
    terms = ("feat",)

    def __init__(self, lifter_channels, weight=1.0, windows=8, rf=9):
        self.head = torch.nn.Linear(lifter_channels, 2)
        self.weight, self.windows, self.rf = weight, windows, rf
        self.epochs_started, self.seen = [], []

    def modules(self):
        return {"head": self.head}

    def fingerprint(self):
        return {"weight": self.weight}

    def start_epoch(self, epoch, seed):
        self.epochs_started.append(epoch)
        self.rng = torch.Generator().manual_seed(epoch_seed(seed, epoch, 99))

    def sample(self, epoch, step):
        return torch.rand((self.windows, self.rf, 17, 3), generator=self.rng)

    def losses(self, out, epoch):
        self.seen.append((out.extra_pred.shape, out.extra_features.shape, out.labeled_pred.shape))
        term = self.head(out.extra_features).abs().mean()
        return {"feat": term, "total": self.weight * term}


class _ZeroObjective(Objective):
    name = "zero"

    def losses(self, out, epoch):
        return {"total": 0.0 * out.labeled_pred.sum()}


def test_an_objective_that_adds_nothing_leaves_training_bit_identical():
    data = make_set(rows=4, frames=60)
    config = TrainConfig(**{**TINY, "epochs": 2, "samples_per_epoch": 128})
    plain, _ = train(config, data, None, seed=3, progress=False, log=lambda m: None)
    hooked, log = train(config, data, None, seed=3, progress=False, log=lambda m: None,
                        objectives=[_ZeroObjective()])
    a, b = plain.temporal.state_dict(), hooked.temporal.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_objective_windows_share_the_forward_pass_and_its_module_trains_and_resumes(tmp_path):
    data = make_set(rows=4, frames=60)
    config = TrainConfig(**{**TINY, "epochs": 2, "samples_per_epoch": 128})
    rf = int(np.prod(config.filter_widths))
    objective = _ExtraWindows(config.channels, rf=rf)
    before = objective.head.weight.detach().clone()
    _, log = train(config, data, None, seed=3, progress=False, log=lambda m: None, objectives=[objective],
                   checkpoint=tmp_path / "c.pt")
    assert objective.epochs_started == [0, 1, 1]  # again 1: the BatchNorm recalibration samples as the last epoch
    pred_shape, feat_shape, labeled_shape = objective.seen[0]
    assert pred_shape[0] == feat_shape[0] == 8 and feat_shape[1] == config.channels
    assert pred_shape[1:] == labeled_shape[1:]
    assert not torch.equal(before, objective.head.weight)  # the objective's module is optimised
    assert "loss_extra_feat" in log and (log["loss_extra_feat"] > 0).all()
    # the checkpoint carries the module: a finished run resumes at its end with the same weights
    again = _ExtraWindows(config.channels, rf=rf)
    messages = []
    train(config, data, None, seed=3, progress=False, log=messages.append, objectives=[again],
          checkpoint=tmp_path / "c.pt")
    assert any("resuming" in m for m in messages)
    assert torch.equal(again.head.weight, objective.head.weight)
    # a different objective setting is a different run
    messages.clear()
    train(config, data, None, seed=3, progress=False, log=messages.append,
          objectives=[_ExtraWindows(config.channels, weight=2.0, rf=rf)], checkpoint=tmp_path / "c.pt")
    assert any("different run" in m for m in messages)


def test_init_state_starts_from_given_weights():
    data = make_set(rows=4, frames=60)
    config = TrainConfig(**{**TINY, "epochs": 1, "samples_per_epoch": 64, "lr": 1e-12})
    first, _ = train(config, data, None, seed=3, progress=False, log=lambda m: None)
    state = first.temporal.state_dict()
    tuned, _ = train(config, data, None, seed=4, progress=False, log=lambda m: None, init_state=state)
    other, _ = train(config, data, None, seed=4, progress=False, log=lambda m: None)
    w = "expand_conv.weight"
    assert torch.allclose(tuned.temporal.state_dict()[w], state[w], atol=1e-6)
    assert not torch.allclose(other.temporal.state_dict()[w], state[w], atol=1e-3)


# ----------------------------------------------------------------------------- command line


def write_toy_dataset(tmp_path, name="toy", skeleton="h36m_17", seed=0):
    """A tiny labeled dataset (2 train + 1 test sequences x 2 cameras) and its detections."""
    from posebridge.data import detections, store

    cameras = [make_camera("c0"), make_camera("c1", 3500.0)]
    sequences = make_sequences(3, 50, seed)
    joints = np.concatenate(sequences).astype(np.float32)
    if skeleton == "h36m_32":  # store the 32-joint layout; train the exact 17-joint subset
        full = np.full((len(joints), 32, 3), np.nan, np.float32)
        full[:, skeletons.mapping("h36m_32", "h36m_17")] = joints
        joints = full
    index, keypoints = [], []
    rng = np.random.default_rng(seed)
    for s, world in enumerate(sequences):
        for c, camera in enumerate(cameras):
            index.append({"sequence": f"seq{s}", "subject": f"S{s}", "action": "walk",
                          "split": "test" if s == 2 else "train", "camera": camera.name, "camera_index": c,
                          "start": 50 * s, "frames": 50, "fps": 50.0, "role": "labeled", "group": f"seq{s}"})
            keypoints.append(coco_keypoints(world, camera, rng))
    index = pd.DataFrame(index)
    store.write_dataset(tmp_path / f"{name}.h5", name=name, skeleton=skeleton, role="labeled",
                        joints_3d=joints, cameras=cameras, index=index)
    detections.write_detections(tmp_path / f"{name}_det.h5", dataset=name, detector="toy",
                                keypoint_format="coco_17", rows=index[["sequence", "camera", "frames"]],
                                keypoints=np.concatenate(keypoints))
    return tmp_path / f"{name}.h5", tmp_path / f"{name}_det.h5"


def test_train_command_writes_a_loadable_model_and_resumes(tmp_path, capsys):
    import json

    import yaml

    from posebridge.cli import main
    from posebridge.inference.lift import lift, load_model

    a, a_det = write_toy_dataset(tmp_path, "toy_a", "h36m_32", seed=0)
    b, b_det = write_toy_dataset(tmp_path, "toy_b", "h36m_17", seed=1)
    spec = json.dumps({**TINY, "epochs": 2, "samples_per_epoch": 128})
    argv = ["train", "--spec", spec, "--dataset", str(a), "--detections", str(a_det), "--train-format", "h36m_17",
            "--dataset", str(b), "--detections", str(b_det), "--train-format", "native",
            "--out-dir", str(tmp_path / "models" / "m"), "--checkpoint", str(tmp_path / "ck" / "m.pt"),
            "--seed", "1", "--device", "cpu", "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    out_dir = tmp_path / "models" / "m"
    config = yaml.safe_load((out_dir / "config.yaml").read_text())
    assert config["channels"] == 32 and config["seed"] == 1
    assert [d["train_format"] for d in config["datasets"]] == ["h36m_17", "h36m_17"]
    log = pd.read_parquet(out_dir / "train_log.parquet")
    assert list(log["epoch"]) == [1, 2]
    assert {"loss", "loss_meanrel", "loss_proj", "loss_abs", "val_mpjpe", "lr", "seconds"} <= set(log.columns)
    assert np.isfinite(log["val_mpjpe"]).all()

    model = load_model(out_dir)
    assert model.name == "m" and model.formats == ["h36m_17"]
    assert model.mean_pose["h36m_17"].shape == (17, 3)
    assert np.allclose(model.mean_pose["h36m_17"][0], 0)  # root-relative
    # the mean shape (Procrustes mean): root-relative, and its limbs keep their length where the
    # camera-space average of a body seen from every side shrinks them
    shape, average = model.mean_shape["h36m_17"], model.mean_pose["h36m_17"]
    assert shape.shape == (17, 3) and np.allclose(shape[0], 0)
    hands = [H36M.index("lwrist"), H36M.index("rwrist")]
    span = lambda p: np.linalg.norm(p[hands[0]] - p[hands[1]])
    assert span(shape) > 1.2 * span(average)
    camera = make_camera()
    keypoints = coco_keypoints(make_sequences(1, 30, 5)[0], camera, np.random.default_rng(0))
    assert model.codec == CODEC  # the spec's default, recorded in the model file
    poses = lift(model, keypoints, 1000, 1000, intrinsics=camera.intrinsics, distortion=camera.distortion)
    assert poses["h36m_17"].shape == (30, 17, 3) and np.isfinite(poses["h36m_17"]).all()

    # a rerun finds the finished checkpoint and trains no further epoch
    capsys.readouterr()
    assert main(argv) == 0
    assert "resuming" in capsys.readouterr().out
    assert pd.read_parquet(out_dir / "train_log.parquet")["epoch"].tolist() == [1, 2]


def test_train_command_rejects_mismatched_arguments(tmp_path):
    from posebridge.cli import main

    a, a_det = write_toy_dataset(tmp_path, "toy_a")
    base = ["train", "--dataset", str(a), "--out-dir", str(tmp_path / "m"), "--checkpoint", str(tmp_path / "c.pt")]
    assert main(base + ["--dataset", str(a), "--detections", str(a_det)]) == 1  # 2 datasets, 1 detections
    assert main(base + ["--detections", str(a_det), "--spec", '{"bogus": 1}']) == 1
    assert main(base + ["--detections", str(a_det), "--train-format", "smpl_24"]) == 1  # no exact mapping


def test_labeled_subjects_limits_supervision_to_the_named_or_first_subjects():
    from posebridge.training.data import select_subjects

    rows = pd.DataFrame({"subject": ["S5", "S1", "S1", "S7", "S5"], "frames": [1, 2, 3, 4, 5]})
    assert list(select_subjects(rows, None, "x")["frames"]) == [1, 2, 3, 4, 5]
    assert list(select_subjects(rows, 1, "x")["frames"]) == [2, 3]  # first by name: S1
    assert list(select_subjects(rows, 2, "x")["frames"]) == [1, 2, 3, 5]
    assert list(select_subjects(rows, ["S7"], "x")["frames"]) == [4]
    with pytest.raises(ConfigError, match="x: unknown subject"):
        select_subjects(rows, ["S9"], "x")
    with pytest.raises(ConfigError, match="asks for 4 labeled subject"):
        select_subjects(rows, 4, "x")
    with pytest.raises(ConfigError, match="labeled_subjects"):
        TrainConfig.from_dict({"labeled_subjects": {"a": 0}})
    assert TrainConfig.from_dict({"labeled_subjects": {"a": 2, "b": ["S1"]}}).to_dict()["labeled_subjects"] == {
        "a": 2, "b": ["S1"]}


def test_batch_norm_recalibration_matches_a_plain_average_and_restores_the_model():
    from posebridge.models.temporal import TemporalModelOptimized, recalibrate_batch_norm

    torch.manual_seed(0)
    model = TemporalModelOptimized(17, 3, 5, [3, 3], channels=16, dropout=0.25)
    model.eval()
    batches = [torch.randn(8, 9, 17, 3) * (1 + i) for i in range(3)]
    recalibrate_batch_norm(model, batches)
    # the expand layer's input statistics do not depend on other BatchNorms: check them exactly
    rows = torch.cat(batches).reshape(-1, 3 * 17 * 3)
    from posebridge.models.temporal import _time_major

    z = rows @ _time_major(model.expand_conv.weight).T
    per_batch = z.view(3, -1, 16)
    assert torch.allclose(model.expand_bn.running_mean, per_batch.mean(1).mean(0), atol=1e-5)
    n = per_batch.shape[1]
    unbiased = per_batch.var(1, unbiased=False) * n / (n - 1)
    assert torch.allclose(model.expand_bn.running_var, unbiased.mean(0), rtol=1e-4)
    assert not model.training and model.dropout == 0.25 and model.expand_bn.momentum == 0.1


def test_training_ends_with_recalibrated_batch_norm():
    data, val = make_set(rows=4, frames=60), make_set(rows=1, frames=60, seed=3)
    base = {**TINY, "epochs": 2, "samples_per_epoch": 128}
    messages = []
    plain, _ = train(TrainConfig(**base, bn_recalibration_batches=0), data, val, seed=1, progress=False,
                     log=lambda m: None)
    tuned, _ = train(TrainConfig(**base, bn_recalibration_batches=3), data, val, seed=1, progress=False,
                     log=messages.append)
    a, b = plain.temporal.state_dict(), tuned.temporal.state_dict()
    assert torch.equal(a["expand_conv.weight"], b["expand_conv.weight"])  # weights untouched
    assert not torch.allclose(a["expand_bn.running_mean"], b["expand_bn.running_mean"])
    assert any("recalibrated on 3 batches" in m for m in messages)
    # the log's last row holds the recalibrated model's validation MPJPE, the one the message gives
    _, log = train(TrainConfig(**base, bn_recalibration_batches=3), data, val, seed=1, progress=False,
                   log=lambda m: None)
    reported = float(next(m for m in messages if "recalibrated" in m).split("-> ")[1].split(" mm")[0])
    assert log[RECALIBRATED_COLUMN].iloc[:-1].isna().all()
    assert log[RECALIBRATED_COLUMN].iloc[-1] == pytest.approx(reported, rel=1e-3)


def test_weight_average_is_the_mean_of_the_last_epochs_weights_and_survives_a_resume(tmp_path):
    data, val = make_set(rows=4, frames=60), make_set(rows=1, frames=60, seed=3)
    base = {**TINY, "samples_per_epoch": 128, "bn_recalibration_batches": 2}
    quiet = {"progress": False, "log": lambda m: None}
    # everything random in an epoch derives from (seed, epoch): a 2-epoch run's weights are those
    # a 3-epoch run has after its second epoch
    two, _ = train(TrainConfig(**base, epochs=2), data, val, seed=5, **quiet)
    three, _ = train(TrainConfig(**base, epochs=3), data, val, seed=5, **quiet)
    config = TrainConfig(**base, epochs=3, average_last_epochs=2)
    messages = []
    averaged, _ = train(config, data, val, seed=5, progress=False, log=messages.append)
    assert any("averaged over the last 2 epochs" in m for m in messages)
    a, b, c = (dict(m.temporal.named_parameters()) for m in (two, three, averaged))
    for name in c:
        torch.testing.assert_close(c[name], (a[name] + b[name]) / 2, rtol=1e-5, atol=1e-6)
    assert not torch.equal(c["expand_conv.weight"], b["expand_conv.weight"])
    # BatchNorm statistics recomputed for the averaged weights, not those of the last epoch
    bn = "expand_bn.running_mean"
    assert not torch.allclose(averaged.temporal.state_dict()[bn], three.temporal.state_dict()[bn])
    # more epochs asked for than the run has (a short preset under the default): every epoch's
    one, _ = train(TrainConfig(**base, epochs=1), data, val, seed=5, **quiet)
    messages.clear()
    short, _ = train(TrainConfig(**base, epochs=2, average_last_epochs=5), data, val, seed=5, progress=False,
                     log=messages.append)
    assert any("averaged over the last 2 epochs" in m for m in messages)
    x, d = dict(one.temporal.named_parameters()), dict(short.temporal.named_parameters())
    for name in d:
        torch.testing.assert_close(d[name], (x[name] + a[name]) / 2, rtol=1e-5, atol=1e-6)

    kill = kill_at(2, 0)  # inside the averaged epochs, one of them already added

    with pytest.raises(Killed):
        train(config, data, val, seed=5, checkpoint=tmp_path / "c.pt", on_batch=kill, **quiet)
    resumed, _ = train(config, data, val, seed=5, checkpoint=tmp_path / "c.pt", **quiet)
    x, y = averaged.temporal.state_dict(), resumed.temporal.state_dict()
    assert all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("spec, message", [
    ({"average_last_epochs": -1}, "a non-negative integer"),
    ({"average_last_epochs": True}, "a non-negative integer"),
    ({"average_last_epochs": 1.5}, "a non-negative integer"),
    ({"average_last_epochs": 2, "bn_recalibration_batches": 0}, "bn_recalibration_batches is 0"),
])
def test_weight_average_setting_is_checked(spec, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(spec)


def test_labeled_fraction_keeps_the_first_frames_of_each_take(tmp_path):
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.training.data import load_labeled

    h5, det = write_toy_dataset(tmp_path)
    with open_dataset(h5) as ds, read_detections(det) as dt:
        full = load_labeled([(ds, dt, None)], "train")
        part = load_labeled([(ds, dt, None)], "train", fraction={ds.name: 0.25})
    kept = np.ceil(full.row_frames * 0.25).astype(int)
    assert list(part.row_frames) == list(kept)
    for r in range(len(kept)):  # the first frames of every row, inputs and targets alike
        a, b = full.row_start[r], part.row_start[r]
        np.testing.assert_array_equal(part.inputs[b:b + kept[r]], full.inputs[a:a + kept[r]])
        np.testing.assert_array_equal(part.targets[0][b:b + kept[r]], full.targets[0][a:a + kept[r]])
    with pytest.raises(ConfigError, match="labeled_fraction"):
        TrainConfig.from_dict({"labeled_fraction": {"a": 0}})


# ----------------------------------------------------------------------------- one spec vocabulary


def test_objective_flags_are_aliases_of_spec_keys():
    """Every objective option is a spec key; its flag writes the same key (and wins over the spec)."""
    import json

    from posebridge.cli import build_parser
    from posebridge.commands import finetune as finetune_command
    from posebridge.commands import train as train_command
    from posebridge.training.settings import TrainConfig

    common = ["--dataset", "a.h5", "--detections", "a_det.h5", "--out-dir", "o", "--checkpoint", "c.pt"]

    def config(command, *argv):
        args = build_parser().parse_args([command, *common, *argv])
        module = finetune_command if command == "finetune" else train_command
        return TrainConfig.from_dict(module.spec_from_args(args))

    flags = config("train", "--semi-weights", '{"bone": 0.5}', "--semi-warmup-epochs", "2", "--semi-batch-size", "16",
                   "--semi-placement", "depth", "--semi-format", "h36m_17", "--multiview-weight", "0.3",
                   "--multiview-pose-weight", "2", "--multiview-margin", "0.4", "--multiview-time-window", "5",
                   "--multiview-pairs", "8", "--multiview-embedding-dim", "16")
    spec = {"semi_supervised": {"weights": {"bone": 0.5}, "warmup_epochs": 2, "batch_size": 16, "placement": "depth",
                                "reference_format": "h36m_17"},
            "multiview": {"weight": 0.3, "pose_weight": 2.0, "margin": 0.4, "time_window": 5, "pairs": 8,
                          "embedding_dim": 16}}
    keys = config("train", "--spec", json.dumps(spec))
    assert flags == keys and keys.semi_supervised.weights == {"traj": 1.0, "proj": 1.0, "bone": 0.5}
    assert config("train", "--spec", json.dumps(spec), "--multiview-pairs", "4").multiview.pairs == 4
    with pytest.raises(ConfigError, match="valid keys: .*time_window"):
        config("train", "--spec", json.dumps({"multiview": {"window": 3}}))
    # --acae-weight is the weight of the variant's own ACAE term: two distinct keys
    reg = config("finetune", "--variant", "output_reg", "--acae-weight", "0.7").finetune
    hybrid = config("finetune", "--variant", "hybrid", "--acae-weight", "0.6", "--warmup-epochs", "2").finetune
    assert (reg.output_reg_weight, reg.teacher_weight) == (0.7, 1.0)
    assert (hybrid.output_reg_weight, hybrid.teacher_weight, hybrid.warmup_epochs) == (1.0, 0.6, 2)
    assert hybrid == config("finetune", "--spec", json.dumps(
        {"finetune": {"variant": "hybrid", "teacher_weight": 0.6, "warmup_epochs": 2}})).finetune
    with pytest.raises(ConfigError, match="no ACAE term"):
        config("finetune", "--variant", "latent", "--acae-weight", "0.5")
