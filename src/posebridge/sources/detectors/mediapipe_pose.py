"""MediaPipe Pose (BlazePose, mediapipe 0.10.14) as a COCO-17 2D detector.

Runs MediaPipe's legacy ``solutions.pose`` graph with ``model_complexity=1``: the only landmark
model shipped inside the mediapipe wheel (``pose_landmark_full.tflite``; complexities 0 and 2
download their model at run time, which posebridge must never do). The 33 landmarks become
COCO-17 keypoints through the exact ``mediapipe_33 -> coco_17`` mapping of ``posebridge.geometry.skeletons``
(MediaPipe's eyes, ears, shoulders, ... are COCO's points); the confidence is MediaPipe's
per-landmark visibility, in [0, 1]. MediaPipe finds at most one person per frame; in video mode
(``static_image_mode=False``) it tracks that person from frame to frame.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from posebridge.geometry import skeletons
from posebridge.errors import ConfigError

KEYPOINT_FORMAT = "coco_17"
LANDMARK_FORMAT = "mediapipe_33"
MODEL_COMPLEXITY = 1  # the bundled model; see the module docstring
MEDIAPIPE_VERSION = "0.10.14"
MIN_CONFIDENCE = 1e-3  # floor of a found person's landmark confidence (0 is reserved for misses)


def _import_mediapipe():
    try:
        import mediapipe
    except ImportError as err:
        raise ConfigError(
            f"the mediapipe detector needs mediapipe {MEDIAPIPE_VERSION} "
            f"(pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}; see README, 'Your own video'): {err}"
        ) from None
    model = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    if not model.is_file():
        raise ConfigError(f"mediapipe {mediapipe.__version__} lacks its bundled pose model {model}; "
                          f"install mediapipe=={MEDIAPIPE_VERSION}")
    return mediapipe


class MediaPipePose:
    """MediaPipe Pose on a stream of RGB frames -> COCO-17 keypoints (px + confidence).

    Args:
        static_image_mode: detect afresh in every frame (image folders of unrelated images);
            False (video) tracks the person between frames, which is faster and steadier.
        min_detection_confidence: MediaPipe's person-detector threshold.
        min_tracking_confidence: below this MediaPipe re-detects instead of tracking.
        smooth_landmarks: MediaPipe's own temporal filter (video mode only).

    Use as a context manager (or call ``close()``) to free the graph. One instance processes
    one video: tracking state carries over between calls of :meth:`detect`.
    """

    name = "mediapipe"
    keypoint_format = KEYPOINT_FORMAT

    def __init__(self, static_image_mode: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, smooth_landmarks: bool = True):
        for key, value in (("min_detection_confidence", min_detection_confidence),
                           ("min_tracking_confidence", min_tracking_confidence)):
            if not 0 <= value <= 1:
                raise ConfigError(f"mediapipe: {key} must lie in [0, 1], got {value}")
        mediapipe = _import_mediapipe()
        self._pose = mediapipe.solutions.pose.Pose(
            static_image_mode=bool(static_image_mode), model_complexity=MODEL_COMPLEXITY,
            smooth_landmarks=bool(smooth_landmarks), enable_segmentation=False,
            min_detection_confidence=float(min_detection_confidence),
            min_tracking_confidence=float(min_tracking_confidence))
        self._to_coco = skeletons.mapping(LANDMARK_FORMAT, KEYPOINT_FORMAT)

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """(33, 3) x px, y px, visibility of the person in one RGB frame, or None if none is found."""
        height, width = frame.shape[:2]
        with warnings.catch_warnings():  # protobuf 4.x warns about an API mediapipe still uses
            warnings.simplefilter("ignore", UserWarning)
            result = self._pose.process(np.ascontiguousarray(frame))
        if result.pose_landmarks is None:
            return None
        values = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark],
                          dtype=np.float64)
        values[:, 0] *= width  # MediaPipe gives x, y as fractions of the image size
        values[:, 1] *= height
        # confidence 0 means "not detected"; a landmark of a found person is at least a guess
        values[:, 2] = np.clip(values[:, 2], MIN_CONFIDENCE, 1.0)
        return values

    def detect(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """(T, 17, 3) float32 COCO-17 keypoints (x px, y px, confidence) of RGB frames.

        Frames where no person is found are all zeros (confidence 0).
        """
        out = []
        for frame in frames:
            values = self.landmarks(frame)
            out.append(np.zeros((len(self._to_coco), 3)) if values is None else values[self._to_coco])
        if not out:
            return np.zeros((0, len(self._to_coco), 3), dtype=np.float32)
        return np.stack(out).astype(np.float32)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> "MediaPipePose":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
