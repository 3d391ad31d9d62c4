"""Ray placement: the lifter's output joints put on the camera rays of their input keypoints.

A lifter that predicts all three coordinates of every joint is free to move a joint sideways off
the ray its 2D keypoint defines; on real footage that freedom costs more than it gains (measured
on the Pose2Sim takes: the plain lifter's poses reproject 32 px from their own input 2D, and
back-projecting the input 2D to a mean pose's depths beat it). With ray placement the network
decides only how far along its ray each such joint lies; its x and y follow from the input:

1. the translation T that best places the predicted pose P (any origin) on the input rays
   (weighted least squares over the joints that have a keypoint, ``training.losses.recover_translation``);
2. each of those joints, where its keypoint was found, moves to the point of its ray at its
   predicted depth: ``X_j = (u_k z_j, v_k z_j, z_j)`` with ``z_j = P_j,z + T_z`` and ``(u_k, v_k)``
   keypoint k's undistorted ray;
3. T is subtracted again, so the output keeps the network's origin (training's losses and
   inference's root-relative poses see a pose like any other).

Joints without a keypoint (pelvis, spine, head of joint-centre formats) and joints whose keypoint
was missed keep their predicted position. Which joints have a keypoint: ``skeletons.
keypoint_correspondence`` (every keypoint for formats that map onto the keypoint format, else the
hinge joints: elbows, wrists, knees, ankles, whose centres the keypoints mark to within a
centimetre). The placed pose, at translation T, projects exactly onto the input keypoints of its
placed joints; a pose placed this way also carries the 2D detector's jitter into 3D.

This is the depth-along-the-ray parametrisation of lifters that regress depth per joint and take
x, y from the 2D (e.g. Zhou et al., "Monocap", and the root-relative depth heads of MeTRAbs,
Sárándi et al. T-BIOM 2021), applied as a parameter-free layer on any lifter's output.
"""

from __future__ import annotations

import torch

from posebridge.data.keypoints import CAMERA_SCALE, InputCodec, check_placement
from posebridge.errors import ConfigError
from posebridge.geometry import skeletons
from posebridge.training.losses import recover_translation

__all__ = ["RayPlacement", "seen_keypoints", "centre_inputs"]

MIN_DEPTH = 0.1
"""Metres: a joint whose placed depth would lie nearer the camera than this keeps its predicted
position (early in training the recovered translation can put a pose at or behind the camera)."""


def seen_keypoints(inputs: torch.Tensor, codec: InputCodec) -> torch.Tensor:
    """(..., K, F) network input -> (..., K) bool: the keypoints the detector found (a missed one
    is encoded as x = y = 0 with confidence 0, ``InputCodec.encode``)."""
    if codec.confidence == "none":
        return (inputs[..., :2] != 0).any(-1)
    return inputs[..., 2] > 0


class RayPlacement(torch.nn.Module):
    """Puts a lifter's output joints that have an input keypoint on that keypoint's ray.

    Args:
        formats: the lifter's output formats, in output order.
        slices: format -> slice of the union output.
        keypoint_format: the input keypoint format.
        codec: the input codec; must be camera-normalised (its x, y are scaled rays).
    """

    def __init__(self, formats, slices: dict[str, slice], keypoint_format: str, codec: InputCodec):
        super().__init__()
        check_placement("rays", codec)
        self.codec = codec
        self.groups: list[tuple[str, str]] = []  # buffer names of (output joints, keypoints) per format
        for fmt in formats:
            try:
                joints, keypoints = skeletons.keypoint_correspondence(fmt, keypoint_format)
            except ConfigError:
                continue  # a format without shared joints keeps its predicted positions
            names = (f"joints_{len(self.groups)}", f"keypoints_{len(self.groups)}")
            self.register_buffer(names[0], torch.as_tensor(joints + slices[fmt].start, dtype=torch.long),
                                 persistent=False)
            self.register_buffer(names[1], torch.as_tensor(keypoints, dtype=torch.long), persistent=False)
            self.groups.append(names)

    def forward(self, pose: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """pose (..., J_union, 3) predicted (any origin, metres); inputs (..., K, F) the network
        input of the same frames -> (..., J_union, 3), the placed pose (same origin)."""
        rays = inputs[..., :2].to(pose.dtype) / CAMERA_SCALE
        seen = seen_keypoints(inputs, self.codec)
        out = pose.clone()
        for joints_name, keypoints_name in self.groups:
            joints, keypoints = getattr(self, joints_name), getattr(self, keypoints_name)
            part, uv, found = pose[..., joints, :], rays[..., keypoints, :], seen[..., keypoints]
            translation = recover_translation(part, uv, found.to(pose.dtype))[..., None, :]
            depth = part[..., 2:] + translation[..., 2:]
            placed = torch.cat([uv * depth, depth], -1) - translation
            keep = found & (depth[..., 0] > MIN_DEPTH)
            out[..., joints, :] = torch.where(keep[..., None], placed, part)
        return out


def centre_inputs(inputs: torch.Tensor, outputs: int, before: int, receptive_field: int, strided: bool) -> torch.Tensor:
    """The input frames (B, T', K, F) the outputs (B, T', ...) of a temporal model belong to.

    inputs (B, T, K, F): the strided model's T' disjoint windows (T = T' x RF) or the dilated
    model's sliding ones (T = T' + RF - 1); ``before``: frames of a window before its output frame.
    """
    if strided and inputs.shape[1] == outputs * receptive_field:
        return inputs[:, before::receptive_field]
    return inputs[:, before:before + outputs]

