"""MCSS metric learning: triplet loss with in-batch hard negatives, and cross-view retrieval.

Two cameras see the same instant of a multi-view take: their embeddings are the anchor and the
positive. The negative of an anchor is the *hardest* one in the batch, the closest embedding that
is not the same pose: other instants far enough in time from the anchor within its take
(``group``) -- any instant of another take -- and, where 3D is known, far enough in pose
(MPJPE in the canonical frame, see ``posebridge.geometry.canonical``). Everything is done on the whole
batch at once: a pairwise distance matrix, a mask of allowed pairs, an argmin per row.

Distances are Euclidean between embedding vectors (for L2-normalised embeddings they lie in
[0, 2]). Times are in any unit as long as ``min_time_gap`` uses the same one (posebridge uses
seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "pairwise_distances",
    "negative_mask",
    "triplet_loss",
    "mine_hard_negatives",
    "multiview_triplet_loss",
    "MultiviewTripletStats",
    "retrieval_hit_rate",
]

# Row blocks for the (N, N, J) pose-distance computation, in elements: bounds memory to ~64 MB in
# float32 at any batch size.
_BLOCK_ELEMENTS = 1 << 24


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (N, M) between the rows of ``a`` (N, D) and ``b`` (M, D)."""
    # |a|^2 + |b|^2 - 2 a.b via one matmul; the clamp removes tiny negatives from rounding
    sq = (a * a).sum(-1)[:, None] + (b * b).sum(-1)[None, :] - 2.0 * (a @ b.T)
    return sq.clamp_min(0.0).sqrt()


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of ``max(0, d(a, p) - d(a, n) + margin)`` over triplets.

    ``anchor``, ``positive``, ``negative``: (N, D); ``d`` is the Euclidean distance. ``valid``
    (N,) bool restricts the mean to those triplets (zero, still attached to the graph, when none
    is valid).
    """
    d_pos = torch.linalg.vector_norm(anchor - positive, dim=-1)
    d_neg = torch.linalg.vector_norm(anchor - negative, dim=-1)
    hinge = torch.relu(d_pos - d_neg + margin)
    if valid is None:
        return hinge.mean()
    valid = torch.as_tensor(valid, dtype=torch.bool, device=hinge.device)
    return (hinge * valid).sum() / valid.sum().clamp_min(1)


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_codes(labels, device) -> torch.Tensor:
    """Integer codes (N,) for arbitrary labels (strings, ints; numpy, list or tensor)."""
    if isinstance(labels, torch.Tensor):
        return labels.to(device)
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    return torch.as_tensor(codes.reshape(-1), device=device)


def _pose_close(poses: torch.Tensor, min_pose_distance: float) -> torch.Tensor:
    """(N, N) bool: pairs whose pose MPJPE (mean over the joints known in both) is below the
    threshold. Pairs without a common known joint are not close (nothing says they are)."""
    n, j = poses.shape[0], poses.shape[1]
    per_joint = poses.transpose(0, 1)  # (J, N, 3): one distance matrix per joint, via cdist's matmul
    rows = max(1, _BLOCK_ELEMENTS // max(1, n * j))
    close = torch.zeros(n, n, dtype=torch.bool, device=poses.device)
    for start in range(0, n, rows):  # blocks of rows, not anchors: bounds the (J, rows, N) tensor
        d = torch.cdist(per_joint[:, start:start + rows], per_joint)
        close[start:start + rows] = torch.nanmean(d, dim=0) < min_pose_distance
    return close


def negative_mask(
    times,
    groups,
    min_time_gap: float,
    poses=None,
    min_pose_distance: float | None = None,
    positives=None,
    device=None,
) -> torch.Tensor:
    """(N, N) bool, ``[i, k]`` true when row k may serve as a negative for anchor i.

    Excluded: k == i; k == ``positives[i]`` (when given, -1 = none); the same group with
    ``|t_k - t_i| <= min_time_gap`` (so the same instant from another camera, the positive, is
    always excluded); and with ``poses`` (N, J, 3) canonical mm (NaN = unknown) and
    ``min_pose_distance``, pose MPJPE below ``min_pose_distance``.
    """
    groups = _as_codes(groups, device)
    times = torch.as_tensor(_as_numpy(times), device=device).to(torch.float64)
    n = times.shape[0]
    if groups.shape[0] != n:
        raise ValueError(f"times ({n}) and groups ({groups.shape[0]}) must have one entry per row")
    near = (times[:, None] - times[None, :]).abs() <= min_time_gap
    allowed = ~(near & (groups[:, None] == groups[None, :]))
    allowed.fill_diagonal_(False)
    if positives is not None:
        positives = torch.as_tensor(positives, device=device).long()
        has = positives >= 0
        allowed[torch.arange(n, device=device)[has], positives[has]] = False
    if poses is not None and min_pose_distance is not None:
        poses = torch.as_tensor(poses, device=device)
        if poses.shape[0] != n:
            raise ValueError(f"poses ({poses.shape[0]}) must have one entry per row ({n})")
        allowed &= ~_pose_close(poses.float(), float(min_pose_distance))
    return allowed


@torch.no_grad()
def mine_hard_negatives(
    embeddings: torch.Tensor,
    times,
    groups,
    min_time_gap: float,
    poses=None,
    min_pose_distance: float | None = None,
    positives=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hardest valid negative of every row of a batch.

    Every row of ``embeddings`` (N, D) is an anchor; its negative is the closest other row allowed
    by :func:`negative_mask` (same arguments: ``times`` (N,), ``groups`` (N,) take labels, the
    anchor's own instant within ``min_time_gap`` excluded, optional canonical ``poses`` (N, J, 3)
    with ``min_pose_distance`` mm, optional explicit ``positives`` (N,) to exclude).

    Returns ``(index, has_negative)``: (N,) int64 row of the hardest negative (-1 where there is
    none) and (N,) bool.
    """
    embeddings = torch.as_tensor(embeddings)
    allowed = negative_mask(times, groups, min_time_gap, poses, min_pose_distance, positives,
                            device=embeddings.device)
    if allowed.shape[0] != embeddings.shape[0]:
        raise ValueError(f"{embeddings.shape[0]} embeddings but {allowed.shape[0]} times")
    d = pairwise_distances(embeddings, embeddings)
    d = d.masked_fill(~allowed, float("inf"))
    index = d.argmin(dim=1)
    has_negative = allowed.any(dim=1)
    return torch.where(has_negative, index, torch.full_like(index, -1)), has_negative


@dataclass
class MultiviewTripletStats:
    """What a multi-view triplet step did, for the training log (Python floats)."""

    with_negative: float  # fraction of anchors that had a valid negative
    active: float  # fraction of those whose hinge was > 0
    d_pos: float  # mean anchor-positive distance
    d_neg: float  # mean anchor-negative distance (anchors with a negative)


def multiview_triplet_loss(
    emb_view_a: torch.Tensor,
    emb_view_b: torch.Tensor,
    times,
    groups,
    margin: float,
    min_time_gap: float,
    poses=None,
    min_pose_distance: float | None = None,
    return_stats: bool = False,
):
    """MCSS triplet loss for N synchronised pairs of views.

    ``emb_view_a[i]`` and ``emb_view_b[i]`` (N, D each) embed the same instant (``times[i]`` in
    take ``groups[i]``) seen by two cameras. Both views are anchors in turn (a -> b and b -> a), and
    negatives are mined from all 2N embeddings of the batch (:func:`mine_hard_negatives`), so a
    negative may come from either camera. ``poses`` (N, J, 3), canonical mm, NaN where unknown,
    enables the pose exclusion. Anchors without a valid negative are left out of the mean.

    Returns the scalar loss, or ``(loss, MultiviewTripletStats)`` with ``return_stats``.
    """
    n = emb_view_a.shape[0]
    if emb_view_b.shape != emb_view_a.shape:
        raise ValueError(
            f"view embeddings differ in shape: {tuple(emb_view_a.shape)} vs {tuple(emb_view_b.shape)}"
        )
    pool = torch.cat([emb_view_a, emb_view_b])
    times = np.asarray(times) if not isinstance(times, torch.Tensor) else times
    tiled = lambda x: torch.cat([x, x]) if isinstance(x, torch.Tensor) else np.concatenate([x, x])
    groups = groups if isinstance(groups, torch.Tensor) else np.asarray(groups)
    pool_poses = None if poses is None else tiled(torch.as_tensor(poses))
    positive_index = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(pool.device)
    negatives, has_negative = mine_hard_negatives(
        pool.detach(), tiled(times), tiled(groups), min_time_gap, pool_poses, min_pose_distance,
        positives=positive_index,
    )
    anchor, positive, negative = pool, pool[positive_index], pool[negatives.clamp_min(0)]
    loss = triplet_loss(anchor, positive, negative, margin, valid=has_negative)
    if not return_stats:
        return loss
    with torch.no_grad():
        d_pos = torch.linalg.vector_norm(anchor - positive, dim=-1)
        d_neg = torch.linalg.vector_norm(anchor - negative, dim=-1)[has_negative]
        hinge = (d_pos[has_negative] - d_neg + margin) > 0
        stats = MultiviewTripletStats(
            with_negative=float(has_negative.float().mean()),
            active=float(hinge.float().mean()) if hinge.numel() else 0.0,
            d_pos=float(d_pos.mean()),
            d_neg=float(d_neg.mean()) if d_neg.numel() else float("nan"),
        )
    return loss, stats


def retrieval_hit_rate(
    query_emb,
    gallery_emb,
    query_ids,
    gallery_ids,
    k: int = 1,
    query_poses=None,
    gallery_poses=None,
    pose_threshold: float | None = None,
) -> float:
    """Cross-view retrieval: percentage of queries whose nearest gallery embedding is a hit.

    ``query_emb`` (Q, D) and ``gallery_emb`` (G, D) (numpy or torch; any features, e.g. raw
    normalised 2D flattened for a view-dependent baseline). ``query_ids`` (Q,) / ``gallery_ids``
    (G,) label the instant (e.g. a frame index within a take, or (take, frame) rows (N, 2)). A
    query is a hit when any of its ``k`` nearest gallery items (Euclidean) has the query's id, or,
    with ``query_poses`` (Q, J, 3), ``gallery_poses`` (G, J, 3) and ``pose_threshold`` mm, a pose
    within that MPJPE of the query's pose. Returns a percentage in [0, 100].
    """
    q = torch.as_tensor(_as_numpy(query_emb), dtype=torch.float64)
    g = torch.as_tensor(_as_numpy(gallery_emb), dtype=torch.float64)
    q, g = q.reshape(q.shape[0], -1), g.reshape(g.shape[0], -1)
    query_ids, gallery_ids = _as_numpy(query_ids), _as_numpy(gallery_ids)
    if len(query_ids) != len(q) or len(gallery_ids) != len(g):
        raise ValueError("one id per query and per gallery item is needed")
    if len(q) == 0:
        return float("nan")
    # common integer codes so ids of any type (strings, (take, frame) rows) compare as ints
    both = np.concatenate([query_ids, gallery_ids])
    _, codes = np.unique(both, return_inverse=True, axis=0 if both.ndim > 1 else None)
    codes = torch.as_tensor(codes.reshape(-1))
    q_codes, g_codes = codes[: len(q)], codes[len(q):]
    if pose_threshold is not None:
        if query_poses is None or gallery_poses is None:
            raise ValueError("pose_threshold needs query_poses and gallery_poses")
        query_poses = torch.as_tensor(_as_numpy(query_poses), dtype=torch.float64)
        gallery_poses = torch.as_tensor(_as_numpy(gallery_poses), dtype=torch.float64)
    k = min(k, len(g))
    rows = max(1, _BLOCK_ELEMENTS // max(1, len(g)))
    hits = torch.zeros(len(q), dtype=torch.bool)
    for start in range(0, len(q), rows):  # blocks of queries bound the (rows, G) distance matrix
        nearest = pairwise_distances(q[start:start + rows], g).topk(k, dim=1, largest=False).indices
        hit = g_codes[nearest] == q_codes[start:start + rows, None]
        if pose_threshold is not None:
            qp = query_poses[start:start + rows]  # (r, J, 3)
            gp = gallery_poses[nearest]  # (r, k, J, 3)
            mpjpe = torch.nanmean(torch.linalg.vector_norm(gp - qp[:, None], dim=-1), dim=-1)
            hit |= mpjpe < pose_threshold
        hits[start:start + rows] = hit.any(dim=1)
    return 100.0 * float(hits.double().mean())
