import math

import numpy as np
import pytest
import torch

from posebridge.training import metric_learning as ml


def _unit(rng, n, d=16):
    e = rng.normal(size=(n, d))
    return torch.tensor(e / np.linalg.norm(e, axis=1, keepdims=True))


# ------------------------------------------------------------------------- triplet loss

def test_triplet_loss_zero_for_view_invariant_embedding_and_margin_plus_distance_when_swapped():
    anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    negative = torch.tensor([[-1.0, 0.0], [0.8, 0.6]])  # distances 2 and sqrt(0.8), both > margin
    margin = 0.5
    assert ml.triplet_loss(anchor, anchor.clone(), negative, margin).item() == 0.0
    # positive and negative swapped: each hinge is d(a, n) - 0 + margin
    swapped = ml.triplet_loss(anchor, negative, anchor.clone(), margin).item()
    assert swapped == pytest.approx(((2.0 + margin) + (math.sqrt(0.8) + margin)) / 2, abs=1e-6)


def test_triplet_loss_partial_hinge_and_valid_mask():
    anchor = torch.zeros(3, 1)
    positive = torch.tensor([[0.3], [0.1], [2.0]])
    negative = torch.tensor([[0.5], [1.0], [0.0]])
    # hinges: 0.3 - 0.5 + 0.5 = 0.3; 0.1 - 1.0 + 0.5 < 0 -> 0; 2.0 - 0 + 0.5 = 2.5
    assert ml.triplet_loss(anchor, positive, negative, 0.5).item() == pytest.approx(2.8 / 3, abs=1e-6)
    valid = torch.tensor([True, True, False])
    assert ml.triplet_loss(anchor, positive, negative, 0.5, valid).item() == pytest.approx(0.15, abs=1e-6)
    none = ml.triplet_loss(anchor, positive, negative, 0.5, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0.0


def test_pairwise_distances_match_cdist():
    rng = np.random.default_rng(0)
    a, b = torch.tensor(rng.normal(size=(7, 5))), torch.tensor(rng.normal(size=(9, 5)))
    torch.testing.assert_close(ml.pairwise_distances(a, b), torch.cdist(a, b))


# ------------------------------------------------------------------------- hard negatives

def _brute_force_negatives(emb, times, groups, gap, poses=None, min_pose=None):
    emb = emb.numpy()
    index, has = [], []
    for i in range(len(emb)):
        best, best_d = -1, np.inf
        for k in range(len(emb)):
            if k == i or (groups[k] == groups[i] and abs(times[k] - times[i]) <= gap):
                continue
            if poses is not None and np.linalg.norm(poses[i] - poses[k], axis=-1).mean() < min_pose:
                continue
            d = np.linalg.norm(emb[i] - emb[k])
            if d < best_d:
                best, best_d = k, d
        index.append(best)
        has.append(best >= 0)
    return np.array(index), np.array(has)


def _batch(rng, n=240):
    times = rng.integers(0, 200, n) / 50.0  # frame / fps, seconds
    groups = rng.choice(np.array(["take_a", "take_b", "take_c"]), n)
    return _unit(rng, n), times, groups


def test_mining_never_picks_inside_the_time_window_and_picks_the_closest_of_the_rest():
    rng = np.random.default_rng(1)
    emb, times, groups = _batch(rng)
    gap = 0.5
    index, has = ml.mine_hard_negatives(emb, times, groups, gap)
    index, has = index.numpy(), has.numpy()
    assert has.all()
    rows = np.arange(len(emb))
    assert (index != rows).all()
    same_take = groups[index] == groups
    assert not (same_take & (np.abs(times[index] - times) <= gap)).any()
    assert (same_take & (np.abs(times[index] - times) <= gap + 1.0)).any()  # the window mattered
    ref_index, ref_has = _brute_force_negatives(emb, times, groups, gap)
    np.testing.assert_array_equal(index, ref_index)
    np.testing.assert_array_equal(has, ref_has)


def test_mining_with_pose_exclusion_matches_brute_force():
    rng = np.random.default_rng(2)
    emb, times, groups = _batch(rng, 120)
    poses = rng.normal(size=(120, 5, 3)) * 60.0  # pairwise MPJPE ~ 100-200 mm
    index, has = ml.mine_hard_negatives(emb, times, groups, 0.2, poses=poses, min_pose_distance=130.0)
    ref_index, ref_has = _brute_force_negatives(emb, times, groups, 0.2, poses, 130.0)
    np.testing.assert_array_equal(index.numpy(), ref_index)
    np.testing.assert_array_equal(has.numpy(), ref_has)
    picked = np.linalg.norm(poses[index.numpy()] - poses, axis=-1).mean(-1)
    assert (picked[has.numpy()] >= 130.0).all()
    # without the pose rule some anchors would have picked a close pose
    free, _ = ml.mine_hard_negatives(emb, times, groups, 0.2)
    assert (np.linalg.norm(poses[free.numpy()] - poses, axis=-1).mean(-1) < 130.0).any()


def test_unknown_poses_do_not_exclude():
    rng = np.random.default_rng(3)
    emb, times, groups = _batch(rng, 30)
    poses = np.zeros((30, 4, 3))  # every known pose identical: all excluded from each other...
    poses[::2] = np.nan  # ...except pairs involving an unknown pose
    index, has = ml.mine_hard_negatives(emb, times, groups, 0.0, poses=poses, min_pose_distance=10.0)
    index = index.numpy()
    unknown = np.isnan(poses[:, 0, 0])
    assert has.all()
    assert (unknown | unknown[index]).all()


def test_anchors_without_negative_are_flagged_and_explicit_positives_excluded():
    emb = torch.eye(4, dtype=torch.float64)
    times = np.array([0.0, 0.1, 0.2, 5.0])
    groups = np.array([0, 0, 0, 0])
    index, has = ml.mine_hard_negatives(emb, times, groups, min_time_gap=1.0)
    assert has.tolist() == [True, True, True, True]
    assert index.tolist() == [3, 3, 3, 0]  # all equidistant: the first allowed row
    index, has = ml.mine_hard_negatives(emb, times, groups, min_time_gap=10.0)
    assert not has.any() and (index == -1).all()
    index, has = ml.mine_hard_negatives(emb, times, groups, 1.0, positives=[3, -1, -1, 0])
    assert has.tolist() == [False, True, True, True]  # row 3 still has rows 1 and 2
    assert index.tolist() == [-1, 3, 3, 1]


# ------------------------------------------------------------------------- multi-view loss

def test_multiview_loss_zero_for_invariant_embedding_and_margin_plus_distance_when_swapped():
    u, v = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    times, groups, margin = [0.0, 0.0], ["take_a", "take_b"], 0.2
    view_a = torch.stack([u, v])
    assert ml.multiview_triplet_loss(view_a, view_a.clone(), times, groups, margin, 0.5).item() == 0.0
    # view b's embeddings attached to the wrong instants: every anchor's positive is the other
    # instant (distance sqrt 2) and its hardest negative sits on top of it (distance 0)
    swapped = ml.multiview_triplet_loss(view_a, torch.stack([v, u]), times, groups, margin, 0.5)
    assert swapped.item() == pytest.approx(margin + math.sqrt(2.0), abs=1e-6)


def test_multiview_loss_equals_triplet_loss_on_brute_force_negatives_and_backpropagates():
    rng = np.random.default_rng(4)
    n = 40
    times = rng.integers(0, 100, n) / 50.0
    groups = rng.integers(0, 3, n)
    view_a = _unit(rng, n).requires_grad_()
    view_b = (view_a.detach() + 0.3 * _unit(rng, n)).requires_grad_()
    loss, stats = ml.multiview_triplet_loss(view_a, view_b, times, groups, 1.0, 0.1, return_stats=True)
    pool = torch.cat([view_a, view_b]).detach()
    pos = np.r_[np.arange(n, 2 * n), np.arange(n)]
    t2, g2 = np.r_[times, times], np.r_[groups, groups]
    neg, has = _brute_force_negatives(pool, t2, g2, 0.1)
    assert has.all() and stats.with_negative == 1.0
    expected = ml.triplet_loss(pool, pool[pos], pool[neg], 1.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9)
    assert 0.0 < stats.active <= 1.0 and stats.d_pos > 0 and stats.d_neg > 0
    loss.backward()
    assert view_a.grad.abs().sum() > 0 and view_b.grad.abs().sum() > 0


def test_multiview_loss_with_no_negative_is_zero_and_attached():
    view = _unit(np.random.default_rng(5), 3).requires_grad_()
    loss = ml.multiview_triplet_loss(view, view * 0.5, [0.0, 0.1, 0.2], [1, 1, 1], 0.2, 1.0)
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph
    assert view.grad is not None


# ------------------------------------------------------------------------- retrieval

def test_retrieval_hit_rate_known_values():
    query = np.array([[0.0], [1.0], [2.0], [3.0]])
    gallery = np.array([[0.1], [2.9], [1.05], [2.2]])
    # nearest gallery item of each query: g0, g2, g3, g1; second nearest: g2, g0, g1, g3
    assert ml.retrieval_hit_rate(query, gallery, [0, 1, 2, 3], [0, 3, 1, 2]) == 100.0
    assert ml.retrieval_hit_rate(query, gallery, [0, 1, 2, 3], [0, 2, 1, 3]) == 50.0  # q0, q1 hit
    assert ml.retrieval_hit_rate(query, gallery, [0, 1, 2, 3], [9, 9, 9, 9]) == 0.0
    assert ml.retrieval_hit_rate(query, gallery, [0, 1, 2, 3], [9, 2, 1, 9]) == 25.0  # q1
    assert ml.retrieval_hit_rate(query, gallery, [0, 1, 2, 3], [9, 2, 1, 9], k=2) == 50.0  # + q2
    assert ml.retrieval_hit_rate(query, gallery, [0, 1, 2, 3], [9, 2, 1, 9], k=4) == 50.0  # ids 0 and 3 absent
    # string ids and (take, frame) rows
    assert ml.retrieval_hit_rate(query, gallery, list("abcd"), list("adbc")) == 100.0
    q_ids = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    g_ids = np.array([[0, 0], [1, 1], [0, 1], [0, 0]])
    assert ml.retrieval_hit_rate(query, gallery, q_ids, g_ids) == 75.0  # q2 retrieves (0, 0)


def test_retrieval_hit_rate_pose_threshold_and_torch_inputs():
    query = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    gallery = torch.tensor([[0.1], [2.9], [1.05], [2.2]])
    ids_q, ids_g = [0, 1, 2, 3], [0, 2, 1, 3]  # q2 (retrieves g3) and q3 (retrieves g1) miss by id
    poses_q = np.zeros((4, 2, 3))
    poses_g = np.zeros((4, 2, 3))
    poses_g[3] = 40.0  # 40 * sqrt(3) = 69.3 mm from q2's pose
    poses_g[1] = 100.0  # 173 mm from q3's pose
    assert ml.retrieval_hit_rate(query, gallery, ids_q, ids_g, query_poses=poses_q,
                                 gallery_poses=poses_g, pose_threshold=80.0) == 75.0
    assert ml.retrieval_hit_rate(query, gallery, ids_q, ids_g, query_poses=poses_q,
                                 gallery_poses=poses_g, pose_threshold=200.0) == 100.0
    with pytest.raises(ValueError):
        ml.retrieval_hit_rate(query, gallery, ids_q, ids_g, pose_threshold=80.0)
