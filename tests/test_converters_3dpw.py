"""3DPW converter on latin1 pickles with the real keys (sequenceFiles/{train,validation,test}/*.pkl)."""

import pickle

import numpy as np
import pytest

from posebridge.data.store import open_dataset
from posebridge.geometry.cameras import Camera
from posebridge.sources.converters import convert, pw3d, write_converted
from posebridge.sources.converters.common import Y_UP_TO_Z_UP
from posebridge.errors import DataError
from real_bodies import body_up_degrees, walking

K = np.array([[1961.0, 0.0, 540.5], [0.0, 1969.0, 960.5], [0.0, 0.0, 1.0]])


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _sequence(name, actors, frames, seed):
    """A dict with the keys of a 3DPW pickle: people walking in a y-up world (metres), filmed by a
    phone that moves and tilts a little every frame."""
    rng = np.random.default_rng(seed)
    cam_poses = np.tile(np.eye(4), (frames, 1, 1))
    for t in range(frames):  # look_at in the Z-up world, then expressed in the y-up one
        phone = Camera.look_at("phone", (4500.0 * np.cos(0.1 * t), -4500.0 + 100.0 * t, 1500.0 + 20 * t),
                               (50.0 * t, 0.0, 1000.0 - 30.0 * t), (1000.0, 1000.0, 500.0, 500.0), None, (1000, 1000))
        cam_poses[t, :3, :3] = phone.R @ Y_UP_TO_Z_UP
        cam_poses[t, :3, 3] = phone.t / 1000.0
    joints = [(walking("smpl_24", frames, seed=seed + a, centre=(900.0 * a, 0.0)) @ Y_UP_TO_Z_UP / 1000.0
               ).reshape(frames, 72) for a in range(actors)]
    valid = [np.ones(frames, dtype=bool) for _ in range(actors)]
    valid[0][1] = False
    poses2d = [rng.uniform(0, 1000, size=(frames, 3, 18)) for _ in range(actors)]
    for p in poses2d:
        p[:, 2] = rng.uniform(0, 1, size=(frames, 18))
        p[0, :, 3] = 0  # joint 3 (relbow) not detected in frame 0
    return {"sequence": name, "betas": [rng.normal(size=10) for _ in range(actors)],
            "betas_clothed": [rng.normal(size=10) for _ in range(actors)],
            "poses": [rng.normal(size=(frames, 72)) for _ in range(actors)],
            "trans": [rng.normal(size=(frames, 3)) for _ in range(actors)],
            "poses_60Hz": [rng.normal(size=(2 * frames, 72)) for _ in range(actors)],
            "trans_60Hz": [rng.normal(size=(2 * frames, 3)) for _ in range(actors)],
            "genders": ["m", "f"][:actors], "texture_maps": [np.zeros((2, 2, 3)) for _ in range(actors)],
            "jointPositions": joints, "poses2d": poses2d, "campose_valid": valid,
            "cam_poses": cam_poses, "cam_intrinsics": K.copy(),
            "img_frame_ids": np.arange(0, 2 * frames, 2), "v_template_clothed": [None] * actors}


SEQUENCES = {"train": [("courtyard_arguing_00", 2, 5)], "validation": [("courtyard_drinking_00", 1, 4)],
             "test": [("downtown_walking_00", 1, 6), ("office_phoneCall_00", 2, 3)]}


@pytest.fixture(scope="module")
def pw3d_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("3dpw")
    data = {}
    for k, (folder, sequences) in enumerate(SEQUENCES.items()):
        (root / "sequenceFiles" / folder).mkdir(parents=True)
        for j, (name, actors, frames) in enumerate(sequences):
            data[name] = _sequence(name, actors, frames, seed=10 * k + j)
            with open(root / "sequenceFiles" / folder / f"{name}.pkl", "wb") as f:
                pickle.dump(data[name], f, protocol=2)  # 3DPW's pickles were written by Python 2
    return root, data


def test_joints_in_each_frames_camera_mm(pw3d_root):
    root, data = pw3d_root
    out = convert("3dpw", root)
    assert out.skeleton == "smpl_24"
    rows = out.index.set_index("sequence")
    assert sorted(rows.index) == ["courtyard_arguing_00/0", "courtyard_arguing_00/1", "courtyard_drinking_00/0",
                                  "downtown_walking_00/0", "office_phoneCall_00/0", "office_phoneCall_00/1"]
    assert rows.loc["courtyard_drinking_00/0", "split"] == "train"
    assert rows.loc["courtyard_drinking_00/0", "source_split"] == "validation"
    assert rows.loc["downtown_walking_00/0", "split"] == "test" and (out.index["fps"] == 30).all()
    seq = data["courtyard_arguing_00"]
    cam = {c.name: c for c in out.cameras}["courtyard_arguing_00"]
    for actor in (0, 1):
        row = rows.loc[f"courtyard_arguing_00/{actor}"]
        block = out.joints_3d[row["start"]:row["start"] + row["frames"]]
        for t in range(row["frames"]):
            world = seq["jointPositions"][actor][t].reshape(24, 3)
            expected = (world @ seq["cam_poses"][t, :3, :3].T + seq["cam_poses"][t, :3, 3]) * 1000
            if actor == 0 and t == 1:
                assert np.isnan(block[t]).all()  # campose_valid false
            else:
                # the static store camera sees exactly each frame's camera-frame joints
                np.testing.assert_allclose(cam.world_to_camera(block[t].astype(np.float64)), expected,
                                           rtol=1e-5, atol=1e-3)
        assert body_up_degrees(block, "smpl_24") < 5.0  # levelled: Z up
    np.testing.assert_array_equal(cam.intrinsics, [1961.0, 1969.0, 540.5, 960.5])
    np.testing.assert_array_equal(cam.t, np.zeros(3))
    assert cam.image_size == (1080, 1920) and rows.loc["courtyard_arguing_00/1", "camera"] == cam.name


def test_openpose_2d_become_coco_17(pw3d_root):
    root, data = pw3d_root
    out = convert("3dpw", root)
    assert (out.keypoint_format, out.detector) == ("coco_17", "openpose")
    detected = data["courtyard_arguing_00"]["poses2d"][0]  # first row of the index
    kp = out.keypoints[:5]
    # coco_17 leye (1) is OpenPose joint 15, rhip (12) is 8, relbow (8) is 3
    np.testing.assert_allclose(kp[:, 1, :2], detected[:, :2, 15].astype(np.float32))
    np.testing.assert_allclose(kp[:, 1, 2], detected[:, 2, 15], rtol=1e-6)
    np.testing.assert_allclose(kp[:, 12, :2], detected[:, :2, 8].astype(np.float32))
    assert kp[0, 8, 2] == 0 and (kp[0, 8, :2] == 0).all() and kp[1, 8, 2] > 0


def test_malformed_pickles(pw3d_root, tmp_path):
    import shutil

    root, data = pw3d_root
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    path = copy / "sequenceFiles" / "test" / "downtown_walking_00.pkl"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="downtown_walking_00.pkl: cannot read 3DPW pickle"):
        convert("3dpw", copy)
    broken = dict(data["downtown_walking_00"])
    broken["jointPositions"] = [broken["jointPositions"][0][:, :51]]
    path.write_bytes(pickle.dumps(broken, protocol=2))
    with pytest.raises(DataError, match=r"jointPositions\[0\] has shape \(6, 51\), expected \(6, 72\)"):
        convert("3dpw", copy)
    del broken["cam_poses"]
    path.write_bytes(pickle.dumps(broken, protocol=2))
    with pytest.raises(DataError, match="lacks the key.*cam_poses"):
        convert("3dpw", copy)
    with pytest.raises(DataError, match=r"place sequenceFiles/train/\*.pkl, sequenceFiles/validation/\*.pkl, .* under .*sequenceFiles.zip"):
        convert("3dpw", tmp_path / "nothing")


def test_pw3d_mapping_is_a_permutation_of_coco_names():
    from posebridge.geometry import skeletons
    openpose = ["nose", "neck", "rshoulder", "relbow", "rwrist", "lshoulder", "lelbow", "lwrist", "rhip",
                "rknee", "rankle", "lhip", "lknee", "lankle", "reye", "leye", "rear", "lear"]
    assert [openpose[i] for i in pw3d.OPENPOSE18_TO_COCO17] == list(skeletons.get("coco_17").joint_names)


def _kabsch(a, b):
    """The rotation Q minimising |Q a_i - b_i| over points (N, 3) (no translation)."""
    u, _, vt = np.linalg.svd(b.T @ a)
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def test_world_joints_and_moving_cameras_recovered(pw3d_root, tmp_path):
    """The stored frame keeps the camera static; the per-frame camera poses give back 3DPW's world
    joints and its moving camera, levelled to Z up by one rotation, to 1e-3 mm."""
    root, data = pw3d_root
    write_converted(convert("3dpw", root), tmp_path / "3dpw.h5", name="3dpw", role="test")
    with open_dataset(tmp_path / "3dpw.h5") as ds:
        assert ds.annotations == ["camera_R", "camera_t"]
        for name in ("courtyard_arguing_00", "downtown_walking_00"):
            seq = data[name]
            world = ds.sequence_world_3d(f"{name}/0")
            R, t = ds.sequence_camera_motion(f"{name}/0")
            ok = np.asarray(seq["campose_valid"][0])
            truth = seq["jointPositions"][0].reshape(len(ok), 24, 3)[ok] * 1000.0
            Q = _kabsch(truth.reshape(-1, 3), world[ok].reshape(-1, 3))
            assert np.abs(world[ok] - truth @ Q.T).max() < 1e-3
            assert np.degrees(np.arccos((Q @ [0.0, 1.0, 0.0])[2])) < 1.0  # 3DPW's up (y here) -> +z
            assert body_up_degrees(world, "smpl_24") < 5.0
            # the phone: its centre and orientation every frame, in the same Z-up world
            centres = np.einsum("tji,tj->ti", R[ok], -t[ok])
            true_R, true_t = seq["cam_poses"][ok, :3, :3], seq["cam_poses"][ok, :3, 3] * 1000.0
            true_centres = np.einsum("tji,tj->ti", true_R, -true_t)
            assert np.abs(centres - true_centres @ Q.T).max() < 1e-3
            np.testing.assert_allclose(R[ok], true_R @ Q.T, atol=1e-6)
            assert np.ptp(centres, axis=0).max() > 100  # it moves
            assert np.isnan(t[~ok]).all()


def test_partial_download_converts_what_is_there(pw3d_root, tmp_path):
    import shutil

    root, _ = pw3d_root
    shutil.copytree(root / "sequenceFiles" / "test", tmp_path / "sequenceFiles" / "test")
    out = convert("3dpw", tmp_path)
    assert set(out.index["split"]) == {"test"} and out.parts == {"converted": ["test"], "missing": ["train", "validation"]}
    assert any(n.startswith("partial download: 2 of 3 missing (train, validation)") for n in out.notes)
    with pytest.raises(DataError, match=r"place sequenceFiles/train/\*.pkl, sequenceFiles/validation/\*.pkl under"):
        convert("3dpw", tmp_path, strict=True)
