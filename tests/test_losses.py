"""Training losses: translation recovery (exact and against a generic least-squares solver),
mean-relative invariance, projection and absolute losses against hand-computed values."""

import numpy as np
import pytest
import torch

from posebridge.training.losses import (
    absolute_l1,
    absolute_pose,
    masked_mpjpe,
    mean_relative_l1,
    projection_l1,
    recover_translation,
)


def random_poses(B=8, J=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    rel = torch.randn(B, J, 3, generator=g, dtype=torch.float64) * 300  # mm
    T = torch.stack([torch.randn(B, generator=g, dtype=torch.float64) * 500,
                     torch.randn(B, generator=g, dtype=torch.float64) * 300,
                     3000 + torch.rand(B, generator=g, dtype=torch.float64) * 3000], -1)
    return rel, T


def test_recover_translation_is_exact_for_noise_free_projections():
    rel, T = random_poses()
    absolute = rel + T[:, None]
    uv = absolute[..., :2] / absolute[..., 2:]
    weights = torch.ones(rel.shape[:2], dtype=torch.float64)
    got = recover_translation(rel, uv, weights)
    assert torch.allclose(got, T, atol=1e-6, rtol=0)
    # the relative pose may be centred anywhere: T absorbs the offset
    offset = torch.tensor([10.0, -20.0, 30.0], dtype=torch.float64)
    assert torch.allclose(recover_translation(rel + offset, uv, weights), T - offset, atol=1e-6)
    # zero-weight joints may carry garbage 2D
    weights[:, :5] = 0
    uv_bad = uv.clone()
    uv_bad[:, :5] = 7.0
    assert torch.allclose(recover_translation(rel, uv_bad, weights), T, atol=1e-6)


def test_recover_translation_matches_weighted_lstsq():
    rel, T = random_poses(B=5, seed=1)
    absolute = rel + T[:, None]
    g = torch.Generator().manual_seed(2)
    uv = absolute[..., :2] / absolute[..., 2:] + torch.randn(5, 17, 2, generator=g, dtype=torch.float64) * 0.01
    w = torch.rand(5, 17, generator=g, dtype=torch.float64)
    got = recover_translation(rel, uv, w).numpy()
    for b in range(5):  # the stacked linear system, rows scaled by sqrt(weight)
        u, v = uv[b, :, 0].numpy(), uv[b, :, 1].numpy()
        x, y, z = rel[b].numpy().T
        ones, zeros = np.ones(17), np.zeros(17)
        A = np.concatenate([np.stack([ones, zeros, -u], 1), np.stack([zeros, ones, -v], 1)])
        rhs = np.concatenate([u * z - x, v * z - y])
        sw = np.sqrt(np.concatenate([w[b].numpy()] * 2))
        ref = np.linalg.lstsq(A * sw[:, None], rhs * sw, rcond=None)[0]
        np.testing.assert_allclose(got[b], ref, rtol=1e-8, atol=1e-6)


def test_recover_translation_is_differentiable_and_safe_without_weights():
    rel, T = random_poses(B=3)
    rel.requires_grad_(True)
    uv = ((rel + T[:, None])[..., :2] / (rel + T[:, None])[..., 2:]).detach()
    w = torch.ones(3, 17, dtype=torch.float64)
    w[2] = 0
    out = recover_translation(rel, uv, w)
    assert torch.equal(out[2], torch.zeros(3, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(rel.grad).all()


def test_mean_relative_l1_is_translation_invariant_and_masks():
    rel, _ = random_poses(B=4)
    gt = rel + torch.randn_like(rel) * 20
    valid = torch.ones(4, 17, dtype=torch.bool)
    base = mean_relative_l1(rel, gt, valid)
    shifted = rel + torch.tensor([[100.0, -5.0, 3.0], [0, 0, 1e4], [-7, 8, 9], [1, 1, 1]],
                                 dtype=torch.float64)[:, None]
    assert torch.allclose(mean_relative_l1(shifted, gt, valid), base, rtol=1e-12)
    assert torch.allclose(mean_relative_l1(rel, gt - 55.0, valid), base, rtol=1e-12)
    # hand-computed value for one pose
    p = torch.tensor([[[0.0, 0, 0], [2, 0, 0]]])
    q = torch.tensor([[[0.0, 0, 0], [0, 2, 0]]])
    # centred: p -> (-1,0,0),(1,0,0); q -> (0,-1,0),(0,1,0); |diff| sums 4 over 6 coordinates
    assert mean_relative_l1(p, q, torch.ones(1, 2, dtype=torch.bool)).item() == pytest.approx(4 / 6)
    # NaN ground truth where invalid: same as dropping those joints
    gt_nan = gt.clone()
    gt_nan[:, 3] = float("nan")
    valid_nan = valid.clone()
    valid_nan[:, 3] = False
    keep = [j for j in range(17) if j != 3]
    dropped = mean_relative_l1(rel[:, keep], gt[:, keep], valid[:, keep])
    assert torch.allclose(mean_relative_l1(rel, gt_nan, valid_nan), dropped, rtol=1e-12)


def test_mean_relative_l1_centres_each_format_group_separately():
    rel, _ = random_poses(B=2)
    gt = rel + torch.randn_like(rel) * 10
    groups = torch.tensor([0] * 10 + [1] * 7)
    valid = torch.ones(2, 17, dtype=torch.bool)
    moved = rel.clone()
    moved[:, 10:] += torch.tensor([500.0, 0, -200], dtype=torch.float64)  # only group 1 moves
    a = mean_relative_l1(rel, gt, valid, groups)
    assert torch.allclose(mean_relative_l1(moved, gt, valid, groups), a, rtol=1e-12)
    assert not torch.allclose(mean_relative_l1(moved, gt, valid), mean_relative_l1(rel, gt, valid))


def brown_conrady(X, K, d):
    """Independent reference projection (OpenCV formula) for one camera."""
    x, y = X[..., 0] / X[..., 2], X[..., 1] / X[..., 2]
    k1, k2, k3, p1, p2 = d
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([K[0] * xd + K[2], K[1] * yd + K[3]], -1)


def test_projection_l1_against_reference_projection():
    rel, T = random_poses(B=2)
    X = (rel + T[:, None]) / 1000  # metres
    K = np.array([1100.0, 1000.0, 500.0, 480.0])
    d = np.array([-0.2, 0.24, -0.003, -0.001, -0.0014])
    intr = torch.tensor(K).expand(2, 4)
    dist = torch.tensor(d).expand(2, 5)
    target = torch.from_numpy(brown_conrady(X.numpy(), K, d))
    valid = torch.ones(2, 17, dtype=torch.bool)
    assert projection_l1(X, target, intr, dist, valid).item() < 1e-10
    shifted = target + torch.tensor([11.0, -20.0], dtype=torch.float64)
    expected = (11 / 1100 + 20 / 1000) / 2
    assert projection_l1(X, shifted, intr, dist, valid).item() == pytest.approx(expected, rel=1e-9)
    # joints nearer than min_depth and clipped errors
    near = X.clone()
    near[:, 0, 2] = 0.01
    far_off = projection_l1(near, target, intr, dist, valid, min_depth=0.5)
    keep = valid.clone()
    keep[:, 0] = False
    assert far_off.item() == pytest.approx(projection_l1(X, target, intr, dist, keep).item(), abs=1e-12)
    huge = target + 1e6
    assert projection_l1(X, huge, intr, dist, valid, max_error=1.0).item() == pytest.approx(1.0)


def test_absolute_l1_weights_depth_and_absolute_pose_uses_target_rays():
    rel, T = random_poses(B=2)
    gt = rel + T[:, None]
    valid = torch.ones(2, 17, dtype=torch.bool)
    err = gt + torch.tensor([0.0, 0.0, 30.0], dtype=torch.float64)
    assert absolute_l1(err, gt, valid, depth_weight=0.2).item() == pytest.approx(30 * 0.2 / 3)
    assert absolute_l1(err, gt, valid, depth_weight=1.0).item() == pytest.approx(30 / 3)
    # a perfect relative pose (any offset) is put exactly where the target is
    assert torch.allclose(absolute_pose(rel - 77.0, gt, valid), gt, atol=1e-6)
    assert masked_mpjpe(gt + torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64), gt, valid).item() == pytest.approx(5)


def test_losses_ignore_nan_targets_in_value_and_gradient():
    rel, T = random_poses(B=2)
    gt = rel + T[:, None]
    gt[:, 5] = float("nan")
    valid = ~torch.isnan(gt).any(-1)
    pred = (rel + torch.randn_like(rel)).requires_grad_(True)
    absolute = absolute_pose(pred, gt, valid)
    K = torch.tensor([1000.0, 1000.0, 500.0, 500.0], dtype=torch.float64).expand(2, 4)
    target_px = torch.nan_to_num(gt[..., :2] / gt[..., 2:]) * 1000 + 500
    total = (mean_relative_l1(pred, gt, valid) + absolute_l1(absolute, gt, valid)
             + projection_l1(absolute, target_px, K, None, valid))
    assert torch.isfinite(total)
    total.backward()
    assert torch.isfinite(pred.grad).all()
