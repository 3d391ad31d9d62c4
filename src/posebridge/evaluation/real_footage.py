"""A model on real footage: calibrated multi-view takes against their triangulation, and
monocular videos label-free (the measures: ``evaluation.label_free``).

``evaluate_takes`` lifts every view of every take of a triangulated dataset alone (each view's
whole sequence, so the lifter has its temporal context) and scores, per view and skeleton
format, the frames in which the view's 2D shows the triangulated person (its median
reprojection error, each joint matched to itself or its mirror, under ``PERSON_ERROR_PX``: in a
multi-person take a single-person detector may follow someone else in one view).
``evaluate_video`` lifts one video's main person track and gives the label-free measures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from posebridge.evaluation import label_free
from posebridge.geometry import skeletons

PERSON_ERROR_PX = 60.0  # as triangulation's person_error_px: a view showing the triangulated person
KEYPOINT_FORMAT = "coco_17"
FORMATS_MEAN = "mean of formats"  # the format column of ``formats_mean`` rows


def lift_sequence(model, keypoints: np.ndarray, camera) -> dict[str, tuple]:
    """format -> (poses (T, J, 3) root-relative camera mm, trajectory (T, 3) camera mm) of one
    view's COCO-17 keypoints (T, 17, 3) seen by ``camera`` (its intrinsics and distortion go to
    models that read camera-normalised input), the trajectory recovered per format."""
    from posebridge.inference.lift import lift
    from posebridge.inference.predict import recover_trajectory

    poses = lift(model, keypoints, camera.width, camera.height, intrinsics=camera.intrinsics,
                 distortion=camera.distortion, distortion_model=camera.distortion_model)
    out = {}
    for fmt, pose in poses.items():
        trajectory = recover_trajectory({fmt: np.asarray(pose, np.float64)}, keypoints, camera.intrinsics)
        out[fmt] = (pose, np.full((len(pose), 3), np.nan) if trajectory is None else trajectory)
    return out


def sees_person(joints: np.ndarray, keypoints: np.ndarray, camera) -> np.ndarray:
    """(T,) bool: frames where the view's 2D (T, K, 3) shows the triangulated joints (T, K, 3)."""
    from posebridge.geometry.triangulation import reprojection_errors

    skeleton = skeletons.get(KEYPOINT_FORMAT)
    err = reprojection_errors(joints, keypoints[None], [camera])[0]
    err = np.fmin(err, reprojection_errors(joints, keypoints[None, :, list(skeleton.mirror)], [camera])[0])
    err = np.where(keypoints[..., 2] >= label_free.MIN_CONFIDENCE, err, np.nan)
    with np.errstate(all="ignore"):
        return np.array([label_free.nanmedian(e) < PERSON_ERROR_PX for e in err])


def view_rows(model, lifted: dict, keypoints: np.ndarray, reference: np.ndarray, camera) -> list[dict]:
    """One row per format of one view.

    lifted: ``lift_sequence``'s output; keypoints: the view's COCO-17 2D (T, 17, 3); reference:
    (T, 12, 3) triangulated limb joints in this camera's frame (mm, not centred), NaN on frames
    the view does not show. Columns: PA-MPJPE / N-MPJPE against the reference and each limb
    joint's PA-MPJPE (``pa_<joint>``), the same two for the mean-pose and 2D + mean-pose-depth
    baselines, reprojection error, bone-length std, root depth.
    """
    coco_limbs = label_free.limb_joints(keypoints, KEYPOINT_FORMAT)
    shown = np.isfinite(reference).any(axis=(1, 2))
    rows = []
    for fmt, (pose, trajectory) in lifted.items():
        limbs = label_free.limb_joints(pose, fmt)
        depth_error, depth_ratio = label_free.root_depth_error(trajectory, reference)
        row = {"format": fmt, "frames": int(shown.sum()),
               **label_free.errors_against(limbs, reference, per_joint=True),
               "reprojection_px": label_free.reprojection_error(limbs[shown], trajectory[shown],
                                                                coco_limbs[shown], camera.intrinsics),
               "bone_std_mm": label_free.bone_length_std(limbs[shown]),
               "root_depth_error_mm": depth_error, "root_depth_ratio": depth_ratio}
        if fmt in model.mean_pose:  # the constant pose: the Procrustes mean where the file has it
            mean_limbs = label_free.limb_joints(model.mean_pose[fmt], fmt)
            shape_limbs = label_free.limb_joints(model.mean_shape.get(fmt, model.mean_pose[fmt]), fmt)
            baselines = {"mean_pose": np.broadcast_to(shape_limbs, limbs.shape),
                         "mean_depth": label_free.mean_depth_baseline(coco_limbs, camera, mean_limbs)}
            for name, baseline in baselines.items():
                for metric, value in label_free.errors_against(baseline, reference).items():
                    row[f"{name}_{metric}"] = value
        rows.append(row)
    return rows


def formats_mean_limbs(lifted: dict) -> np.ndarray:
    """(T, 12, 3) the mean over a lift's formats of their hip-centred limb joints."""
    return np.mean([label_free.hip_centred(label_free.limb_joints(pose, fmt).astype(np.float64))
                    for fmt, (pose, _) in lifted.items()], axis=0)


def evaluate_take(model, dataset, detections, sequence: str,
                  formats_mean: bool = False) -> tuple[list[dict], list[dict]]:
    """Per-view rows (``view_rows`` + sequence, camera) and per-format cross-view rows of one take
    of a triangulated dataset (``dataset.sequence_3d`` in ``coco_17``). ``formats_mean``: each view
    also gets a row of format ``FORMATS_MEAN``, the mean of every format's limb joints scored alike
    (PA-MPJPE and N-MPJPE only): where the heads' errors differ, their mean cancels part of them,
    which heads made to agree (the skeleton bridge's aim) can also gain."""
    rows_index = dataset.index[dataset.index["sequence"] == sequence]
    joints = dataset.sequence_3d(sequence).astype(np.float64)
    view_out, world = [], {}
    for _, row in rows_index.iterrows():
        camera = dataset.camera_for(row)
        keypoints = detections.get(sequence, row["camera"])
        shown = sees_person(joints, keypoints, camera)
        reference = label_free.limb_joints(camera.world_to_camera(joints), KEYPOINT_FORMAT)
        reference = np.where(shown[:, None, None], reference, np.nan)
        lifted = lift_sequence(model, keypoints, camera)
        for values in view_rows(model, lifted, keypoints, reference, camera):
            view_out.append({"sequence": sequence, "camera": row["camera"], **values})
        for fmt, (pose, _) in lifted.items():
            limbs = label_free.limb_joints(pose, fmt) @ camera.R  # camera -> world rotation: R^T x
            world.setdefault(fmt, []).append(np.where(shown[:, None, None], limbs, np.nan))
        if formats_mean:
            mean = formats_mean_limbs(lifted)
            view_out.append({"sequence": sequence, "camera": row["camera"], "format": FORMATS_MEAN,
                             "frames": int(shown.sum()), **label_free.errors_against(mean, reference, per_joint=True)})
    cross = []
    for fmt, views in world.items():
        scaled, similar = label_free.cross_view_consistency(views)
        cross.append({"sequence": sequence, "format": fmt, "cross_view_mm": scaled, "cross_view_pa_mm": similar})
    return view_out, cross


def evaluate_takes(model, dataset, detections, formats_mean: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``evaluate_take`` over every take: (per view x format rows, per take x format cross-view rows)."""
    detections.check_against(dataset)
    views, cross = [], []
    for sequence in dataset.sequences:
        v, c = evaluate_take(model, dataset, detections, sequence, formats_mean)
        views += v
        cross += c
    return pd.DataFrame(views), pd.DataFrame(cross)


def evaluate_monocular(model, dataset, detections) -> pd.DataFrame:
    """Label-free rows (one per index row and format) of a dataset without 3D: each row's
    detections lifted as ``posebridge infer`` does (main track, gaps filled) with the row's camera
    intrinsics, then the reprojection error and bone-length stability of the lifted pose."""
    from posebridge.data.video import VideoInfo
    from posebridge.inference.infer import lift_detections
    from posebridge.inference.predict import recover_trajectory

    detections.check_against(dataset)
    rows = []
    for _, row in dataset.index.iterrows():
        camera = dataset.camera_for(row)
        info = VideoInfo(camera.width, camera.height, float(row["fps"]), int(row["frames"]))
        result = lift_detections(row["sequence"], info, detections.get(row["sequence"], row["camera"]),
                                 detections.detector, model, focal_length=float(camera.intrinsics[0]))
        valid = result.valid
        coco_limbs = label_free.limb_joints(result.keypoints[valid], KEYPOINT_FORMAT)
        for fmt in model.formats:
            pose = result.poses[fmt][valid].astype(np.float64)
            limbs = label_free.limb_joints(pose, fmt)
            trajectory = recover_trajectory({fmt: pose}, result.keypoints[valid], result.intrinsics)
            rows.append({"sequence": row["sequence"], "camera": row["camera"], "format": fmt,
                         "frames": int(valid.sum()), "bone_std_mm": label_free.bone_length_std(limbs),
                         "reprojection_px": float("nan") if trajectory is None else
                         label_free.reprojection_error(limbs, trajectory, coco_limbs, result.intrinsics)})
    return pd.DataFrame(rows)


def summarise_views(views: pd.DataFrame, keys=("format",), columns=None) -> pd.DataFrame:
    """Per ``keys`` group, the mean of each metric column over the views weighted by their scored
    frames (``frames``): every scored frame counts once, so a baseline and a model are compared on
    the same frames, and the figure does not jump between takes as a median of a few views of two
    different takes does. Rows without frames (or a NaN metric) do not count."""
    columns = [c for c in (columns or views.columns) if c not in keys and c != "frames"
               and pd.api.types.is_numeric_dtype(views[c])]

    def weighted(group: pd.DataFrame) -> pd.Series:
        out = {}
        for c in columns:
            ok = group[c].notna() & (group["frames"] > 0)
            out[c] = float(np.average(group.loc[ok, c], weights=group.loc[ok, "frames"])) if ok.any() else np.nan
        return pd.Series(out, dtype=float)

    return views.groupby(list(keys), sort=True)[list(columns) + ["frames"]].apply(weighted)


def has_triangulation(dataset) -> bool:
    """True when the dataset holds 3D joints seen by two or more cameras per take."""
    views = dataset.index.groupby("sequence")["camera"].nunique()
    return dataset.has_3d and bool((views >= 2).all())


def evaluate_real(model, dataset, detections) -> pd.DataFrame:
    """A model on one real dataset, one row per sequence x camera x format: against the
    triangulation (with cross-view columns) when the dataset has one, label-free otherwise."""
    from posebridge.errors import ConfigError

    for what, fmt in (("the model takes", model.keypoint_format), (f"{detections.path} holds",
                                                                    detections.keypoint_format)):
        if fmt != KEYPOINT_FORMAT:
            raise ConfigError(f"real-footage measures read {KEYPOINT_FORMAT} keypoints; {what} {fmt}")
    if not has_triangulation(dataset):
        return evaluate_monocular(model, dataset, detections)
    views, cross = evaluate_takes(model, dataset, detections)
    return views.merge(cross, on=["sequence", "format"], how="left")
