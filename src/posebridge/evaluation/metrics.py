"""3D pose metrics (millimetres): MPJPE, PA-MPJPE, N-MPJPE, MPJVE, PCK, AUC, CPS.

Definitions: MPJPE and its per-action averaging as in the Human3.6M protocol (Ionescu et al.,
TPAMI 2014); PA-MPJPE (after a per-pose similarity Procrustes alignment, "protocol 2"), N-MPJPE
(after the optimal per-pose scale) and MPJVE (error of first differences in time) as reported by
VideoPose3D (Pavllo et al., CVPR 2019); PCK below a threshold as in the MPI-INF-3DHP protocol
(Mehta et al., 3DV 2017), whose AUC averages PCK over thresholds 0-150 mm where this module's AUC
is the continuous mean of max(0, 1 - d / t); CPS, the share of poses whose worst joint error is
below a threshold (root-relative, no alignment). Every metric takes ``pred`` and ``gt`` of shape
(..., J, 3), numpy arrays or torch tensors, and returns a Python float. Nothing here root-aligns:
for protocol 1 the caller passes root-relative poses.

Missing joints: a joint that is NaN in ``gt`` is ignored. Means are taken over all valid
(pose, joint) pairs, so dropping a joint everywhere gives the same number as deleting it; a pose
without any valid joint contributes nothing (and is not counted by CPS). A NaN in ``pred`` at a
valid joint is a bug upstream and propagates to the result instead of being hidden.

All arithmetic is float64 numpy, so numpy and torch inputs give identical floats.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch; .double() also takes bf16/half
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _prepare(pred, gt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both as float64 (..., J, 3), gt's NaN joints zeroed, and the validity mask (..., J)."""
    pred, gt = _as_numpy(pred), _as_numpy(gt)
    if pred.shape != gt.shape or pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must have the same shape (..., J, 3); got {pred.shape} and {gt.shape}")
    valid = np.isfinite(gt).all(axis=-1)
    gt = np.where(valid[..., None], gt, 0.0)
    return pred, gt, valid


def _joint_distances(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pred - gt, axis=-1)


def _mean_valid(values: np.ndarray, valid: np.ndarray) -> float:
    if not valid.any():
        return float("nan")
    return float(values[valid].mean())


# ---------------------------------------------------------------------------------------------
# Alignments (batched over all leading dimensions)

def procrustes_align(pred, gt) -> np.ndarray:
    """``pred`` moved onto ``gt`` by the optimal similarity transform, per pose.

    Rotation (no reflection: the SVD's last singular direction flips when det < 0), one uniform
    scale and a translation, fitted on the joints valid in ``gt`` only. Shapes (..., J, 3);
    returns float64 (..., J, 3). A pose with no valid joint comes back unchanged; one whose
    prediction is NaN/inf at a valid joint comes back all NaN.
    """
    pred, gt, valid = _prepare(pred, gt)
    finite = np.isfinite(pred)
    # a pose whose prediction is not finite at a valid joint cannot be aligned: it becomes NaN
    broken = (~finite.all(axis=-1) & valid).any(axis=-1)
    pred_in = pred
    pred = np.where(finite, pred, 0.0)
    # weighted sums over joints as (1, J) @ (J, 3) matmuls: much faster than strided reductions
    w = valid.astype(np.float64)[..., None, :]  # (..., 1, J)
    count = np.maximum(w.sum(axis=-1, keepdims=True), 1.0)
    mu_p = (w @ pred) / count  # (..., 1, 3)
    mu_g = (w @ gt) / count
    p0 = (pred - mu_p) * np.swapaxes(w, -1, -2)
    g0 = (gt - mu_g) * np.swapaxes(w, -1, -2)

    # minimise |s p0 M - g0|: H = p0^T g0 = U S V^T, M = U D V^T, s = tr(D S) / |p0|^2
    h = np.swapaxes(p0, -1, -2) @ g0
    u, sing, vt = np.linalg.svd(h)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    d = np.ones_like(sing)
    d[..., -1] = np.where(sign == 0, 1.0, sign)
    rot = (u * d[..., None, :]) @ vt
    norm_p = (p0.reshape(*p0.shape[:-2], -1) ** 2).sum(axis=-1)
    trace = (sing * d).sum(axis=-1)
    scale = np.divide(trace, norm_p, out=np.zeros_like(trace), where=norm_p > 0)
    aligned = scale[..., None, None] * ((pred - mu_p) @ rot) + mu_g
    aligned = np.where(broken[..., None, None], np.nan, aligned)
    return np.where(valid.any(axis=-1)[..., None, None], aligned, pred_in)


def scale_align(pred, gt) -> np.ndarray:
    """``pred`` scaled by s = <p, g> / <p, p> per pose (valid joints only; no rotation or shift).

    The poses must already be root-relative. Shapes (..., J, 3); returns float64 (..., J, 3).
    """
    pred, gt, valid = _prepare(pred, gt)
    w = valid[..., None]
    p = np.where(w, pred, 0.0)
    pp = (p * p).sum(axis=(-2, -1))
    pg = (p * gt).sum(axis=(-2, -1))
    scale = np.divide(pg, pp, out=np.ones_like(pp), where=pp > 0)
    return scale[..., None, None] * pred


def rotation_onto(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) rotation R (no reflection) minimising |(source - c_s) R - (target - c_t)| for two
    poses (J, 3) without NaN (Kabsch 1976; c = each pose's joint centroid)."""
    h = (source - source.mean(0)).T @ (target - target.mean(0))
    u, _, vt = np.linalg.svd(h)
    d = np.ones(3)
    d[-1] = 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0
    return (u * d) @ vt


def procrustes_mean(poses, iterations: int = 10) -> np.ndarray:
    """(J, 3) generalised Procrustes mean (Gower 1975) of poses (N, J, 3), centred on its centroid.

    Each pose is rotated (no scale) about its centroid onto the running mean and the results are
    averaged, until the mean stops changing: the pose's shape without its orientation. A plain
    average of differently oriented poses shrinks towards a blob (a person lying and one standing
    average to neither), which makes a weak constant-pose baseline under PA-MPJPE; this one is
    the constant pose a rotation-invariant metric should be compared with. Poses with a NaN are
    left out; the first pose starts the iteration, so the result's orientation is arbitrary
    (callers turn it with ``rotation_onto``).

    >>> pose = np.array([[0., 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]])
    >>> turned = [pose @ np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ...           for a in (0.0, 1.0, 2.0)]
    >>> mean = procrustes_mean(np.stack(turned))
    >>> bool(np.allclose(np.linalg.norm(mean[1:] - mean[0], axis=-1), [1, 2, 3]))
    True
    """
    poses = _as_numpy(poses)
    poses = poses[np.isfinite(poses).all(axis=(-2, -1))]
    if len(poses) == 0:
        raise ValueError("procrustes_mean needs at least one pose without NaN")
    centred = poses - poses.mean(axis=-2, keepdims=True)
    mean = centred[0]
    for _ in range(iterations):
        h = np.swapaxes(centred, -1, -2) @ mean  # (N, 3, 3) per-pose cross-covariance
        u, _, vt = np.linalg.svd(h)
        d = np.ones((len(poses), 3))
        d[:, -1] = np.where(np.linalg.det(u) * np.linalg.det(vt) >= 0, 1.0, -1.0)
        new = (centred @ ((u * d[:, None, :]) @ vt)).mean(axis=0)
        if np.allclose(new, mean, atol=1e-9 * max(np.abs(mean).max(), 1.0)):
            return new
        mean = new
    return mean


# ---------------------------------------------------------------------------------------------
# Joint errors

def _errors(pred, gt, align: str) -> tuple[np.ndarray, np.ndarray]:
    """Joint distances (..., J) after the alignment, and the gt validity mask (..., J)."""
    if align == "procrustes":
        pred = procrustes_align(pred, gt)
    elif align == "scale":
        pred = scale_align(pred, gt)
    elif align != "none":
        raise ValueError(f"unknown alignment {align!r} (known: none, procrustes, scale)")
    pred, gt, valid = _prepare(pred, gt)
    return _joint_distances(pred, gt), valid


# ---------------------------------------------------------------------------------------------
# Metrics

def mpjpe(pred, gt) -> float:
    """Mean per-joint position error (mm) over all valid joints of all poses."""
    return _mean_valid(*_errors(pred, gt, "none"))


def pa_mpjpe(pred, gt) -> float:
    """MPJPE after per-pose Procrustes alignment (similarity transform; protocol 2)."""
    return _mean_valid(*_errors(pred, gt, "procrustes"))


def pa_joint_errors(pred, gt) -> np.ndarray:
    """(J,) PA-MPJPE of each joint: its mean distance over the poses after the per-pose Procrustes
    alignment of all joints (as ``pa_mpjpe``, whose value is their mean weighted by valid poses);
    NaN for a joint never valid in ``gt``."""
    distances, valid = _errors(pred, gt, "procrustes")
    distances, valid = distances.reshape(-1, distances.shape[-1]), valid.reshape(-1, valid.shape[-1])
    counts = valid.sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.where(valid, distances, 0.0).sum(axis=0) / counts, np.nan)


def n_mpjpe(pred, gt) -> float:
    """MPJPE after per-pose scale alignment s = <p, g> / <p, p> (inputs root-relative)."""
    return _mean_valid(*_errors(pred, gt, "scale"))


def mpjve(pred, gt) -> float:
    """Mean per-joint velocity error: MPJPE of first differences along time (axis -3), mm/frame.

    Shapes (..., T, J, 3). A difference is valid when the gt joint is valid in both frames.
    """
    pred, gt = _as_numpy(pred), _as_numpy(gt)
    if pred.ndim < 3:
        raise ValueError(f"mpjve needs a time axis: shape (..., T, J, 3); got {pred.shape}")
    return mpjpe(np.diff(pred, axis=-3), np.diff(gt, axis=-3))


def pck(pred, gt, threshold: float = 150.0) -> float:
    """Percentage of valid joints whose error is strictly below ``threshold`` mm."""
    dist, valid = _errors(pred, gt, "none")
    return _mean_valid((dist < threshold).astype(np.float64), valid) * 100.0


def auc(pred, gt, threshold: float = 150.0) -> float:
    """Continuous area under the PCK curve: mean of max(0, 1 - d / threshold) * 100."""
    dist, valid = _errors(pred, gt, "none")
    return _mean_valid(np.maximum(0.0, 1.0 - dist / threshold), valid) * 100.0


def cps(pred, gt, threshold: float = 200.0) -> float:
    """Correct pose score: percentage of poses whose worst valid joint error is below ``threshold``.

    Poses without a valid joint are not counted.
    """
    dist, valid = _errors(pred, gt, "none")
    dist = np.where(valid, dist, -np.inf)
    dist = np.where(np.isnan(dist), np.inf, dist)  # a NaN prediction is never correct
    worst = dist.max(axis=-1)
    has_joint = valid.any(axis=-1)
    return _mean_valid((worst < threshold).astype(np.float64), has_joint) * 100.0


# ---------------------------------------------------------------------------------------------
# Aggregation

def aggregate_h36m(frame, metric_cols: Sequence[str], action_col: str = "action",
                   weight_col: str | None = "frames"):
    """Human3.6M-style average: per action (weighted by ``weight_col`` within it), then over actions.

    ``frame`` has one row per evaluated unit (e.g. sequence x camera) with the metric columns,
    the action and the weight (frames). Rows whose metric is NaN are left out of that metric.
    Returns a DataFrame with columns ``[action_col, *metric_cols, weight_col]``: one row per
    action (in order of first appearance; the weight column holds the summed weights) and a
    final row with action "average" holding the unweighted mean over actions and the total weight.
    """
    import pandas as pd

    metric_cols = list(metric_cols)
    missing = [c for c in [action_col, *metric_cols, *([weight_col] if weight_col else [])]
               if c not in frame.columns]
    if missing:
        raise KeyError(f"aggregate_h36m: missing columns {missing}")
    values = frame[metric_cols].to_numpy(dtype=np.float64)
    weights = (frame[weight_col].to_numpy(dtype=np.float64) if weight_col
               else np.ones(len(frame)))
    present = ~np.isnan(values)
    w = np.where(present, weights[:, None], 0.0)
    parts = pd.DataFrame(np.where(present, values, 0.0) * w, columns=metric_cols)
    parts_w = pd.DataFrame(w, columns=metric_cols)
    keys = frame[action_col].to_numpy()
    num = parts.groupby(keys, sort=False).sum()
    den = parts_w.groupby(keys, sort=False).sum()
    per_action = num / den.where(den > 0)
    out_weight = weight_col or "rows"
    per_action[out_weight] = pd.Series(weights).groupby(keys, sort=False).sum().to_numpy()
    per_action.index.name = action_col
    per_action = per_action.reset_index()
    average = {action_col: "average", **{c: per_action[c].mean() for c in metric_cols},
               out_weight: per_action[out_weight].sum()}
    return pd.concat([per_action, pd.DataFrame([average])], ignore_index=True)
