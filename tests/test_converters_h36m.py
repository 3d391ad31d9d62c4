"""Human3.6M converters on files written in the real layouts: VideoPose3D npz (3D + 2D) and CDF."""

import numpy as np
import pytest

from posebridge import cli
from posebridge.geometry.cameras import H36M_CAMERA_IDS, H36M_CAMERAS
from posebridge.sources.converters import convert, h36m, write_converted
from posebridge.data.detections import read_detections
from posebridge.errors import DataError
from posebridge.data.store import open_dataset

H36M_SYMMETRY = [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]
# subject -> action (as in the original files) -> frames; S11 "Directions" must be dropped,
# TakingPhoto / WalkingDog renamed; S2 has no published extrinsics and is skipped
TAKES = {"S1": {"Directions 1": 6, "TakingPhoto": 5}, "S9": {"WalkingDog 1": 4},
         "S11": {"Directions": 3, "Walking 1": 4}, "S2": {"Walking": 2}}


def _poses_mm(seed=0):
    """Original-file names -> (T, 32, 3) world mm: a body about 1.7 m tall near the origin."""
    rng = np.random.default_rng(seed)
    return {s: {a: (rng.normal(size=(n, 32, 3)) * [200, 200, 400] + [0, 0, 900]).astype(np.float32)
                for a, n in actions.items()} for s, actions in TAKES.items()}


def _renamed(action):
    return action.replace("TakingPhoto", "Photo").replace("WalkingDog", "WalkDog")


def _write_npz(folder, poses_mm):
    # VideoPose3D's layout: one pickled dict under positions_3d, metres, canonical action names
    positions = {s: {_renamed(a): (x / 1000).astype(np.float32) for a, x in actions.items()}
                 for s, actions in poses_mm.items()}
    np.savez_compressed(folder / "data_3d_h36m.npz", positions_3d=positions)
    return positions


def _write_2d(folder, poses_mm, suffix, metadata, extra_frames=2):
    # list of 4 camera arrays (T, 17, 2) px per take; some videos have extra frames
    positions_2d = {}
    for s, actions in poses_mm.items():
        positions_2d[s] = {}
        for a, x in actions.items():
            t = np.arange(len(x) + extra_frames, dtype=np.float32)[:, None, None]
            positions_2d[s][_renamed(a)] = [np.broadcast_to(t * 10 + k + np.zeros((1, 17, 2)), (len(t), 17, 2))
                                            .astype(np.float32) for k in range(4)]
    path = folder / f"data_2d_h36m_{suffix}.npz"
    np.savez_compressed(path, positions_2d=positions_2d, metadata=metadata)
    return path


def _qrot(q, v):
    """Rotate v (..., 3) by unit quaternion q = (w, x, y, z) via Hamilton products q v q*."""
    def mul(a, b):
        aw, ax, ay, az = np.moveaxis(a, -1, 0)
        bw, bx, by, bz = np.moveaxis(b, -1, 0)
        return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                         aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)
    q = np.broadcast_to(np.asarray(q, dtype=np.float64), v.shape[:-1] + (4,))
    vq = np.concatenate([np.zeros(v.shape[:-1] + (1,)), v], axis=-1)
    conj = q * [1, -1, -1, -1]
    return mul(mul(q, vq), conj)[..., 1:]


@pytest.fixture
def h36m_folder(tmp_path):
    poses = _poses_mm()
    _write_npz(tmp_path, poses)
    _write_2d(tmp_path, poses, "cpn_ft_h36m_dbb",
              {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": H36M_SYMMETRY})
    return tmp_path, poses


def test_npz_converts_joints_splits_and_names(h36m_folder):
    folder, poses = h36m_folder
    out = convert("h36m", folder)
    assert out.skeleton == "h36m_32"
    takes = out.index.drop_duplicates("sequence").set_index("sequence")
    assert sorted(takes.index) == ["S1/Directions 1", "S1/Photo", "S11/Walking 1", "S9/WalkDog 1"]
    assert takes.loc["S1/Photo", "action"] == "Photo" and takes.loc["S9/WalkDog 1", "action"] == "WalkDog"
    assert takes.loc["S1/Directions 1", "split"] == "train" and takes.loc["S11/Walking 1", "split"] == "test"
    assert (out.index["fps"] == 50).all() and (out.index["group"] == out.index["sequence"]).all()
    assert (out.index.groupby("sequence").size() == 4).all()
    for (s, a), row in zip([("S1", "TakingPhoto"), ("S11", "Walking 1")], [takes.loc["S1/Photo"],
                                                                        takes.loc["S11/Walking 1"]]):
        block = out.joints_3d[row["start"]:row["start"] + row["frames"]]
        np.testing.assert_allclose(block, poses[s][a], atol=1e-3)  # metres -> mm, float32 round trip
    assert any("S2" in note for note in out.notes)


def test_cameras_are_h36m_intrinsics_with_published_extrinsics(h36m_folder):
    folder, poses = h36m_folder
    out = convert("h36m", folder)
    cameras = {c.name: c for c in out.cameras}
    assert sorted(cameras) == sorted(f"{s}/{cid}" for s in ("S1", "S9", "S11") for cid in H36M_CAMERA_IDS)
    X = poses["S1"]["Directions 1"].astype(np.float64)
    for k, cid in enumerate(H36M_CAMERA_IDS):
        cam = cameras[f"S9/{cid}"]
        np.testing.assert_array_equal(cam.intrinsics, H36M_CAMERAS[cid].intrinsics)
        np.testing.assert_array_equal(cam.distortion, H36M_CAMERAS[cid].distortion)
        assert cam.image_size == H36M_CAMERAS[cid].image_size
        q, position = h36m.EXTRINSICS["S9"][k]
        # VideoPose3D's world_to_camera: rotate X - position by the inverse orientation
        expected = _qrot(np.array(q) * [1, -1, -1, -1], X - np.array(position))
        np.testing.assert_allclose(cam.world_to_camera(X), expected, atol=1e-6)
        np.testing.assert_allclose(cam.position, position, atol=1e-6)
    # the H36M world is Z-up: every camera looks at the capture area's centre, image "down" = -Z
    for cam in out.cameras:
        to_origin = -cam.position / np.linalg.norm(cam.position)
        assert cam.R[2] @ to_origin > np.cos(np.radians(10)) and cam.R[1, 2] < -0.9


def test_2d_file_becomes_detections_truncated_to_the_3d(h36m_folder, tmp_path):
    folder, _ = h36m_folder
    out = convert("h36m", folder, detections="cpn_ft_h36m_dbb")
    assert (out.detector, out.keypoint_format) == ("cpn_ft_h36m_dbb", "h36m_17")
    output, det_path = tmp_path / "out" / "h36m.h5", tmp_path / "out" / "det.h5"
    write_converted(out, output, name="h36m", role="labeled", detections_output=det_path)
    with open_dataset(output) as dataset, read_detections(det_path) as det:
        det.check_against(dataset)
        row = dataset.index.iloc[6]  # S1/Photo, third camera (index 2)
        kp = det.get(row["sequence"], row["camera"])
        assert kp.shape == (row["frames"], 17, 3)
        np.testing.assert_array_equal(kp[:, 0, 0], np.arange(row["frames"]) * 10 + 2)
        assert (kp[..., 2] == 1).all()


def test_ground_truth_2d_without_layout_name_is_h36m_17(h36m_folder):
    folder, poses = h36m_folder
    _write_2d(folder, poses, "gt", {"num_joints": 17, "keypoints_symmetry": H36M_SYMMETRY}, extra_frames=0)
    assert convert("h36m", folder, detections="gt").keypoint_format == "h36m_17"


def test_2d_problems_are_one_line_errors(h36m_folder):
    folder, poses = h36m_folder
    _write_2d(folder, poses, "mpii", {"layout_name": "mpii", "num_joints": 16})
    with pytest.raises(DataError, match="data_2d_h36m_mpii.npz: 2D layout 'mpii'"):
        convert("h36m", folder, detections="mpii")
    _write_2d(folder, poses, "short", {"layout_name": "h36m", "num_joints": 17}, extra_frames=-1)
    with pytest.raises(DataError, match=r"camera 0: \d frames of 2D, the 3D has"):
        convert("h36m", folder, detections="short")
    with pytest.raises(DataError, match="2D keypoint file not found"):
        convert("h36m", folder, detections="sh_pt_mpii")


def test_cdf_files_convert_to_the_same_dataset_as_the_npz(h36m_folder, tmp_path):
    cdfwrite = pytest.importorskip("cdflib.cdfwrite")
    folder, poses = h36m_folder
    cdf_root = tmp_path / "cdf"
    for s, actions in poses.items():
        target = cdf_root / s / "MyPoseFeatures" / "D3_Positions"
        target.mkdir(parents=True)
        for a, x in actions.items():
            # the original layout: variable Pose, one record of T x 96 (32 joints x xyz, mm)
            cdf = cdfwrite.CDF(target / f"{a}.cdf", delete=True)
            cdf.write_var({"Variable": "Pose", "Data_Type": cdf.CDF_FLOAT, "Num_Elements": 1,
                           "Rec_Vary": True, "Dim_Sizes": [len(x), 96]}, var_data=x.reshape(1, len(x), 96))
            cdf.close()
    for s in ("S5", "S6", "S7", "S8"):  # the other subjects' folders, one take each
        target = cdf_root / s / "MyPoseFeatures" / "D3_Positions"
        target.mkdir(parents=True)
        cdf = cdfwrite.CDF(target / "Eating 2.cdf", delete=True)
        cdf.write_var({"Variable": "Pose", "Data_Type": cdf.CDF_FLOAT, "Num_Elements": 1, "Rec_Vary": True,
                       "Dim_Sizes": [3, 96]}, var_data=np.ones((1, 3, 96), np.float32))
        cdf.close()
    from_cdf = convert("h36m_cdf", cdf_root)
    from_npz = convert("h36m", folder)
    cdf_takes = from_cdf.index.set_index(["sequence", "camera"])
    for _, row in from_npz.index.iterrows():
        other = cdf_takes.loc[(row["sequence"], row["camera"])]
        assert (other["action"], other["split"], other["frames"]) == (row["action"], row["split"], row["frames"])
        np.testing.assert_allclose(from_cdf.joints_3d[other["start"]:other["start"] + other["frames"]],
                                   from_npz.joints_3d[row["start"]:row["start"] + row["frames"]], atol=1e-3)
    assert len(from_cdf.index) == len(from_npz.index) + 4 * 4
    assert {c.name: c for c in from_cdf.cameras}["S1/54138969"] == {c.name: c for c in from_npz.cameras}["S1/54138969"]

    # a partial download (the poses of some subjects): those convert, the others are named
    assert from_cdf.parts == {
        "converted": ["S1", "S5", "S6", "S7", "S8", "S9", "S11"], "missing": []}
    import shutil

    for s in ("S5", "S6", "S7", "S8", "S11"):
        shutil.rmtree(cdf_root / s)
    partial = convert("h36m_cdf", cdf_root)
    assert sorted(partial.index["subject"].unique()) == ["S1", "S9"]
    assert partial.parts == {"converted": ["S1", "S9"], "missing": ["S5", "S6", "S7", "S8", "S11"]}
    assert "partial download: 5 of 7 missing (S5, S6, S7, S8, S11), converted S1, S9 (strict: true refuses instead)" \
        in partial.notes
    with pytest.raises(DataError, match="S5's D3 Positions"):
        convert("h36m_cdf", cdf_root, strict=True)

    broken = cdf_root / "S1" / "MyPoseFeatures" / "D3_Positions" / "Directions 1.cdf"
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(DataError, match="Directions 1.cdf: cannot read CDF file"):
        convert("h36m_cdf", cdf_root)


def test_missing_files_give_instructions(tmp_path):
    with pytest.raises(DataError) as err:
        convert("h36m", tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"place VideoPose3D's 3D poses (data_3d_h36m.npz) under {tmp_path}" in message and "login required" in message
    (tmp_path / "S1" / "MyPoseFeatures" / "D3_Positions").mkdir(parents=True)
    with pytest.raises(DataError, match="S1's D3 Positions.*Poses_D3_Positions_S1.tgz.*login required"):
        convert("h36m_cdf", tmp_path)


def test_malformed_npz_fails_without_leaving_output(h36m_folder, tmp_path, capsys):
    folder, _ = h36m_folder
    out_dir = tmp_path / "results" / "datasets"
    args = ["convert", "--dataset", "h36m", "--source", str(folder), "--name", "h36m", "--role", "labeled",
            "--output", str(out_dir / "h36m.h5")]
    npz = folder / "data_3d_h36m.npz"
    good = npz.read_bytes()
    npz.write_bytes(good[: len(good) // 2])  # truncated download
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "data_3d_h36m.npz: cannot read npz file" in err
    assert not out_dir.exists() or not any(out_dir.iterdir())

    np.savez_compressed(npz, positions_3d={"S1": {"Walking 1": np.zeros((4, 17, 3), np.float32)}})
    with pytest.raises(DataError, match=r"S1 'Walking 1' has shape \(4, 17, 3\), expected \(T, 32, 3\)"):
        convert("h36m", folder)

    npz.write_bytes(good)
    assert cli.main(args + ["--detections", "cpn_ft_h36m_dbb", "--detections-output",
                            str(tmp_path / "results" / "detections" / "h36m" / "cpn.h5")]) == 0
    assert "h36m: h36m_32, 4 sequences (test 2, train 2)" in capsys.readouterr().out
    with open_dataset(out_dir / "h36m.h5") as dataset:
        assert dataset.role == "labeled" and len(dataset.index) == 16


def test_failed_detection_write_removes_the_dataset(h36m_folder, tmp_path):
    folder, _ = h36m_folder
    out = convert("h36m", folder, detections="cpn_ft_h36m_dbb")
    out.keypoints[0, 0, 2] = 2.0  # a confidence above 1: the detection file refuses it
    results = tmp_path / "results"
    with pytest.raises(DataError, match="confidences must lie in"):
        write_converted(out, results / "datasets" / "h36m.h5", name="h36m", role="labeled",
                        detections_output=results / "detections" / "h36m" / "cpn.h5")
    assert [p for p in results.rglob("*") if p.is_file()] == []
