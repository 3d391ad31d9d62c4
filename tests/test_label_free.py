"""Label-free measures (evaluation.label_free) on cases whose answer is known, and the real-footage
evaluation of a model on a small triangulated take (evaluation.real_footage)."""

import numpy as np
import pytest

from posebridge.evaluation import label_free
from posebridge.geometry.cameras import Camera

INTRINSICS = (1500.0, 1500.0, 540.0, 960.0)


def limbs_walking(frames: int = 8) -> np.ndarray:
    """(T, 12, 3) hip-centred camera-space limb joints of a rigid person turning slowly, mm."""
    base = np.array([[-180, -480, 0], [180, -480, 0], [-210, -200, 30], [210, -200, 30], [-230, 60, 0],
                     [230, 60, 0], [-100, 0, 0], [100, 0, 0], [-110, 420, 20], [110, 420, 20],
                     [-115, 820, 0], [115, 820, 0]], dtype=np.float64)
    out = []
    for t in range(frames):
        a = 0.05 * t
        R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        out.append(base @ R.T)
    return np.stack(out)


def project(X, intrinsics=INTRINSICS):
    fx, fy, cx, cy = intrinsics
    return np.stack([fx * X[..., 0] / X[..., 2] + cx, fy * X[..., 1] / X[..., 2] + cy], axis=-1)


def test_reprojection_error_is_zero_for_exact_data_and_sees_a_shift():
    limbs = limbs_walking()
    trajectory = np.array([[100.0 + 10 * t, -50.0, 4000.0] for t in range(len(limbs))])
    uv = project(limbs + trajectory[:, None])
    keypoints = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)
    assert label_free.reprojection_error(limbs, trajectory, keypoints, INTRINSICS) < 1e-9
    shifted = keypoints.copy()
    shifted[..., 0] += 7.0
    assert label_free.reprojection_error(limbs, trajectory, shifted, INTRINSICS) == pytest.approx(7.0)
    shifted[..., 2] = 0.0  # nothing confident: no measure
    assert np.isnan(label_free.reprojection_error(limbs, trajectory, shifted, INTRINSICS))


def test_bone_length_std_is_zero_for_a_rigid_body_and_measures_a_stretch():
    limbs = limbs_walking()
    assert label_free.bone_length_std(limbs) < 1e-9
    stretched = limbs.copy()
    stretched[::2, label_free.LIMB_JOINTS.index("lwrist"), 1] += 20.0  # forearm +20 mm every other frame
    # only the left forearm (1 of 10 bones) changes: std of a 0/20 alternation = 10 mm
    assert label_free.bone_length_std(stretched) == pytest.approx(1.0, abs=0.05)


def test_mean_depth_baseline_recovers_a_pose_at_the_mean_poses_depths():
    camera = Camera("c", INTRINSICS, None, np.eye(3), np.zeros(3), (1080, 1920))
    mean = limbs_walking(1)[0]
    placed = mean + np.array([150.0, -100.0, 3500.0])  # the mean pose itself, 3.5 m away
    keypoints = project(placed)[None]
    baseline = label_free.mean_depth_baseline(keypoints, camera, mean)
    errors = label_free.errors_against(baseline, placed[None])
    assert errors["pa_mpjpe"] < 1.0 and errors["n_mpjpe"] < 1.0
    # and a different pose is not recovered
    other = limbs_walking(6)[-1] + np.array([150.0, -100.0, 3500.0])
    assert label_free.errors_against(label_free.mean_depth_baseline(project(other)[None], camera, mean),
                                     other[None])["pa_mpjpe"] > 5


def test_cross_view_consistency_is_zero_for_agreeing_views_and_skips_unseen_frames():
    limbs = limbs_walking()
    scaled, similar = label_free.cross_view_consistency([limbs, 1.2 * limbs + 300.0, limbs])
    assert scaled < 1e-6 and similar < 1e-6
    turned = limbs @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]).T  # a view that got the rotation wrong
    unseen = limbs.copy()
    unseen[:3] = np.nan  # a view not showing the person in 3 frames
    scaled, similar = label_free.cross_view_consistency([limbs, turned, unseen])
    assert scaled > 100 and similar < 1e-6


def write_rig_take(folder, cameras, joints_3d, keypoints, name="rig"):
    """A dataset (one take seen by ``cameras``) and its detections; returns their paths."""
    import pandas as pd

    from posebridge.data.detections import write_detections
    from posebridge.data.store import write_dataset

    frames = keypoints.shape[1]
    index = pd.DataFrame([{"sequence": "take", "subject": "s", "action": "a", "split": "test",
                           "camera": c.name, "camera_index": k, "start": 0, "frames": frames, "fps": 60.0,
                           "role": "test", "group": "take"} for k, c in enumerate(cameras)])
    write_dataset(folder / f"{name}.h5", name=name, skeleton="coco_17", role="test", joints_3d=joints_3d,
                  cameras=cameras, index=index, has_3d=bool(np.isfinite(joints_3d).any()))
    write_detections(folder / f"{name}_2d.h5", dataset=name, detector="exact", keypoint_format="coco_17",
                     rows=index[["sequence", "camera", "frames"]], keypoints=keypoints.reshape(-1, 17, 3))
    return folder / f"{name}.h5", folder / f"{name}_2d.h5"


def write_model(folder):
    """A small random lifter (h36m_17) whose mean pose has the limb joints of ``limbs_walking``."""
    import torch

    from posebridge.geometry import skeletons
    from posebridge.models.files import write_torch_file
    from posebridge.models.lifter import SeparateHeadLifter

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lifter = SeparateHeadLifter(["h36m_17"], filter_widths=(3,), channels=16)
    mean = np.zeros((17, 3))  # only the limb joints of the mean pose count
    mean[[skeletons.get("h36m_17").index(n) for n in label_free.LIMB_JOINTS]] = limbs_walking(1)[0]
    folder.mkdir()
    write_torch_file(folder / "model.pt", lifter.file_dict(mean_pose={"h36m_17": mean}))
    return folder


def test_evaluate_real_scores_views_against_the_triangulation_and_skips_another_person(tmp_path):
    import pandas as pd

    from posebridge.cli import main
    from test_triangulation import motion, observe, rig

    cameras, truth = rig(), motion(30)
    keypoints = observe(cameras, truth)
    keypoints[3, 20:] = observe(cameras, truth + np.array([1500.0, 0.0, 0.0]))[3, 20:]  # someone else
    dataset, detections = write_rig_take(tmp_path, cameras, truth, keypoints)
    model = write_model(tmp_path / "model")
    assert main(["evaluate-real", "--model", str(model), "--dataset", str(dataset), "--detections",
                 str(detections), "--output", str(tmp_path / "real.parquet")]) == 0
    views = pd.read_parquet(tmp_path / "real.parquet")
    assert list(views["camera"]) == [c.name for c in cameras] and (views["format"] == "h36m_17").all()
    assert list(views["frames"]) == [30, 30, 30, 20]
    for column in ("pa_mpjpe", "n_mpjpe", "mean_pose_pa_mpjpe", "mean_depth_pa_mpjpe", "bone_std_mm",
                   "root_depth_ratio", "cross_view_mm"):
        assert np.isfinite(views[column]).all(), column
    assert "reprojection_px" in views.columns  # NaN where this random lifter's root lands behind the camera
    assert (views["model"] == "model").all() and (views["dataset"] == "rig").all()
    assert (views["detector"] == "exact").all()


def test_evaluate_real_without_3d_gives_the_label_free_measures(tmp_path):
    import pandas as pd

    from posebridge.cli import main
    from test_triangulation import motion, observe, rig

    cameras, truth = rig()[:1], motion(30)
    dataset, detections = write_rig_take(tmp_path, cameras, np.full_like(truth, np.nan), observe(cameras, truth))
    model = write_model(tmp_path / "model")
    assert main(["evaluate-real", "--model", str(model), "--dataset", str(dataset), "--detections",
                 str(detections), "--output", str(tmp_path / "real.parquet")]) == 0
    table = pd.read_parquet(tmp_path / "real.parquet")
    assert len(table) == 1 and table["frames"].iloc[0] == 30
    assert np.isfinite(table[["reprojection_px", "bone_std_mm"]].to_numpy()).all()
    assert "pa_mpjpe" not in table.columns


def test_evaluate_real_scores_several_datasets_in_one_run_as_separate_runs_would(tmp_path):
    import pandas as pd

    from posebridge.cli import main
    from test_triangulation import motion, observe, rig

    cameras, truth = rig(), motion(30)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sets = [write_rig_take(tmp_path / "a", cameras, truth, observe(cameras, truth)),
            write_rig_take(tmp_path / "b", cameras[:1], np.full_like(truth, np.nan), observe(cameras[:1], truth))]
    model = write_model(tmp_path / "model")
    argv = ["evaluate-real", "--model", str(model)]
    for i, (dataset, detections) in enumerate(sets):
        assert main(["evaluate-real", "--model", str(model), "--dataset", str(dataset), "--detections",
                     str(detections), "--output", str(tmp_path / f"alone{i}.parquet")]) == 0
        argv += ["--dataset", str(dataset), "--detections", str(detections), "--output", str(tmp_path / f"{i}.parquet")]
    assert main(argv) == 0
    for i in range(len(sets)):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{i}.parquet"),
                                      pd.read_parquet(tmp_path / f"alone{i}.parquet"))
    assert "pa_mpjpe" in pd.read_parquet(tmp_path / "0.parquet") and "pa_mpjpe" not in pd.read_parquet(tmp_path / "1.parquet")


def test_package_videos_become_a_dataset():
    from posebridge.sources.converters import convert

    converted = convert("videos", "package-videos")
    index = converted.index.set_index("sequence")
    assert list(index.index) == ["bikes", "demo"]
    assert index.loc["bikes", "fps"] == 25 and index.loc["demo", "fps"] == 30
    assert index.loc["bikes", "frames"] == 250 and index.loc["demo", "frames"] == 230
    assert [c.image_size for c in converted.cameras] == [(640, 272), (1768, 994)]
    assert np.isnan(converted.joints_3d).all()


def test_report_real_writes_the_section(tmp_path):
    from posebridge.cli import main
    from test_triangulation import motion, observe, rig

    cameras, truth = rig(), motion(30)
    converted, detections = write_rig_take(tmp_path, cameras, np.full_like(truth, np.nan), observe(cameras, truth))
    dataset = tmp_path / "rig_3d.h5"
    assert main(["triangulate", "--dataset", str(converted), "--detections", str(detections),
                 "--output", str(dataset)]) == 0
    model = write_model(tmp_path / "model")
    assert main(["evaluate-real", "--model", str(model), "--dataset", str(dataset), "--detections",
                 str(detections), "--output", str(tmp_path / "real.parquet")]) == 0
    assert main(["report-real", "--real", str(tmp_path / "real.parquet"), "--model-dir", str(model),
                 "--dataset", str(dataset), "--detections", str(detections),
                 "--output-dir", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "real_footage.html").read_text()
    assert "<td class=\"text\">model</td><td class=\"text\">h36m_17</td>" in page
    assert "Triangulation" in page and page.count("<tr>") == 1 + 1 + 1 + 4  # 2 headers, 1 model row, 4 cameras
    assert (tmp_path / "report" / "real_footage_frames.png").stat().st_size > 10_000


def test_views_are_summarised_by_frame_weighted_means():
    import pandas as pd

    from posebridge.evaluation.real_footage import summarise_views

    views = pd.DataFrame({"format": ["a", "a", "a", "b"], "frames": [100, 300, 0, 10],
                          "pa_mpjpe": [40.0, 80.0, 999.0, 5.0], "bone_std_mm": [1.0, np.nan, 7.0, 2.0]})
    table = summarise_views(views)
    assert table.loc["a", "pa_mpjpe"] == pytest.approx((100 * 40 + 300 * 80) / 400)  # a 0-frame view counts nothing
    assert table.loc["a", "bone_std_mm"] == pytest.approx(1.0)  # NaN left out
    assert table.loc["b", "pa_mpjpe"] == pytest.approx(5.0)
    assert list(table.columns) == ["pa_mpjpe", "bone_std_mm"]


def test_the_report_gives_each_model_its_ratio_to_the_constant_pose_on_the_same_frames():
    import pandas as pd

    from posebridge.reporting.real_footage import PA_RATIO, comparison_table

    real = pd.DataFrame({"model": ["m", "m", "m"], "format": ["h36m_17"] * 3, "frames": [100, 300, 50],
                         "sequence": ["a", "a", "v"], "camera": ["c1", "c2", "c1"],
                         "pa_mpjpe": [40.0, 60.0, np.nan], "mean_pose_pa_mpjpe": [100.0, 120.0, np.nan],
                         "reprojection_px": [0.3, 0.3, 0.0], "bone_std_mm": [20.0, 30.0, 25.0]})
    table = comparison_table(real, None)
    row = table.loc[("m", "h36m_17")]
    pa, constant = (100 * 40 + 300 * 60) / 400, (100 * 100 + 300 * 120) / 400
    assert row["PA-MPJPE"] == pytest.approx(pa) and row["mean pose PA"] == pytest.approx(constant)
    assert row[PA_RATIO] == pytest.approx(pa / constant)  # 0.478: the ratio of the means, not a mean of ratios
    columns = list(table.columns)
    assert columns.index(PA_RATIO) == columns.index("mean pose PA") + 1


def test_views_carry_per_joint_errors_and_the_mean_of_the_formats(tmp_path):
    import torch

    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation import metrics
    from posebridge.evaluation.real_footage import FORMATS_MEAN, evaluate_takes, lift_sequence
    from posebridge.geometry import skeletons
    from posebridge.inference.lift import load_model
    from posebridge.models.files import write_torch_file
    from posebridge.models.lifter import SeparateHeadLifter
    from test_triangulation import motion, observe, rig

    cameras, truth = rig(), motion(30)
    dataset_path, detections_path = write_rig_take(tmp_path, cameras, truth, observe(cameras, truth))
    joint_columns = [f"pa_{j}" for j in label_free.LIMB_JOINTS]
    for formats in (["h36m_17"], ["h36m_17", "coco_19"]):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            lifter = SeparateHeadLifter(formats, filter_widths=(3,), channels=16)
        folder = tmp_path / "-".join(formats)
        folder.mkdir()
        write_torch_file(folder / "model.pt", lifter.file_dict(
            mean_pose={f: np.zeros((skeletons.get(f).num_joints, 3)) for f in formats}))
        model = load_model(folder)
        with open_dataset(dataset_path) as dataset, read_detections(detections_path) as detections:
            views, _ = evaluate_takes(model, dataset, detections, formats_mean=True)
            for _, row in views.iterrows():  # every joint is seen: the joints' mean is the PA-MPJPE
                assert row[joint_columns].mean() == pytest.approx(row["pa_mpjpe"], rel=1e-9)
            mean_rows = views[views["format"] == FORMATS_MEAN].set_index("camera")
            assert list(mean_rows.index) == [c.name for c in cameras] and (mean_rows["frames"] == 30).all()
            if len(formats) == 1:  # the mean of one format is that format, scored alike
                own = views[views["format"] == "h36m_17"].set_index("camera")
                for column in ["pa_mpjpe", "n_mpjpe"] + joint_columns:
                    np.testing.assert_allclose(mean_rows[column], own[column], rtol=1e-6)  # float32 poses
                continue
            for camera in cameras:  # the mean pose of the two heads, scored independently
                limbs = []
                for fmt, (pose, _) in lift_sequence(model, detections.get("take", camera.name), camera).items():
                    joints = label_free.limb_joints(pose, fmt).astype(np.float64)
                    limbs.append(joints - joints[:, [6, 7]].mean(axis=1, keepdims=True))
                reference = label_free.limb_joints(camera.world_to_camera(truth), "coco_17")
                reference = reference - reference[:, [6, 7]].mean(axis=1, keepdims=True)
                expected = metrics.pa_mpjpe(np.mean(limbs, axis=0), reference)
                assert mean_rows.loc[camera.name, "pa_mpjpe"] == pytest.approx(expected, rel=1e-9)
