import numpy as np
import pandas as pd
import pytest
import torch

from posebridge.evaluation import metrics


def _random_rotations(rng, n):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def _poses(rng, shape=(6, 17)):
    return rng.normal(size=(*shape, 3)) * 250.0


def _along_x(distances):
    """Single-pose (J, 3) prediction/gt pair whose per-joint errors are ``distances``."""
    d = np.asarray(distances, dtype=np.float64)
    gt = np.zeros((len(d), 3))
    pred = gt.copy()
    pred[:, 0] = d
    return pred, gt


def test_worked_values_from_the_reference():
    pred, gt = _along_x([0, 50, 100, 150, 200])
    assert metrics.pck(pred, gt, 150) == pytest.approx(60.0)
    assert metrics.pck(pred, gt, 100) == pytest.approx(40.0)
    assert metrics.auc(pred, gt, 150) == pytest.approx(40.0)

    # four poses whose worst joint errors are 190, 210, 250, 70 (other joints smaller)
    worst = np.array([190.0, 210.0, 250.0, 70.0])
    gt = np.zeros((4, 3, 3))
    pred = gt.copy()
    pred[:, 0, 1] = worst
    pred[:, 1, 2] = worst / 2
    assert metrics.cps(pred, gt, 200) == pytest.approx(50.0)


def test_thresholds_are_strict():
    pred, gt = _along_x([150.0, 149.999])
    assert metrics.pck(pred, gt, 150) == pytest.approx(50.0)
    pred, gt = _along_x([200.0])
    assert metrics.cps(pred[None], gt[None], 200) == 0.0
    assert metrics.cps(pred[None], gt[None], 200.001) == 100.0


def test_mpjpe_of_known_offsets():
    gt = _poses(np.random.default_rng(0), (2, 4))
    offsets = np.array([[3, 4, 0], [0, 0, 10], [1, 2, 2], [0, 0, 0]], dtype=np.float64)  # 5, 10, 3, 0
    pred = gt + offsets
    assert metrics.mpjpe(pred, gt) == pytest.approx(4.5)


def _horn_similarity(p, g):
    """Independent reference: Horn's quaternion method for the rotation, then the optimal scale."""
    p0, g0 = p - p.mean(0), g - g.mean(0)
    s = p0.T @ g0
    sxx, sxy, sxz, syx, syy, syz, szx, szy, szz = s.ravel()
    n = np.array([
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
    ])
    w, x, y, z = np.linalg.eigh(n)[1][:, -1]
    rot = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    rp = p0 @ rot.T
    scale = (rp * g0).sum() / (p0 * p0).sum()
    return scale * rp + g.mean(0)


def test_pa_mpjpe_removes_similarity_but_not_reflection():
    rng = np.random.default_rng(1)
    gt = _poses(rng)
    rot = _random_rotations(rng, len(gt))
    scale = rng.uniform(0.5, 2.0, size=(len(gt), 1, 1))
    moved = scale * np.einsum("nij,nkj->nki", rot, gt) + rng.normal(size=(len(gt), 1, 3)) * 1000
    assert metrics.mpjpe(moved, gt) > 100
    assert metrics.pa_mpjpe(moved, gt) < 1e-8

    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert metrics.pa_mpjpe(mirrored, gt) > 50  # a reflection is not a rotation

    # on noisy predictions the alignment matches Horn's closed form, pose by pose
    noisy = moved + rng.normal(size=moved.shape) * 40
    reference = np.stack([_horn_similarity(p, g) for p, g in zip(noisy, gt)])
    np.testing.assert_allclose(metrics.procrustes_align(noisy, gt), reference, atol=1e-6)
    expected = np.linalg.norm(reference - gt, axis=-1).mean()
    assert metrics.pa_mpjpe(noisy, gt) == pytest.approx(expected, rel=1e-10)


def test_pa_joint_errors_are_each_joints_share_of_pa_mpjpe():
    rng = np.random.default_rng(3)
    gt = _poses(rng)
    noisy = gt + rng.normal(size=gt.shape) * 40
    noisy[:, 4] += 300.0  # one joint far off: its error stands out after the alignment
    reference = np.stack([_horn_similarity(p, g) for p, g in zip(noisy, gt)])
    expected = np.linalg.norm(reference - gt, axis=-1).mean(axis=0)  # (J,) over the poses
    errors = metrics.pa_joint_errors(noisy, gt)
    np.testing.assert_allclose(errors, expected, rtol=1e-10)
    assert errors.argmax() == 4
    assert errors.mean() == pytest.approx(metrics.pa_mpjpe(noisy, gt), rel=1e-12)
    # a joint missing in some poses' gt averages over the others; one never seen is NaN
    gt[:3, 2] = np.nan
    gt[:, 7] = np.nan
    errors = metrics.pa_joint_errors(noisy, gt)
    assert np.isnan(errors[7]) and np.isfinite(np.delete(errors, 7)).all()
    aligned = metrics.procrustes_align(noisy, gt)
    assert errors[2] == pytest.approx(np.linalg.norm(aligned[3:, 2] - gt[3:, 2], axis=-1).mean(), rel=1e-12)
    counts = np.isfinite(gt).all(axis=-1).sum(axis=0)
    assert np.nansum(errors * counts) / counts.sum() == pytest.approx(metrics.pa_mpjpe(noisy, gt), rel=1e-12)


def test_n_mpjpe_ignores_prediction_scale():
    rng = np.random.default_rng(2)
    gt = _poses(rng)
    pred = gt + rng.normal(size=gt.shape) * 30
    base = metrics.n_mpjpe(pred, gt)
    assert metrics.n_mpjpe(pred * 3.7, gt) == pytest.approx(base, rel=1e-12)
    assert metrics.n_mpjpe(gt * 0.4, gt) == pytest.approx(0.0, abs=1e-9)
    assert base <= metrics.mpjpe(pred, gt)
    # closed form for one pose
    p, g = pred[0], gt[0]
    s = (p * g).sum() / (p * p).sum()
    assert metrics.n_mpjpe(p, g) == pytest.approx(np.linalg.norm(s * p - g, axis=-1).mean())


def test_mpjve_of_constant_offset_and_drift():
    rng = np.random.default_rng(3)
    gt = _poses(rng, (2, 10, 5))  # (batch, T, J, 3)
    assert metrics.mpjve(gt + 123.0, gt) == pytest.approx(0.0, abs=1e-9)
    drift = np.arange(10)[None, :, None, None] * np.array([0.0, 3.0, 4.0])  # 5 mm per frame
    assert metrics.mpjve(gt + drift, gt) == pytest.approx(5.0)


ALL_METRICS = [metrics.mpjpe, metrics.pa_mpjpe, metrics.n_mpjpe, metrics.mpjve, metrics.pck,
               metrics.auc, metrics.cps]


@pytest.mark.parametrize("metric", ALL_METRICS, ids=lambda f: f.__name__)
def test_nan_joints_in_gt_are_ignored(metric):
    rng = np.random.default_rng(4)
    gt = _poses(rng, (3, 8, 17)) * 0.3
    pred = gt + rng.normal(size=gt.shape) * 60
    keep = [j for j in range(17) if j not in (2, 9)]
    with_nan = gt.copy()
    with_nan[..., [2, 9], :] = np.nan
    assert metric(pred, with_nan) == pytest.approx(metric(pred[..., keep, :], gt[..., keep, :]), rel=1e-12)


@pytest.mark.parametrize("metric", [m for m in ALL_METRICS if m is not metrics.mpjve],
                         ids=lambda f: f.__name__)
def test_pose_without_valid_joint_is_skipped(metric):
    rng = np.random.default_rng(5)
    gt = _poses(rng, (5, 17)) * 0.3
    pred = gt + rng.normal(size=gt.shape) * 60
    with_nan = gt.copy()
    with_nan[1] = np.nan
    keep = [0, 2, 3, 4]
    assert metric(pred, with_nan) == pytest.approx(metric(pred[keep], gt[keep]), rel=1e-12)


def test_nan_in_prediction_is_not_hidden():
    gt = np.zeros((2, 4, 3))
    pred = gt + 1.0
    pred[0, 1, 0] = np.nan
    assert np.isnan(metrics.mpjpe(pred, gt))
    assert np.isnan(metrics.pa_mpjpe(pred, gt))
    assert metrics.cps(pred, gt, 200) == 50.0


@pytest.mark.parametrize("metric", ALL_METRICS, ids=lambda f: f.__name__)
def test_numpy_and_torch_give_the_same_float(metric):
    rng = np.random.default_rng(6)
    gt = (_poses(rng, (2, 6, 17)) * 0.3).astype(np.float32)
    pred = (gt + rng.normal(size=gt.shape) * 60).astype(np.float32)
    gt[0, 0, 3] = np.nan
    from_numpy = metric(pred, gt)
    from_torch = metric(torch.from_numpy(pred), torch.from_numpy(gt))
    assert type(from_numpy) is float and type(from_torch) is float
    assert from_numpy == from_torch


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError):
        metrics.mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))


def test_aggregate_h36m_averages_per_action_first():
    frame = pd.DataFrame({
        "action": ["Walking", "Walking", "Sitting"],
        "mpjpe": [10.0, 20.0, 50.0],
        "pck150": [90.0, 80.0, np.nan],
        "frames": [100, 300, 10],
    })
    table = metrics.aggregate_h36m(frame, ["mpjpe", "pck150"])
    assert list(table["action"]) == ["Walking", "Sitting", "average"]
    np.testing.assert_allclose(table["mpjpe"], [17.5, 50.0, 33.75])
    np.testing.assert_allclose(table["frames"], [400, 10, 410])
    # the NaN row is left out of pck150: Sitting has no value, the average is Walking's
    assert table["pck150"].iloc[0] == pytest.approx(82.5)
    assert np.isnan(table["pck150"].iloc[1])
    assert table["pck150"].iloc[2] == pytest.approx(82.5)
    global_weighted = np.average(frame["mpjpe"], weights=frame["frames"])
    assert abs(global_weighted - table["mpjpe"].iloc[-1]) > 10  # differs from the per-action mean


def _random_rotations(rng, n):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
                     np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
                     np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], 1)


def test_procrustes_mean_recovers_a_shape_seen_in_every_orientation():
    from posebridge.evaluation.metrics import procrustes_mean, rotation_onto

    rng = np.random.default_rng(3)
    shape = rng.normal(0, 300, (12, 3))
    turned = np.einsum("jk,nlk->njl", shape, _random_rotations(rng, 200)) + rng.normal(0, 500, (200, 1, 3))
    mean = procrustes_mean(turned)
    # the same shape up to a rotation: PA error ~0, pairwise distances equal
    assert metrics.pa_mpjpe(mean, shape) < 1e-6
    np.testing.assert_allclose(np.linalg.norm(mean[:, None] - mean[None], axis=-1),
                               np.linalg.norm(shape[:, None] - shape[None], axis=-1), atol=1e-6)
    # while the plain average of the oriented copies shrinks to a blob far from the shape
    plain = (turned - turned.mean(1, keepdims=True)).mean(0)
    assert metrics.pa_mpjpe(plain, shape) > 100
    # rotation_onto turns it back exactly
    np.testing.assert_allclose(mean @ rotation_onto(mean, shape), shape - shape.mean(0), atol=1e-6)
    # a NaN pose is left out, not propagated
    with_nan = np.concatenate([turned, np.full((1, 12, 3), np.nan)])
    np.testing.assert_allclose(procrustes_mean(with_nan), mean, atol=1e-9)
