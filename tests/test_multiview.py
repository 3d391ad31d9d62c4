"""MCSS multi-view objective: pair sampling, canonical targets, a toy run that learns, resume,
the `posebridge train --multiview` options, and the experiment's retrieval / distance matrix."""

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import (TINY, Killed, coco_keypoints, encode, frame_columns, kill_at, make_camera, make_sequences,
                        make_set, write_toy_dataset)

from posebridge.geometry import canonical, skeletons
from posebridge.evaluation import mcss as mcss_eval
from posebridge.training.objectives import multiview
from posebridge.geometry.cameras import Camera
from posebridge.data.windows import Batch
from posebridge.training.loop import TrainConfig, build_lifter, train
from posebridge.training.data import BatchAssembler

H36M = skeletons.get("h36m_17")


def rig(count=3):
    """Synchronised cameras around the subject at different azimuths and heights."""
    cams = []
    for c in range(count):
        angle = 2 * np.pi * c / count + 0.3
        position = (4000 * np.cos(angle), 4000 * np.sin(angle), 1200 + 300 * c)
        cams.append(Camera.look_at(f"cam{c}", position, (0.0, 0.0, 1000.0), (1000.0, 990.0, 500.0, 500.0),
                                   (0.0, 0.0, 0.0, 0.0, 0.0), (1000, 1000)))
    return cams


def toy_multiview(takes=3, frames=40, cameras=3, seed=0) -> multiview.MultiviewSet:
    """Takes of the toy motion filmed by ``cameras`` synchronised cameras, as load_multiview builds."""
    rng = np.random.default_rng(seed)
    inputs, confidence, row_cameras, members = [], [], [], []
    for world in make_sequences(takes, frames, seed):
        members.append(np.arange(cameras) + len(inputs))
        for camera in rig(cameras):
            keypoints = coco_keypoints(world, camera, rng)
            inputs.append(encode(keypoints, camera))
            confidence.append(keypoints[..., 2])
            row_cameras.append(camera)
    return multiview.MultiviewSet(**frame_columns(inputs, row_cameras, "toy_mv", confidence=confidence), takes=members,
                                  take_frames=np.full(takes, frames),
                                  take_names=np.array([f"t{t}" for t in range(takes)], object))


def make_objective(data, config, flip=True, **settings):
    objective = multiview.MultiviewObjective(
        data, multiview.MultiviewSettings(**{"pairs": 16, "embedding_dim": 16, **settings}),
        formats=["h36m_17"], group_formats=["h36m_17"], channels=config.channels, flip=flip, keypoint_dropout=0.0)
    objective.attach(build_lifter(config, ["h36m_17"], 0))  # the window of the lifter it trains with
    return objective


# ----------------------------------------------------------------------------- sampling


def test_pairs_are_the_same_instant_from_two_different_cameras_of_one_take():
    data = toy_multiview(takes=4, frames=30, cameras=3)
    pairs = multiview.sample_pairs(data, 5000, np.random.default_rng(0))
    assert (pairs.row_a != pairs.row_b).all()
    for t in range(4):
        sel = pairs.take == t
        assert np.isin(pairs.row_a[sel], data.takes[t]).all() and np.isin(pairs.row_b[sel], data.takes[t]).all()
    assert pairs.frame.min() == 0 and pairs.frame.max() == 29
    # every ordered camera pair occurs, about equally often
    ordered = pd.Series(list(zip(pairs.row_a % 3, pairs.row_b % 3))).value_counts()
    assert len(ordered) == 6 and ordered.min() > 0.7 * ordered.max()


def test_sampled_windows_centre_on_the_same_instant_seen_by_different_cameras():
    data = toy_multiview(takes=3, frames=30, cameras=3)
    # label every frame: x = take, y = frame, confidence = camera
    take_of_row = np.repeat(np.arange(3), 3)
    data.inputs = np.concatenate([
        np.broadcast_to(np.stack([np.full(30, take_of_row[r]), np.arange(30), np.full(30, r % 3 + 1)], -1)[:, None],
                        (30, 17, 3)) for r in range(9)]).astype(np.float32)
    config = TrainConfig(**TINY)
    objective = make_objective(data, config, flip=False, pairs=64)
    objective.start_epoch(0, seed=1)
    x = objective.sample(0, 0).numpy()
    rf = int(np.prod(config.filter_widths))
    assert x.shape == (128, rf, 17, 3)
    centre = x[:, rf // 2, 0]  # (128, 3)
    anchor, positive = centre[:64], centre[64:]
    np.testing.assert_array_equal(anchor[:, :2], positive[:, :2])  # same take, same frame
    assert (anchor[:, 2] != positive[:, 2]).all()  # different cameras
    np.testing.assert_array_equal(anchor[:, 1], objective.last.frame)
    # windows are the consecutive frames around the centre (clamped at the ends)
    np.testing.assert_array_equal(x[:, :, 0, 1], np.clip(centre[:, 1:2] + np.arange(-(rf // 2), rf // 2 + 1), 0, 29))


def test_flip_mirrors_both_views_of_a_pair_together_and_sampling_is_seeded():
    data = toy_multiview(takes=2, frames=30, cameras=3)
    config = TrainConfig(**TINY)
    objective = make_objective(data, config, flip=True, pairs=200)
    objective.start_epoch(3, seed=5)
    x = objective.sample(3, 0)
    rf = int(np.prod(config.filter_widths))
    pairs = objective.last
    flips = []
    for view, rows in ((x[:200], pairs.row_a), (x[200:], pairs.row_b)):
        centre = view[:, rf // 2]  # the centre frame of each window
        original = torch.from_numpy(data.inputs[data.row_start[rows] + pairs.frame])
        mirrored = original[:, list(skeletons.get("coco_17").mirror)] * torch.tensor([-1.0, 1.0, 1.0])
        is_plain = (centre == original).all(-1).all(-1)
        is_mirrored = (centre == mirrored).all(-1).all(-1)
        assert (is_plain | is_mirrored).all()
        flips.append(is_mirrored & ~is_plain)
    assert torch.equal(flips[0], flips[1])  # the positive is mirrored with its anchor
    assert 60 < int(flips[0].sum()) < 140
    again = make_objective(data, config, flip=True, pairs=200)
    again.start_epoch(3, seed=5)
    assert torch.equal(again.sample(3, 0), x)


# ----------------------------------------------------------------------------- canonical targets


def test_batch_up_vectors_canonicalise_camera_targets_to_the_world_canonical_pose():
    cameras = [make_camera("c0"), make_camera("c1", 3500.0)]
    data = make_set(rows=4, frames=20, seed=0, cameras=cameras)
    data.row_up = np.array([cameras[r % 2].R @ np.array([0.0, 0.0, 1.0]) for r in range(4)])
    lifter = build_lifter(TrainConfig(**TINY), ["h36m_17"], 0)
    assembler = BatchAssembler(data, lifter)
    rows, frames = np.repeat(np.arange(4), 5), np.tile(np.arange(0, 20, 4), 4)
    batch = Batch(np.zeros(20, np.int64), rows, frames)
    world = np.concatenate(make_sequences(4, 20, 0))[data.row_start[rows] + frames]
    expected = canonical.canonicalize(world, H36M)
    tb = assembler.assemble(batch)
    got = canonical.canonicalize(tb.target.double() * 1000, H36M, up_axis=tb.up.double()).numpy()
    np.testing.assert_allclose(got, expected, atol=0.05)  # float32 targets, mm
    # a mirrored example: the mirrored camera frame's up; heights of left/right joints swap
    mirrored = assembler.assemble(batch, flip=np.ones(20, bool))
    got = canonical.canonicalize(mirrored.target.double() * 1000, H36M, up_axis=mirrored.up.double()).numpy()
    np.testing.assert_allclose(got[..., 2], expected[:, list(H36M.mirror), 2], atol=0.05)


# ----------------------------------------------------------------------------- training


def test_toy_run_learns_the_embedding_and_the_regressor_and_resumes(tmp_path):
    cameras = [make_camera("c0"), make_camera("c1", 3500.0)]
    data = make_set(rows=4, frames=60, seed=0, cameras=cameras)
    data.row_up = np.array([cameras[r % 2].R @ np.array([0.0, 0.0, 1.0]) for r in range(4)])
    mv = toy_multiview(takes=4, frames=60, cameras=3, seed=2)
    config = TrainConfig(**{**TINY, "epochs": 3, "samples_per_epoch": 192, "lr": 3e-3})
    objective = make_objective(mv, config, pairs=32, time_window=5)
    _, log = train(config, data, None, seed=0, progress=False, log=lambda m: None, objectives=[objective],
                   checkpoint=tmp_path / "a.pt")
    for term in ("triplet", "pose", "d_pos", "d_neg", "active"):
        assert f"loss_multiview_{term}" in log
    assert log["loss_multiview_triplet"].iloc[-1] < log["loss_multiview_triplet"].iloc[0]
    assert log["loss_multiview_pose"].iloc[-1] < 0.7 * log["loss_multiview_pose"].iloc[0]
    # the objective's modules are checkpointed: a run killed mid-training resumes bit-identically
    kill = kill_at(2, 1)

    with pytest.raises(Killed):
        train(config, data, None, seed=0, progress=False, log=lambda m: None, on_batch=kill,
              objectives=[make_objective(mv, config, pairs=32, time_window=5)], checkpoint=tmp_path / "b.pt")
    resumed = make_objective(mv, config, pairs=32, time_window=5)
    messages = []
    _, log_b = train(config, data, None, seed=0, progress=False, log=messages.append, objectives=[resumed],
                     checkpoint=tmp_path / "b.pt")
    assert any("resuming" in m and "after epoch 2" in m for m in messages)
    for name, module in objective.modules().items():
        a, b = module.state_dict(), resumed.modules()[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    pd.testing.assert_frame_equal(log.drop(columns="seconds"), log_b.drop(columns="seconds"))
    # another margin is another run
    messages.clear()
    train(TrainConfig(**{**config.to_dict(), "epochs": 1}), data, None, seed=0, progress=False, log=messages.append,
          objectives=[make_objective(mv, config, pairs=32, margin=0.5)], checkpoint=tmp_path / "b.pt")
    assert any("different run" in m for m in messages)


def write_multiview_dataset(tmp_path):
    """An unlabeled multi-view dataset (2 takes x 3 synchronised cameras) and its detections:
    (dataset path, detections path, per row (40, 17, 3) keypoints, the cameras)."""
    from posebridge.data import detections, store

    cams, index, keypoints = rig(3), [], []
    rng = np.random.default_rng(0)
    sequences = make_sequences(2, 40, 4)
    for s, world in enumerate(sequences):
        for c, camera in enumerate(cams):
            index.append({"sequence": f"take{s}", "subject": "S1", "action": "walk", "split": "train",
                          "camera": camera.name, "camera_index": c, "start": 40 * s, "frames": 40, "fps": 50.0,
                          "role": "unlabeled_multiview", "group": f"take{s}"})
            keypoints.append(coco_keypoints(world, camera, rng))
    index = pd.DataFrame(index)
    store.write_dataset(tmp_path / "mv.h5", name="mv", skeleton="h36m_17", role="unlabeled_multiview",
                        joints_3d=np.concatenate(sequences).astype(np.float32), cameras=cams, index=index)
    detections.write_detections(tmp_path / "mv_det.h5", dataset="mv", detector="toy", keypoint_format="coco_17",
                                rows=index[["sequence", "camera", "frames"]], keypoints=np.concatenate(keypoints))
    return tmp_path / "mv.h5", tmp_path / "mv_det.h5", keypoints, cams


def test_multiview_pairs_read_on_demand_equal_those_in_memory(tmp_path):
    from posebridge.data.frames import open_sources

    mv, mv_det, _, _ = write_multiview_dataset(tmp_path)
    config = TrainConfig(**TINY)
    samples = {}
    with open_sources([mv], [mv_det]) as sources:
        for cache_mb in (None, 0.01):  # 0.01: one cached block of 64 frames, read and evicted
            data = multiview.load_multiview(sources, "coco_17", config.input_codec(), cache_mb, block_frames=64)
            assert data.in_memory == (cache_mb is None)
            objective = make_objective(data, config)
            objective.start_epoch(1, 5)
            samples[cache_mb] = ([objective.sample(1, step) for step in range(4)], data.digest())
    (memory, memory_digest), (lazy, lazy_digest) = samples.values()
    assert lazy_digest == memory_digest
    assert all(torch.equal(a, b) for a, b in zip(memory, lazy))


def test_train_command_with_multiview_data_saves_a_usable_embedding(tmp_path):
    import json

    from posebridge.cli import main
    from posebridge.inference.lift import load_model

    a, a_det = write_toy_dataset(tmp_path, "toy_a", "h36m_17", seed=0)
    _, _, keypoints, cams = write_multiview_dataset(tmp_path)
    base = ["train", "--spec", json.dumps({**TINY, "epochs": 1, "samples_per_epoch": 128}),
            "--dataset", str(a), "--detections", str(a_det), "--out-dir", str(tmp_path / "m"),
            "--checkpoint", str(tmp_path / "m.pt"), "--device", "cpu", "--no-progress"]
    assert main(base + ["--multiview", str(tmp_path / "mv.h5")]) == 1  # no detections for it
    assert main(base + ["--multiview", str(a), "--multiview-detections", str(a_det)]) == 1  # a labeled dataset
    assert main(base + ["--multiview", str(tmp_path / "mv.h5"), "--multiview-detections", str(tmp_path / "mv_det.h5"),
                        "--multiview-pairs", "8", "--multiview-embedding-dim", "8"]) == 0
    model = load_model(tmp_path / "m")
    head, regressor, slices = multiview.load_embedding(model.metadata)
    x = model.encode(keypoints[0], 1000, 1000, cams[0].intrinsics, cams[0].distortion)
    emb = multiview.embed(model.lifter, head, x)
    assert emb.shape == (40, 8)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(40))
    pose = multiview.canonical_pose(regressor, emb, slices, "h36m_17")
    assert pose.shape == (40, 17, 3) and np.isfinite(pose).all()
    assert pd.read_parquet(tmp_path / "m" / "train_log.parquet")["loss_multiview_triplet"].notna().all()
    # retrieval alone (the real footage's: no pose regression), the raw 2D baseline first
    views = toy_views()
    table = mcss_eval.retrieval_only([tmp_path / "m"], views, stride=1, pose_threshold=50.0)
    assert list(table["model"]) == [mcss_eval.RAW_2D, "m"]
    raw = mcss_eval.retrieval_rates(views, [mcss_eval.raw_2d_features(views, r) for r in range(9)], 1, 50.0)
    assert table.iloc[0][["hit_instant", "hit_pose"]].tolist() == [raw["instant"], raw["pose"]]
    assert table["hit_instant"].between(0, 100).all() and table["hit_pose"].between(0, 100).all()


# ----------------------------------------------------------------------------- experiment metrics


def toy_views(takes=3, frames=30, cameras=3) -> mcss_eval.TestViews:
    cams = rig(cameras)
    views = mcss_eval.TestViews("h36m_17", [], [], [], np.zeros(takes * cameras, np.int64),
                                np.zeros(takes * cameras, np.int64), [], [])
    rng = np.random.default_rng(0)
    for t, world in enumerate(make_sequences(takes, frames, 9)):
        views.canonical.append(canonical.canonicalize(world, H36M))
        for c, camera in enumerate(cams):
            r = t * cameras + c
            views.take[r], views.camera[r] = t, c
            views.keypoints.append(coco_keypoints(world, camera, rng))
            views.image_size.append((1000, 1000))
            views.up.append(camera.R @ np.array([0.0, 0.0, 1.0]))
            views.action.append("walk")
            views.lens.append((camera.intrinsics, camera.distortion, camera.distortion_model))
    return views


def test_retrieval_with_a_perfectly_view_invariant_embedding_is_100_percent():
    views = toy_views()
    invariant = [views.gt(r).reshape(len(views.gt(r)), -1) for r in range(len(views.take))]
    rates = mcss_eval.retrieval_rates(views, invariant, stride=1, pose_threshold=1.0)
    assert rates == {"instant": 100.0, "pose": 100.0}
    # the same poses seen in each camera's frame are view-dependent: far from 100 %
    cams, world = rig(3), make_sequences(3, 30, 9)
    in_camera = [cams[views.camera[r]].world_to_camera(world[views.take[r]]) for r in range(9)]
    dependent = [(pose - pose[:, :1]).reshape(30, -1) for pose in in_camera]  # root-relative, camera frame
    assert mcss_eval.retrieval_rates(views, dependent, stride=1, pose_threshold=1.0)["instant"] < 50.0
    raw = [mcss_eval.raw_2d_features(views, r) for r in range(9)]
    assert raw[0].shape == (30, 34)
    assert mcss_eval.retrieval_rates(views, raw, stride=1, pose_threshold=1.0)["instant"] < 100.0


def test_distance_matrix_of_an_invariant_embedding_has_its_minimum_on_the_diagonal():
    views = toy_views(takes=4)
    invariant = [views.gt(r).reshape(30, -1) for r in range(len(views.take))]
    m = mcss_eval.distance_matrix(views, invariant, poses=4)
    assert m.shape == (4, 4)
    np.testing.assert_allclose(np.diag(m), 0.0, atol=1e-5)
    assert mcss_eval._diagonal_hits(m) == 100.0
    np.testing.assert_allclose(m.mean(axis=1), 1.0)


def test_config_section_names_the_objective_settings():
    """The workflow's `multiview` keys are MultiviewSettings' (flip follows train.flip_augment)."""
    import dataclasses
    from pathlib import Path

    import yaml

    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    keys = set(schema["properties"]["multiview"]["properties"]) - {"enabled", "datasets", "experiment"}
    assert keys == {f.name for f in dataclasses.fields(multiview.MultiviewSettings)} - {"flip"}
    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())["multiview"]
    defaults = multiview.MultiviewSettings()
    assert all(config[k] == getattr(defaults, k) for k in keys)
