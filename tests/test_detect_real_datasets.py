"""detect-2d on converted real datasets: ground-truth 2D (gt2d), VideoPose3D 2D files matched by
the take's own keys (source_subject / source_action), and config entries naming their kind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posebridge import cli
from posebridge.geometry import skeletons
from posebridge.sources.converters import convert, write_converted
from posebridge.data.detections import read_detections
from posebridge.sources.detectors import detect_dataset
from posebridge.sources.detectors.ground_truth import project_row
from posebridge.errors import ConfigError, DataError
from posebridge.data.store import open_dataset
from test_converters_h36m import H36M_SYMMETRY, _poses_mm, _write_2d, _write_npz

CPN_METADATA = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": H36M_SYMMETRY}


@pytest.fixture
def h36m(tmp_path):
    """A converted H36M dataset (real VideoPose3D layout) and the folder of its source files."""
    folder = tmp_path / "data"
    folder.mkdir()
    poses = _poses_mm()
    _write_npz(folder, poses)
    _write_2d(folder, poses, "cpn_ft_h36m_dbb", CPN_METADATA)
    path = tmp_path / "results" / "h36m.h5"
    write_converted(convert("h36m", folder), path, name="h36m", role="labeled")
    with open_dataset(path) as dataset:
        yield dataset, folder


def _reference_projection(world_mm, camera):
    """The camera's distortion model written out independently of cameras.py: Brown-Conrady as
    in OpenCV's camera model documentation (docs.opencv.org, calib3d module), or, for the H36M
    cameras, VideoPose3D's project_to_2d (common/camera.py: tan = p . (x, y), XX (radial + tan)
    + p r2), with which its ground-truth 2D of Human3.6M was made."""
    X = world_mm @ camera.R.T + camera.t
    x, y = X[..., 0] / X[..., 2], X[..., 1] / X[..., 2]
    k1, k2, k3, p1, p2 = camera.distortion
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    if camera.distortion_model == "h36m_videopose3d":
        tan = p1 * x + p2 * y
        xd, yd = x * (radial + tan) + p1 * r2, y * (radial + tan) + p2 * r2
    else:
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    fx, fy, cx, cy = camera.intrinsics
    return np.stack([fx * xd + cx, fy * yd + cy], axis=-1)


def test_gt2d_projects_the_mapped_joints_through_each_camera(h36m):
    dataset, _ = h36m
    keypoints, fmt = detect_dataset("gt2d", dataset, {"keypoint_format": "h36m_17"}, progress=False)
    assert fmt == "h36m_17" and keypoints.shape == (int(dataset.index["frames"].sum()), 17, 3)
    offset = 0
    for _, row in dataset.index.iterrows():
        frames = int(row["frames"])
        world = dataset.sequence_3d(row["sequence"]).astype(np.float64)
        h36m_17 = world[:, [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]]  # VideoPose3D's 17 of the 32
        assert dataset.camera_for(row).distortion_model == "h36m_videopose3d"
        expected = _reference_projection(h36m_17, dataset.camera_for(row))
        np.testing.assert_allclose(keypoints[offset:offset + frames, :, :2], expected, atol=1e-2)
        assert (keypoints[offset:offset + frames, :, 2] == 1).all()
        offset += frames


def test_gt2d_marks_missing_and_behind_camera_joints_unseen(h36m):
    dataset, _ = h36m
    camera = dataset.cameras[0]
    world = np.tile(camera.position, (2, 3, 1))  # every joint at the camera centre: not in front
    world[0, 0] = camera.camera_to_world(np.array([100.0, -50.0, 4000.0]))  # in front
    world[1, 0] = np.nan
    out = project_row(world, camera)
    assert out[0, 0, 2] == 1 and np.allclose(out[0, 0, :2], _reference_projection(world[0, 0], camera), atol=1e-3)
    assert (out[0, 1:] == 0).all() and (out[1] == 0).all()


def test_gt2d_needs_a_format_the_dataset_has(h36m):
    dataset, _ = h36m
    with pytest.raises(DataError, match=r"gt2d: dataset 'h36m' has no coco_17 joints .*keypoint_format"):
        detect_dataset("gt2d", dataset, {}, progress=False)
    with pytest.raises(ConfigError, match="unknown key"):
        detect_dataset("gt2d", dataset, {"format": "h36m_17"}, progress=False)
    # the dataset's own skeleton always works
    keypoints, fmt = detect_dataset("truth", dataset, {"kind": "gt2d", "keypoint_format": "h36m_32"}, progress=False)
    assert fmt == "h36m_32" and keypoints.shape[1] == 32


def test_imported_videopose3d_2d_matches_each_take_by_its_own_keys(h36m):
    """The index's action is "Directions", the file's key "Directions 1": source_action bridges them;
    the file's camera k is the k-th H36M camera (each camera array is t * 10 + k)."""
    dataset, folder = h36m
    assert dataset.index[["source_subject", "source_action"]].drop_duplicates().values.tolist() == [
        ["S1", "Directions 1"], ["S1", "Photo"], ["S9", "WalkDog 1"], ["S11", "Walking 1"]]
    spec = {"kind": "imported", "file": str(folder / "data_2d_h36m_cpn_ft_h36m_dbb.npz")}
    keypoints, fmt = detect_dataset("cpn", dataset, spec, progress=False)
    assert fmt == "h36m_17"
    offset = 0
    for k, (_, row) in enumerate(dataset.index.iterrows()):
        frames = int(row["frames"])
        expected = np.arange(frames)[:, None] * 10.0 + k % 4 + np.zeros((1, 17))
        np.testing.assert_array_equal(keypoints[offset:offset + frames, :, 0], expected)
        offset += frames
    # the plain action does not name a take in the file
    with pytest.raises(DataError, match="has no action 'Directions'"):
        detect_dataset("cpn", dataset, {**spec, "action": "{action}"}, progress=False)


def test_store_rejects_source_keys_that_differ_within_a_sequence(h36m, tmp_path):
    dataset, _ = h36m
    index = dataset.index.copy()
    index.loc[1, "source_action"] = "Directions 2"
    from posebridge.data import store

    with pytest.raises(DataError, match="'source_action' differs from the sequence's first row"):
        store.write_dataset(tmp_path / "bad.h5", name="h36m", skeleton="h36m_32", role="labeled",
                            joints_3d=dataset.joints_3d_all(), cameras=dataset.cameras, index=index)


@pytest.mark.parametrize("name, spec, fmt", [
    ("truth", {"kind": "gt2d", "keypoint_format": "h36m_17"}, "h36m_17"),
    ("gt2d", {"keypoint_format": "h36m_17"}, "h36m_17"),
    ("cpn", {"kind": "imported", "file": "{root}/data_2d_h36m_cpn_ft_h36m_dbb.npz"}, "h36m_17"),
])
def test_detect_2d_command_runs_every_kind_of_entry(h36m, tmp_path, name, spec, fmt):
    dataset, folder = h36m
    spec = json.loads(json.dumps(spec).replace("{root}", str(folder)))
    output = tmp_path / "results" / "detections" / "h36m" / f"{name}.h5"
    assert cli.main(["detect-2d", "--dataset", str(dataset.path), "--detector", name, "--spec", json.dumps(spec),
                     "--output", str(output), "--no-progress"]) == 0
    with read_detections(output) as det:
        assert (det.detector, det.keypoint_format) == (name, fmt)
        det.check_against(dataset)


def test_detect_2d_command_rejects_unknown_kinds_and_simulated_on_real_data(h36m, tmp_path, capsys):
    dataset, _ = h36m
    base = ["detect-2d", "--dataset", str(dataset.path), "--output", str(tmp_path / "d.h5")]
    assert cli.main(base + ["--detector", "openpose"]) == 1
    assert "unknown 2D detector 'openpose'" in capsys.readouterr().err
    # an entry of kind simulated reaches the simulated detector, which needs synthetic landmarks
    assert cli.main(base + ["--detector", "noisy", "--spec", '{"kind": "simulated", "error_scale": 2}']) == 1
    err = capsys.readouterr().err
    assert "simulated detector needs the synthetic benchmark" in err and "\n" not in err.strip()
    assert not (tmp_path / "d.h5").exists()


def test_h36m_17_keypoints_train_an_h36m_17_input_lifter(h36m, tmp_path, capsys):
    """train takes the detections' keypoint format by default and refuses a contradicting one."""
    dataset, folder = h36m
    det = tmp_path / "det.h5"
    assert cli.main(["detect-2d", "--dataset", str(dataset.path), "--detector", "gt2d",
                     "--spec", '{"keypoint_format": "h36m_17"}', "--output", str(det), "--no-progress"]) == 0
    spec = {"filter_widths": [1], "channels": 8, "epochs": 1, "batch_size": 8, "samples_per_epoch": 8,
            "val_windows": 4}
    base = ["train", "--dataset", str(dataset.path), "--detections", str(det), "--train-format", "h36m_17",
            "--device", "cpu", "--no-progress", "--seed", "0"]
    assert cli.main(base + ["--spec", json.dumps({**spec, "keypoint_format": "coco_17"}), "--out-dir",
                            str(tmp_path / "bad"), "--checkpoint", str(tmp_path / "bad.pt")]) == 1
    assert "keypoints are h36m_17, the lifter takes coco_17" in capsys.readouterr().err
    assert cli.main(base + ["--spec", json.dumps(spec), "--out-dir", str(tmp_path / "model"),
                            "--checkpoint", str(tmp_path / "ck.pt")]) == 0
    from posebridge.inference.lift import load_model

    model = load_model(tmp_path / "model")
    assert model.keypoint_format == "h36m_17" and model.lifter.temporal.num_joints_in == 17
    assert skeletons.get(model.keypoint_format).num_joints == 17


@pytest.mark.parametrize("source, write, options", [
    ("3dpw", "_3dpw", {}), ("mupots", "_mupots", {"fps": 30}), ("mpi_inf_3dhp", "_3dhp", {})])
def test_builtin_2d_is_what_the_converter_read_from_the_files(tmp_path, source, write, options):
    import test_converters_truncated as writers

    folder = tmp_path / "data"
    folder.mkdir()
    getattr(writers, write)(folder)
    results = tmp_path / "results"
    write_converted(convert(source, folder, **options), results / "d.h5", name="d", role="labeled",
                    detections_output=results / "reference.h5")
    spec = {"kind": "builtin", "source": source, "path": str(folder), "convert": options}
    with open_dataset(results / "d.h5") as dataset, read_detections(results / "reference.h5") as reference:
        index = dataset.index
        dataset.index = index.iloc[::-1].reset_index(drop=True)  # rows matched by name, not position
        keypoints, fmt = detect_dataset("files", dataset, spec, progress=False)
        assert fmt == reference.keypoint_format
        expected = np.concatenate([reference.get(s, c) for s, c in zip(dataset.index["sequence"], dataset.index["camera"])])
        np.testing.assert_array_equal(keypoints, expected)
        assert (keypoints[..., 2] > 0).any()
    with open_dataset(results / "d.h5") as dataset:
        with pytest.raises(ConfigError, match="has no 2D keypoints of its own"):
            detect_dataset("builtin", dataset, {"source": "panoptic", "path": str(folder)}, progress=False)


def test_missing_public_detection_file_says_where_to_get_it(h36m, tmp_path):
    dataset, _ = h36m
    missing = tmp_path / "elsewhere" / "data_2d_h36m_cpn_ft_h36m_dbb.npz"
    with pytest.raises(DataError, match=r"no such detection file; get it from "
                                        r"https://dl.fbaipublicfiles.com/video-pose-3d/data_2d_h36m_cpn_ft_h36m_dbb.npz"):
        detect_dataset("cpn", dataset, {"kind": "imported", "file": str(missing)}, progress=False)


def test_videopose3d_ground_truth_2d_file_is_accepted_by_detect_and_convert(h36m):
    """data_2d_h36m_gt.npz as VideoPose3D's prepare_data_h36m.py writes it: metadata without
    layout_name, symmetry lists of numpy int64. Both `detect-2d` kind imported and `convert
    --detections gt` read it as h36m_17 (the joint count, the symmetry and the dataset tell)."""
    dataset, folder = h36m
    symmetry = [[np.int64(i) for i in side] for side in H36M_SYMMETRY]
    assert type(symmetry[0][0]) is np.int64
    _write_2d(folder, _poses_mm(), "gt", {"num_joints": 17, "keypoints_symmetry": symmetry}, extra_frames=0)
    spec = {"kind": "imported", "file": str(folder / "data_2d_h36m_gt.npz")}
    keypoints, fmt = detect_dataset("gt", dataset, spec, progress=False)
    assert fmt == "h36m_17" and len(keypoints) == int(dataset.index["frames"].sum())
    assert convert("h36m", folder, detections="gt").keypoint_format == "h36m_17"
    # symmetry alone tells COCO's 17 joints from H36M's; a file neither fits is refused in one line
    from posebridge.sources.detectors.imported import videopose3d_layout

    coco = skeletons.get("coco_17")
    assert videopose3d_layout(folder, {"num_joints": 17, "keypoints_symmetry": [list(coco.left), list(coco.right)]},
                              "h36m_17") == "coco_17"
    assert videopose3d_layout(folder, {"num_joints": 17}, "h36m_17") == "h36m_17"
    with pytest.raises(DataError, match="fit coco_17 and h36m_17"):
        videopose3d_layout(folder, {"num_joints": 17})
    with pytest.raises(DataError, match="fit none"):
        videopose3d_layout(folder, {"num_joints": 16})
