"""The keypoint codec: 2D detections (pixels + confidence) as the lifter's network input.

``KEYPOINT_FORMAT`` is the skeleton format of the detectors' keypoints (COCO-17 from the simulated
and MediaPipe detectors) and so the lifter's input format unless a run names another one (e.g.
h36m_17 for VideoPose3D's CPN detections).

``InputCodec`` is the one place that says how keypoints become network input; a model file
records it (its ``input`` entry, :meth:`InputCodec.file_entry`) and every consumer encodes with
the model's codec, so a model is always fed as it was trained. Two choices:

- ``normalisation``: ``"screen"``, VideoPose3D's ``x / w * 2 - [1, h / w]`` (Pavllo et al., "3D
  human pose estimation in video with temporal convolutions and semi-supervised training", CVPR
  2019): it divides by the image width, so the same person at the same distance looks different
  under another focal length or image size; or ``"camera"``, the undistorted ray
  ``((u - cx) / fx, (v - cy) / fy)`` (lens distortion removed with the camera's coefficients where
  known, ``geometry.cameras.undistort_points``) times ``CAMERA_SCALE``: a joint's input then
  depends only on its direction from the camera, which is what fixes its depth, whatever the lens
  and image size. Undistorting costs nothing at inference and makes the input a pinhole ray, the
  geometry every camera shares; without it a wide lens' barrel distortion would shrink limbs near
  the image border in a way the training cameras never showed.
- ``confidence``: ``"raw"`` the detector's confidence as a third feature; ``"visible"`` 1 where the
  detector found the joint (confidence > 0), else 0; ``"none"`` no third feature (x, y only).
  Missed joints (confidence 0) get x = y = 0 in every mode. A detector's confidence drops where a
  joint is hidden; a simulator's does so in its own way, a depth cue a lifter can learn and no
  real detector repeats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebridge.errors import ConfigError, DataError
from posebridge.geometry.cameras import (
    image_coordinates,
    normalize_screen,
    project_points_torch,
    undistort_points,
)

__all__ = ["KEYPOINT_FORMAT", "NORMALISATIONS", "CONFIDENCES", "CAMERA_SCALE", "PLACEMENTS", "InputCodec",
           "check_placement", "keypoints_to_input"]

KEYPOINT_FORMAT = "coco_17"
"""The keypoint format the detectors write and the lifter reads unless told otherwise."""
NORMALISATIONS = ("screen", "camera")
"""How pixel positions become input coordinates (module docstring)."""
CONFIDENCES = ("raw", "visible", "none")
"""What the third input feature holds (module docstring; ``none``: there is none)."""
CAMERA_SCALE = 2.0
"""Camera normalisation multiplies rays (X/Z, Y/Z) by this, so inputs are O(1): 2 makes them equal
VideoPose3D's screen coordinates of a centred camera whose focal length is the image width (a 53
degree field of view, near predict's 55 degree default and Human3.6M's 47)."""
_LEGACY_NORMALISATION = {"videopose3d_screen": "screen"}  # what model files before the codec wrote
PLACEMENTS = ("free", "rays")
"""How a lifter places its output joints (``models.rays``): ``free`` (the network's three
coordinates) or ``rays`` (joints with a keypoint on its ray, at their predicted depth: needs the
camera normalisation, whose x, y are the rays). Here, torch-free, beside the codec it depends on."""


def check_placement(placement: str, codec: "InputCodec") -> str:
    """``placement`` when it is one of ``PLACEMENTS`` that ``codec`` allows; ConfigError otherwise."""
    if placement not in PLACEMENTS:
        raise ConfigError(f"output placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    if placement == "rays" and codec.normalisation != "camera":
        raise ConfigError("output placement rays needs camera-normalised input (input normalisation camera)")
    return placement


@dataclass(frozen=True)
class InputCodec:
    """How 2D keypoints become network input (module docstring). The default is the encoding
    models had before the choice existed (VideoPose3D's screen coordinates + raw confidence)."""

    normalisation: str = "screen"
    confidence: str = "raw"

    def __post_init__(self):
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(f"input normalisation must be one of {', '.join(NORMALISATIONS)}, "
                              f"got {self.normalisation!r}")
        if self.confidence not in CONFIDENCES:
            raise ConfigError(f"input confidence must be one of {', '.join(CONFIDENCES)}, got {self.confidence!r}")

    @property
    def in_features(self) -> int:
        """Features per keypoint: 2 (x, y) or 3 (x, y, confidence or visibility)."""
        return 2 if self.confidence == "none" else 3

    @property
    def features(self) -> list[str]:
        """The feature names, as the model file lists them."""
        third = {"raw": ["confidence"], "visible": ["visible"], "none": []}[self.confidence]
        return ["x", "y"] + third

    def file_entry(self) -> dict:
        """The codec's part of a model file's ``input`` entry."""
        entry = {"features": self.features, "normalisation": self.normalisation, "confidence": self.confidence}
        if self.normalisation == "camera":
            entry["camera_scale"] = CAMERA_SCALE
        return entry

    @classmethod
    def from_file_entry(cls, entry: dict, path="model.pt") -> "InputCodec":
        """The codec of a model file's ``input`` entry. Files written before the choice existed
        read as screen + raw (3 features) or screen + none (2 features, VideoPose3D imports)."""
        features = list(entry.get("features", ["x", "y", "confidence"]))
        normalisation = str(entry.get("normalisation", "screen"))
        normalisation = _LEGACY_NORMALISATION.get(normalisation, normalisation)
        confidence = str(entry.get("confidence", "raw" if len(features) == 3 else "none"))
        try:
            codec = cls(normalisation, confidence)
        except ConfigError as err:
            raise DataError(path, f"model file's input entry: {err}") from None
        scale = entry.get("camera_scale", CAMERA_SCALE)
        if codec.features != features or float(scale) != CAMERA_SCALE:
            raise DataError(path, f"model file's input entry {entry} does not match its codec "
                                  f"(features {codec.features}, camera_scale {CAMERA_SCALE})")
        return codec

    def encode(self, keypoints, width, height, intrinsics=None, distortion=None, distortion_model=None):
        """Pixels + confidence (..., K, 3) (or (..., K, 2): all seen) -> network input (..., K, F)
        float32.

        ``width`` / ``height`` (screen) broadcast against ``keypoints[..., 0, 0]`` (a scalar or one
        value per frame); ``intrinsics`` (4,) or (..., 4) fx, fy, cx, cy px and ``distortion``
        (5,) / (..., 5) or None (camera), aligned with the leading dimensions, applied with
        ``distortion_model`` (a name or per-camera codes, ``geometry.cameras``; None = opencv).
        numpy in, numpy out; torch in, torch out (computed in numpy: the input is data, not a graph).
        """
        if type(keypoints).__module__.startswith("torch"):
            import torch

            out = self.encode(keypoints.detach().cpu().numpy(), width, height, intrinsics, distortion,
                              distortion_model)
            return torch.from_numpy(out).to(keypoints.device)
        keypoints = np.asarray(keypoints)
        keypoints = keypoints.astype(np.result_type(keypoints, np.float32), copy=False)
        if keypoints.shape[-1] == 2:
            keypoints = np.concatenate([keypoints, np.ones(keypoints.shape[:-1] + (1,), keypoints.dtype)], -1)
        conf = keypoints[..., 2:3]
        if self.normalisation == "screen":
            w = np.asarray(width)[..., None] if np.ndim(width) else width
            h = np.asarray(height)[..., None] if np.ndim(height) else height
            xy = normalize_screen(keypoints[..., :2], w, h)
        else:
            xy = self._camera_xy(keypoints[..., :2], intrinsics, distortion, distortion_model)
        xy = np.where(conf > 0, xy, 0.0).astype(keypoints.dtype, copy=False)
        third = {"raw": [conf], "visible": [(conf > 0).astype(keypoints.dtype)], "none": []}[self.confidence]
        return np.concatenate([xy, *third], -1).astype(np.float32)

    @staticmethod
    def _camera_xy(pixels: np.ndarray, intrinsics, distortion, model=None) -> np.ndarray:
        """(..., K, 2) pixels -> CAMERA_SCALE x undistorted rays (X/Z, Y/Z)."""
        if intrinsics is None:
            raise ConfigError("camera input normalisation needs the camera intrinsics (fx, fy, cx, cy)")
        K = np.asarray(intrinsics, np.float64)
        if distortion is None or not np.any(distortion):
            K = K[..., None, :] if K.ndim > 1 else K
            return (pixels - K[..., 2:4]) / K[..., 0:2] * CAMERA_SCALE
        with np.errstate(all="ignore"):  # missed joints may sit anywhere; they are zeroed after
            rays = undistort_points(pixels, K, np.asarray(distortion, np.float64), normalised=True,
                                    model=_per_point(model))
        return rays * CAMERA_SCALE

    def project_torch(self, points_cam, intrinsics, distortion, width, height, distortion_model=None):
        """Camera-space points (B, J, 3) -> their encoded x, y (B, J, 2) as the camera (B, 4),
        (B, 5), width, height (B,), distortion model (B,) codes or a name, sees them: what
        ``encode`` gives for their exact projection."""
        if self.normalisation == "screen":
            px = project_points_torch(points_cam, intrinsics, distortion, distortion_model)
            return normalize_screen(px, width[:, None], height[:, None])
        scale = points_cam.new_tensor([CAMERA_SCALE, CAMERA_SCALE, 0.0, 0.0])
        return project_points_torch(points_cam, scale)

    def rays(self, xy: np.ndarray, intrinsics, distortion, width, height, distortion_model=None) -> np.ndarray:
        """Encoded x, y (..., K, 2) -> undistorted rays (X/Z, Y/Z) (..., K, 2), float64; camera
        parameters (..., 4), (..., 5), width, height (...,), distortion model (...,) codes or a
        name, aligned with the leading dimensions."""
        if self.normalisation == "camera":
            return np.asarray(xy, np.float64) / CAMERA_SCALE
        px = image_coordinates(np.asarray(xy, np.float64), np.asarray(width)[..., None],
                               np.asarray(height)[..., None])
        return undistort_points(px, np.asarray(intrinsics)[..., None, :], np.asarray(distortion)[..., None, :],
                                normalised=True, model=_per_point(distortion_model))


def _per_point(model):
    """Per-camera distortion model codes (...,) as (..., 1), aligned like (..., 4) intrinsics with
    the keypoint axis; a name (or None) as it is."""
    return model if model is None or isinstance(model, str) else np.asarray(model)[..., None]


def keypoints_to_input(keypoints, width, height, codec: InputCodec | None = None, *, intrinsics=None,
                       distortion=None, distortion_model=None):
    """Pixels + confidence (..., K, 3) -> network input (..., K, F) with ``codec`` (default: screen +
    raw confidence); see ``InputCodec.encode``."""
    return (codec or InputCodec()).encode(keypoints, width, height, intrinsics, distortion, distortion_model)
