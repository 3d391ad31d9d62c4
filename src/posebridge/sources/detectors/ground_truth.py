"""Ground-truth 2D ("gt2d"): a dataset's own 3D joints projected through each row's camera.

The detector of VideoPose3D's ground-truth rows (H36M, 243 frames: 37.2 mm): no detection error,
so it measures the lifter alone. Points come from ``extra/<keypoint_format>`` when the dataset
stores that format (the synthetic benchmark), else from its own joints through an exact skeleton
mapping (``h36m_32`` -> ``h36m_17``). Projection includes lens distortion. A joint that is missing
(NaN) or not in front of the camera gets confidence 0 and x = y = 0 (the detection-file
convention); every other joint confidence 1.
"""

from __future__ import annotations

import numpy as np

from posebridge.geometry import skeletons
from posebridge.errors import ConfigError, DataError
from posebridge.specs import check_keys

SETTINGS = ("keypoint_format",)
DEFAULT_FORMAT = "coco_17"
MIN_DEPTH_MM = 1.0  # nearer than this (or behind the camera) a joint does not project


def _source(dataset, keypoint_format: str):
    """A function sequence -> (T, K, 3) world mm in ``keypoint_format``, or DataError."""
    if keypoint_format in dataset.extra_formats:
        return lambda sequence: dataset.sequence_extra(keypoint_format, sequence)
    try:
        skeletons.mapping(dataset.skeleton.name, keypoint_format)
    except ConfigError:
        stored = ", ".join([dataset.skeleton.name, *dataset.extra_formats])
        raise DataError(dataset.path, f"gt2d: dataset {dataset.name!r} has no {keypoint_format} joints "
                                      f"(stored: {stored}; no exact mapping from {dataset.skeleton.name}); "
                                      f"set the detector's keypoint_format, e.g. to {dataset.skeleton.name}") from None
    return lambda sequence: skeletons.convert(dataset.sequence_3d(sequence), dataset.skeleton.name,
                                              keypoint_format)


def project_row(world_mm: np.ndarray, camera) -> np.ndarray:
    """(T, K, 3) world mm -> (T, K, 3) float32 pixels + confidence through ``camera``."""
    cam = camera.world_to_camera(np.asarray(world_mm, dtype=np.float64))
    seen = np.isfinite(cam).all(axis=-1) & (np.nan_to_num(cam[..., 2]) > MIN_DEPTH_MM)
    px = camera.project_camera(np.where(seen[..., None], cam, [0.0, 0.0, 1000.0]))
    out = np.zeros(cam.shape[:-1] + (3,), dtype=np.float32)
    out[..., :2] = np.where(seen[..., None], px, 0.0)
    out[..., 2] = seen
    return out


def detect_ground_truth(dataset, spec: dict | None) -> tuple[np.ndarray, str]:
    """Keypoints (sum of row frames, K, 3) of every index row of ``dataset`` (index order) and
    their format. ``spec``: ``keypoint_format`` (default coco_17)."""
    spec = dict(spec or {})
    spec.pop("kind", None)
    check_keys(spec, SETTINGS, "gt2d detector")
    keypoint_format = skeletons.get(spec.get("keypoint_format", DEFAULT_FORMAT)).name
    read = _source(dataset, keypoint_format)
    out, cached = [], (None, None)
    for row in dataset.index.itertuples(index=False):
        if cached[0] != row.sequence:  # converters write a take's rows together: one read per take
            cached = (row.sequence, read(row.sequence))
        out.append(project_row(cached[1], dataset.cameras[int(row.camera_index)]))
    return np.concatenate(out), keypoint_format
