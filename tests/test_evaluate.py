"""posebridge.evaluation.evaluate on a hand-made dataset with a stub lifter whose errors are known."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest

from posebridge.geometry import skeletons
from posebridge.geometry.cameras import Camera
from posebridge.data.detections import read_detections, write_detections
from posebridge.errors import ConfigError, DataError
from posebridge.evaluation.evaluate import (
    BASELINE_MODEL,
    COLUMNS,
    EvalConfig,
    evaluate,
    example_positions,
    read_examples,
)
from posebridge.data.store import open_dataset, write_dataset

OFFSET = np.array([30.0, 40.0, 0.0])  # added to every non-root joint: a 50 mm error
MODEL_FORMATS = ["h36m_17", "smpl_24", "mpi_inf_3dhp_17"]  # the tiny dataset lacks 3dhp ground truth
# (sequence, subject, action, split, frames)
TAKES = [("s1_walk", "S1", "walk", "train", 12), ("s9_walk", "S9", "walk", "test", 20),
         ("s9_sit", "S9", "sit", "test", 14), ("s11_walk", "S11", "walk", "test", 30)]
NAN_FRAMES = 5  # frames of s9_walk whose right wrist is missing


def _cameras():
    intr = [(1100.0, 1090.0, 500.0, 490.0), (900.0, 900.0, 640.0, 360.0)]
    sizes = [(1000, 1000), (1280, 720)]
    return [Camera.look_at(f"c{k}", position=pos, target=(0, 0, 900), intrinsics=intr[k],
                           distortion=(0.01, 0, 0, 0, 0), image_size=sizes[k])
            for k, pos in enumerate([(4000.0, 500.0, 1500.0), (-1000.0, -3500.0, 1200.0)])]


def _write_tiny(tmp, role="labeled"):
    """A dataset stored as h36m_32 with extra smpl_24 + coco_17, and 'detections' that encode
    (row, frame) in x/y so the stub lifter can look the ground truth up."""
    rng = np.random.default_rng(0)
    frames = sum(t[4] for t in TAKES)
    body = rng.normal(0, 250, (frames, 32, 3)) + np.array([0, 0, 900])
    body[:, 0] = rng.normal(0, 30, (frames, 3)) + np.array([0, 0, 900])  # pelvis near the middle
    extra = {"smpl_24": rng.normal(0, 250, (frames, 24, 3)) + np.array([0, 0, 900]),
             "coco_17": rng.normal(0, 250, (frames, 17, 3)) + np.array([0, 0, 900])}
    wrist = skeletons.mapping("h36m_32", "h36m_17")[skeletons.get("h36m_17").index("rwrist")]
    start_walk = TAKES[0][4]
    body[start_walk:start_walk + NAN_FRAMES, wrist] = np.nan
    rows, start = [], 0
    for seq, subject, action, split, n in TAKES:
        for c in range(2):
            rows.append(dict(sequence=seq, subject=subject, action=action, split=split, camera=f"c{c}",
                             camera_index=c, start=start, frames=n, fps=50.0, role=role, group=seq))
        start += n
    index = pd.DataFrame(rows)
    h5 = tmp / f"tiny_{role}.h5"
    write_dataset(h5, name=f"tiny_{role}", skeleton="h36m_32", role=role, joints_3d=body,
                  cameras=_cameras(), index=index, extra=extra)
    keypoints = np.concatenate([np.stack([np.broadcast_to(np.arange(r.frames)[:, None], (r.frames, 17)),
                                          np.full((r.frames, 17), i), np.ones((r.frames, 17))], axis=-1)
                                for i, r in enumerate(index.itertuples())]).astype(np.float32)
    det = tmp / f"tiny_{role}_det.h5"
    write_detections(det, dataset=f"tiny_{role}", detector="stub", keypoint_format="coco_17",
                     rows=index[["sequence", "camera", "frames"]], keypoints=keypoints)
    return h5, det


def reference_truth(h5) -> list[dict[str, np.ndarray]]:
    """Per index row: root-relative camera-space ground truth per format, computed independently."""
    ds = open_dataset(h5)
    out = []
    for _, row in ds.index.iterrows():
        cam = ds.cameras[row["camera_index"]]
        raw = ds.sequence_3d(row["sequence"]).astype(np.float64)
        worlds = {"h36m_17": raw[:, [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]],
                  "smpl_24": ds.sequence_extra("smpl_24", row["sequence"]).astype(np.float64)}
        per = {}
        for fmt, world in worlds.items():
            x = np.einsum("ij,tkj->tki", cam.R, world) + cam.t
            per[fmt] = x - x[:, skeletons.get(fmt).root][:, None]
        out.append(per)
    ds.close()
    return out


class StubModel:
    """LiftingModel-like: predicts the reference ground truth, changed in a known way."""

    def __init__(self, truth, mode="offset"):
        self.name = "stub"
        self.formats = MODEL_FORMATS
        self.truth = truth
        self.mode = mode
        # the mean pose: all joints at the root, so the baseline error is each joint's distance to it
        self.mean_pose = {f: np.zeros((skeletons.get(f).num_joints, 3)) for f in MODEL_FORMATS}
        self.calls = []

    def lift(self, model, keypoints, width, height, flip=True, intrinsics=None, distortion=None,
             distortion_model=None):
        assert model is self and keypoints.shape[1:] == (17, 3)
        assert distortion_model == "opencv"  # the dataset's cameras' model reaches the model
        self.calls.append(dict(frames=len(keypoints), width=width, height=height, flip=flip,
                               intrinsics=np.asarray(intrinsics)))
        t = keypoints[:, 0, 0].astype(int)
        truth = self.truth[int(keypoints[0, 0, 1])]
        out = {}
        for fmt in self.formats:
            j = skeletons.get(fmt).num_joints
            if fmt not in truth:
                out[fmt] = np.zeros((len(t), j, 3))
                continue
            gt = np.nan_to_num(truth[fmt][t])
            if self.mode == "offset":
                pred = gt + OFFSET
                pred[:, skeletons.get(fmt).root] -= OFFSET
            else:  # a scaled copy
                pred = 1.2 * gt
            out[fmt] = pred + np.array([100.0, -200.0, 4000.0])  # an absolute position to be removed
        return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    h5, det = _write_tiny(tmp)
    return h5, det, reference_truth(h5)


def _run(h5, det, model, **config):
    with open_dataset(h5) as ds, read_detections(det) as dets:
        return evaluate(model, ds, dets, EvalConfig(**config), lift=model.lift, progress=False)


def test_metrics_equal_the_known_offset(tiny):
    h5, det, truth = tiny
    model = StubModel(truth)
    table = _run(h5, det, model).table
    assert list(table.columns) == list(COLUMNS)
    lifter = table[table["model"] == "stub"].set_index(["format", "sequence", "camera"])
    assert set(lifter.index.get_level_values("format")) == {"h36m_17", "smpl_24"}  # no 3dhp truth
    for fmt, joints in (("h36m_17", 17), ("smpl_24", 24)):
        for seq, _, _, split, n in TAKES:
            if split != "test":
                continue
            r = lifter.loc[(fmt, seq, "c0")]
            missing = NAN_FRAMES if (fmt == "h36m_17" and seq == "s9_walk") else 0
            # (joints - 1) of every valid joint are 50 mm off, the root is exact
            expect = 50.0 * ((joints - 1) * n - missing) / (joints * n - missing)
            assert r["mpjpe"] == pytest.approx(expect, rel=1e-6)
            assert r["mpjve"] == pytest.approx(0.0, abs=1e-6)  # a constant offset has no velocity error
            assert r["pck"] == pytest.approx(100.0) and r["cps"] == pytest.approx(100.0)
            auc = (((joints - 1) * n - missing) * (1 - 50 / 150) + n) / (joints * n - missing) * 100
            assert r["auc"] == pytest.approx(auc, rel=1e-6)
            assert r["pa_mpjpe"] <= r["mpjpe"] + 1e-9 and r["n_mpjpe"] <= r["mpjpe"] + 1e-9
            assert r["frames"] == n
    assert (table["pck_threshold"] == 150).all() and (table["cps_threshold"] == 200).all()
    # the stub saw the camera's intrinsics and image size, and flip on by default
    assert {c["flip"] for c in model.calls} == {True}
    assert {(c["width"], c["height"]) for c in model.calls} == {(1000, 1000), (1280, 720)}
    assert any(np.allclose(c["intrinsics"], (900, 900, 640, 360)) for c in model.calls)


def test_alignment_metrics_forgive_scale(tiny):
    h5, det, truth = tiny
    table = _run(h5, det, StubModel(truth, mode="scale")).table
    lifter = table[table["model"] == "stub"]
    assert np.allclose(lifter["n_mpjpe"], 0, atol=1e-6)
    assert np.allclose(lifter["pa_mpjpe"], 0, atol=1e-6)
    # without alignment the error is 20 % of each joint's distance to the root
    r = lifter[(lifter["format"] == "smpl_24") & (lifter["sequence"] == "s11_walk") & (lifter["camera"] == "c1")]
    gt = truth[7]["smpl_24"]  # index row 7: s11_walk, camera c1
    assert r["mpjpe"].item() == pytest.approx(0.2 * np.linalg.norm(gt, axis=-1).mean(), rel=1e-6)


def test_baseline_rows_and_native_flag(tiny):
    h5, det, truth = tiny
    table = _run(h5, det, StubModel(truth)).table
    assert len(table) == 6 * 2 * 2  # 6 test rows x 2 formats x (lifter + baseline)
    base = table[table["model"] == BASELINE_MODEL]
    assert len(base) == 12 and (base["source_model"] == "stub").all()
    native = table.groupby("format")["native"].unique()
    assert native["h36m_17"].tolist() == [True] and native["smpl_24"].tolist() == [False]
    # the mean pose has every joint at the root: its error is each joint's distance from the root
    r = base[(base["format"] == "h36m_17") & (base["sequence"] == "s9_walk") & (base["camera"] == "c0")]
    gt = truth[2]["h36m_17"]  # index row 2: s9_walk, camera c0
    assert r["mpjpe"].item() == pytest.approx(np.nanmean(np.linalg.norm(gt, axis=-1)), rel=1e-6)
    lifter_mpjpe = table[table["model"] == "stub"]["mpjpe"].mean()
    assert base["mpjpe"].mean() > 5 * lifter_mpjpe
    assert set(table["subject"]) == {"S9", "S11"} and set(table["action"]) == {"walk", "sit"}


def test_frame_limit_flip_and_examples(tiny):
    h5, det, truth = tiny
    model = StubModel(truth)
    result = _run(h5, det, model, max_frames_per_sequence=10, flip_test=False, example_frames=3,
                  cps_threshold=40.0)
    assert (result.table["frames"] == 10).all()
    assert {c["frames"] for c in model.calls} == {10} and {c["flip"] for c in model.calls} == {False}
    assert (result.table[result.table["model"] == "stub"]["cps"] == 0).all()  # 50 mm > 40 mm
    ex = result.examples
    assert ex["pred_h36m_17"].shape == (3, 17, 3) and ex["gt_smpl_24"].shape == (3, 24, 3)
    assert ex["keypoints"].shape == (3, 17, 3) and ex["image_size"].shape == (3, 2)
    assert list(ex["formats"]) == ["h36m_17", "smpl_24"] and list(ex["native_formats"]) == ["h36m_17"]
    # evenly spaced over 6 rows x 10 frames: first frame of the first row, last of the last
    assert (ex["sequence"][0], ex["camera"][0], ex["frame"][0]) == ("s9_walk", "c0", 0)
    assert (ex["sequence"][-1], ex["camera"][-1], ex["frame"][-1]) == ("s11_walk", "c1", 9)
    gt = truth[7]["smpl_24"][9]
    assert np.allclose(ex["gt_smpl_24"][-1], gt, atol=1e-3)
    diff = ex["pred_smpl_24"][-1] - ex["gt_smpl_24"][-1]
    assert np.allclose(np.delete(diff, 0, axis=0), OFFSET, atol=1e-3) and np.allclose(diff[0], 0, atol=1e-3)


def test_example_positions_are_even():
    assert example_positions([6, 3], 4) == [(0, 0), (0, 3), (0, 5), (1, 2)]
    assert example_positions([3], 10) == [(0, 0), (0, 1), (0, 2)]
    assert example_positions([4, 4], 0) == []


def test_test_role_uses_every_row(tmp_path, tiny):
    truth = tiny[2]
    h5, det = _write_tiny(tmp_path, role="test")
    table = _run(h5, det, StubModel(truth)).table
    assert set(table["sequence"]) == {t[0] for t in TAKES}  # the 'train' split too


def test_errors(tiny, tmp_path):
    h5, det, truth = tiny
    model = StubModel(truth)
    model.formats = ["mpi_inf_3dhp_17"]
    with pytest.raises(DataError, match="none of which"):
        _run(h5, det, model)
    short = tmp_path / "short.h5"
    with open_dataset(h5) as ds:
        rows = ds.index[["sequence", "camera", "frames"]].assign(frames=ds.index["frames"] - 1)
    write_detections(short, dataset="tiny_labeled", detector="stub", keypoint_format="coco_17", rows=rows,
                     keypoints=np.ones((int(rows["frames"].sum()), 17, 3), np.float32))
    with open_dataset(h5) as ds, read_detections(short) as dets, pytest.raises(DataError, match="short.h5"):
        evaluate(StubModel(truth), ds, dets, EvalConfig(), lift=StubModel(truth).lift, progress=False,
                 detections_path=short)


def test_config():
    assert EvalConfig.parse('{"pck_threshold": 100, "max_frames_per_sequence": 50}').pck_threshold == 100
    assert EvalConfig.parse(None) == EvalConfig()
    with pytest.raises(ConfigError, match="valid keys: flip_test"):
        EvalConfig.from_dict({"pck": 150})
    with pytest.raises(ConfigError, match="max_frames_per_sequence"):
        EvalConfig.from_dict({"max_frames_per_sequence": 0})
    with pytest.raises(ConfigError, match="cps_threshold"):
        EvalConfig.from_dict({"cps_threshold": -1})
    with pytest.raises(ConfigError, match="not valid JSON"):
        EvalConfig.parse("{flip_test: yes}")


def test_command_writes_table_and_examples(tiny, tmp_path, monkeypatch):
    from posebridge import cli

    h5, det, truth = tiny
    model = StubModel(truth)
    fake = types.ModuleType("posebridge.inference.lift")
    fake.load_model = lambda path, device="auto": model
    fake.lift = model.lift
    monkeypatch.setitem(sys.modules, "posebridge.inference.lift", fake)
    out = tmp_path / "eval" / "stub" / "tiny.parquet"
    code = cli.main(["evaluate", "--model", "m", "--dataset", str(h5), "--detections", str(det),
                     "--spec", '{"example_frames": 2, "auc_threshold": 100}', "--output", str(out),
                     "--no-progress"])
    assert code == 0
    table = pd.read_parquet(out)
    assert len(table) == 24 and (table["auc_threshold"] == 100).all()
    examples = read_examples(out.with_suffix(".examples.npz"))
    assert examples["pred_h36m_17"].shape == (2, 17, 3) and str(examples["model"]) == "stub"
    assert not list(out.parent.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_breakdown_per_activity_and_occlusion(tmp_path):
    """Frames labelled with 3DHP activities and joints with MuPoTS-style occlusion flags give the
    per-activity and occluded / visible scores (the stub's error is 50 mm on every non-root joint)."""
    from posebridge.evaluation.breakdown import BREAKDOWN_COLUMNS, summary_lines

    h5, det = _write_tiny(tmp_path)
    with open_dataset(h5) as ds:
        body, index, cameras = ds.joints_3d_all(), ds.index, ds.cameras
        extra = {f: ds.sequence_extra(f, s)[:0] for f in ds.extra_formats for s in ds.sequences[:1]}
        extra = {f: np.concatenate([ds.sequence_extra(f, s) for s in ds.sequences]) for f in extra}
    frames = len(body)
    activity = np.full(frames, -1, np.int16)
    occluded = np.zeros((frames, 32), np.int8)
    occluded[:, 1::2] = 1  # every odd h36m_32 joint occluded (the root, joint 0, is visible)
    for seq, _, _, _, n in TAKES:
        start = int(index.loc[index["sequence"] == seq, "start"].iloc[0])
        if seq != "s9_sit":  # s9_sit is unlabelled
            activity[start:start + n // 2], activity[start + n // 2:start + n] = 1, 4
    write_dataset(h5, name="tiny_labeled", skeleton="h36m_32", role="labeled", joints_3d=body,
                  cameras=cameras, index=index, extra=extra, annotations={"activity": activity, "occluded": occluded})
    result = _run(h5, det, StubModel(reference_truth(h5)))
    table = result.breakdown
    assert list(table.columns) == list(BREAKDOWN_COLUMNS)
    stub = table[(table["model"] == "stub") & (table["format"] == "h36m_17")].set_index(
        ["sequence", "camera", "breakdown", "group"])
    assert {k[3] for k in stub.index if k[:3] == ("s11_walk", "c0", "activity")} == {"Stand/Walk", "Reach/Crouch"}
    assert ("s9_sit", "c0", "activity", "Stand/Walk") not in stub.index
    r = stub.loc[("s11_walk", "c0", "activity", "Stand/Walk")]
    assert r["frames"] == 15 and r["mpjpe"] == pytest.approx(50.0 * 16 / 17)
    visible = ~occluded[0, skeletons.mapping("h36m_32", "h36m_17")].astype(bool)
    r = stub.loc[("s11_walk", "c1", "occlusion", "occluded")]
    assert r["joints"] == 30 * (~visible).sum() and r["mpjpe"] == pytest.approx(50.0)
    r = stub.loc[("s11_walk", "c1", "occlusion", "visible")]
    assert r["mpjpe"] == pytest.approx(50.0 * (visible.sum() - 1) / visible.sum())
    assert r["pck"] == pytest.approx(100.0) and r["pa_mpjpe"] <= r["mpjpe"] + 1e-9
    # the baseline is broken down alike; a line per model and breakdown sums it up
    assert set(table["model"]) == {"stub", BASELINE_MODEL}
    lines = summary_lines(table[table["format"] == "h36m_17"])
    assert lines[0].startswith("stub h36m_17 MPJPE by activity (mm): Stand/Walk ") and "Reach/Crouch" in lines[0]
    assert any(line.startswith("stub h36m_17 MPJPE by occlusion (mm): occluded 50.0, visible") for line in lines)
    # without labels there is no breakdown
    (tmp_path / "plain").mkdir()
    plain = _write_tiny(tmp_path / "plain")
    assert _run(*plain, StubModel(reference_truth(plain[0]))).breakdown.empty
