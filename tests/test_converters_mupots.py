"""MuPoTS-3D converter on MATLAB v5 files in the real layout: annot.mat's (frames x people) cell
array of structs and occlusion.mat's cell array of per-joint flags."""

import numpy as np
import pytest
import scipy.io

from posebridge.data.store import open_dataset
from posebridge.geometry.cameras import Camera
from posebridge.sources.converters import convert, write_converted
from posebridge.errors import ConfigError, DataError
from real_bodies import body_up_degrees, walking

PEOPLE = {"TS1": 2, "TS7": 3}  # others: 1 person
FRAMES = 4


def _intrinsics(name):
    n = int(name[2:])
    return (1500.0 + n, 1495.0 + n, 1024.0 - n, 1030.0 + n) if n <= 5 else (1680.0 + n, 1670.0, 960.0, 540.0 + n)


def _write(root):
    truth = {}
    for n in range(1, 21):
        name = f"TS{n}"
        folder = root / "MultiPersonTestSet" / name
        folder.mkdir(parents=True)
        rng = np.random.default_rng(n)
        people = PEOPLE.get(name, 1)
        fx, fy, cx, cy = _intrinsics(name)
        # upright people walking in front of a camera tilted down, in that camera's frame
        view = Camera.look_at(name, (600.0 * n - 6000, -5000.0, 1600.0), (0.0, 0.0, 900.0),
                              (fx, fy, cx, cy), None, (1920, 1080))
        in_camera = np.stack([view.world_to_camera(walking("mpi_inf_3dhp_17", FRAMES, seed=10 * n + p,
                                                           centre=(800.0 * p, 0.0)))
                              for p in range(people)])
        pixels = in_camera[..., :2] / in_camera[..., 2:] * [fx, fy] + [cx, cy]
        valid = np.ones((people, FRAMES), dtype=bool)
        valid[0, 2] = False
        occluded = rng.random((people, FRAMES, 17)) < 0.3
        annotations = np.empty((FRAMES, people), dtype=object)
        occlusion = np.empty((FRAMES, people), dtype=object)
        for t in range(FRAMES):
            for p in range(people):
                annotations[t, p] = {"annot2": pixels[p, t].T, "annot3": in_camera[p, t].T,
                                     "univ_annot3": 0.95 * in_camera[p, t].T,
                                     "isValidFrame": np.array([[float(valid[p, t])]])}
                occlusion[t, p] = occluded[p, t][None]
        scipy.io.savemat(folder / "annot.mat", {"annotations": annotations})
        scipy.io.savemat(folder / "occlusion.mat", {"occlusion_labels": occlusion})
        truth[name] = in_camera, pixels, valid, occluded
    return truth


@pytest.fixture(scope="module")
def mupots(tmp_path_factory):
    root = tmp_path_factory.mktemp("mupots")
    return root, _write(root)


def test_people_become_takes_in_camera_frame(mupots):
    root, truth = mupots
    out = convert("mupots", root)
    assert out.skeleton == "mpi_inf_3dhp_17" and len(out.index) == sum(PEOPLE.get(f"TS{n}", 1) for n in range(1, 21))
    assert (out.index["split"] == "test").all()
    # the frame rate of each sequence: studio TS1-TS5 30 fps, outdoor TS6-TS20 60 fps
    fps = out.index.drop_duplicates("action").set_index("action")["fps"]
    assert fps.to_dict() == {f"TS{n}": 30.0 if n <= 5 else 60.0 for n in range(1, 21)}
    cameras = {c.name: c for c in out.cameras}
    rows = out.index.set_index("sequence")
    for name, (in_camera, pixels, valid, occluded) in truth.items():
        cam = cameras[name]
        np.testing.assert_allclose(cam.intrinsics, _intrinsics(name), atol=1e-6)
        assert cam.image_size == ((2048, 2048) if int(name[2:]) <= 5 else (1920, 1080))
        for p in range(len(in_camera)):
            row = rows.loc[f"{name}/{p + 1}"]
            assert row["camera"] == name and row["group"] == f"{name}/{p + 1}"
            block = out.joints_3d[row["start"]:row["start"] + FRAMES]
            # a Z-up world (levelled from the feet), whose camera sees exactly the annotated joints
            assert body_up_degrees(block, "mpi_inf_3dhp_17") < 5.0
            np.testing.assert_allclose(cam.world_to_camera(block[valid[p]].astype(np.float64)),
                                       in_camera[p][valid[p]], rtol=1e-6, atol=1e-3)
            np.testing.assert_array_equal(cam.t, np.zeros(3))
            assert np.isnan(block[~valid[p]]).all()
            expected = (occluded[p] & valid[p][:, None]).sum() / (valid[p].sum() * 17)
            assert row["occluded_fraction"] == pytest.approx(expected)
    # the annot2 ground truth as 2D keypoints, confidence 0 on invalid frames
    _, pixels, valid, _ = truth["TS1"]
    first = int(np.flatnonzero(out.index["sequence"] == "TS1/1")[0]) * FRAMES  # TS1's rows come first
    kp = out.keypoints[first:first + FRAMES]
    np.testing.assert_allclose(kp[valid[0], :, :2], pixels[0][valid[0]], atol=1e-3)
    assert (kp[2, :, 2] == 0).all() and (kp[valid[0], :, 2] == 1).all()


def test_universal_annotations(mupots):
    root, truth = mupots
    out = convert("mupots", root, fps=30, universal=True)
    assert (out.index["fps"] == 30).all()  # the override labels every sequence
    in_camera = out.cameras[0].world_to_camera(out.joints_3d[0].astype(np.float64))
    np.testing.assert_allclose(in_camera, 0.95 * truth["TS1"][0][0, 0], rtol=1e-6, atol=1e-3)
    # intrinsics still come from the metric annot3
    np.testing.assert_allclose(out.cameras[0].intrinsics, _intrinsics("TS1"), atol=1e-6)


def test_fps_must_be_positive_and_files_are_checked(mupots, tmp_path):
    root, _ = mupots
    with pytest.raises(ConfigError, match="fps must be positive"):
        convert("mupots", root, fps=-1)
    with pytest.raises(DataError, match="place TS1/annot.mat, TS2/annot.mat, .* under .*SingleShotMultiPerson"):
        convert("mupots", tmp_path, fps=30)


def test_per_joint_occlusion_is_stored(mupots, tmp_path):
    root, truth = mupots
    write_converted(convert("mupots", root), tmp_path / "mupots.h5", name="mupots", role="test")
    with open_dataset(tmp_path / "mupots.h5") as ds:
        assert ds.annotations == ["occluded"]
        for name, (_, _, valid, occluded) in truth.items():
            for p in range(len(valid)):
                flags = ds.sequence_annotation("occluded", f"{name}/{p + 1}")
                np.testing.assert_array_equal(flags, np.where(valid[p][:, None], occluded[p], -1))


def test_partial_download_converts_what_is_there(mupots, tmp_path, capsys):
    import shutil

    from posebridge import cli

    root, truth = mupots
    partial = tmp_path / "partial"
    for n in (2, 7, 19):
        shutil.copytree(root / "MultiPersonTestSet" / f"TS{n}", partial / "MultiPersonTestSet" / f"TS{n}")
    out = convert("mupots", partial)
    assert sorted(out.index["action"].unique()) == ["TS19", "TS2", "TS7"]
    missing = [f"TS{n}" for n in range(1, 21) if n not in (2, 7, 19)]
    assert out.parts == {"converted": ["TS2", "TS7", "TS19"], "missing": missing}
    assert [n for n in out.notes if "missing" in n] == [
        f"partial download: 17 of 20 missing ({', '.join(missing)}), converted TS2, TS7, TS19 "
        f"(strict: true refuses instead)"]
    with pytest.raises(DataError, match="place TS1/annot.mat"):
        convert("mupots", partial, strict=True)
    output = tmp_path / "mupots.h5"
    assert cli.main(["convert", "--dataset", "mupots", "--source", str(partial), "--name", "mupots",
                     "--role", "test", "--output", str(output)]) == 0
    assert "17 of 20 missing" in capsys.readouterr().out
    with open_dataset(output) as ds:
        assert ds.parts == out.parts


def test_malformed_annotations(mupots, tmp_path):
    import shutil

    root, _ = mupots
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    path = copy / "MultiPersonTestSet" / "TS3" / "annot.mat"
    cells = np.empty((2, 1), dtype=object)
    for t in range(2):
        cells[t, 0] = {"annot2": np.zeros((2, 14)), "annot3": np.zeros((3, 14)), "univ_annot3": np.zeros((3, 14)),
                       "isValidFrame": np.ones((1, 1))}
    scipy.io.savemat(path, {"annotations": cells})
    with pytest.raises(DataError, match=r"TS3/annot.mat: annotations\{1,1\}.annot2 has shape \(2, 14\)"):
        convert("mupots", copy, fps=30)
    scipy.io.savemat(path, {"frames": np.ones(3)})
    with pytest.raises(DataError, match="TS3/annot.mat: lacks the variable"):
        convert("mupots", copy, fps=30)
    occlusion = copy / "MultiPersonTestSet" / "TS2" / "occlusion.mat"
    occlusion.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 20)
    shutil.copy(root / "MultiPersonTestSet" / "TS3" / "annot.mat", path)
    with pytest.raises(DataError, match="TS2/occlusion.mat: cannot read MATLAB file"):
        convert("mupots", copy, fps=30)
