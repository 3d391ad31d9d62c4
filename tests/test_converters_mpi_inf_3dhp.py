"""MPI-INF-3DHP converter on files in the real layouts: training annot.mat (MATLAB v5, cell arrays)
+ camera.calibration (Skeletool text format), test annot_data.mat (MATLAB v7.3 = HDF5, and v5)."""

import h5py
import numpy as np
import pytest
import scipy.io

from posebridge.data.store import open_dataset
from posebridge.geometry import skeletons
from posebridge.geometry.cameras import Camera
from posebridge.sources.converters import convert, mpi_inf_3dhp, write_converted
from posebridge.sources.converters.common import Y_UP_TO_Z_UP
from posebridge.errors import DataError
from real_bodies import body_up_degrees, walking

ACTIVITY = np.array([1, 2, 2, 5, 7, 3])  # per test frame (frame 1 is invalid)

T_TRAIN, CAMERAS = 4, 14
TEST_K = {"TS1": (1497.9, 1498.4, 1024.3, 1050.7), "TS5": (1683.5, 1671.2, 939.9, 560.1)}


def _rig(seed):
    """14 cameras on a circle 4 m around the studio centre, looking at it (world Y up, as 3DHP's)."""
    rng = np.random.default_rng(seed)
    cams, offset = [], rng.uniform(0, 2 * np.pi)  # the rig is recalibrated per sequence
    for k in range(CAMERAS):
        angle = 2 * np.pi * k / CAMERAS + offset
        position = [4000 * np.cos(angle), 1000 + 800 * (k % 3), 4000 * np.sin(angle)]
        K = (1500 + rng.uniform(-5, 5), 1500 + rng.uniform(-5, 5), 1024 + rng.uniform(-20, 20),
             1024 + rng.uniform(-20, 20))
        cams.append(Camera.look_at(str(k), position, [0, 900, 0], K, None, (2048, 2048), up=(0, 1, 0)))
    return cams


def _calibration_text(cams):
    # the real file's layout and its 7 significant digits
    lines = ["Skeletool Camera Calibration File V1.0"]
    for cam in cams:
        fx, fy, cx, cy = cam.intrinsics
        K = [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0, 0, 0, 0, 1]
        E = [*cam.R[0], cam.t[0], *cam.R[1], cam.t[1], *cam.R[2], cam.t[2], 0, 0, 0, 1]
        lines += [f"name          {cam.name}", "  sensor      10 10", "  size        2048 2048",
                  "  animated    0", "  intrinsic   " + " ".join(f"{v:.7g}" for v in K) + " ",
                  "  extrinsic   " + " ".join(f"{v:.7g}" for v in E) + " ", "  radial      0"]
    return "\n".join(lines) + "\n"


def _universal(world):
    return world[:, 4:5] + 0.9 * (world - world[:, 4:5])


def _cells(arrays):
    cells = np.empty((len(arrays), 1), dtype=object)
    for k, a in enumerate(arrays):
        cells[k, 0] = a
    return cells


def _write_train(root):
    """Every S1-S8 / Seq1-Seq2 folder; returns {(subject, seq): (world joints, cameras)}."""
    truth = {}
    for s in range(1, 9):
        for q in (1, 2):
            # people walking in the studio's y-up world (the Z-up walk turned back)
            world = walking("mpi_inf_3dhp_28", T_TRAIN, seed=10 * s + q, radius=600.0) @ Y_UP_TO_Z_UP
            cams = _rig(10 * s + q)
            in_camera = [c.world_to_camera(world) for c in cams]
            # the universal skeleton: the same pose with rescaled bones, the pelvis (4) kept in place
            universal = [c.world_to_camera(_universal(world)) for c in cams]
            pixels = [c.project(world) for c in cams]
            folder = root / f"S{s}" / f"Seq{q}"
            folder.mkdir(parents=True)
            scipy.io.savemat(folder / "annot.mat", {
                "annot2": _cells([p.reshape(T_TRAIN, 56) for p in pixels]),
                "annot3": _cells([x.reshape(T_TRAIN, 84) for x in in_camera]),
                "univ_annot3": _cells([x.reshape(T_TRAIN, 84) for x in universal]),
                "cameras": np.arange(CAMERAS)[None], "frames": np.arange(T_TRAIN)[:, None]})
            (folder / "camera.calibration").write_text(_calibration_text(cams))
            truth[(f"S{s}", f"Seq{q}")] = world, cams, pixels
    return truth


def _write_v73(path, variables):
    """A MATLAB v7.3 file: HDF5 behind a 512-byte MATLAB header, arrays stored in reversed order."""
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            f.create_dataset(name, data=np.asarray(value, dtype=np.float64).T).attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as f:
        f.write(header.ljust(116) + b"\0" * 8 + b"\x00\x02IM")


def _test_sequence(name, frames=6):
    fx, fy, cx, cy = TEST_K.get(name, (1500.0, 1500.0, 1024.0, 1024.0))
    view = Camera.look_at(name, (500.0, -4500.0, 2200.0), (0.0, 0.0, 900.0), (fx, fy, cx, cy), None, (2048, 2048))
    in_camera = view.world_to_camera(walking("mpi_inf_3dhp_17", frames, seed=int(name[2:])))
    pixels = in_camera[..., :2] / in_camera[..., 2:] * [fx, fy] + [cx, cy]
    valid = np.ones(frames)
    valid[1] = 0
    # MATLAB shapes: 2 x 17 x 1 x T, 3 x 17 x 1 x T, 1 x T
    return in_camera, pixels, valid, {
        "annot2": pixels.transpose(2, 1, 0)[:, :, None, :],
        "annot3": in_camera.transpose(2, 1, 0)[:, :, None, :],
        "univ_annot3": 0.9 * in_camera.transpose(2, 1, 0)[:, :, None, :],
        "valid_frame": valid[None], "activity_annotation": ACTIVITY[None, :frames]}


def _write_test(root, v73=True):
    truth = {}
    for s in range(1, 7):
        name = f"TS{s}"
        folder = root / "mpi_inf_3dhp_test_set" / name
        folder.mkdir(parents=True)
        in_camera, pixels, valid, variables = _test_sequence(name)
        if v73:
            _write_v73(folder / "annot_data.mat", variables)
        else:
            scipy.io.savemat(folder / "annot_data.mat", variables)
        truth[name] = in_camera, pixels, valid
    return truth


@pytest.fixture(scope="module")
def train_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("3dhp")
    return root, _write_train(root)


def test_training_set_world_joints_cameras_and_2d(train_root):
    root, truth = train_root
    out = convert("mpi_inf_3dhp", root)
    assert out.skeleton == "mpi_inf_3dhp_28" and out.keypoint_format == "mpi_inf_3dhp_28"
    assert len(out.index) == 16 * CAMERAS and len(out.cameras) == 16 * CAMERAS
    cameras = {c.name: c for c in out.cameras}
    for (subject, seq), (world, cams, pixels) in truth.items():
        rows = out.index[out.index["sequence"] == f"{subject}/{seq}"]
        row = rows.iloc[0]
        assert (row["split"], row["fps"], row["frames"]) == ("train", mpi_inf_3dhp.TRAIN_FPS[(subject, seq)], T_TRAIN)
        # world joints recovered from the cameras (calibration written with 7 digits, like the real
        # file), turned from the studio's y-up world to Z-up with the cameras
        block = out.joints_3d[row["start"]:row["start"] + T_TRAIN]
        np.testing.assert_allclose(block, world @ Y_UP_TO_Z_UP.T, atol=0.5)
        assert body_up_degrees(block, "mpi_inf_3dhp_28") < 5.0
        cam = cameras[f"{subject}/{seq}/5"]
        np.testing.assert_allclose(cam.intrinsics, cams[5].intrinsics, rtol=1e-6)
        np.testing.assert_allclose(cam.R, cams[5].R @ Y_UP_TO_Z_UP.T, atol=1e-6)
        np.testing.assert_allclose(cam.t, cams[5].t, atol=1e-3)
        np.testing.assert_allclose(cam.project(block), pixels[5], atol=1e-2)
        assert cam.image_size == (2048, 2048) and not cam.distortion.any()
    first = 0
    for _, row in out.index.iterrows():  # 2D keypoints in index-row order: camera k's annot2
        world, cams, pixels = truth[tuple(row["sequence"].split("/"))]
        k = int(row["camera"].split("/")[-1])
        np.testing.assert_allclose(out.keypoints[first:first + row["frames"], :, :2], pixels[k], atol=1e-3)
        first += row["frames"]
    assert (out.keypoints[..., 2] == 1).all()


def test_universal_annotations_are_selected(train_root):
    root, truth = train_root
    out = convert("mpi_inf_3dhp", root, universal=True)
    world = truth[("S1", "Seq1")][0]
    np.testing.assert_allclose(out.joints_3d[:T_TRAIN], _universal(world) @ Y_UP_TO_Z_UP.T, atol=0.5)
    assert not np.allclose(out.joints_3d[:T_TRAIN], world @ Y_UP_TO_Z_UP.T, atol=1)


def test_test_set_v73_fits_intrinsics_and_masks_invalid_frames(tmp_path):
    truth = _write_test(tmp_path)
    out = convert("mpi_inf_3dhp", tmp_path, part="test")
    assert out.skeleton == "mpi_inf_3dhp_17" and len(out.index) == 6
    cameras = {c.name: c for c in out.cameras}
    for name, (in_camera, pixels, valid) in truth.items():
        row = out.index.set_index("sequence").loc[name]
        assert row["split"] == "test" and row["fps"] == mpi_inf_3dhp.TEST_FPS[name]
        block = out.joints_3d[row["start"]:row["start"] + row["frames"]]
        assert np.isnan(block[1]).all()
        cam = cameras[name]
        # levelled: Z up, and the camera sees exactly the annotated camera-frame joints
        assert body_up_degrees(block, "mpi_inf_3dhp_17") < 5.0
        np.testing.assert_allclose(cam.world_to_camera(block[valid == 1].astype(np.float64)), in_camera[valid == 1],
                                   rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(cam.intrinsics, TEST_K.get(name, (1500.0, 1500.0, 1024.0, 1024.0)), atol=1e-6)
        np.testing.assert_array_equal(cam.t, np.zeros(3))
        assert cam.image_size == ((1920, 1080) if name in ("TS5", "TS6") else (2048, 2048))
    assert (out.keypoints[1, :, 2] == 0).all() and (out.keypoints[0, :, 2] == 1).all()
    assert any("TS5: intrinsics fitted" in note and "up from the plane" in note for note in out.notes)
    # the activity labels are stored per frame (-1 on invalid frames)
    write_converted(out, tmp_path / "test.h5", name="3dhp", role="test")
    with open_dataset(tmp_path / "test.h5") as ds:
        assert ds.annotations == ["activity"]
        np.testing.assert_array_equal(ds.sequence_annotation("activity", "TS2"), np.where(valid == 1, ACTIVITY, -1))


def test_test_set_v5_matches_v73(tmp_path):
    _write_test(tmp_path / "a")
    _write_test(tmp_path / "b", v73=False)
    a, b = convert("mpi_inf_3dhp", tmp_path / "a", part="test"), convert("mpi_inf_3dhp", tmp_path / "b", part="test")
    np.testing.assert_array_equal(a.joints_3d, b.joints_3d)
    assert [c.intrinsics.tolist() for c in a.cameras] == [c.intrinsics.tolist() for c in b.cameras]


def test_all_parts_in_17_joints(train_root, tmp_path):
    root, truth = train_root
    test_root = tmp_path / "with_test"
    test_root.symlink_to(root, target_is_directory=True)
    _write_test(root / "extra")  # TS folders are found under mpi_inf_3dhp_test_set/ too
    (root / "mpi_inf_3dhp_test_set").symlink_to(root / "extra" / "mpi_inf_3dhp_test_set")
    out = convert("mpi_inf_3dhp", root, part="all")
    assert out.skeleton == "mpi_inf_3dhp_17" and out.keypoint_format == "mpi_inf_3dhp_17"
    assert set(out.index["split"]) == {"train", "test"}
    select = skeletons.mapping("mpi_inf_3dhp_28", "mpi_inf_3dhp_17")
    np.testing.assert_allclose(out.joints_3d[:T_TRAIN], truth[("S1", "Seq1")][0][:, select] @ Y_UP_TO_Z_UP.T,
                               atol=0.5)
    assert out.joints_3d[:T_TRAIN, 14, 2] == pytest.approx(truth[("S1", "Seq1")][0][:, 4, 1], abs=0.5)  # pelvis height


def test_missing_and_broken_files(train_root, tmp_path):
    with pytest.raises(DataError, match="place S1/Seq1/annot.mat, S1/Seq1/camera.calibration, .* under .*3dhp-dataset"):
        convert("mpi_inf_3dhp", tmp_path)
    with pytest.raises(DataError, match="place TS1/annot_data.mat, TS2/annot_data.mat, .* and 2 more like these under"):
        convert("mpi_inf_3dhp", tmp_path, part="test")
    _write_test(tmp_path)
    path = tmp_path / "mpi_inf_3dhp_test_set" / "TS3" / "annot_data.mat"
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataError, match="TS3/annot_data.mat: cannot read MATLAB file"):
        convert("mpi_inf_3dhp", tmp_path, part="test")
    _write_v73(path, {"annot3": np.zeros((3, 17, 1, 4)), "valid_frame": np.ones((1, 4))})
    with pytest.raises(DataError, match="annot_data.mat: lacks the variable"):
        convert("mpi_inf_3dhp", tmp_path, part="test")


def test_broken_training_files(train_root, tmp_path):
    root, _ = train_root
    copy = tmp_path / "copy"
    import shutil
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("extra", "mpi_inf_3dhp_test_set"))
    calibration = copy / "S2" / "Seq1" / "camera.calibration"
    good = calibration.read_text()
    calibration.write_text(good.replace("extrinsic", "extrinsic 1", 1))
    with pytest.raises(DataError, match="S2/Seq1/camera.calibration: line 7: extrinsic has 17 values"):
        convert("mpi_inf_3dhp", copy)
    # cameras 0 and 1 swapped in the calibration: their world joints no longer agree
    names = {"name          0": "name          1", "name          1": "name          0"}
    calibration.write_text("\n".join(names.get(line, line) for line in good.splitlines()))
    with pytest.raises(DataError, match="S2/Seq1/annot.mat: annot3 of the cameras disagree"):
        convert("mpi_inf_3dhp", copy)
    calibration.write_text(good)
    annot = copy / "S4" / "Seq2" / "annot.mat"
    annot.write_bytes(annot.read_bytes()[:-100])
    with pytest.raises(DataError, match="S4/Seq2/annot.mat: cannot read MATLAB file"):
        convert("mpi_inf_3dhp", copy)


def test_partial_download_converts_what_is_there(train_root, tmp_path):
    import shutil

    root, truth = train_root
    partial = tmp_path / "partial"
    for take in ("S2/Seq1", "S2/Seq2", "S7/Seq2"):
        shutil.copytree(root / take, partial / take)
    out = convert("mpi_inf_3dhp", partial)
    assert out.index["sequence"].unique().tolist() == ["S2/Seq1", "S2/Seq2", "S7/Seq2"]
    assert out.parts["converted"] == ["S2/Seq1", "S2/Seq2", "S7/Seq2"] and len(out.parts["missing"]) == 13
    assert any(n.startswith("partial download: 13 of 16 missing (S1/Seq1, S1/Seq2, S3/Seq1") for n in out.notes)
    with pytest.raises(DataError, match="place S1/Seq1/annot.mat"):
        convert("mpi_inf_3dhp", partial, strict=True)
    _write_test(tmp_path / "test")
    for name in ("TS1", "TS2", "TS5"):
        shutil.rmtree(tmp_path / "test" / "mpi_inf_3dhp_test_set" / name)
    out = convert("mpi_inf_3dhp", tmp_path / "test", part="test")
    assert out.parts == {"converted": ["TS3", "TS4", "TS6"], "missing": ["TS1", "TS2", "TS5"]}
    with pytest.raises(DataError, match="place TS1/annot_data.mat, TS2/annot_data.mat, TS5/annot_data.mat under"):
        convert("mpi_inf_3dhp", tmp_path / "test", part="test", strict=True)
