import h5py
import numpy as np
import pandas as pd
import pytest

from posebridge.data import store
from posebridge.geometry.cameras import Camera
from posebridge.errors import ConfigError, DataError


def _rotation_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _cameras():
    return [
        Camera(name="cam0", intrinsics=[1145.0494, 1143.7811, 512.5415, 515.4515],
               distortion=[-0.2070986, 0.2477752, -0.0030751, -0.0009757, -0.0014245],
               R=np.eye(3), t=[10.0, -20.0, 5000.0], image_size=(1000, 1002)),
        Camera(name="cam1", intrinsics=[1000.0, 1001.0, 320.5, 240.25], distortion=np.zeros(5),
               R=_rotation_z(0.3), t=[0.0, 0.0, 4000.0], image_size=(640, 480)),
    ]


def _index():
    # two takes: walk (frames 0..6, both cameras), sit (frames 7..10, cam1 only)
    return pd.DataFrame({
        "sequence": ["S1/walk", "S1/walk", "S9/sit"],
        "subject": ["S1", "S1", "S9"],
        "action": ["walk", "walk", "sit"],
        "split": ["train", "train", "test"],
        "camera": ["cam0", "cam1", "cam1"],
        "camera_index": np.array([0, 1, 1], dtype=np.int64),
        "start": np.array([0, 0, 7], dtype=np.int64),
        "frames": np.array([7, 7, 4], dtype=np.int64),
        "fps": [50.0, 50.0, 50.0],
        "role": ["labeled"] * 3,
        "group": ["S1/walk", "S1/walk", "S9/sit"],
    })


def _sample(seed=0):
    rng = np.random.default_rng(seed)
    joints = (rng.normal(size=(11, 17, 3)) * 300).astype(np.float32)
    joints[2, 5] = np.nan
    joints[8, :, :] = np.nan
    extra = {"coco_17": (rng.normal(size=(11, 17, 3)) * 300).astype(np.float32),
             "smpl_24": (rng.normal(size=(11, 24, 3)) * 300).astype(np.float32)}
    return dict(name="tiny", skeleton="h36m_17", role="labeled", joints_3d=joints,
                cameras=_cameras(), index=_index(), extra=extra)


@pytest.fixture
def written(tmp_path):
    sample = _sample()
    path = tmp_path / "tiny.h5"
    store.write_dataset(path, **sample)
    return path, sample


def test_round_trip_is_bit_exact(written):
    path, sample = written
    assert path.with_suffix(".parquet").is_file()
    with store.open_dataset(path) as ds:
        assert (ds.name, ds.skeleton.name, ds.role, ds.num_frames) == ("tiny", "h36m_17", "labeled", 11)
        np.testing.assert_array_equal(ds.joints_3d_all(), sample["joints_3d"])  # NaN == NaN here
        assert ds.joints_3d_all().dtype == np.float32
        assert ds.cameras == sample["cameras"]
        pd.testing.assert_frame_equal(ds.index, sample["index"], check_dtype=False)
        assert ds.index["camera_index"].dtype == np.int64 and ds.index["fps"].dtype == np.float64
        assert ds.extra_formats == ["coco_17", "smpl_24"]
        for fmt, array in sample["extra"].items():
            np.testing.assert_array_equal(ds.sequence_extra(fmt, "S9/sit"), array[7:11])


def test_sequence_reads_only_its_slice(written):
    path, sample = written
    ds = store.open_dataset(path)  # usable without `with`
    np.testing.assert_array_equal(ds.sequence_3d("S1/walk"), sample["joints_3d"][0:7])
    np.testing.assert_array_equal(ds.sequence_3d("S9/sit"), sample["joints_3d"][7:11])

    requested = []

    class Recorder:
        def __init__(self, node):
            self.node = node

        def __getitem__(self, key):
            requested.append(key)
            return self.node[key]

    real = ds._h5()
    ds._h5 = lambda: {"joints_3d": Recorder(real["joints_3d"])}
    ds.sequence_3d("S9/sit")
    assert requested == [slice(7, 11)]
    ds.close()
    with pytest.raises(DataError, match="no sequence 'S2/run'"):
        store.open_dataset(path).sequence_3d("S2/run")


def test_rows_and_cameras(written):
    path, sample = written
    with store.open_dataset(path) as ds:
        assert list(ds.rows("test")["sequence"]) == ["S9/sit"]
        assert len(ds.rows()) == 3
        with pytest.raises(ConfigError):
            ds.rows("validation")
        assert ds.camera_for(ds.index.iloc[1]) == sample["cameras"][1]
        assert ds.camera_for(2).name == "cam1"
        assert ds.sequences == ["S1/walk", "S9/sit"]
        with pytest.raises(DataError, match="mpi_inf_3dhp_17"):
            ds.sequence_extra("mpi_inf_3dhp_17", "S1/walk")


def test_custom_index_path_and_chunking(tmp_path):
    sample = _sample()
    path, index_path = tmp_path / "a.h5", tmp_path / "elsewhere" / "a_index.parquet"
    store.write_dataset(path, index_path=index_path, **sample)
    assert index_path.is_file() and not path.with_suffix(".parquet").exists()
    with store.open_dataset(path, index_path) as ds:
        assert len(ds.index) == 3
    with h5py.File(path) as f:
        assert f["joints_3d"].chunks[0] == 11  # chunked along time (capped at the frame count)


# ---------------------------------------------------------------------------------------------
# Validation on write: raise, write nothing, keep what was there

def _set(key, value):
    def change(sample):
        sample[key] = value
    return change


def _index_change(fn):
    def change(sample):
        sample["index"] = fn(sample["index"])
    return change


def _joints_change(fn):
    def change(sample):
        sample["joints_3d"] = fn(sample["joints_3d"])
    return change


BAD_WRITES = {
    "unknown skeleton": (_set("skeleton", "h36m_99"), "h36m_99"),
    "joint count": (_set("skeleton", "smpl_24"), "17 joints"),
    "role": (_set("role", "pretraining"), "role"),
    "inf joints": (_joints_change(lambda j: np.where(np.arange(3) == 1, np.inf, j)), "inf"),
    "all missing": (_joints_change(lambda j: np.full_like(j, np.nan)), "entirely missing"),
    "missing column": (_index_change(lambda i: i.drop(columns="group")), "group"),
    "float frames": (_index_change(lambda i: i.assign(frames=i["frames"].astype(float))), "frames"),
    "out of range": (_index_change(lambda i: i.assign(frames=[7, 7, 5])), "out of range"),
    "camera index": (_index_change(lambda i: i.assign(camera_index=[0, 1, 2])), "camera_index"),
    "camera name": (_index_change(lambda i: i.assign(camera=["cam0", "cam0", "cam1"])), "camera"),
    "split": (_index_change(lambda i: i.assign(split=["train", "train", "val"])), "split"),
    "row role": (_index_change(lambda i: i.assign(role=["labeled", "labeled", "x"])), "role"),
    "inconsistent take": (_index_change(lambda i: i.assign(start=[0, 1, 7])), "start.*differs"),
    "overlap": (_index_change(lambda i: i.assign(start=[0, 0, 6], frames=[7, 7, 4])), "overlaps"),
    "extra joints": (lambda s: s["extra"].update(smpl_24=s["extra"]["coco_17"]), "extra/smpl_24"),
    "extra frames": (lambda s: s["extra"].update(coco_17=s["extra"]["coco_17"][:5]), "frames"),
    "no cameras": (_set("cameras", []), "camera"),
}


@pytest.mark.parametrize("case", list(BAD_WRITES))
def test_invalid_write_raises_and_writes_nothing(tmp_path, case):
    change, problem = BAD_WRITES[case]
    sample = _sample()
    change(sample)
    path = tmp_path / "tiny.h5"
    with pytest.raises(DataError, match=problem) as err:
        store.write_dataset(path, **sample)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_invalid_write_does_not_clobber(written):
    path, _ = written
    before = path.read_bytes(), path.with_suffix(".parquet").read_bytes()
    sample = _sample(seed=1)
    sample["index"] = sample["index"].assign(frames=[7, 7, 9])
    with pytest.raises(DataError):
        store.write_dataset(path, **sample)
    assert (path.read_bytes(), path.with_suffix(".parquet").read_bytes()) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.h5", "tiny.parquet"]


# ---------------------------------------------------------------------------------------------
# Validation on open: one-line DataError naming the file and the problem

def _expect_error(path, problem, named=None):
    with pytest.raises(DataError, match=problem) as err:
        store.open_dataset(path)
    message = str(err.value)
    assert str(named or path) in message and "\n" not in message
    return message


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "absent.h5", "no such")


def test_truncated_file(written, tmp_path):
    path, _ = written
    data = path.read_bytes()
    for size in (len(data) // 2, 100, 0):
        copy = tmp_path / f"cut{size}.h5"
        copy.write_bytes(data[:size])
        copy.with_suffix(".parquet").write_bytes(path.with_suffix(".parquet").read_bytes())
        _expect_error(copy, "HDF5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("hello\n" * 100)
    _expect_error(path, "HDF5")


def _edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)


@pytest.mark.parametrize("edit, problem", [
    (lambda f: f.__delitem__("joints_3d"), "missing field 'joints_3d'"),
    (lambda f: f.__delitem__("cameras/R"), "missing field 'cameras/R'"),
    (lambda f: f.attrs.__delitem__("role"), "missing attribute 'role'"),
    (lambda f: f.attrs.__setitem__("skeleton", "h36m_99"), "unknown skeleton format 'h36m_99'"),
    (lambda f: f.attrs.__setitem__("format_version", 2), "format_version 2"),
    (lambda f: f.attrs.__setitem__("role", "eval"), "role"),
    (lambda f: (f.__delitem__("joints_3d"), f.create_dataset("joints_3d", data=np.zeros((11, 16, 3), np.float32))),
     "16 joints"),
    (lambda f: (f.__delitem__("joints_3d"), f.create_dataset("joints_3d", data=np.zeros((11, 17, 3)))),
     "float64"),
    (lambda f: (f.__delitem__("extra/coco_17"), f.create_dataset("extra/coco_17", data=np.zeros((10, 17, 3), np.float32))),
     "extra/coco_17 has 10 frames"),
    (lambda f: f["cameras/t"].__setitem__((1, 2), np.nan), "NaN"),
    (lambda f: (f.__delitem__("cameras/t"), f.create_dataset("cameras/t", data=np.zeros((3, 3)))), "cameras/t"),
    (lambda f: f["cameras/R"].__setitem__(0, np.diag([1.0, 1.0, -1.0])), "rotation"),
    (lambda f: f["cameras/distortion_model"].__setitem__(1, "fisheye"), "distortion_model 'fisheye'"),
])
def test_corrupt_fields(written, edit, problem):
    path, _ = written
    _edit(path, edit)
    _expect_error(path, problem)


def test_index_problems(written):
    path, sample = written
    index_path = path.with_suffix(".parquet")
    good = index_path.read_bytes()

    index_path.unlink()
    assert "missing" in _expect_error(path, "index", named=index_path)

    index_path.write_bytes(good[: len(good) // 2])
    _expect_error(path, "Parquet", named=index_path)

    sample["index"].drop(columns="fps").to_parquet(index_path)
    _expect_error(path, "fps", named=index_path)

    sample["index"].assign(start=[0, 0, 8]).to_parquet(index_path)
    _expect_error(path, "out of range", named=index_path)

    sample["index"].assign(camera_index=[0, 1, 5]).to_parquet(index_path)
    _expect_error(path, "camera_index", named=index_path)



def test_inf_in_a_stored_file_fails_on_read_and_all_nan_is_unusable(written):
    """A file written by another tool, or damaged: inf is refused when read (naming the file and
    frame); a store whose joints are all NaN cannot supply 3D (training would learn from nothing)."""
    path, _ = written
    _edit(path, lambda f: f["joints_3d"].__setitem__((9, 3, 1), np.inf))
    with store.open_dataset(path) as ds, pytest.raises(DataError, match=r"tiny.h5: joints_3d holds inf \(frame 9\)"):
        ds.joints_3d_all()
    _edit(path, lambda f: f["joints_3d"].__setitem__(slice(None), np.nan))
    with store.open_dataset(path) as ds, pytest.raises(DataError, match="tiny.h5: joints_3d is entirely missing"):
        ds.joints_3d_all()


def test_footage_without_3d_is_written_when_declared_and_its_joints_cannot_be_read(tmp_path):
    """Real footage has no 3D (has_3d false): joints all NaN are written then, and reading them
    names the file; a declared 3D-less dataset holding values, or an undeclared all-NaN one, is refused."""
    sample = _sample()
    sample["joints_3d"] = np.full_like(sample["joints_3d"], np.nan)
    path = tmp_path / "footage.h5"
    with pytest.raises(DataError, match="entirely missing"):
        store.write_dataset(path, **sample)
    store.write_dataset(path, **sample, has_3d=False)
    with store.open_dataset(path) as ds:
        assert not ds.has_3d
        with pytest.raises(DataError, match="footage.h5: dataset 'tiny' has no 3D joints"):
            ds.sequence_3d(ds.sequences[0])
    with store.open_dataset(tmp_path / "footage.h5") as ds, pytest.raises(DataError, match="no 3D"):
        ds.joints_3d_all()
    with pytest.raises(DataError, match="has_3d false"):
        store.write_dataset(tmp_path / "other.h5", **_sample(), has_3d=False)
    store.write_dataset(tmp_path / "labelled.h5", **_sample())
    with store.open_dataset(tmp_path / "labelled.h5") as ds:
        assert ds.has_3d


def test_distortion_model_round_trip_and_older_stores_read_as_opencv(tmp_path):
    sample = _sample()
    sample["cameras"][0] = Camera(**{**vars(sample["cameras"][0]), "distortion_model": "h36m_videopose3d"})
    path = tmp_path / "models.h5"
    store.write_dataset(path, **sample)
    with store.open_dataset(path) as ds:
        assert [c.distortion_model for c in ds.cameras] == ["h36m_videopose3d", "opencv"]
    _edit(path, lambda f: f.__delitem__("cameras/distortion_model"))  # a store written before models
    with store.open_dataset(path) as ds:
        assert [c.distortion_model for c in ds.cameras] == ["opencv", "opencv"]
