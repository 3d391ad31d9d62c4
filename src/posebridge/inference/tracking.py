"""Identities over time: link each frame's people into tracks, one per person.

Input is what ``sources.detectors.people.PeopleDetector.detect`` gives: ``(T, P, K, 3)`` x px,
y px, confidence per frame and person slot, slots in no particular order, all-zero rows for
empty slots. Frame by frame, every live track (seen within the last ``link_gap + 1`` frames) is
predicted forward at its constant velocity (its confident joints moving as they did between its
last two sightings, for at most ``MAX_EXTRAPOLATION`` frames) and matched to the frame's people
by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``; Kuhn, "The Hungarian method
for the assignment problem", 1955) on keypoint distance (``detectors.tracks.keypoint_distance``:
the mean pixel distance of joints confident in both over the track's box diagonal, so near and
far people are judged alike). Pairs costing more than ``max_distance`` are not matched; a person left unmatched starts a new track. Velocity
keeps two people apart where their paths cross; the size normalisation keeps a near person from
taking over a far one's track.

Tracks seen on fewer than ``min_frames`` frames are dropped (a hallucinated person on a few
frames), the rest ordered by evidence (``detectors.tracks.evidence``: seen long, large and
clearly first), and misses of up to ``max_gap`` frames inside each are interpolated
(``detectors.tracks.fill_gaps``); a person lost for longer (up to ``link_gap`` frames, hidden
behind another) keeps the identity but not an invented pose.
"""

from __future__ import annotations

import numpy as np

from posebridge.sources.detectors.tracks import evidence, fill_gaps, keypoint_distance, shared_joints

MAX_DISTANCE = 0.75  # a match moves its joints by at most 3/4 of the person's box diagonal (after prediction)
MIN_FRAMES = 5
LINK_GAP = 15  # frames a lost person keeps its track (occlusions are longer than detector misses)
MAX_EXTRAPOLATION = 5  # frames a lost person is predicted to keep moving
UNMATCHED = 1e6  # the cost of a pair that must not be matched


class _Track:
    """One person's sightings so far: frame -> (K, 3) keypoints."""

    def __init__(self, t: int, keypoints: np.ndarray):
        self.frames, self.keypoints = [t], [keypoints]

    def add(self, t: int, keypoints: np.ndarray) -> None:
        self.frames.append(t)
        self.keypoints.append(keypoints)

    def predict(self, t: int) -> np.ndarray:
        """(K, 3) the last sighting moved on to frame ``t`` at the track's last velocity."""
        last = self.keypoints[-1].copy()
        if len(self.frames) > 1:
            before = self.keypoints[-2]
            shared = shared_joints(last, before)
            step = (last[shared, :2] - before[shared, :2]).mean(axis=0) / (self.frames[-1] - self.frames[-2])
            last[:, :2] += step * min(t - self.frames[-1], MAX_EXTRAPOLATION)
        return last


def _match(live: list[_Track], people: list[np.ndarray], t: int, max_distance: float) -> dict[int, int]:
    """person index -> index into ``live`` of its track (Hungarian on ``keypoint_distance``)."""
    from scipy.optimize import linear_sum_assignment

    if not live or not people:
        return {}
    cost = np.array([[keypoint_distance(track.predict(t), person) for person in people] for track in live])
    cost = np.where(cost <= max_distance, cost, UNMATCHED)
    rows, cols = linear_sum_assignment(cost)
    return {int(c): int(r) for r, c in zip(rows, cols) if cost[r, c] < UNMATCHED}


def link(people: np.ndarray, link_gap: int = LINK_GAP, max_distance: float = MAX_DISTANCE) -> list[_Track]:
    """Every track of ``people`` (T, P, K, 3), in order of first sighting (module docstring)."""
    tracks: list[_Track] = []
    for t, frame in enumerate(people):
        found = [person for person in frame if (person[:, 2] > 0).any()]
        live = [track for track in tracks if t - track.frames[-1] - 1 <= link_gap]
        matched = _match(live, found, t, max_distance)
        for i, person in enumerate(found):
            if i in matched:
                live[matched[i]].add(t, person)
            else:
                tracks.append(_Track(t, person))
    return tracks


def track_people(people: np.ndarray, *, max_gap: int = 5, link_gap: int = LINK_GAP,
                 max_distance: float = MAX_DISTANCE, min_frames: int = MIN_FRAMES,
                 max_tracks: int | None = None) -> np.ndarray:
    """``(N, T, K, 3)`` one keypoint sequence per person of ``people`` (T, P, K, 3): tracks seen on
    at least ``min_frames`` frames, most evidence first, at most ``max_tracks`` of them, misses of
    up to ``max_gap`` frames interpolated, zeros (confidence 0) where a person is not seen; a
    person unseen for up to ``link_gap`` frames keeps its track."""
    T, _, K, _ = people.shape
    out = []
    for track in link(people, max(link_gap, max_gap), max_distance):
        if len(track.frames) >= min_frames:
            sequence = np.zeros((T, K, 3), np.float32)
            sequence[track.frames] = np.stack(track.keypoints)
            out.append(sequence)
    out.sort(key=lambda sequence: -evidence(sequence).sum())
    out = [fill_gaps(sequence, max_gap) for sequence in out[:max_tracks]]
    return np.stack(out) if out else np.zeros((0, T, K, 3), np.float32)
