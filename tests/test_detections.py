import h5py
import numpy as np
import pandas as pd
import pytest

from posebridge.data.detections import read_detections, write_detections
from posebridge.errors import DataError


def _sample(seed=0):
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({"sequence": ["S1/walk", "S1/walk", "S2/sit"],
                         "camera": ["cam0", "cam1", "cam0"],
                         "frames": [5, 5, 3]})
    keypoints = np.empty((13, 17, 3), dtype=np.float32)
    keypoints[..., :2] = rng.uniform(0, 1000, size=(13, 17, 2))
    keypoints[..., 2] = rng.uniform(0, 1, size=(13, 17))
    keypoints[0, 3] = [0.0, 0.0, 0.0]  # a missed joint
    return rows, keypoints


def _write(path, rows=None, keypoints=None, **kwargs):
    sample_rows, sample_keypoints = _sample()
    args = dict(dataset="synth_h36m", detector="simulated", keypoint_format="coco_17",
                rows=sample_rows if rows is None else rows,
                keypoints=sample_keypoints if keypoints is None else keypoints)
    args.update(kwargs)
    write_detections(path, **args)


def test_round_trip(tmp_path):
    rows, keypoints = _sample()
    path = tmp_path / "det.h5"
    _write(path, rows, keypoints)
    with read_detections(path) as det:
        assert (det.dataset, det.detector, det.keypoint_format) == ("synth_h36m", "simulated", "coco_17")
        assert list(det.rows["sequence"]) == list(rows["sequence"])
        assert list(det.rows["camera"]) == list(rows["camera"])
        assert list(det.rows["start"]) == [0, 5, 10]
        assert list(det.rows["frames"]) == [5, 5, 3]
        np.testing.assert_array_equal(det.get("S1/walk", "cam1"), keypoints[5:10])
        np.testing.assert_array_equal(det.get("S2/sit", "cam0"), keypoints[10:13])
        assert det.keypoints.dtype == np.float32
        np.testing.assert_array_equal(det.keypoints, keypoints)
        np.testing.assert_array_equal(det.get("S1/walk", "cam0"), keypoints[:5])  # from the loaded array
        with pytest.raises(DataError, match="S3"):
            det.get("S3", "cam0")


@pytest.mark.parametrize("change, problem", [
    (lambda r, k: (r, k[:-1]), "shape"),
    (lambda r, k: (r, k[:, :16]), "shape"),
    (lambda r, k: (r, np.where(np.arange(3) == 2, 1.5, k).astype(np.float32)), r"\[0, 1\]"),
    (lambda r, k: (r, np.where(np.arange(3) == 2, -0.1, k).astype(np.float32)), r"\[0, 1\]"),
    (lambda r, k: (r, np.where(np.arange(3) == 0, np.nan, k).astype(np.float32)), "NaN"),
    (lambda r, k: (r.assign(camera=["cam0", "cam0", "cam0"], sequence=["a", "a", "b"]), k), "duplicate"),
    (lambda r, k: (r.drop(columns="frames"), k), "frames"),
])
def test_invalid_writes_raise_and_leave_nothing(tmp_path, change, problem):
    rows, keypoints = _sample()
    rows, keypoints = change(rows, keypoints)
    path = tmp_path / "det.h5"
    with pytest.raises(DataError, match=problem) as err:
        _write(path, rows, keypoints)
    assert str(path) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_unknown_keypoint_format_is_rejected(tmp_path):
    with pytest.raises(DataError, match="coco_99"):
        _write(tmp_path / "det.h5", keypoint_format="coco_99")


def test_failed_write_keeps_existing_file(tmp_path):
    path = tmp_path / "det.h5"
    _write(path)
    before = path.read_bytes()
    rows, keypoints = _sample()
    keypoints[0, 0, 2] = 2.0
    with pytest.raises(DataError):
        _write(path, rows, keypoints)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["det.h5"]


def test_missing_truncated_and_broken_files(tmp_path):
    with pytest.raises(DataError, match="no such"):
        read_detections(tmp_path / "nope.h5")

    path = tmp_path / "det.h5"
    _write(path)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated.h5.*HDF5") as err:
        read_detections(truncated)
    assert "\n" not in str(err.value)

    with h5py.File(path, "a") as f:
        del f["row_frames"]
    with pytest.raises(DataError, match="row_frames"):
        read_detections(path)

    _write(path)
    with h5py.File(path, "a") as f:
        f["row_start"][1] = 4
    with pytest.raises(DataError, match="tile"):
        read_detections(path)

    _write(path)
    with h5py.File(path, "a") as f:
        f.attrs["keypoint_format"] = "h36m_32"
    with pytest.raises(DataError, match="shape"):
        read_detections(path)


def test_check_against_dataset(tmp_path):
    from posebridge.data import store
    from posebridge.geometry.cameras import Camera

    cams = [Camera(name=n, intrinsics=[1000.0, 1000.0, 500.0, 500.0], distortion=np.zeros(5), R=np.eye(3),
                   t=[0.0, 0.0, 4000.0], image_size=(1000, 1000)) for n in ("cam0", "cam1")]
    index = pd.DataFrame({"sequence": ["S1/walk", "S1/walk", "S2/sit"], "subject": ["S1", "S1", "S2"],
                          "action": ["walk", "walk", "sit"], "split": ["train", "train", "test"],
                          "camera": ["cam0", "cam1", "cam0"], "camera_index": [0, 1, 0], "start": [0, 0, 5],
                          "frames": [5, 5, 3], "fps": [50.0] * 3, "role": ["labeled"] * 3,
                          "group": ["S1/walk", "S1/walk", "S2/sit"]})
    store.write_dataset(tmp_path / "synth_h36m.h5", name="synth_h36m", skeleton="h36m_17", role="labeled",
                        joints_3d=np.zeros((8, 17, 3), np.float32), cameras=cams, index=index)
    _write(tmp_path / "det.h5")
    with store.open_dataset(tmp_path / "synth_h36m.h5") as ds:
        read_detections(tmp_path / "det.h5").check_against(ds)
        rows, keypoints = _sample()
        _write(tmp_path / "short.h5", rows.assign(frames=[5, 5, 2]), keypoints[:12])
        with pytest.raises(DataError, match="S2/sit.*3 frames, detections 2 frames"):
            read_detections(tmp_path / "short.h5").check_against(ds)
        _write(tmp_path / "other.h5", dataset="other")
        with pytest.raises(DataError, match="'other'"):
            read_detections(tmp_path / "other.h5").check_against(ds)


def _raw_detections(path, keypoints, tmp_path):
    """A valid detection file whose keypoints are then overwritten in place (another tool's file)."""
    import h5py

    rows = pd.DataFrame({"sequence": ["s"], "camera": ["c"], "frames": [len(keypoints)]})
    good = np.concatenate([np.full((len(keypoints), 17, 2), 10.0), np.ones((len(keypoints), 17, 1))], -1)
    write_detections(path, dataset="d", detector="x", keypoint_format="coco_17", rows=rows,
                     keypoints=good.astype(np.float32))
    with h5py.File(path, "r+") as f:
        f["keypoints"][...] = keypoints


@pytest.mark.parametrize("value, problem", [(np.nan, "keypoints hold NaN or inf"), (np.inf, "keypoints hold NaN or inf"),
                                            (7.0, r"confidences must lie in \[0, 1\] \(found 1 to 7\)")])
def test_reading_refuses_invalid_values(tmp_path, value, problem):
    path = tmp_path / "det.h5"
    keypoints = np.ones((4, 17, 3), np.float32)
    keypoints[2, 5, 2 if value == 7.0 else 0] = value
    _raw_detections(path, keypoints, tmp_path)
    with read_detections(path) as dets, pytest.raises(DataError, match=f"det.h5: {problem}"):
        dets.get("s", "c")


def test_entirely_missing_detections_are_not_written(tmp_path):
    rows = pd.DataFrame({"sequence": ["s"], "camera": ["c"], "frames": [3]})
    with pytest.raises(DataError, match="every confidence is 0"):
        write_detections(tmp_path / "none.h5", dataset="d", detector="x", keypoint_format="coco_17", rows=rows,
                         keypoints=np.zeros((3, 17, 3), np.float32))
    assert not (tmp_path / "none.h5").exists()


def test_others_round_trip_and_absent_others_read_as_none_found(tmp_path):
    rows, keypoints = _sample()
    others = np.zeros((13, 2, 17, 3), np.float32)
    others[5:10, 1] = keypoints[5:10] + np.float32(3.0) * (np.arange(3) < 2)  # a second person in cam1
    _write(tmp_path / "with.h5", rows, keypoints, others=others)
    _write(tmp_path / "without.h5", rows, keypoints)
    with read_detections(tmp_path / "with.h5") as det, read_detections(tmp_path / "without.h5") as plain:
        assert det.num_others == 2 and plain.num_others == 0
        np.testing.assert_array_equal(det.others("S1/walk", "cam1"), others[5:10])
        np.testing.assert_array_equal(det.get("S1/walk", "cam1"), keypoints[5:10])
        assert plain.others("S2/sit", "cam0").shape == (3, 0, 17, 3)


@pytest.mark.parametrize("others, problem", [
    (np.zeros((12, 1, 17, 3)), "others have shape"),
    (np.zeros((13, 17, 3)), "others have shape"),
    (np.full((13, 1, 17, 3), np.nan), "others: keypoints hold NaN"),
    (np.full((13, 1, 17, 3), 2.0), r"others: confidences must lie in \[0, 1\]"),
])
def test_invalid_others_raise_and_leave_nothing(tmp_path, others, problem):
    with pytest.raises(DataError, match=problem):
        _write(tmp_path / "det.h5", others=others)
    assert not list(tmp_path.iterdir())


def test_reading_refuses_others_of_the_wrong_shape(tmp_path):
    path = tmp_path / "det.h5"
    _write(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("others", data=np.zeros((13, 1, 16, 3), np.float32))
    with pytest.raises(DataError, match="others have shape"):
        read_detections(path)
