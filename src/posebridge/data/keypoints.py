"""The keypoint codec: 2D detections (pixels + confidence) as the lifter's network input.

``KEYPOINT_FORMAT`` is the skeleton format of the detectors' keypoints (COCO-17 from the simulated
and MediaPipe detectors) and so the lifter's input format unless a run names another one (e.g.
h36m_17 for VideoPose3D's CPN detections). ``keypoints_to_input`` encodes keypoints as
VideoPose3D's normalised screen coordinates plus the detector's confidence (Pavllo et al.,
"3D human pose estimation in video with temporal convolutions and semi-supervised training",
CVPR 2019).
"""

from __future__ import annotations

import numpy as np

from posebridge.geometry.cameras import normalize_screen

__all__ = ["KEYPOINT_FORMAT", "keypoints_to_input"]

KEYPOINT_FORMAT = "coco_17"
"""The keypoint format the detectors write and the lifter reads unless told otherwise."""


def keypoints_to_input(keypoints, width, height, in_features: int = 3):
    """Pixels + confidence (..., K, 3) -> network input (..., K, in_features), float32.

    x, y become VideoPose3D normalised screen coordinates; keypoints with confidence 0 get
    x = y = 0, so the network cannot read anything from where a detector put a joint it did not
    see. ``width`` / ``height`` broadcast against ``keypoints[..., 0, 0]``-shaped arrays (a
    scalar, or one value per frame). numpy in, numpy out; torch in, torch out.
    """
    is_torch = type(keypoints).__module__.startswith("torch")
    if is_torch:
        import torch
    if keypoints.shape[-1] == 2:  # no confidence: every keypoint seen
        ones = (torch.ones_like(keypoints[..., :1]) if is_torch
                else np.ones(keypoints.shape[:-1] + (1,), dtype=np.float32))
        keypoints = torch.cat([keypoints, ones], -1) if is_torch else np.concatenate([keypoints, ones], -1)
    w = width[..., None] if getattr(width, "ndim", 0) else width
    h = height[..., None] if getattr(height, "ndim", 0) else height
    x = normalize_screen(keypoints, w, h)
    seen = x[..., 2:3] > 0
    if is_torch:
        x = torch.cat([torch.where(seen, x[..., :2], 0.0), x[..., 2:3]], -1).float()
    else:
        x = np.concatenate([np.where(seen, x[..., :2], 0.0), x[..., 2:3]], -1).astype(np.float32)
    return x[..., :in_features]
