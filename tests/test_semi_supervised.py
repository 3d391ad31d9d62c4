"""VideoPose3D's semi-supervised objective: the terms' values (exact reprojection -> 0, 1/z
weighting, bone lengths), the warm-up, bit-identical resume and the `posebridge train` options."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from posebridge.geometry import skeletons
from posebridge.geometry.skeletons import HINGE_JOINTS, keypoint_correspondence
from posebridge.geometry.cameras import normalize_screen, project_points
from posebridge.data.windows import Batch, window_index
from posebridge.errors import ConfigError
from posebridge.training.objectives.semi_supervised import (
    SemiSupervised,
    bone_length_gap,
    place_at_depth,
    reprojection_error,
    weighted_mpjpe,
)
from posebridge.training.loop import StepOutputs, TrainConfig, build_lifter, train
from posebridge.training.data import BatchAssembler, load_labeled
from posebridge.training.settings import SemiSupervisedSettings as Semi
from posebridge.data.frames import FrameTable
from test_train import (TINY, Killed, coco_keypoints, encode, frame_columns, kill_at, make_camera, make_sequences,
                        make_set, write_toy_dataset)

H36M = skeletons.get("h36m_17")
COCO = skeletons.get("coco_17")


def unlabeled_from(rows=3, frames=40, seed=4) -> FrameTable:
    """Unlabeled rows built like load_unlabeled does (COCO keypoints of toy motion)."""
    rng = np.random.default_rng(seed)
    cameras = [make_camera("u0"), make_camera("u1", 3800.0)]
    inputs, confidence, row_cameras = [], [], []
    for r, world in enumerate(make_sequences(rows, frames, seed)):
        camera = cameras[r % 2]
        keypoints = coco_keypoints(world, camera, rng)
        inputs.append(encode(keypoints, camera))
        confidence.append(keypoints[..., 2])
        row_cameras.append(camera)
    return FrameTable(**frame_columns(inputs, row_cameras, "toy_video", confidence=confidence))


# ----------------------------------------------------------------------------- the terms


def test_weighted_mpjpe_weights_by_inverse_depth():
    target = torch.tensor([[0.0, 0.0, 2.0], [1.0, 1.0, 4.0], [9.0, 9.0, 5.0]])
    pred = target + torch.tensor([[0.3, 0.0, 0.0], [0.0, 0.0, 0.4], [7.0, 0.0, 0.0]])
    weight = torch.tensor([1 / 2.0, 1 / 4.0, 0.0])  # the third row has no label
    # (0.3 / 2 + 0.4 / 4) / 2 rows with a label
    assert weighted_mpjpe(pred, target, weight).item() == pytest.approx(0.125)


def test_reprojection_error_is_zero_for_exact_points_and_the_shift_otherwise():
    camera = make_camera()
    rng = np.random.default_rng(0)
    points = np.stack([rng.uniform(-0.8, 0.8, (5, 8)), rng.uniform(-0.9, 0.9, (5, 8)),
                       rng.uniform(3.5, 5.5, (5, 8))], -1)
    px = project_points(points * 1000, camera.intrinsics, camera.distortion)
    w, h = camera.image_size
    kp = normalize_screen(np.concatenate([px, rng.uniform(0.2, 1, (5, 8, 1))], -1), w, h)
    args = [torch.tensor(np.repeat(a[None], 5, 0), dtype=torch.float32) for a in (camera.intrinsics, camera.distortion)]
    size = [torch.full((5,), float(v)) for v in (w, h)]
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    # intrinsics in pixels with points in metres: projection is scale-free (x/z)
    assert reprojection_error(as_t(points), as_t(kp), *args, *size).item() == pytest.approx(0, abs=1e-5)
    shifted = kp.copy()
    shifted[..., :2] += [0.03, 0.04]
    assert reprojection_error(as_t(points), as_t(shifted), *args, *size).item() == pytest.approx(0.05, abs=1e-5)
    shifted[..., 2] = 0  # no confidence: nothing to compare
    assert reprojection_error(as_t(points), as_t(shifted), *args, *size).item() == 0


def test_bone_gap_is_zero_for_equal_skeletons_and_the_mean_length_difference_otherwise():
    pose = torch.tensor(make_sequences(1, 6, 0)[0] / 1000, dtype=torch.float32)  # (6, 17, 3) metres
    rot = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    moved = pose.flip(0) @ rot.T + torch.tensor([0.5, 2.0, 4.0])  # other order, rotated, translated
    bones = H36M.bones
    assert bone_length_gap(pose, moved, bones).item() == pytest.approx(0, abs=1e-6)
    lengths = np.array([np.linalg.norm(pose[:, c] - pose[:, p], axis=-1).mean() for p, c in bones])  # per bone
    assert bone_length_gap(pose, 0.9 * moved, bones).item() == pytest.approx(0.1 * lengths.mean(), rel=1e-5)


def test_correspondence_pairs_the_same_named_hinge_joints():
    joints, keypoints = keypoint_correspondence("h36m_17", "coco_17")
    assert [H36M.joint_names[j] for j in joints] == list(HINGE_JOINTS)
    assert [COCO.joint_names[k] for k in keypoints] == list(HINGE_JOINTS)
    assert (keypoint_correspondence("coco_17", "coco_17")[0] == np.arange(17)).all()  # exact mapping: every keypoint
    with pytest.raises(ConfigError):
        SemiSupervised(unlabeled_from(), TrainConfig(**TINY), ["h36m_17"], settings=Semi(weights={"bogus": 1}))


def test_reprojection_term_is_zero_when_unlabeled_pose_and_trajectory_are_exact():
    config = TrainConfig(**{**TINY, "flip_augment": False})
    camera = make_camera()
    root = np.array([0.2, -0.1, 4.2])
    rel = make_sequences(1, 1, 3)[0][0] / 1000
    rel = rel - rel[0]
    pose = rel @ np.diag([1.0, -1.0, -1.0]) + root  # camera frame: y down, z forward
    w, h = camera.image_size
    px = project_points(pose * 1000, camera.intrinsics, camera.distortion)
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:, :2] = [w / 2, h / 2]
    keypoints[:, 2] = 1
    for name in HINGE_JOINTS:
        keypoints[COCO.index(name), :2] = px[H36M.index(name)]
    frames = 30
    still = np.repeat(keypoints[None], frames, 0)
    data = FrameTable(**frame_columns([encode(still, camera)], [camera], "still", confidence=[still[..., 2]]))
    semi = SemiSupervised(data, config, ["h36m_17"], settings=Semi(weights={"traj": 0.0}, warmup_epochs=0, batch_size=5))
    with torch.no_grad():  # a trajectory model that always says `root`
        semi.trajectory.shrink.weight.zero_()
        semi.trajectory.shrink.bias.copy_(torch.tensor(root, dtype=torch.float32))
    semi.start_epoch(0, 0)
    extra = semi.sample(0, 0)
    lifter = build_lifter(config, ["h36m_17"], 0)
    tb = BatchAssembler(make_set(rows=2, frames=30), lifter).assemble(Batch(np.zeros(4, int), np.zeros(4, int), np.arange(4)))
    exact = torch.tensor(pose - root + [1.0, 2.0, 3.0], dtype=torch.float32)  # any root position: root-relative use
    out = StepOutputs(lifter, tb, tb.target, torch.zeros(4, 32), extra, exact.expand(5, 17, 3), torch.zeros(5, 32))
    terms = semi.losses(out, 0)
    assert terms["proj"].item() == pytest.approx(0, abs=1e-6)
    assert terms["total"].item() == pytest.approx(terms["proj"].item() + terms["bone"].item(), abs=1e-6)
    with torch.no_grad():
        semi.trajectory.shrink.bias[0] += 0.1  # 10 cm off sideways: clearly visible
    assert semi.losses(out, 0)["proj"].item() > 0.01
    # placed at the trajectory model's depth only, the sideways error is solved away
    semi_depth = SemiSupervised(data, config, ["h36m_17"],
                                settings=Semi(weights={"traj": 0.0}, warmup_epochs=0, batch_size=5, placement="depth"))
    semi_depth.trajectory.load_state_dict(semi.trajectory.state_dict())
    semi_depth.start_epoch(0, 0)
    out.extra_inputs = semi_depth.sample(0, 0)
    assert semi_depth.losses(out, 0)["proj"].item() == pytest.approx(0, abs=1e-5)


def test_place_at_depth_recovers_the_lateral_position_and_centres_the_miss():
    rng = np.random.default_rng(2)
    rel = torch.tensor(rng.normal(0, 0.3, (4, 9, 3)), dtype=torch.float64)
    root = torch.tensor([[0.3, -0.2, 4.0], [-1.0, 0.4, 6.5], [0.0, 0.0, 3.0], [2.0, 1.0, 9.0]], dtype=torch.float64)
    points = rel + root[:, None]
    rays = points[..., :2] / points[..., 2:]
    weight = torch.tensor(rng.uniform(0.1, 1, (4, 9)))
    assert torch.allclose(place_at_depth(rel, root[:, 2], rays, weight), points, atol=1e-12)  # exact at the true depth
    # at a wrong depth: root depth as given, and the weighted mean lateral miss at each joint's depth is zero
    placed = place_at_depth(rel, root[:, 2] + 0.7, rays, weight)
    assert torch.allclose(placed[:, :, 2] - rel[:, :, 2], root[:, 2:] + 0.7)
    miss = rays * placed[..., 2:] - placed[..., :2]
    assert torch.allclose((weight[..., None] * miss).sum(1), torch.zeros(4, 2, dtype=torch.float64), atol=1e-12)
    # only the weighted joints decide: a joint with weight 0 may lie anywhere
    moved = rays.clone()
    moved[:, 0] += 5.0
    weight[:, 0] = 0
    assert torch.allclose(place_at_depth(rel, root[:, 2], moved, weight), points, atol=1e-12)


def test_unknown_placement_is_refused():
    with pytest.raises(ConfigError, match="unknown placement 'closest'"):
        SemiSupervised(unlabeled_from(), TrainConfig(**TINY), ["h36m_17"], settings=Semi(placement="closest"))


# ----------------------------------------------------------------------------- training


def test_warm_up_keeps_the_unlabeled_terms_out():
    data = make_set(rows=4, frames=60)
    config = TrainConfig(**{**TINY, "epochs": 3, "samples_per_epoch": 128})
    plain, _ = train(config, data, None, seed=3, progress=False, log=lambda m: None)
    # warm-up over every epoch: the trajectory model trains beside, the lifter is untouched by it
    semi = SemiSupervised(unlabeled_from(), config, ["h36m_17"], seed=3, settings=Semi(warmup_epochs=3))
    warm, log = train(config, data, None, seed=3, progress=False, log=lambda m: None, objectives=[semi])
    a, b = plain.temporal.state_dict(), warm.temporal.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (log["loss_semi_proj"] == 0).all() and (log["loss_semi_bone"] == 0).all()
    assert log["loss_semi_traj"].iloc[-1] < log["loss_semi_traj"].iloc[0]  # trained from the start
    # with one warm-up epoch, the unlabeled terms join from epoch 2 and change the lifter
    semi = SemiSupervised(unlabeled_from(), config, ["h36m_17"], seed=3, settings=Semi(warmup_epochs=1))
    _, log = train(config, data, None, seed=3, progress=False, log=lambda m: None, objectives=[semi])
    assert log["loss_semi_proj"].iloc[0] == 0 and (log["loss_semi_proj"].iloc[1:] > 0).all()
    assert (log["loss_semi_bone"].iloc[1:] > 0).all()


def test_semi_supervised_run_resumes_bit_identically(tmp_path):
    data, val = make_set(rows=4, frames=60), make_set(rows=1, frames=60, seed=3)
    config = TrainConfig(**{**TINY, "epochs": 3, "samples_per_epoch": 192})

    def run(checkpoint, **kw):
        semi = SemiSupervised(unlabeled_from(), config, ["h36m_17"], seed=7, settings=Semi(warmup_epochs=1, batch_size=32))
        lifter, log = train(config, data, val, seed=7, checkpoint=checkpoint, progress=False, objectives=[semi], **kw)
        return lifter, log, semi

    reference, ref_log, ref_semi = run(tmp_path / "a.pt", log=lambda m: None)

    kill = kill_at(2, 1)

    with pytest.raises(Killed):
        run(tmp_path / "b.pt", on_batch=kill, log=lambda m: None)
    messages = []
    resumed, log, semi = run(tmp_path / "b.pt", log=messages.append)
    assert any("after epoch 2" in m for m in messages)
    for x, y in ((reference.temporal, resumed.temporal), (ref_semi.trajectory, semi.trajectory)):
        a, b = x.state_dict(), y.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    pd.testing.assert_frame_equal(log.drop(columns="seconds"), ref_log.drop(columns="seconds"))


def test_train_command_with_unlabeled_subjects_writes_the_trajectory_model(tmp_path):
    from posebridge.cli import main
    from posebridge.inference.lift import load_model
    from posebridge.models.temporal import TemporalModel

    a, a_det = write_toy_dataset(tmp_path, "toy", "h36m_17", seed=0)
    spec = json.dumps({**TINY, "epochs": 2, "samples_per_epoch": 128, "labeled_subjects": {"toy": 1}})
    base = ["train", "--spec", spec, "--dataset", str(a), "--detections", str(a_det), "--out-dir",
            str(tmp_path / "m"), "--checkpoint", str(tmp_path / "m.pt"), "--device", "cpu", "--no-progress"]
    semi = ["--unlabeled-video", str(a), "--unlabeled-detections", str(a_det), "--semi-weights", '{"bone": 0.5}',
            "--semi-batch-size", "16"]
    assert main(base + semi) == 0
    payload = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    entry = payload["trajectory"]
    assert entry["format"] == "h36m_17" and entry["joint"] == "pelvis"
    TemporalModel(**entry["architecture"]).load_state_dict(entry["state_dict"])
    assert payload["training"]["objectives"]["semi"]["weights"]["bone"] == 0.5
    assert payload["training"]["objectives"]["semi"]["rows"] == 2  # subject S1's two cameras
    log = pd.read_parquet(tmp_path / "m" / "train_log.parquet")
    assert log["loss_semi_proj"].iloc[1] > 0
    assert load_model(tmp_path / "m").formats == ["h36m_17"]
    # every subject labeled: nothing unlabeled to use
    spec_all = json.dumps({**TINY, "epochs": 1})
    assert main(base[:2] + [spec_all] + base[3:] + semi) == 1
    assert main(base + semi[:2]) == 1  # no detections for the unlabeled dataset


def test_trajectory_batch_norm_statistics_are_recalibrated_for_the_model_file():
    config = TrainConfig(**{**TINY, "batch_size": 128})
    labeled = make_set(rows=4, frames=60)
    semi = SemiSupervised(unlabeled_from(), config, ["h36m_17"], labeled=labeled)
    model = semi.trajectory
    with torch.no_grad():  # statistics far behind the weights, as after a short annealed schedule
        for bn in [model.expand_bn, *model.layers_bn]:
            bn.running_mean.fill_(3.0)
            bn.running_var.fill_(0.01)
    rng = np.random.default_rng(5)  # a large batch of random windows from both sets, half each
    parts = []
    for data in (labeled, semi.data):
        rows = rng.integers(0, len(data.row_frames), 400)
        index = window_index(data.row_start, data.row_frames, rows, rng.integers(0, data.row_frames[rows]),
                             semi.before, semi.after)
        parts.append(torch.from_numpy(data.inputs[index]))
    x = torch.cat(parts)

    def gap():
        model.dropout = 0.0
        with torch.no_grad():
            model.train()
            batch_stats = model(x)
            model.eval()
            running = model(x)
        model.dropout = config.dropout
        return (batch_stats - running).abs().mean().item(), batch_stats.abs().mean().item()

    before, scale = gap()
    entry = semi.file_entries()["trajectory"]
    assert torch.equal(entry["state_dict"]["expand_bn.running_mean"], model.expand_bn.running_mean)
    after, _ = gap()
    assert before > scale and after < 0.1 * scale  # eval mode now behaves like the training batches
    assert model.expand_bn.momentum == config.bn_momentum and model.dropout == config.dropout


def test_trajectory_calibration_draws_its_windows_from_the_runs_seed():
    config = TrainConfig(**TINY)
    labeled = make_set(rows=2, frames=30)
    first = SemiSupervised(unlabeled_from(), config, ["h36m_17"], seed=1, labeled=labeled)
    second = SemiSupervised(unlabeled_from(), config, ["h36m_17"], seed=2, labeled=labeled)
    second.trajectory.load_state_dict(first.trajectory.state_dict())  # the same weights, other runs
    stats = [o.file_entries()["trajectory"]["state_dict"]["expand_bn.running_mean"] for o in (first, second)]
    assert not torch.equal(stats[0], stats[1])
    first.calibrate_trajectory(seed=2)
    assert torch.equal(first.trajectory.expand_bn.running_mean.cpu(), stats[1])


@pytest.mark.parametrize("placement, normalisation", [("depth", "screen"), ("depth", "camera"),
                                                      ("trajectory", "camera")])
def test_unlabeled_video_read_on_demand_trains_as_in_memory(tmp_path, placement, normalisation):
    """The unlabeled table read on demand (a cache of one 64-frame block: every batch reads and
    evicts) gives the windows, confidence, rays and losses of the table in memory, so a run's
    weights and log bit for bit."""
    from posebridge.data.frames import open_sources
    from posebridge.training.objectives.semi_supervised import load_unlabeled

    a, a_det = write_toy_dataset(tmp_path, "toy", "h36m_17", seed=0)
    config = TrainConfig(**{**TINY, "epochs": 2, "samples_per_epoch": 128, "labeled_subjects": {"toy": 1},
                            "input_normalisation": normalisation,
                            "output_placement": "rays" if normalisation == "camera" else "free"})
    settings = Semi(warmup_epochs=0, batch_size=32, placement=placement)
    runs = {}
    with open_sources([a], [a_det]) as sources:
        for cache_mb in (None, 0.01):
            unlabeled = load_unlabeled(sources, config.labeled_subjects, "coco_17",
                                       config.input_codec(), cache_mb, block_frames=64)
            assert unlabeled.in_memory == (cache_mb is None)
            assert cache_mb is None or (unlabeled.confidence is None and unlabeled.reader.capacity == 1)
            semi = SemiSupervised(unlabeled, config, ["h36m_17"], seed=7, settings=settings)
            semi.start_epoch(1, 5)
            batches = [(semi.sample(1, step), semi._confidence, semi._rays) for step in range(3)]
            labeled = [(dataset, detections, None) for dataset, detections in sources]
            data, val = (load_labeled(labeled, split, subjects=config.labeled_subjects, codec=config.input_codec())
                         for split in ("train", "test"))
            lifter, log = train(config, data, val, seed=7, progress=False, objectives=[semi], log=lambda m: None)
            runs[cache_mb] = batches, unlabeled.digest(), lifter.state_dict(), semi.trajectory.state_dict(), log
    (batches_a, digest_a, lifter_a, traj_a, log_a), (batches_b, digest_b, lifter_b, traj_b, log_b) = runs.values()
    assert digest_a == digest_b
    for x, y in zip(batches_a, batches_b):
        assert all((u is None and v is None) or torch.equal(u, v) for u, v in zip(x, y))
    for a, b in ((lifter_a, lifter_b), (traj_a, traj_b)):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert log_a["loss_semi_proj"].iloc[-1] > 0
    pd.testing.assert_frame_equal(log_a.drop(columns="seconds"), log_b.drop(columns="seconds"))
