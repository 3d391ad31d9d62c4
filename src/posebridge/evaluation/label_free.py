"""Measures of a lifter on real footage, where no motion capture says what the 3D should be.

Usable on any video (monocular):

- **reprojection error** (px): the lifted pose placed at its recovered camera-space trajectory
  (``inference.predict.recover_trajectory``: the root position that best explains the 2D) and
  projected through the camera, against the input 2D, on the 12 limb joints (median over the
  confident keypoints). Low says the pose agrees with what the camera saw; it cannot see depth
  errors along the rays.
- **bone-length stability** (mm): the standard deviation over time of each limb bone's length
  (upper arms, forearms, thighs, shins, shoulder and hip widths), averaged over the bones. A
  person's bones do not change length; a lifter that loses the body does.

On calibrated multi-view footage:

- **cross-view consistency** (mm): each view lifted alone, rotated into the world with its
  camera's calibration, then compared between every pair of views after aligning translation
  and scale (the calibration fixes the rotation), and after a full similarity alignment.
- **against triangulation** (``posebridge triangulate``): PA-MPJPE and N-MPJPE of each view's
  lifted pose against the triangulated joints seen from that camera, on the 12 limb joints that
  COCO and every skeleton format share (``LIMB_JOINTS``: shoulders, elbows, wrists, hips,
  knees, ankles), centred on the hip midpoint; beside two baselines that see no lifter: the
  **mean pose** (the model's mean training pose, every frame) and **2D + mean-pose depth** (the
  input 2D back-projected along its camera rays to the mean pose's depths, placed at the distance
  where its limbs are as long as the mean pose's). And the **root depth**: the recovered
  trajectory's distance from the camera against the triangulated hip midpoint's.

Metrics come from ``evaluation.metrics`` (PA-MPJPE: Procrustes; N-MPJPE: scale alignment,
Rhodin et al. CVPR 2018).
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np

from posebridge.evaluation import metrics
from posebridge.geometry import skeletons

LIMB_JOINTS = ("lshoulder", "rshoulder", "lelbow", "relbow", "lwrist", "rwrist",
               "lhip", "rhip", "lknee", "rknee", "lankle", "rankle")
LIMB_BONES = (("lshoulder", "lelbow"), ("lelbow", "lwrist"), ("rshoulder", "relbow"), ("relbow", "rwrist"),
              ("lhip", "lknee"), ("lknee", "lankle"), ("rhip", "rknee"), ("rknee", "rankle"),
              ("lshoulder", "rshoulder"), ("lhip", "rhip"))
HIPS = (LIMB_JOINTS.index("lhip"), LIMB_JOINTS.index("rhip"))
MIN_CONFIDENCE = 0.3  # 2D keypoints below this do not count in the reprojection error


def limb_joints(joints: np.ndarray, skeleton) -> np.ndarray:
    """(..., 12, 3) the ``LIMB_JOINTS`` of poses (..., J, 3) in ``skeleton`` (a format or its name)."""
    skeleton = skeletons.get(skeleton)
    return np.asarray(joints)[..., [skeleton.index(n) for n in LIMB_JOINTS], :]


def hip_centred(limbs: np.ndarray) -> np.ndarray:
    """Limb joints (..., 12, 3) minus their hip midpoint."""
    return limbs - limbs[..., HIPS, :].mean(axis=-2, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Any video


def reprojection_error(limbs_cam: np.ndarray, trajectory: np.ndarray, keypoints: np.ndarray,
                       intrinsics, min_confidence: float = MIN_CONFIDENCE) -> float:
    """Median px distance between the lifted limb joints placed on the trajectory and the 2D.

    limbs_cam: (T, 12, 3) root-relative camera-space mm; trajectory: (T, 3) mm, the root's
    camera-space position; keypoints: (T, 12, 3) px + confidence of the same joints; intrinsics:
    (fx, fy, cx, cy) px of a pinhole camera. Frames or joints with NaN are skipped.
    """
    X = np.asarray(limbs_cam, np.float64) + np.asarray(trajectory, np.float64)[:, None]
    fx, fy, cx, cy = intrinsics
    with np.errstate(all="ignore"):
        uv = np.stack([fx * X[..., 0] / X[..., 2] + cx, fy * X[..., 1] / X[..., 2] + cy], axis=-1)
    error = np.linalg.norm(uv - keypoints[..., :2], axis=-1)
    keep = (keypoints[..., 2] >= min_confidence) & np.isfinite(error) & (X[..., 2] > 0)
    return float(np.median(error[keep])) if keep.any() else float("nan")


def bone_length_std(limbs: np.ndarray) -> float:
    """Mean over ``LIMB_BONES`` of each bone length's standard deviation over time (mm).

    limbs: (T, 12, 3) mm; frames where a bone's joints are missing are skipped for that bone.
    """
    stds = []
    for a, b in LIMB_BONES:
        length = np.linalg.norm(limbs[:, LIMB_JOINTS.index(a)] - limbs[:, LIMB_JOINTS.index(b)], axis=-1)
        length = length[np.isfinite(length)]
        if len(length) > 1:
            stds.append(length.std())
    return float(np.mean(stds)) if stds else float("nan")


# ---------------------------------------------------------------------------------------------
# Calibrated multi-view footage


def cross_view_consistency(limbs_world: list[np.ndarray]) -> tuple[float, float]:
    """Agreement of the views' lifted poses in the world.

    limbs_world: per view, (T, 12, 3) limb joints rotated into the world (``R^T X_cam``), same
    frames in every view. Returns the mean over view pairs of the MPJPE after translation and
    scale alignment (rotation kept), and after a similarity (Procrustes) alignment, in mm.
    """
    scaled, similar = [], []
    for a, b in combinations(range(len(limbs_world)), 2):
        pa, pb = hip_centred(limbs_world[a]), hip_centred(limbs_world[b])
        scaled.append(metrics.n_mpjpe(pa, pb))
        similar.append(metrics.pa_mpjpe(pa, pb))
    if not scaled:
        return float("nan"), float("nan")
    return float(np.nanmean(scaled)), float(np.nanmean(similar))


def errors_against(pred: np.ndarray, reference: np.ndarray, per_joint: bool = False) -> dict[str, float]:
    """PA-MPJPE and N-MPJPE (mm) of limb joints (T, 12, 3) against reference limb joints in the
    same camera frame, both centred on the hip midpoint (reference NaN joints are skipped);
    ``per_joint`` adds ``pa_<joint>``, each limb joint's PA-MPJPE under the same alignment (which
    joints carry a view's error: the wrists' depth, a hip's definition)."""
    pred, reference = hip_centred(pred), hip_centred(reference)
    errors = {"pa_mpjpe": metrics.pa_mpjpe(pred, reference), "n_mpjpe": metrics.n_mpjpe(pred, reference)}
    if per_joint:
        joints = metrics.pa_joint_errors(pred, reference)
        errors.update((f"pa_{name}", float(e)) for name, e in zip(LIMB_JOINTS, joints))
    return errors


def mean_depth_baseline(keypoints: np.ndarray, camera, mean_limbs: np.ndarray) -> np.ndarray:
    """The "2D + mean-pose depth" pose: (T, 12, 3) camera-space mm.

    keypoints: (T, 12, >=2) px of the limb joints; camera: the view's ``Camera`` (its 2D is
    undistorted to rays); mean_limbs: (12, 3) root-relative camera-space mean pose. Joint j lies
    on its ray at depth ``D + z_j`` (z_j the mean pose's depth offset from its hip midpoint); D
    makes the limbs (``LIMB_BONES``) as long in sum as the mean pose's.
    """
    from posebridge.geometry.cameras import undistort_points

    rays = undistort_points(keypoints[..., :2], camera.intrinsics, camera.distortion, normalised=True,
                            model=camera.distortion_model)
    rays = np.concatenate([rays, np.ones(rays.shape[:-1] + (1,))], axis=-1)  # (T, 12, 3), z = 1
    offsets = hip_centred(mean_limbs)[:, 2]
    bones = [(LIMB_JOINTS.index(a), LIMB_JOINTS.index(b)) for a, b in LIMB_BONES]
    mean_length = sum(np.linalg.norm(mean_limbs[a] - mean_limbs[b]) for a, b in bones)
    ray_length = sum(np.linalg.norm(rays[:, a] - rays[:, b], axis=-1) for a, b in bones)  # (T,)
    with np.errstate(all="ignore"):
        distance = mean_length / ray_length
    return (distance[:, None] + offsets[None, :])[..., None] * rays


def root_depth_error(trajectory: np.ndarray, reference_limbs_cam: np.ndarray) -> tuple[float, float]:
    """Median |z_pred - z_ref| (mm) and median z_pred / z_ref of the recovered root depth against
    the reference's hip midpoint depth (T, 12, 3) camera-space mm."""
    z_ref = reference_limbs_cam[:, HIPS, 2].mean(axis=1)
    z_pred = np.asarray(trajectory)[:, 2]
    keep = np.isfinite(z_ref) & np.isfinite(z_pred) & (z_ref > 0)
    if not keep.any():
        return float("nan"), float("nan")
    return (float(np.median(np.abs(z_pred[keep] - z_ref[keep]))),
            float(np.median(z_pred[keep] / z_ref[keep])))


def nanmedian(values) -> float:
    """Median of the finite values (NaN when there are none), without numpy's warning."""
    values = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")
