"""Training losses of the separate-head lifter: MeTRAbs' L_meanrel, L_proj and L_abs (Sárándi
et al., "MeTRAbs: metric-scale truncation-robust heatmaps for absolute 3D human pose estimation",
IEEE T-BIOM 2021), as Sárándi et al. train the separate-head model of the ACAE paper (WACV 2023).

All functions take torch tensors, are differentiable, and are unit-agnostic unless stated: 3D
arrays in one length unit (training uses metres), 2D in pixels with the focal length dividing
errors (so 2D errors are in normalised image units, independent of resolution).

``valid`` (B, J) masks say which joints supervise: each example supervises only its own skeleton
format's joints, and missing (NaN) ground-truth joints are excluded. Ground truth may hold NaN
where ``valid`` is False; it never reaches an arithmetic operation.

Reductions: every loss is the mean over all valid joint coordinates of the batch (each valid
joint counts once, whatever its pose's number of valid joints).
"""

from __future__ import annotations

import torch

__all__ = ["mean_relative_l1", "recover_translation", "projection_l1", "absolute_l1",
           "absolute_pose", "masked_mpjpe"]


def _masked(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))


def _group_means(x: torch.Tensor, weight: torch.Tensor, groups: torch.Tensor | None) -> torch.Tensor:
    """Per pose (and per joint group), the weighted mean of x (B, J, C) over joints, broadcast
    back to (B, J, C)."""
    if groups is None:
        total = (x * weight[..., None]).sum(-2, keepdim=True)
        count = weight.sum(-1, keepdim=True)[..., None].clamp_min(1e-12)
        return total / count
    onehot = torch.nn.functional.one_hot(groups.to(x.device), int(groups.max()) + 1).to(x.dtype)
    total = torch.einsum("bjc,jk->bkc", x * weight[..., None], onehot)
    count = torch.einsum("bj,jk->bk", weight, onehot).clamp_min(1e-12)
    return torch.einsum("bkc,jk->bjc", total / count[..., None], onehot)


def mean_relative_l1(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
                     groups: torch.Tensor | None = None) -> torch.Tensor:
    """L_meanrel: L1 after subtracting each pose's mean over its valid joints from both.

    pred, gt (B, J, 3); valid (B, J) bool; groups (J,) optional int: joints of different groups
    (skeleton formats of the union output) are centred separately. Invariant to translating any
    pose (or any group of a pose) of ``pred`` or ``gt``.
    """
    weight = valid.to(pred.dtype)
    gt = _masked(gt, valid)
    diff = (pred - _group_means(pred, weight, groups)) - (gt - _group_means(gt, weight, groups))
    return (diff.abs() * weight[..., None]).sum() / (3 * weight.sum()).clamp_min(1)


def recover_translation(rel_pose: torch.Tensor, uv: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The translation T (B, 3) that makes ``rel_pose + T`` project best onto ``uv``.

    rel_pose (B, J, 3) camera-space pose relative to any origin (mm in the brief; any unit, T comes
    out in the same one); uv (B, J, 2) undistorted normalised image coordinates (x/z, y/z);
    weights (B, J) >= 0. Weighted linear least squares of, per joint,
    ``T_x - u T_z = u z - x`` and ``T_y - v T_z = v z - y``, solved in closed form: for fixed T_z
    the optimal T_x, T_y are weighted means, leaving a 1D problem in T_z. Differentiable. Exact
    for noise-free projections; T = 0 where all weights are zero, and T_z = 0 when the
    weighted uv do not spread (a single point).
    """
    w = weights.to(rel_pose.dtype)
    total = w.sum(-1, keepdim=True).clamp_min(1e-12)
    x, y, z = rel_pose.unbind(-1)
    u, v = uv.to(rel_pose.dtype).unbind(-1)
    b1 = u * z - x
    b2 = v * z - y

    def mean(a):
        return (w * a).sum(-1, keepdim=True) / total

    du, dv = u - mean(u), v - mean(v)
    num = (w * (du * (b1 - mean(b1)) + dv * (b2 - mean(b2)))).sum(-1)
    den = (w * (du * du + dv * dv)).sum(-1)
    tz = -num / den.clamp_min(1e-12)
    tx = mean(b1).squeeze(-1) + mean(u).squeeze(-1) * tz
    ty = mean(b2).squeeze(-1) + mean(v).squeeze(-1) * tz
    return torch.stack([tx, ty, tz], dim=-1)


def absolute_pose(rel_pose: torch.Tensor, target_cam: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """rel_pose + T, T recovered from ``rel_pose`` and the target joints' undistorted 2D
    (``target_cam``'s x/z, y/z), weighted by ``valid``. (B, J, 3) in, (B, J, 3) out."""
    target = _masked(target_cam, valid)
    depth = target[..., 2:3]
    uv = target[..., :2] / torch.where(depth > 0, depth, torch.ones_like(depth))
    weights = valid & (target_cam[..., 2] > 0)
    return rel_pose + recover_translation(rel_pose, uv, weights)[..., None, :]


def projection_l1(pred_cam: torch.Tensor, target_px: torch.Tensor, intrinsics: torch.Tensor,
                  distortion: torch.Tensor | None, valid: torch.Tensor,
                  min_depth: float | torch.Tensor = 0.0, max_error: float | None = 1.0,
                  distortion_model=None) -> torch.Tensor:
    """L_proj: L1 of the 2D projection (with lens distortion) of camera-space ``pred_cam``
    (B, J, 3) against ``target_px`` (B, J, 2) pixels, in pixels / focal length.

    intrinsics (B, 4) fx, fy, cx, cy; distortion (B, 5) k1, k2, k3, p1, p2 or None, applied with
    ``distortion_model`` ((B,) codes or a name; None = opencv).
    Joints predicted at depth <= ``min_depth`` (unit of ``pred_cam``; a number or (B, J)) do not
    count: near or behind the camera a projection is meaningless and its gradient (~1 / depth^2)
    would swamp every other loss; the 3D losses still pull those joints.
    Errors above ``max_error`` (normalised image units; 1 ~ half a typical field of view) are
    clipped: early in training a pose can land anywhere, and the lens polynomial far outside the
    image would otherwise give enormous losses and gradients.
    """
    from posebridge.geometry.cameras import project_points_torch

    valid = valid & (pred_cam[..., 2] > min_depth)
    projected = project_points_torch(pred_cam, intrinsics, distortion, distortion_model)
    focal = intrinsics[..., None, 0:2].to(pred_cam.dtype)
    diff = ((projected - _masked(target_px, valid)) / focal).abs()
    if max_error is not None:
        diff = diff.clamp(max=max_error)
    weight = valid.to(pred_cam.dtype)
    return (diff * weight[..., None]).sum() / (2 * weight.sum()).clamp_min(1)


def absolute_l1(pred_cam: torch.Tensor, gt_cam: torch.Tensor, valid: torch.Tensor,
                depth_weight: float = 0.2) -> torch.Tensor:
    """L_abs: L1 of absolute camera-space positions (B, J, 3) with the depth (z) error weighted by
    ``depth_weight`` (depth from a single view is the least certain coordinate)."""
    scale = torch.tensor([1.0, 1.0, depth_weight], dtype=pred_cam.dtype, device=pred_cam.device)
    diff = (pred_cam - _masked(gt_cam, valid)).abs() * scale
    weight = valid.to(pred_cam.dtype)
    return (diff * weight[..., None]).sum() / (3 * weight.sum()).clamp_min(1)


def masked_mpjpe(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean error over valid joints (no alignment), in the inputs' unit."""
    err = (pred - _masked(gt, valid)).norm(dim=-1)
    weight = valid.to(pred.dtype)
    return (err * weight).sum() / weight.sum().clamp_min(1)
