"""Repair a 2D detector's left/right swaps by the continuity of the body's motion.

A single-image pose detector decides afresh in every frame which side of the body is which, and
now and then it decides wrong with full confidence: MediaPipe Pose on the Pose2Sim single-person
take, camera 2, labels the whole body mirrored for 34 consecutive frames (frames 41-74, against
the triangulation of the four views), and a lifter fed those frames lifts a person facing the
other way (PA-MPJPE 119 mm on that view against 65 mm from exact 2D). Where such a swap starts,
every left keypoint jumps to where the right one was a frame before: motion explains the swapped
labelling far better than the detector's.

``repair_sides`` finds the most continuous labelling of a whole sequence at once (Viterbi over
which of the three side groups, face, arms and legs, are swapped in each frame):

- moving from one frame to the next costs the mean distance its keypoints travel (a fraction of
  the person's box diagonal, each step capped at ``CAP`` so one wild keypoint cannot decide);
- changing the labelling between two frames costs ``SWITCH``, plus ``SWITCH_GROUP`` per group
  changed: a swap is undone only where the jump it explains is larger than that, so frames in
  profile (left and right keypoints close together, where motion cannot tell the sides apart)
  keep the detector's labelling;
- each frame a group spends swapped costs its ``PRIOR``: of two labellings that move alike, the one
  the detector gave in most frames wins (the detector is right most of the time). The face's is
  smallest: its left and right lie close together, so its own motion is weak evidence;
- a frame with the arms swapped and the legs not (or the other way round) costs ``MIXED``:
  detectors mostly mirror the whole body at once.

Frames where the person is not found are skipped (the labelling is carried across the gap), as
are keypoints not found in either of two frames. Measured: on exact 2D of the synthetic
benchmark's motions (turns, dancing, cartwheels, crawling, kicks) it changes nothing; on its
simulated detections it undoes 67-95 % of the arms' and legs' swaps (the rest start in profile);
on the Pose2Sim take above it undoes the arms' and the legs' swap (MediaPipe's face keypoints
there move on without a jump and keep their labels), and the view's PA-MPJPE falls from 119 to
70 mm (the default model of `make run`).

Keypoints are ``(T, K, 3)``: x px, y px, confidence in [0, 1]; confidence 0 means not detected.
"""

from __future__ import annotations

import itertools

import numpy as np

from posebridge.geometry import skeletons
from posebridge.sources.detectors.tracks import boxes

__all__ = ["repair_sides", "side_groups"]

GROUPS = {"face": ("eye", "ear"), "arms": ("shoulder", "elbow", "wrist"), "legs": ("hip", "knee", "ankle")}
"""Joints that swap together, by name without the l / r prefix."""
SWITCH = 0.04  # cost of changing the labelling between two frames (x box diagonal) ...
SWITCH_GROUP = 0.01  # ... plus this per group changed: groups change together more cheaply
PRIOR = {"face": 0.0005, "arms": 0.002, "legs": 0.002}  # cost per frame of a group kept swapped
MIXED = 0.004  # cost per frame of the arms swapped and the legs not, or the other way round
CAP = 0.5  # a keypoint's step costs at most this (x box diagonal)


def side_groups(keypoint_format: str = "coco_17") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{group: (left joint indices, their mirror indices)} of the groups the format has."""
    skeleton = skeletons.get(keypoint_format)
    names = skeleton.joint_names
    out = {}
    for group, parts in GROUPS.items():
        left = [names.index("l" + p) for p in parts if "l" + p in names and "r" + p in names]
        if left:
            out[group] = (np.array(left), np.array([names.index("r" + names[j][1:]) for j in left]))
    return out


def _step_costs(points: np.ndarray, size: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(n - 1, 2, 2) mean distance (x box diagonal, capped) the group's keypoints travel from
    frame i (labelling a: 0 as given, 1 swapped) to frame i + 1 (labelling b)."""
    both_sides = np.concatenate([left, right])
    out = np.empty((len(points) - 1, 2, 2))
    # swapping both frames pairs the same keypoints as swapping neither (and one as the other),
    # so two of the four labellings are computed
    for b, after_order in enumerate((both_sides, np.concatenate([right, left]))):
        before, after = points[:-1][:, both_sides], points[1:][:, after_order]
        both = (before[..., 2] > 0) & (after[..., 2] > 0)
        step = np.minimum(np.linalg.norm(after[..., :2] - before[..., :2], axis=-1) / size[1:, None], CAP)
        out[:, 0, b] = out[:, 1, 1 - b] = np.where(both, step, 0.0).sum(1) / np.maximum(both.sum(1), 1)
    return out


def repair_sides(keypoints: np.ndarray, keypoint_format: str = "coco_17") -> np.ndarray:
    """(T, K, 3) keypoints -> a copy with each frame's swapped side groups swapped back.

    >>> import numpy as np
    >>> from posebridge.sources.detectors.sides import repair_sides
    >>> t = np.linspace(0, 1, 30)[:, None]
    >>> walk = np.zeros((30, 17, 3)); walk[..., 2] = 1
    >>> walk[..., 0] = 300 + 100 * t + np.where(np.arange(17) % 2, -40.0, 40.0)  # left joints 40 px left
    >>> walk[..., 1] = np.linspace(100, 500, 17)
    >>> swapped = walk.copy(); swapped[10:20, 1:] = walk[10:20, [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9,
    ...                                                            12, 11, 14, 13, 16, 15]][:, 1:]
    >>> bool(np.allclose(repair_sides(swapped), walk))
    True
    """
    keypoints = np.asarray(keypoints)
    out = keypoints.copy()
    found = np.flatnonzero((keypoints[..., 2] > 0).any(axis=1))
    groups = side_groups(keypoint_format)
    if len(found) < 2 or not groups:
        return out
    points = keypoints[found].astype(np.float64)
    box = boxes(points)
    size = np.maximum(np.nan_to_num(np.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])), 1.0)
    states = np.array(list(itertools.product((0, 1), repeat=len(groups))))  # (S, G): group swapped?
    unary = states @ np.array([PRIOR[g] for g in groups])
    if "arms" in groups and "legs" in groups:
        names = list(groups)
        unary = unary + MIXED * (states[:, names.index("arms")] != states[:, names.index("legs")])
    changed = (states[:, None] != states[None]).sum(-1)  # (S, S)
    steps = SWITCH * (changed > 0) + SWITCH_GROUP * changed
    for g, (left, right) in enumerate(groups.values()):
        steps = steps + _step_costs(points, size, left, right)[:, states[:, None, g], states[None, :, g]]
    # Viterbi: steps (n - 1, S, S) from state a in frame i to state b in frame i + 1
    cost = unary.copy()
    back = np.zeros((len(found), len(states)), dtype=np.int64)
    for i, step in enumerate(steps, start=1):
        total = cost[:, None] + step
        back[i] = total.argmin(0)
        cost = total.min(0) + unary
    path = np.empty(len(found), dtype=np.int64)
    path[-1] = int(cost.argmin())
    for i in range(len(found) - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    for g, (left, right) in enumerate(groups.values()):
        frames = found[states[path, g] == 1]
        if len(frames):
            out[np.ix_(frames, left)] = keypoints[np.ix_(frames, right)]
            out[np.ix_(frames, right)] = keypoints[np.ix_(frames, left)]
    return out
