"""Consistency metric: affine combinations are recovered exactly, predictions that are affine
functions of each other score ~0, and the score grows with independent noise."""

import numpy as np

from posebridge.bridge.consistency import (
    affine_consistency,
    apply_affine_combination,
    fit_affine_combination,
)


def random_poses(n=400, joints=12, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 300, (joints, 3))
    # articulated-ish: a random low-dimensional motion plus a random translation per frame
    motion = rng.normal(0, 1, (n, 6)) @ rng.normal(0, 60, (6, joints * 3))
    return base + motion.reshape(n, joints, 3) + rng.normal(0, 500, (n, 1, 3))


def test_fit_recovers_known_affine_weights_with_columns_summing_to_one():
    rng = np.random.default_rng(1)
    source = random_poses(300, 10)
    weights = rng.uniform(-0.3, 1.0, (10, 4))
    weights /= weights.sum(axis=0, keepdims=True)
    target = apply_affine_combination(source, weights)
    fitted = fit_affine_combination(source, target, ridge=0.0)
    np.testing.assert_allclose(fitted.sum(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose(apply_affine_combination(source, fitted), target, atol=1e-6)


def test_exact_affine_formats_score_zero_and_noise_raises_the_score():
    rng = np.random.default_rng(2)
    a = random_poses(400, 12, seed=3)
    w_b = rng.uniform(0, 1, (12, 8))
    w_b /= w_b.sum(axis=0)
    b = apply_affine_combination(a, w_b)
    points = np.concatenate([a, b], axis=1)
    slices = {"a": slice(0, 12), "b": slice(12, 20)}
    exact = affine_consistency(points, slices)
    assert set(exact) == {"a", "b"} and exact["b"] < 0.01
    # translation and rotation of whole frames change nothing (weights sum to 1, shared over x, y, z)
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    moved = affine_consistency(points @ rot.T + 1000.0, slices)
    assert moved["b"] < 0.01

    scores = []
    for sigma in (5.0, 20.0, 80.0):
        noisy = points.copy()
        noisy[:, 12:] += rng.normal(0, sigma, noisy[:, 12:].shape)
        scores.append(affine_consistency(noisy, slices)["b"])
    assert scores[0] < scores[1] < scores[2]
    # independent noise of sigma per coordinate: the held-out error is at least the noise's own
    # expected norm (~1.6 sigma), for the best combination cannot predict it
    assert scores[2] > 1.4 * 80.0


def test_scored_mask_selects_the_held_out_frames():
    a = random_poses(100, 6, seed=4)
    b = a[:, :3] * 1.0
    points = np.concatenate([a, b], axis=1)
    points[:50, 6:] += 200.0  # only the first half is inconsistent
    slices = {"a": slice(0, 6), "b": slice(6, 9)}
    first_fit = affine_consistency(points, slices, np.arange(100) >= 50)
    last_fit = affine_consistency(points, slices, np.arange(100) < 50)
    assert first_fit["b"] > 100 and last_fit["b"] > 100  # fitted on one regime, scored on the other
    both = np.zeros(100, bool)
    both[50:75] = True
    clean = affine_consistency(points[50:], slices, both[50:])
    assert clean["b"] < 0.01  # mm; the tiny ridge leaves a trace
