"""A causal lifter run frame by frame: each new frame of 2D gives the 3D pose of that frame at
once, from the frames seen so far (live use, a webcam, a game loop).

VideoPose3D's causal model (Pavllo et al., CVPR 2019, section "causal convolutions": every
convolution looks only into the past, so output frame t depends on input frames
[t - RF + 1, t]) is computed incrementally, as for WaveNet-style dilated causal convolutions:
every layer keeps a ring buffer of its last ``(width - 1) x dilation + 1`` input frames, and a new
frame costs one output column per layer (the work of one frame of the offline model), not a
whole receptive field. The buffers start as if the first frame had been seen RF - 1 times before
(for a constant input every layer's activations are constant, so each buffer is filled with its
first column), which is exactly how ``inference.lift`` pads a sequence's start: the streamed poses
equal the offline causal ones (``lift`` with the same flip setting) up to float rounding.

A centred (non-causal) model needs future frames and is refused: train with ``causal: true``
(``TrainConfig.causal``, ``posebridge train --spec '{"causal": true}'``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from posebridge.errors import ConfigError
from posebridge.geometry import skeletons
from posebridge.models.lifter import MM_PER_UNIT

__all__ = ["StreamingLifter", "stream_lift"]


class _Ring:
    """The last ``length`` columns (S, C) of a layer's input, written in place."""

    def __init__(self, first: torch.Tensor, length: int):
        self.data = first[:, :, None].repeat(1, 1, length)  # (S, C, length)
        self.length, self.pos = length, 0

    def push(self, column: torch.Tensor) -> None:
        self.pos = (self.pos + 1) % self.length
        self.data[:, :, self.pos] = column

    def taps(self, width: int, dilation: int) -> torch.Tensor:
        """(S, C, width): the columns ``(width - 1 - k) x dilation`` frames back, oldest first."""
        index = (self.pos - dilation * torch.arange(width - 1, -1, -1, device=self.data.device)) % self.length
        return self.data[:, :, index]


class StreamingLifter:
    """Frame-by-frame lifting with a causal model (module docstring).

    ``model``: an ``inference.lift.LiftingModel`` whose lifter is causal; ``flip``: test-time flip
    averaging (as ``lift``). ``push`` takes one frame of network input, ``step`` one frame of
    keypoints; ``reset`` starts a new sequence.
    """

    def __init__(self, model, flip: bool = True):
        from posebridge.inference.ensemble import require_single_lifter

        temporal = require_single_lifter(model, "frame-by-frame lifting").lifter.temporal
        if not temporal.causal:
            raise ConfigError(f"model {model.name} is not causal: frame-by-frame lifting needs a causal model "
                              "(train with the training spec's causal: true)")
        self.model, self.flip, self.temporal = model, bool(flip), temporal
        # every folded convolution as a matrix (O, C * width): one output column is a matrix product
        # with the gathered taps (S, C, width) flattened alike (faster than conv1d per column)
        self.matrices = [(w.flatten(1).contiguous(), b) for w, b in model.folded()]
        self.widths, self.dilations = temporal.filter_widths, temporal.dilations
        self.rings: list[_Ring] | None = None
        self.roots = {f: skeletons.get(f).root for f in model.formats}

    def reset(self) -> None:
        """Forget the frames seen: the next frame starts a new sequence."""
        self.rings = None

    def _batch(self, frame: torch.Tensor) -> torch.Tensor:
        """(K, F) -> (S, K * F): the frame and, with flip, its mirror."""
        frame = frame[None]
        if self.flip:
            frame = torch.cat([frame, self.model.lifter.flip_input(frame)])
        return frame.flatten(1)

    def _layers(self, x: torch.Tensor) -> torch.Tensor:
        """One column (S, K * F) through every layer (pushing into the ring buffers) -> (S, J * 3)."""
        first = self.rings is None
        if first:
            self.rings = [_Ring(x, self.widths[0])]
        else:
            self.rings[0].push(x)
        h = F.linear(self.rings[0].taps(self.widths[0], 1).flatten(1), *self.matrices[0]).relu_()
        for i, width in enumerate(self.widths[1:]):
            if first:
                self.rings.append(_Ring(h, (width - 1) * self.dilations[i + 1] + 1))
            else:
                self.rings[i + 1].push(h)
            taps = self.rings[i + 1].taps(width, self.dilations[i + 1]).flatten(1)
            z = F.linear(taps, *self.matrices[1 + 2 * i]).relu_()
            h = F.linear(z, *self.matrices[2 + 2 * i]).relu_().add_(h)  # causal residual: the newest column
        return F.linear(h, *self.matrices[-1])

    @torch.inference_mode()
    def push(self, network_input) -> torch.Tensor:
        """One frame of network input (K, F) -> (J_union, 3) network output (metres, as
        ``inference.lift.lift_network_input``) for that frame."""
        x = torch.as_tensor(network_input, dtype=torch.float32, device=self.model.device)
        batch = self._batch(x)
        out = self._layers(batch).unflatten(-1, (-1, 3))
        if self.model.lifter.rays is not None:  # ray placement (models.rays) on the frame's own input
            out = self.model.lifter.rays(out, batch.unflatten(-1, x.shape))
        if self.flip:
            return (out[0] + self.model.lifter.flip_output(out[1])) / 2
        return out[0]

    def step(self, keypoints, width: float, height: float, intrinsics=None, distortion=None) -> dict[str, np.ndarray]:
        """One frame of keypoints (K, 3) px + confidence -> {format: (J, 3) float32 mm,
        root-relative camera space} (one frame of ``inference.lift.lift``'s output)."""
        inputs = self.model.encode(np.asarray(keypoints, dtype=np.float32)[None], float(width), float(height),
                                   intrinsics, distortion)[0]
        out = self.push(inputs)
        result = {}
        for fmt, pose in self.model.lifter.split(out).items():
            root = self.roots[fmt]
            result[fmt] = ((pose - pose[root:root + 1]) * MM_PER_UNIT).float().cpu().numpy()
        return result


def stream_lift(model, keypoints: np.ndarray, width: float, height: float, flip: bool = True,
                intrinsics: np.ndarray | None = None, distortion: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``inference.lift.lift``'s result computed frame by frame by a ``StreamingLifter`` (what a
    live caller gets, frame after frame): {format: (T, J, 3) float32 mm}."""
    streamer = StreamingLifter(model, flip=flip)
    frames = [streamer.step(k, width, height, intrinsics, distortion) for k in np.asarray(keypoints)]
    return {f: np.stack([frame[f] for frame in frames]) if frames else
            np.zeros((0, skeletons.get(f).num_joints, 3), np.float32) for f in model.formats}
