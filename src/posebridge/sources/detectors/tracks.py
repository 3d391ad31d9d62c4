"""Clean up a sequence of single-person 2D detections: keep the main person, fill short gaps.

A per-frame detector (MediaPipe Pose finds at most one person per frame) jumps between people and
fires on things that are not people at all (a parked bicycle, a car roof). Linking consecutive
detections whose boxes overlap into tracks, and keeping the track with the most evidence, leaves
one person throughout; the frames it does not cover become misses (confidence 0). Short misses
inside the track are then interpolated; long ones stay misses, which the lifter was trained to
read as "not seen" (keypoint dropout).

``keypoint_distance`` compares two people's keypoints (tracking several people, telling a
person found twice from two people).

Keypoints are ``(T, K, 3)``: x px, y px, confidence in [0, 1]; confidence 0 means not detected.
"""

from __future__ import annotations

import numpy as np

MIN_BOX_CONFIDENCE = 0.2  # keypoints below this do not shape a person's box


def boxes(keypoints: np.ndarray, min_confidence: float = MIN_BOX_CONFIDENCE) -> np.ndarray:
    """(T, 4) x0, y0, x1, y1 px box of each frame's keypoints with confidence >= ``min_confidence``
    (all detected keypoints when none is that confident); NaN where a frame has no detection."""
    conf = keypoints[..., 2]
    use = conf >= min_confidence
    use = np.where(use.any(axis=1, keepdims=True), use, conf > 0)
    xy = keypoints[..., :2]
    low = np.where(use[..., None], xy, np.inf).min(axis=1)
    high = np.where(use[..., None], xy, -np.inf).max(axis=1)
    box = np.concatenate([low, high], axis=1)
    return np.where(use.any(axis=1, keepdims=True), box, np.nan)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``(..., 4)`` x0, y0, x1, y1 (0 for empty boxes)."""
    inter = (np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
             * np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None))
    area = lambda box: (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def track_ids(keypoints: np.ndarray, max_gap: int = 5, min_iou: float = 0.3) -> np.ndarray:
    """(T,) int track id of every frame's detection, -1 where there is none.

    Two detections in a row (frames t < u with no detection between) belong to one track when
    ``u - t - 1 <= max_gap`` and their boxes overlap with IoU >= ``min_iou`` (a person moves little
    between nearby frames; a jump to another place is another person or a false detection).
    """
    detected = np.flatnonzero((keypoints[..., 2] > 0).any(axis=1))
    ids = np.full(len(keypoints), -1, dtype=np.int64)
    if len(detected) == 0:
        return ids
    box = boxes(keypoints[detected])
    linked = (np.diff(detected) - 1 <= max_gap) & (box_iou(box[:-1], box[1:]) >= min_iou)
    ids[detected] = np.concatenate([[0], np.cumsum(~linked)])
    return ids


def main_track(keypoints: np.ndarray, max_gap: int = 5, min_iou: float = 0.3) -> np.ndarray:
    """(T,) bool: the frames of the main person's track.

    The main track is the one with the most evidence: the sum over its frames of the box diagonal
    (px) times the mean keypoint confidence -- a person seen long, large and clearly. A false
    detection is usually brief, small or unsure, so it loses to the person the video is about.
    """
    ids = track_ids(keypoints, max_gap, min_iou)
    if (ids < 0).all():
        return np.zeros(len(keypoints), dtype=bool)
    score = np.bincount(ids[ids >= 0], weights=evidence(keypoints)[ids >= 0])
    return ids == int(np.argmax(score))


def evidence(keypoints: np.ndarray) -> np.ndarray:
    """(T,) how clearly each frame shows its person: box diagonal (px) times mean keypoint
    confidence, 0 without a detection. Summed over a track's frames it ranks tracks."""
    box = boxes(keypoints)
    diagonal = np.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    detected = (keypoints[..., 2] > 0).any(axis=1)
    return np.where(detected, np.nan_to_num(diagonal) * keypoints[..., 2].mean(axis=1), 0.0)


def keep_frames(keypoints: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A copy of ``keypoints`` with every frame outside ``keep`` (T,) set to a miss (all zeros)."""
    return np.where(keep[:, None, None], keypoints, 0).astype(keypoints.dtype)


def fill_gaps(keypoints: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate each keypoint across runs of at most ``max_gap`` missed frames.

    A run is filled only when the keypoint is detected on both sides of it; x, y and confidence
    are interpolated between the two detections. Longer runs and runs at either end keep
    confidence 0. Returns a new ``(T, K, 3)`` array.
    """
    keypoints = np.asarray(keypoints)
    frames = len(keypoints)
    if max_gap <= 0 or frames == 0:
        return keypoints.copy()
    seen = keypoints[..., 2] > 0  # (T, K)
    t = np.arange(frames)[:, None]
    before = np.maximum.accumulate(np.where(seen, t, -1), axis=0)  # last detection at or before t
    after = np.minimum.accumulate(np.where(seen, t, frames)[::-1], axis=0)[::-1]  # first at or after
    fill = ~seen & (before >= 0) & (after < frames) & (after - before - 1 <= max_gap)
    lo, hi = np.clip(before, 0, frames - 1), np.clip(after, 0, frames - 1)
    weight = np.where(fill, (t - lo) / np.maximum(hi - lo, 1), 0.0)[..., None]
    joint = np.arange(keypoints.shape[1])[None, :]
    interpolated = (1 - weight) * keypoints[lo, joint] + weight * keypoints[hi, joint]
    return np.where(fill[..., None], interpolated, keypoints).astype(keypoints.dtype)


def shared_joints(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(K,) bool: joints confident in both (K, 3) people, else those detected in both."""
    use = (a[:, 2] >= MIN_BOX_CONFIDENCE) & (b[:, 2] >= MIN_BOX_CONFIDENCE)
    return use if use.any() else (a[:, 2] > 0) & (b[:, 2] > 0)


def keypoint_distance(reference: np.ndarray, person: np.ndarray) -> float:
    """How far (K, 3) ``person`` is from (K, 3) ``reference``: the mean px distance over joints
    confident in both (else seen in both), over ``reference``'s box diagonal; inf when they share
    no seen joint. 0 is the same pose in the same place; 1 a whole body-size away."""
    both = shared_joints(reference, person)
    if not both.any():
        return np.inf
    x0, y0, x1, y1 = boxes(reference[None])[0]
    diagonal = max(float(np.hypot(x1 - x0, y1 - y0)), 1.0)
    return float(np.linalg.norm(reference[both, :2] - person[both, :2], axis=1).mean() / diagonal)
