"""Run a trained lifter: load a model directory, lift long 2D sequences to 3D in every format.

``lift`` pads the sequence at both ends by the receptive field (replicating the first / last
frame, as in training), runs the dilated model with BatchNorm folded into the convolutions over
pieces of the sequence (each piece carries its receptive-field overlap, so the result equals one
pass over the whole sequence, and memory stays bounded for any length; pieces are long, because
on a 2-core machine each extra operation costs a thread hand-over, and a piece's overlap is
computed twice), and averages with the prediction for the mirrored input
mirrored back (test-time flip augmentation).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from posebridge.geometry import skeletons
from posebridge.device import resolve_device
from posebridge.data.keypoints import InputCodec
from posebridge.errors import DataError
from posebridge.models.files import read_model_file
from posebridge.models.lifter import MM_PER_UNIT, SeparateHeadLifter

__all__ = ["LiftingModel", "load_model", "lift", "chunk_length"]

ACTIVATION_BUDGET = 2 ** 22
"""Default piece length: an activation tensor of one piece holds about this many floats (16 MB):
2048 frames of the full model with its mirrored copy (measured ~15% faster than one 5000-frame
pass on 2 cores), 8192 of the small one (fewer, larger operations)."""


@dataclass
class LiftingModel:
    """A loaded model: the dilated lifter in eval mode plus what evaluation needs.

    ``name`` (the model directory's name), ``formats`` (output skeleton formats), ``mean_pose``
    (format -> (J, 3) mm, mean root-relative camera-space training pose: the trivial baseline),
    ``mean_shape`` (format -> (J, 3) mm, the training poses' Procrustes mean: the constant pose a
    rotation-aligned metric compares with; empty in files written before it),
    ``keypoint_format`` / ``codec`` / ``in_features`` (the input it takes), ``device``.
    """

    name: str
    lifter: SeparateHeadLifter
    mean_pose: dict[str, np.ndarray]
    device: torch.device
    path: Path | None = None
    metadata: dict = field(default_factory=dict)
    mean_shape: dict[str, np.ndarray] = field(default_factory=dict)
    _folded: list | None = field(default=None, repr=False)

    @property
    def formats(self) -> list[str]:
        return list(self.lifter.formats)

    @property
    def keypoint_format(self) -> str:
        return self.lifter.keypoint_format

    @property
    def codec(self) -> InputCodec:
        return self.lifter.codec

    @property
    def in_features(self) -> int:
        return self.lifter.in_features

    def encode(self, keypoints, width, height, intrinsics=None, distortion=None, distortion_model=None) -> np.ndarray:
        """Pixels + confidence (T, K, 3) -> this model's network input (``InputCodec.encode``)."""
        return self.codec.encode(keypoints, width, height, intrinsics, distortion, distortion_model)

    @property
    def slices(self) -> dict[str, slice]:
        """format -> its joints in the union output."""
        return self.lifter.slices

    def split(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """(..., J_union, 3) -> {format: (..., J_format, 3)}."""
        return self.lifter.split(output)

    def receptive_field(self) -> int:
        return self.lifter.receptive_field()

    def folded(self) -> list:
        """The eval-mode weights with BatchNorm folded in (computed once)."""
        if self._folded is None:
            with torch.no_grad():
                self._folded = self.lifter.temporal.folded_weights()
        return self._folded

    @classmethod
    def from_lifter(cls, lifter: SeparateHeadLifter, mean_pose: dict | None = None, name: str = "model",
                    device="cpu") -> "LiftingModel":
        """Wrap an in-memory lifter (e.g. fresh from training) for ``lift``."""
        device = resolve_device(device)
        lifter = lifter.variant(strided=False).to(device).eval()
        mean_pose = {f: np.asarray(p, dtype=np.float64) for f, p in (mean_pose or {}).items()}
        return cls(name, lifter, mean_pose, device)


def load_model(model_dir: str | os.PathLike, device="cpu"):
    """Load ``model_dir/model.pt`` (or a ``model.pt`` path) for inference (eval mode, no grad): a
    ``LiftingModel``, or an ``inference.ensemble.EnsembleModel`` for an ensemble's file."""
    from posebridge.inference.ensemble import ENSEMBLE_KEY, ensemble_from_payload

    path, payload = read_model_file(model_dir, allow_ensemble=True)
    if ENSEMBLE_KEY in payload:
        return ensemble_from_payload(path, payload, device)
    return model_from_payload(path, payload, path.parent.name, device)


def model_from_payload(path: Path, payload: dict, name: str, device="cpu") -> LiftingModel:
    """The ``LiftingModel`` of one lifter's model file dict (``path``: the file, for messages)."""
    try:
        lifter = SeparateHeadLifter.from_file_dict(payload, path=path)
    except DataError:
        raise
    except Exception as err:  # torch lists every mismatched tensor on its own line: keep the first
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = next((line for line in lines if "size mismatch" in line or "Missing key" in line
                       or "Unexpected key" in line), lines[0] if lines else "")
        more = sum("size mismatch" in line for line in lines) - 1
        detail += f" (and {more} more mismatched tensors)" if more > 0 else ""
        raise DataError(path, f"model file does not describe a lifter ({type(err).__name__}: {detail})") from None
    device = resolve_device(device)
    lifter = lifter.to(device).eval()
    mean_pose, mean_shape = ({f: np.asarray(p, dtype=np.float64) for f, p in payload.get(key, {}).items()}
                             for key in ("mean_pose", "mean_shape"))
    metadata = {k: v for k, v in payload.items() if k not in ("state_dict", "mean_pose", "mean_shape")}
    return LiftingModel(name, lifter, mean_pose, device, path, metadata, mean_shape)


def chunk_length(frames: int, batch: int, channels: int, chunk_frames: int | None = None) -> int:
    """Output frames per piece: at most ``chunk_frames`` (default: what fits the activation budget,
    at least 1024), pieces of equal length (a 5000-frame sequence in 2 x 2500, not 4096 + 904)."""
    limit = chunk_frames or max(1024, ACTIVATION_BUDGET // (batch * channels))
    pieces = -(-frames // max(1, int(limit)))
    return -(-frames // max(1, pieces))


def _pad_edges(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """(T, ...) -> (before + T + after, ...) replicating the first / last frame."""
    parts = [x[:1].expand(before, *x.shape[1:]), x, x[-1:].expand(after, *x.shape[1:])]
    return torch.cat(parts)


@torch.inference_mode()
def lift_network_input(model: LiftingModel, inputs: np.ndarray | torch.Tensor, flip: bool = True,
                       chunk_frames: int | None = None) -> torch.Tensor:
    """Network input (T, K, F) -> (T, J_union, 3) network output (metres, not root-relative),
    one prediction per input frame (an ensemble's: its members' mean)."""
    if not isinstance(model, LiftingModel):
        return model.network_output(inputs, flip=flip, chunk_frames=chunk_frames)
    lifter = model.lifter
    x = torch.as_tensor(inputs, dtype=torch.float32, device=model.device)
    T = x.shape[0]
    before, after = lifter.window()
    padded = _pad_edges(x, before, after)
    batch = torch.stack([padded, lifter.flip_input(padded)]) if flip else padded[None]
    rf = lifter.receptive_field()
    folded = model.folded()
    out = torch.empty(batch.shape[0], T, lifter.num_joints_out, 3, device=model.device)
    step = chunk_length(T, batch.shape[0], lifter.temporal.channels, chunk_frames)
    for s in range(0, T, step):
        e = min(T, s + step)
        window = batch[:, s:e + rf - 1]
        out[:, s:e] = lifter.place(lifter.temporal.folded_forward(window, folded), window)
    if flip:
        return (out[0] + lifter.flip_output(out[1])) / 2
    return out[0]


def lift(model, keypoints: np.ndarray, width: float, height: float, flip: bool = True,
         intrinsics: np.ndarray | None = None, chunk_frames: int | None = None,
         distortion: np.ndarray | None = None, distortion_model: str | None = None) -> dict[str, np.ndarray]:
    """2D keypoints of one sequence -> {format: (T, J, 3) float32 mm, root-relative camera space}
    (``model``: a ``LiftingModel`` or an ``inference.ensemble.EnsembleModel``).

    keypoints: (T, K, 3) pixels + confidence (or (T, K, 2): all confident) in the model's keypoint
    format; width, height: image size in pixels; ``intrinsics`` (4,) fx, fy, cx, cy px and
    ``distortion`` (5,) or None with its ``distortion_model`` (None = opencv): the camera, which a
    model with camera normalisation needs (the
    model's ``codec`` encodes the input as it was trained); flip: test-time flip averaging;
    chunk_frames: output frames per piece (default: ``chunk_length``'s activation budget).
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    K = skeletons.get(model.keypoint_format).num_joints
    if keypoints.ndim != 3 or keypoints.shape[1] != K or keypoints.shape[2] not in (2, 3):
        raise ValueError(f"keypoints must be (T, {K}, 2 or 3) {model.keypoint_format}, got {keypoints.shape}")
    if len(keypoints) == 0:
        return {f: np.zeros((0, skeletons.get(f).num_joints, 3), np.float32) for f in model.formats}
    inputs = model.encode(keypoints, float(width), float(height), intrinsics, distortion, distortion_model)
    out = lift_network_input(model, inputs, flip=flip, chunk_frames=chunk_frames)
    result = {}
    for fmt, pose in model.split(out).items():
        root = skeletons.get(fmt).root
        pose = (pose - pose[:, root:root + 1]) * MM_PER_UNIT
        result[fmt] = pose.float().cpu().numpy()
    return result
