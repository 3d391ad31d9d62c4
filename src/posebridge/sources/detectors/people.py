"""Every person in every frame: person boxes, then MediaPipe Pose on each box's crop.

MediaPipe Pose (``mediapipe_pose``) finds at most one person per image, and on a full frame it
misses people that are small in it (its person detector sees the frame at 224 x 224). Run on a
crop around one person it finds that person. So each frame is searched in three ways, all
offline (nothing downloaded):

1. **Follow**: a crop around every person of the previous frame (their keypoints' box, grown by
   ``CROP_MARGIN``), which keeps people whose posture no person detector knows (crouching). When
   the crop gives back someone already found (a person passing in front), it is run again with
   the people found so far painted over (``paint_over``: their limbs and torso, not their box,
   so the visible parts of the person behind stay).
2. **Discover**: OpenCV's built-in HOG people detector (Dalal & Triggs, "Histograms of Oriented
   Gradients for Human Detection", CVPR 2005; ``cv2.HOGDescriptor_getDefaultPeopleDetector``)
   proposes upright people, every ``discover_every`` frames, on a frame scaled by ``hog_scale``;
   each proposal's crop goes through MediaPipe, which rejects HOG's false boxes (no person found,
   or one found with low landmark visibility).
3. **Mask and re-run**: the frame with everyone found so far painted grey goes through MediaPipe
   again, until it finds nobody new: this finds the large people HOG misses.

A candidate is kept when its mean COCO-17 visibility reaches ``min_visibility``, its confident
keypoints span at least ``MIN_CROP_FRACTION`` of a crop's height or width (MediaPipe squeezes a
"person" into a head or a hand when the crop holds none), and it is not a person already kept: a
box overlapping theirs (IoU >= ``DUPLICATE_IOU``; a crop around two people returns one of them)
or keypoints on theirs (``tracks.keypoint_distance`` < ``DUPLICATE_DISTANCE``; the upper body
of someone found whole). ``detect`` returns ``(T, P, 17, 3)`` x px, y px, confidence with
people in no particular order (identities over time are ``posebridge.inference.tracking``'s job)
and all-zero rows where a frame has fewer than ``P`` people.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from posebridge.errors import ConfigError
from posebridge.geometry import skeletons
from posebridge.sources.detectors.mediapipe_pose import KEYPOINT_FORMAT, LANDMARK_FORMAT, MediaPipePose
from posebridge.sources.detectors.tracks import MIN_BOX_CONFIDENCE, box_iou, boxes, keypoint_distance

CROP_MARGIN = 0.3  # a crop is the person's box grown by this fraction of its size on every side
DUPLICATE_IOU = 0.4  # a candidate overlapping a kept person this much is that person again
DUPLICATE_DISTANCE = 0.1  # ... and so is one whose joints lie this close to theirs (x body size)
MIN_CROP_FRACTION = 0.25
MASK_GREY = 127
MAX_RERUNS = 4  # mask-and-re-run rounds per frame (each finds at most one person)
MIN_PAINT_CONFIDENCE = 0.5  # keypoints painted over when looking behind a person


def other_people(main: np.ndarray, people: np.ndarray, count: int) -> np.ndarray:
    """(T, count, K, 3): per frame, up to ``count`` of the people (T, P, K, 3) who are not the
    frame's ``main`` person (T, K, 3) (``keypoint_distance`` from it >= ``DUPLICATE_DISTANCE``),
    in the order found; all-zero rows where a frame has fewer."""
    out = np.zeros((len(main), count, *main.shape[1:]), np.float32)
    for t in range(len(main)):
        kept = [person for person in people[t] if (person[:, 2] > 0).any()
                and not ((main[t, :, 2] > 0).any() and keypoint_distance(main[t], person) < DUPLICATE_DISTANCE)]
        for slot, person in enumerate(kept[:count]):
            out[t, slot] = person
    return out


def paint_over(frame: np.ndarray, people: list[np.ndarray], skeleton) -> np.ndarray:
    """A copy of an RGB frame with each person's (K, 3) body painted grey: thick bones along the
    skeleton's ``edges`` and the polygon of its confident keypoints' convex hull."""
    import cv2

    out = frame.copy()
    for person in people:
        seen = person[:, 2] >= MIN_PAINT_CONFIDENCE
        if seen.sum() < 3:
            continue
        x0, y0, x1, y1 = boxes(person[None])[0]
        width = max(3, int(0.12 * max(x1 - x0, y1 - y0)))
        points = person[seen, :2].astype(np.int32)
        cv2.fillConvexPoly(out, cv2.convexHull(points), (MASK_GREY,) * 3)
        for a, b in skeleton.edges:
            if seen[a] and seen[b]:
                cv2.line(out, tuple(int(v) for v in person[a, :2]), tuple(int(v) for v in person[b, :2]),
                         (MASK_GREY,) * 3, width)
    return out


def grow(box: np.ndarray, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """An x0, y0, x1, y1 px box with each side made at least half the longer one, grown by
    ``margin`` times its width / height on each side and clipped to the frame: int px bounds."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    side = max(w, h)  # crouching or lying people are wide: keep the crop square-ish
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = max(w, side * 0.5) * (0.5 + margin), max(h, side * 0.5) * (0.5 + margin)
    return (int(max(cx - half_w, 0)), int(max(cy - half_h, 0)),
            int(min(cx + half_w, width)), int(min(cy + half_h, height)))


class PeopleDetector:
    """Several people per RGB frame -> COCO-17 keypoints per person (module docstring).

    Args:
        max_people: keep at most this many people per frame (None: all found).
        min_visibility: a found person's mean COCO-17 landmark visibility must reach this.
        hog_scale: HOG runs on the frame scaled by this (its window is 64 x 128 px, so people
            shorter than about 128 / hog_scale px are not proposed); 0 turns HOG off.
        discover_every: run HOG on every this many frames (following keeps people in between).

    Use as a context manager (or call ``close()``).
    """

    name = "mediapipe-people"
    keypoint_format = KEYPOINT_FORMAT

    def __init__(self, max_people: int | None = None, min_visibility: float = 0.5,
                 hog_scale: float = 0.5, discover_every: int = 1):
        if max_people is not None and max_people < 1:
            raise ConfigError(f"max_people must be >= 1, got {max_people}")
        if not 0 <= min_visibility <= 1:
            raise ConfigError(f"min_visibility must lie in [0, 1], got {min_visibility}")
        if discover_every < 1 or not 0 <= hog_scale <= 1:
            raise ConfigError(f"discover_every must be >= 1 and hog_scale in [0, 1], got "
                              f"{discover_every}, {hog_scale}")
        import cv2

        self.max_people, self.min_visibility = max_people, min_visibility
        self.hog_scale, self.discover_every = hog_scale, discover_every
        self._pose = MediaPipePose(static_image_mode=True)  # crops are unrelated images
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self._to_coco = skeletons.mapping(LANDMARK_FORMAT, KEYPOINT_FORMAT)
        self._skeleton = skeletons.get(KEYPOINT_FORMAT)

    def proposals(self, frame: np.ndarray) -> np.ndarray:
        """(N, 4) x0, y0, x1, y1 px boxes of upright people HOG proposes in one RGB frame."""
        import cv2

        if self.hog_scale == 0:
            return np.zeros((0, 4))
        small = cv2.resize(frame, None, fx=self.hog_scale, fy=self.hog_scale, interpolation=cv2.INTER_AREA)
        rects, _ = self._hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / self.hog_scale
        return np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)

    def pose_in(self, frame: np.ndarray, box=None) -> np.ndarray | None:
        """(17, 3) COCO-17 keypoints (full-frame px + confidence) of the person MediaPipe finds in
        the crop ``box`` (x0, y0, x1, y1 int px; None: the whole frame), or None."""
        x0, y0, x1, y1 = box if box is not None else (0, 0, frame.shape[1], frame.shape[0])
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        values = self._pose.landmarks(frame[y0:y1, x0:x1])
        if values is None:
            return None
        coco = values[self._to_coco]
        coco[:, 0] += x0
        coco[:, 1] += y0
        if coco[:, 2].mean() < self.min_visibility:
            return None
        if box is not None:
            confident = coco[coco[:, 2] >= MIN_BOX_CONFIDENCE, :2]
            span = np.ptp(confident, axis=0) if len(confident) else np.zeros(2)
            if np.max(span / [x1 - x0, y1 - y0]) < MIN_CROP_FRACTION:
                return None
        return coco

    def _full(self, kept: list[np.ndarray]) -> bool:
        return self.max_people is not None and len(kept) >= self.max_people

    @staticmethod
    def _duplicate(kept: list[np.ndarray], box: np.ndarray, person: np.ndarray | None = None) -> bool:
        """True when ``box`` (or the (K, 3) ``person`` in it) is someone in ``kept`` again."""
        return any(box_iou(box, boxes(k[None])[0]) >= DUPLICATE_IOU
                   or (person is not None and keypoint_distance(k, person) < DUPLICATE_DISTANCE) for k in kept)

    def _accept(self, kept: list[np.ndarray], candidate: np.ndarray | None) -> bool:
        if candidate is None or self._full(kept):
            return False
        box = boxes(candidate[None])[0]
        if not np.isfinite(box).all() or self._duplicate(kept, box, candidate):
            return False
        kept.append(candidate)
        return True

    def _follow(self, frame: np.ndarray, kept: list[np.ndarray], person: np.ndarray) -> None:
        """Look for the previous frame's ``person`` again, behind the people ``kept`` if need be."""
        height, width = frame.shape[:2]
        crop = grow(boxes(person[None])[0], CROP_MARGIN, width, height)
        candidate = self.pose_in(frame, crop)
        if self._accept(kept, candidate) or candidate is None or self._full(kept):
            return
        self._accept(kept, self.pose_in(paint_over(frame, kept, self._skeleton), crop))

    def people(self, frame: np.ndarray, previous: list[np.ndarray], discover: bool = True) -> list[np.ndarray]:
        """The people (each (17, 3)) in one RGB frame, given the previous frame's ``previous``."""
        height, width = frame.shape[:2]
        kept: list[np.ndarray] = []
        for person in previous:  # 1. follow
            self._follow(frame, kept, person)
        if discover:  # 2. HOG proposals
            for box in self.proposals(frame):
                if not self._duplicate(kept, box):
                    self._accept(kept, self.pose_in(frame, grow(box, 0.1, width, height)))
        masked = None
        for _ in range(MAX_RERUNS):  # 3. mask everyone found, look again
            if self._full(kept):
                break
            masked = frame.copy() if masked is None else masked
            for person in kept:
                x0, y0, x1, y1 = grow(boxes(person[None])[0], 0.15, width, height)
                masked[y0:y1, x0:x1] = MASK_GREY
            if not self._accept(kept, self.pose_in(masked)):
                break
        return kept

    def detect(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """(T, P, 17, 3) float32 keypoints of every person in RGB ``frames`` (module docstring);
        P is the most people found in one frame (at least 1)."""
        found, previous = [], []
        for t, frame in enumerate(frames):
            previous = self.people(frame, previous, discover=t % self.discover_every == 0)
            found.append(previous)
        out = np.zeros((len(found), max([len(f) for f in found] + [1]), len(self._to_coco), 3), np.float32)
        for t, people in enumerate(found):
            if people:
                out[t, :len(people)] = np.stack(people)
        return out

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> "PeopleDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
