"""Robust multi-view triangulation of 2D keypoints from calibrated, synchronised cameras.

``triangulate(keypoints, cameras, skeleton)`` turns one take's 2D detections in every view,
``(V, T, K, 3)`` pixels + confidence, into 3D joints ``(T, K, 3)`` in world millimetres:

1. **Undistortion**: each keypoint becomes the normalised ray ``(X/Z, Y/Z)`` of an ideal pinhole
   camera (``cameras.undistort_points``), so the linear algebra below is exact for real lenses.
2. **The person** (multi-person takes; a single-person detector such as MediaPipe may follow a
   different person in each view). Every pair of views proposes a person: its two-view
   triangulation. A view sees that person when the person reprojects onto its 2D within
   ``person_error_px`` (median over the joints, each joint compared with both its own and its
   mirror keypoint, so a left/right swap does not hide a match). A take's anchor is the frame
   and pair with the most agreeing views (then the lowest error); from there, frame by frame
   forward and backward, the chosen proposal is the one with the most agreeing views among those
   whose centre lies within ``max_step_mm`` per frame of the person's last centre -- the
   cross-view assignment with the lowest reprojection cost, kept over time. Views that do not
   agree sit the frame out; where the detector also recorded the other people it found
   (``others``), the one who reprojects onto the joints best is that view's 2D of the person.
3. **Left/right swaps**: with at least three agreeing views, each view's left/right keypoint
   pairs are checked against the triangulation of the *other* views: a pair whose swapped
   reading reprojects at under ``swap_ratio`` times the error of its own reading is swapped back,
   the most contradicted view of a frame first, the others then judged again.
4. **Confidence-weighted DLT with view rejection**: the direct linear transform (Hartley &
   Zisserman, "Multiple View Geometry", 2nd ed., section 12.2) with each view's two equations
   weighted by its keypoint confidence, inside a consensus search over view pairs (RANSAC's
   idea, Fischler & Bolles 1981, made exhaustive: V (V - 1) / 2 pairs): each pair's point keeps
   the views that reproject it within ``max_error_px``; the point with the most such views
   (then the lowest error) is solved again from all of them. A joint on which no two views
   agree stays missing.
5. **Temporal outlier filter**: a Hampel filter (Pearson, "Outlier detection in multivariate
   time series by projection pursuit", 2002) per joint and axis: a value farther than
   ``filter_sigmas`` robust standard deviations (1.4826 x MAD, at least ``filter_min_mm``) from
   the median of ``filter_window`` frames around it is dropped; gaps of up to ``max_gap`` frames
   are then filled linearly.

The result keeps the reprojection error of the final joints in every view that took part.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from itertools import combinations

import numpy as np

from posebridge.errors import ConfigError
from posebridge.geometry.cameras import undistort_points
from posebridge.specs import check_keys

# another detected person replaces a view's own 2D of the chosen person when it fits the joints
# with under this share of the own 2D's median error (a small gain is detector noise, not a mix-up)
OTHERS_BETTER = 0.5

__all__ = ["TriangulationConfig", "Triangulation", "triangulate", "weighted_dlt", "reprojection_errors"]


@dataclass(frozen=True)
class TriangulationConfig:
    """Settings of :func:`triangulate` (module docstring); pixel thresholds suit ~1000 px people."""

    min_confidence: float = 0.3   # keypoints below this confidence are not used
    max_error_px: float = 40.0    # a view reprojecting a joint worse than this is rejected
    person_error_px: float = 60.0  # median error under which a view sees a proposed person
    swap_ratio: float = 0.5       # a swapped reading must reproject this much better to be taken
    max_step_mm: float = 150.0    # the person's centre moves at most this per frame
    filter_window: int = 7        # frames of the Hampel filter's window (odd)
    filter_sigmas: float = 3.0
    filter_min_mm: float = 40.0
    max_gap: int = 10             # missing runs of at most this many frames are interpolated

    @classmethod
    def from_dict(cls, spec: dict | None) -> "TriangulationConfig":
        """Settings from a JSON object; unknown keys and out-of-range values raise ConfigError."""
        check_keys(spec or {}, [f.name for f in fields(cls)], "triangulation")
        for key, value in (spec or {}).items():
            integer = key in ("filter_window", "max_gap")
            if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
                raise ConfigError(f"triangulation: {key} must be {'an integer' if integer else 'a number'}, "
                                  f"got {value!r}")
        config = cls(**(spec or {}))
        if not 0 <= config.min_confidence <= 1:
            raise ConfigError(f"triangulation: min_confidence must lie in [0, 1], got {config.min_confidence}")
        for key in ("max_error_px", "person_error_px", "swap_ratio", "max_step_mm", "filter_sigmas"):
            if not getattr(config, key) > 0:
                raise ConfigError(f"triangulation: {key} must be positive, got {getattr(config, key)}")
        if config.filter_min_mm < 0 or config.max_gap < 0:
            raise ConfigError("triangulation: filter_min_mm and max_gap must not be negative")
        if config.filter_window < 3 or config.filter_window % 2 == 0:
            raise ConfigError(f"triangulation: filter_window must be odd and >= 3, got {config.filter_window}")
        return config


@dataclass
class Triangulation:
    """One take's triangulation.

    joints: (T, K, 3) world mm, NaN where missing. errors: (V, T, K) px reprojection error of
    ``joints`` onto each view's (swap-repaired) 2D, NaN where the view has no confident keypoint
    or does not see the chosen person. used: (V, T, K) bool, the view entered the joint's DLT.
    person: (V, T) bool, the view's detection is the chosen person. swaps: (V, T) int, left/right
    pairs swapped back. filtered: (T, K) bool, dropped by the temporal filter. keypoints:
    (V, T, K, 3) the chosen person's 2D in each view: the view's own as given (before swap
    repair), or where ``taken_from_others`` (V, T) bool, another person its detector found
    (``triangulate``'s ``others``) who reprojects onto the joints.
    """

    joints: np.ndarray
    errors: np.ndarray
    used: np.ndarray
    person: np.ndarray
    swaps: np.ndarray
    filtered: np.ndarray
    keypoints: np.ndarray
    taken_from_others: np.ndarray


# ---------------------------------------------------------------------------------------------
# Linear triangulation


def _projections(cameras) -> np.ndarray:
    """(V, 3, 4) normalised projection matrices [R | t] with t in metres (better conditioned)."""
    return np.stack([np.hstack([c.R, c.t[:, None] / 1000.0]) for c in cameras])


def weighted_dlt(rays: np.ndarray, weights: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """Confidence-weighted DLT of many points at once.

    rays: (V, N, 2) normalised image coordinates; weights: (V, N), 0 = view not used;
    projections: (V, 3, 4) [R | t_metres]. Returns (N, 3) world mm, NaN where fewer than two
    views have weight.
    """
    rows_x = rays[..., 0:1] * projections[:, None, 2] - projections[:, None, 0]  # (V, N, 4)
    rows_y = rays[..., 1:2] * projections[:, None, 2] - projections[:, None, 1]
    w = np.where(np.isfinite(rays).all(-1), weights, 0.0)[..., None]
    A = np.concatenate([np.nan_to_num(rows_x) * w, np.nan_to_num(rows_y) * w], axis=0)  # (2V, N, 4)
    _, _, vt = np.linalg.svd(np.transpose(A, (1, 0, 2)), full_matrices=False)
    h = vt[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        X = h[:, :3] / h[:, 3:4] * 1000.0
    enough = (w[..., 0] > 0).sum(axis=0) >= 2
    return np.where((enough & np.isfinite(X).all(-1))[:, None], X, np.nan)


def reprojection_errors(joints: np.ndarray, keypoints: np.ndarray, cameras) -> np.ndarray:
    """(V, ...) pixel distance between ``joints`` (..., 3) world mm projected into each camera
    and ``keypoints`` (V, ..., >=2); NaN where a joint is missing or behind the camera."""
    out = []
    for v, cam in enumerate(cameras):
        X_cam = cam.world_to_camera(joints)
        uv = cam.project_camera(X_cam)
        err = np.linalg.norm(uv - keypoints[v][..., :2], axis=-1)
        out.append(np.where(X_cam[..., 2] > 0, err, np.nan))
    return np.stack(out)


def _rays(keypoints: np.ndarray, cameras) -> np.ndarray:
    return np.stack([undistort_points(keypoints[v][..., :2], c.intrinsics, c.distortion, normalised=True,
                                      model=c.distortion_model)
                     for v, c in enumerate(cameras)])


def _robust_dlt(rays, keypoints, weights, cameras, max_error_px) -> tuple[np.ndarray, np.ndarray]:
    """Consensus DLT over (V, T, K) inputs: the triangulation from all views and that of every view
    pair propose a point; the views reprojecting it within ``max_error_px`` are its inliers; the
    proposal with the most inliers (then the lowest summed error) wins and is solved again from
    its inliers, twice, each time re-admitting every view the refit point reprojects within reach.
    Returns joints (T, K, 3), NaN where no two views agree, and used (V, T, K)."""
    V, T, K = weights.shape
    P = _projections(cameras)
    best_count = np.zeros((T, K), dtype=np.int64)
    best_total = np.full((T, K), np.inf)
    inliers = np.zeros((V, T, K), dtype=bool)
    for views in [tuple(range(V)), *combinations(range(V), 2)]:  # all views first, then pairs
        w = np.zeros_like(weights)
        w[list(views)] = weights[list(views)]
        X = weighted_dlt(rays.reshape(V, -1, 2), w.reshape(V, -1), P).reshape(T, K, 3)
        err = reprojection_errors(X, keypoints, cameras)
        agree = (weights > 0) & (err <= max_error_px)
        count = agree.sum(axis=0)
        total = np.where(agree, err, 0.0).sum(axis=0)
        better = (count >= 2) & (agree | (w == 0)).all(axis=0) & (
            (count > best_count) | ((count == best_count) & (total < best_total)))
        best_count = np.where(better, count, best_count)
        best_total = np.where(better, total, best_total)
        inliers = np.where(better[None], agree, inliers)
    used = inliers & (best_count >= 2)[None]
    for _ in range(2):  # refit from the inliers, then let every view within reach of it back in
        X = weighted_dlt(rays.reshape(V, -1, 2), np.where(used, weights, 0.0).reshape(V, -1), P).reshape(T, K, 3)
        refit = (weights > 0) & (reprojection_errors(X, keypoints, cameras) <= max_error_px)
        used = np.where((refit.sum(0) >= used.sum(0))[None], refit, used)
    X = weighted_dlt(rays.reshape(V, -1, 2), np.where(used, weights, 0.0).reshape(V, -1), P).reshape(T, K, 3)
    return X, used & np.isfinite(X).all(-1)[None]


# ---------------------------------------------------------------------------------------------
# The person: which view's detection belongs to whom


def _pair_proposals(rays, keypoints, weights, cameras, mirror) -> tuple[np.ndarray, np.ndarray]:
    """Every view pair's person per frame: costs (P, V, T) median px error (mirror-tolerant) of
    each view, and centres (P, T, 3) world mm."""
    V, T, K = weights.shape
    P = _projections(cameras)
    costs, centres = [], []
    for a, b in combinations(range(V), 2):
        w = np.zeros_like(weights)
        w[[a, b]] = weights[[a, b]]
        X = weighted_dlt(rays.reshape(V, -1, 2), w.reshape(V, -1), P).reshape(T, K, 3)
        err = reprojection_errors(X, keypoints, cameras)
        err_mirror = reprojection_errors(X, keypoints[:, :, mirror], cameras)
        err = np.fmin(err, err_mirror)
        err = np.where(weights > 0, err, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames without any joint
            costs.append(np.nanmedian(err, axis=2))
            centres.append(np.nanmedian(X, axis=1))
    return np.nan_to_num(np.stack(costs), nan=np.inf), np.stack(centres)


def _best_proposal(agree: np.ndarray, cost: np.ndarray, allowed: np.ndarray) -> int | None:
    """Index of the allowed proposal with the most agreeing views, then the lowest total error."""
    count = np.where(allowed, agree.sum(axis=1), -1)
    if count.max() < 2:
        return None
    total = np.where(agree, cost, 0.0).sum(axis=1)
    order = np.lexsort((total, -count))
    return int(order[0])


def assign_person(costs: np.ndarray, centres: np.ndarray, person_error_px: float,
                  max_step_mm: float) -> np.ndarray:
    """(V, T) bool: the views that see the chosen person in each frame (module docstring, 2).

    costs: (P, V, T) per-proposal view errors; centres: (P, T, 3) proposal centres.
    """
    _, V, T = costs.shape
    agree = costs < person_error_px  # (P, V, T)
    support = np.where(np.isfinite(centres).all(-1), agree.sum(axis=1), 0)  # (P, T)
    total = np.where(agree, costs, 0.0).sum(axis=1)
    p0, t0 = np.unravel_index(np.lexsort((total.ravel(), -support.ravel()))[0], support.shape)
    person = np.zeros((V, T), dtype=bool)
    if support[p0, t0] < 2:
        return person
    person[:, t0] = agree[p0, :, t0]
    for direction in (1, -1):
        last, last_t = centres[p0, t0], t0
        for t in range(t0 + direction, T if direction > 0 else -1, direction):
            gate = max_step_mm * abs(t - last_t)
            near = np.linalg.norm(centres[:, t] - last, axis=-1) <= gate
            best = _best_proposal(agree[:, :, t], costs[:, :, t], near & np.isfinite(centres[:, t]).all(-1))
            if best is None:
                continue
            person[:, t] = agree[best, :, t]
            last, last_t = centres[best, t], t
    return person


# ---------------------------------------------------------------------------------------------
# Left/right swaps


def _swap_proposals(rays, keypoints, weights, cameras, pairs, config) -> np.ndarray:
    """(V, T, P) bool: pairs (P, 2) of each view whose swapped reading the other views favour."""
    V = len(cameras)
    left, right = pairs[:, 0], pairs[:, 1]
    out = []
    for v in range(V):
        others = weights.copy()
        others[v] = 0
        X, used = _robust_dlt(rays, keypoints, others, cameras, config.max_error_px)
        uv = cameras[v].project(X)  # (T, K, 2)
        kp = keypoints[v][..., :2]
        dist = lambda a, b: np.linalg.norm(uv[:, a] - kp[:, b], axis=-1)  # noqa: E731
        own, swapped = dist(left, left) + dist(right, right), dist(left, right) + dist(right, left)
        confident = (weights[v][:, left] > 0) & (weights[v][:, right] > 0)
        enough = (used[:, :, left].sum(0) >= 2) & (used[:, :, right].sum(0) >= 2)
        out.append(confident & enough & np.isfinite(own) & (swapped < config.swap_ratio * own))
    return np.stack(out)


def repair_swaps(rays, keypoints, weights, cameras, mirror, config) -> tuple[np.ndarray, np.ndarray]:
    """Swap back the left/right keypoint pairs of a view that the other views contradict.

    Per frame, the view with the most contradicted pairs is repaired first and the others are
    judged again against it (a view mirrored as a whole must not make a correct view look
    swapped), until no view is contradicted. Returns the repaired keypoints (V, T, K, 3) and the
    number of pairs swapped (V, T). Needs three or more views (two cannot outvote each other).
    """
    V, T, K = weights.shape
    mirror = np.asarray(mirror)
    left = np.flatnonzero(mirror > np.arange(K))
    pairs = np.stack([left, mirror[left]], axis=1)
    keypoints = keypoints.copy()
    swaps = np.zeros((V, T), dtype=np.int64)
    for _ in range(V):
        proposals = _swap_proposals(rays, keypoints, weights, cameras, pairs, config)
        counts = proposals.sum(axis=2)  # (V, T)
        if not counts.any():
            break
        view = np.argmax(counts, axis=0)  # (T,)
        tt, pp = np.nonzero(proposals[view, np.arange(T)] & (counts.max(0) > 0)[:, None])
        vv = view[tt]
        a, b = pairs[pp, 0], pairs[pp, 1]
        keypoints[vv, tt, a], keypoints[vv, tt, b] = keypoints[vv, tt, b], keypoints[vv, tt, a].copy()
        np.add.at(swaps, (vv, tt), 1)
        rays = _rays(keypoints, cameras)
    return keypoints, swaps


# ---------------------------------------------------------------------------------------------
# Time


def hampel_outliers(joints: np.ndarray, window: int, sigmas: float, min_mm: float) -> np.ndarray:
    """(T, K) bool: joints (T, K, 3) whose value strays from its window's median (module docstring)."""
    half = window // 2
    padded = np.pad(joints, ((half, half), (0, 0), (0, 0)), constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (T, K, 3, W)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        median = np.nanmedian(windows, axis=-1)
        mad = np.nanmedian(np.abs(windows - median[..., None]), axis=-1)
    limit = np.maximum(sigmas * 1.4826 * np.nan_to_num(mad), min_mm)
    return (np.abs(joints - median) > limit).any(axis=-1)


def fill_gaps(joints: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate runs of at most ``max_gap`` missing frames between two known ones."""
    out = joints.copy()
    T = len(joints)
    frames = np.arange(T)
    for k in range(joints.shape[1]):
        known = np.isfinite(joints[:, k]).all(axis=-1)
        if known.sum() < 2 or known.all():
            continue
        idx = np.flatnonzero(known)
        before = np.maximum.accumulate(np.where(known, frames, -1))
        after = np.minimum.accumulate(np.where(known, frames, T)[::-1])[::-1]
        fill = ~known & (before >= 0) & (after < T) & (after - before - 1 <= max_gap)
        for axis in range(3):
            out[fill, k, axis] = np.interp(frames[fill], idx, joints[idx, k, axis])
    return out


# ---------------------------------------------------------------------------------------------
# The whole take


def _person_errors(joints: np.ndarray, people: np.ndarray, camera, min_confidence: float) -> np.ndarray:
    """(T, P) median px error of ``joints`` (T, K, 3) world mm reprojected onto each of one view's
    ``people`` (T, P, K, 3), left as left (a monocular lifter is given the 2D as it is); inf
    without a shared joint."""
    uv = camera.project_camera(camera.world_to_camera(joints))[:, None]  # (T, 1, K, 2)
    err = np.linalg.norm(uv - people[..., :2], axis=-1)
    err = np.where(people[..., 2] >= min_confidence, err, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # people or frames without any joint
        return np.nan_to_num(np.nanmedian(err, axis=-1), nan=np.inf)


def _triangulate_views(keypoints: np.ndarray, cameras, skeleton, config: TriangulationConfig) -> Triangulation:
    """Steps 1-5 of the module docstring on (V, T, K, 3) keypoints; ``keypoints`` of the result are
    the input, ``taken_from_others`` all False."""
    V, T, K, _ = keypoints.shape
    mirror = np.asarray(skeleton.mirror)
    weights = np.where(keypoints[..., 2] >= config.min_confidence, keypoints[..., 2], 0.0)
    rays = _rays(keypoints, cameras)
    costs, centres = _pair_proposals(rays, keypoints, weights, cameras, mirror)
    person = assign_person(costs, centres, config.person_error_px, config.max_step_mm)
    weights = np.where(person[..., None], weights, 0.0)
    given = keypoints
    swaps = np.zeros((V, T), dtype=np.int64)
    if V >= 3:
        keypoints, swaps = repair_swaps(rays, keypoints, weights, cameras, mirror, config)
        rays = _rays(keypoints, cameras)
    joints, used = _robust_dlt(rays, keypoints, weights, cameras, config.max_error_px)
    filtered = hampel_outliers(joints, config.filter_window, config.filter_sigmas, config.filter_min_mm)
    joints = fill_gaps(np.where(filtered[..., None], np.nan, joints), config.max_gap)
    errors = reprojection_errors(joints, keypoints, cameras)
    errors = np.where(weights > 0, errors, np.nan)
    return Triangulation(joints.astype(np.float32), errors.astype(np.float32), used, person, swaps, filtered,
                         given.astype(np.float32), np.zeros((V, T), dtype=bool))


def triangulate(keypoints: np.ndarray, cameras, skeleton,
                config: TriangulationConfig | None = None, others: np.ndarray | None = None) -> Triangulation:
    """One take's 2D in every view -> 3D joints (module docstring).

    keypoints: (V, T, K, 3) x px, y px, confidence (0 = not detected) in ``skeleton``'s format
    (its ``mirror`` pairs left and right keypoints); cameras: V ``Camera`` objects in the same order.
    others: None or (V, T, P, K, 3), further people each view's detector found (all-zero where
    none). In a frame where a view's own 2D is not the chosen person, or fits the joints at least
    twice as badly as one of the others (``OTHERS_BETTER``: a single-person detector mixing two
    people's limbs), the other person who reprojects onto the joints within ``person_error_px``
    (the lowest median error, left as left) is that view's 2D of the person
    (``Triangulation.keypoints``, ``taken_from_others``). They do not enter the joints: a person
    the detector did not follow is often partly hidden (why it followed someone else), and on
    Pose2Sim's Demo_MultiPerson letting them in raised another view's median reprojection error
    from 13 to 35 px.
    """
    config = config or TriangulationConfig()
    keypoints = np.asarray(keypoints, dtype=np.float64)
    V, T, K, _ = keypoints.shape
    if len(cameras) != V or K != skeleton.num_joints:
        raise ValueError(f"keypoints {keypoints.shape} do not match {len(cameras)} cameras and "
                         f"{skeleton.name} ({skeleton.num_joints} keypoints)")
    if V < 2:
        raise ValueError("triangulation needs at least two views")
    result = _triangulate_views(keypoints, cameras, skeleton, config)
    if others is None or np.shape(others)[2] == 0:
        return result
    others = np.asarray(others, dtype=np.float64)
    if others.shape[:2] != (V, T) or others.shape[3:] != (K, 3):
        raise ValueError(f"others {others.shape} do not match keypoints {keypoints.shape} (V, T, people, K, 3)")
    joints = result.joints.astype(np.float64)
    for v, camera in enumerate(cameras):
        errors = _person_errors(joints, others[v], camera, config.min_confidence)
        own = _person_errors(joints, keypoints[v][:, None], camera, config.min_confidence)[:, 0]
        best = errors.argmin(axis=1)
        error = errors[np.arange(T), best]
        better = ~result.person[v] | (error < OTHERS_BETTER * own)
        taken = better & (error < config.person_error_px)
        result.keypoints[v, taken] = others[v, np.flatnonzero(taken), best[taken]]
        result.taken_from_others[v] = taken
    return result
