"""CMU Panoptic converter on the real layout: calibration_<seq>.json + body3DScene JSON frames,
as the downloaded hdPose3d_stage1_coco19.tar and as the folder extracted from it."""

import io
import json
import tarfile

import numpy as np
import pytest

from posebridge.geometry.cameras import Camera
from posebridge.sources.converters import convert
from posebridge.sources.converters.common import Y_DOWN_TO_Z_UP
from posebridge.errors import DataError
from real_bodies import body_up_degrees, walking

FIRST, FRAMES = 100, 5


def _calibration(seed):
    rng = np.random.default_rng(seed)
    cameras = []
    for k, (kind, panel, node, size) in enumerate([("vga", 1, 1, [640, 480]), ("hd", 0, 0, [1920, 1080]),
                                                   ("hd", 0, 1, [1920, 1080]), ("hd", 0, 2, [1920, 1080])]):
        # a camera 3 m from the dome centre (cm), looking at it; Panoptic's y axis points down
        angle = 2 * np.pi * k / 4
        cam = Camera.look_at("c", [300 * np.cos(angle), -150, 300 * np.sin(angle)], [0, -100, 0],
                             [1400, 1400, 960, 540], None, tuple(size), up=(0, -1, 0))
        K = [[1395.0 + k, 0.0, 955.0 + k], [0.0, 1392.0 - k, 545.0 + k], [0.0, 0.0, 1.0]]
        cameras.append({"name": f"{panel:02d}_{node:02d}", "type": kind, "resolution": size, "panel": panel,
                        "node": node, "K": K, "distCoef": list(rng.normal(size=5) * [0.2, 0.1, 0.001, 0.001, 0.01]),
                        "R": cam.R.tolist(), "t": [[v] for v in cam.t]})
    return {"calibDataSource": "160422_calib_norm", "cameras": cameras}


def _frames(seed):
    """frame -> list of bodies (id, (19, 4) x, y, z cm, confidence)."""
    rng = np.random.default_rng(seed)
    # people walking on the dome's floor, in Panoptic's y-down world (cm)
    walks = {b: walking("coco_19", FRAMES, seed=seed + b, centre=(600.0 * b - 900, 0.0)) @ Y_DOWN_TO_Z_UP / 10
             for b in (0, 3)}
    out = {}
    for f in range(FIRST, FIRST + FRAMES):
        bodies = []
        for body_id in (0, 3):
            if body_id == 3 and f == FIRST + 2:
                continue  # body 3 lost for one frame
            joints = np.concatenate([walks[body_id][f - FIRST], rng.uniform(0.2, 1, (19, 1))], 1)
            if body_id == 0 and f == FIRST + 1:
                joints[5, 3] = 0.05
            if body_id == 0 and f == FIRST + 3:
                joints[7, 3] = -1.0
            bodies.append((body_id, joints))
        out[f] = bodies
    return out


def _frame_json(bodies):
    return json.dumps({"version": 0.7, "univTime": 53541.542, "fpsType": "hd_29_97", "bodies": [
        {"id": body_id, "joints19": [round(float(v), 6) for v in joints.reshape(-1)]} for body_id, joints in bodies]})


def _write_sequence(root, name, seed, as_tar):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / f"calibration_{name}.json").write_text(json.dumps(_calibration(seed)))
    frames = _frames(seed)
    files = {f"hdPose3d_stage1_coco19/body3DScene_{f:08d}.json": _frame_json(b).encode() for f, b in frames.items()}
    if as_tar:
        with tarfile.open(folder / "hdPose3d_stage1_coco19.tar", "w") as tar:
            for member, data in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        for member, data in files.items():
            (folder / member).parent.mkdir(exist_ok=True)
            (folder / member).write_bytes(data)
    return frames


@pytest.fixture
def panoptic(tmp_path):
    truth = {"160422_ultimatum1": _write_sequence(tmp_path, "160422_ultimatum1", 1, as_tar=True),
             "160906_pizza1": _write_sequence(tmp_path, "160906_pizza1", 2, as_tar=False)}
    return tmp_path, truth


def test_bodies_become_takes_in_mm_with_low_confidence_as_nan(panoptic):
    root, truth = panoptic
    out = convert("panoptic", root)
    assert out.skeleton == "coco_19" and out.keypoints is None
    rows = out.index.set_index(["sequence", "camera"])
    takes = out.index.drop_duplicates("sequence").set_index("sequence")
    assert sorted(takes.index) == ["160422_ultimatum1/0", "160422_ultimatum1/3", "160906_pizza1/0", "160906_pizza1/3"]
    assert takes.loc["160422_ultimatum1/0", "split"] == "train" and takes.loc["160906_pizza1/3", "split"] == "test"
    assert (out.index["fps"] == 29.97).all() and (takes["first_frame"] == FIRST).all()
    assert len(rows.loc["160422_ultimatum1/0"]) == 3  # the HD cameras only
    for sequence, frames in truth.items():
        start = takes.loc[f"{sequence}/0", "start"]
        block = out.joints_3d[start:start + FRAMES]
        expected = np.stack([dict(frames[f])[0] for f in range(FIRST, FIRST + FRAMES)])
        keep = expected[..., 3] >= 0.1
        np.testing.assert_allclose(block[keep], (expected[..., :3] * 10 @ Y_DOWN_TO_Z_UP.T)[keep], rtol=1e-5,
                                   atol=1e-3)
        assert body_up_degrees(block, "coco_19") < 5.0  # Z up, not Panoptic's y down
        assert np.isnan(block[1, 5]).all() and np.isnan(block[3, 7]).all() and (~keep).sum() == 2
        start = takes.loc[f"{sequence}/3", "start"]
        assert np.isnan(out.joints_3d[start + 2]).all() and not np.isnan(out.joints_3d[start + 3]).any()
        assert takes.loc[f"{sequence}/3", "group"] == f"{sequence}/3"


def test_cameras_project_like_the_panoptic_toolbox(panoptic):
    root, truth = panoptic
    out = convert("panoptic", root)
    calibration = _calibration(1)["cameras"][2]
    cam = {c.name: c for c in out.cameras}["160422_ultimatum1/00_01"]
    assert cam.image_size == (1920, 1080)
    X_cm = np.stack([dict(truth["160422_ultimatum1"][f])[0][:, :3] for f in range(FIRST, FIRST + FRAMES)])
    # the toolbox's projectPoints: x = R X + t (cm), Kd = [k1, k2, p1, p2, k3]
    K, Kd = np.array(calibration["K"]), np.array(calibration["distCoef"])
    x = X_cm @ np.array(calibration["R"]).T + np.array(calibration["t"]).reshape(3)
    x, y = x[..., 0] / x[..., 2], x[..., 1] / x[..., 2]
    r = x * x + y * y
    radial = 1 + Kd[0] * r + Kd[1] * r * r + Kd[4] * r * r * r
    xd = x * radial + 2 * Kd[2] * x * y + Kd[3] * (r + 2 * x * x)
    yd = y * radial + 2 * Kd[3] * x * y + Kd[2] * (r + 2 * y * y)
    expected = np.stack([K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2]], -1)
    np.testing.assert_allclose(cam.project(X_cm * 10 @ Y_DOWN_TO_Z_UP.T), expected, atol=1e-6)


def test_single_sequence_folder_and_broken_files(panoptic):
    root, _ = panoptic
    out = convert("panoptic", root / "160906_pizza1")
    assert set(out.index["sequence"]) == {"160906_pizza1/0", "160906_pizza1/3"}

    frame = root / "160906_pizza1" / "hdPose3d_stage1_coco19" / "body3DScene_00000102.json"
    frame.write_text(frame.read_text()[:50])
    with pytest.raises(DataError, match="body3DScene_00000102.json: cannot read body3DScene JSON"):
        convert("panoptic", root)
    frame.write_text(json.dumps({"bodies": [{"id": 0, "joints19": [0.0] * 57}]}))
    with pytest.raises(DataError, match=r"body3DScene_00000102.json: bodies\[0\].joints19 has 57 values"):
        convert("panoptic", root)

    tar = root / "160422_ultimatum1" / "hdPose3d_stage1_coco19.tar"
    good = tar.read_bytes()
    for cut in (3000, 2048):  # tarfile itself would stop silently at either cut
        tar.write_bytes(good[:cut])
        with pytest.raises(DataError, match="hdPose3d_stage1_coco19.tar: truncated tar archive"):
            convert("panoptic", root / "160422_ultimatum1")


def test_missing_files_give_instructions(tmp_path):
    with pytest.raises(DataError, match=r"place <sequence>/calibration_<sequence>.json \(\*/calibration_\*.json\) under .*domedb"):
        convert("panoptic", tmp_path)
    (tmp_path / "171204_pose1").mkdir()
    (tmp_path / "171204_pose1" / "calibration_171204_pose1.json").write_text(json.dumps(_calibration(0)))
    with pytest.raises(DataError, match="hdPose3d_stage1_coco19.tar"):
        convert("panoptic", tmp_path)
