"""MCSS pose embedding: a 2D keypoint window -> a unit vector that ignores the camera.

``PoseEmbedding`` maps a window of VideoPose3D-normalised 2D keypoints (plus confidence) to an
L2-normalised embedding, trained with ``posebridge.metric_learning`` so that two cameras seeing
the same instant give nearby embeddings. ``EmbeddingToPose`` regresses the pose in the canonical
frame (``posebridge.canonical``) from the embedding: a view-invariant target for a view-invariant
input.

The trunk is either its own (``WindowTrunk``: VideoPose3D-style temporal convolutions with
stride = kernel width, so a window of exactly ``receptive_field`` frames gives one feature; a
single width 1 makes it a per-frame MLP) or any module giving a (B, C) feature, such as the
lifter's trunk; ``PoseEmbedding.head`` embeds such features directly.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "centre_and_scale_2d",
    "WindowTrunk",
    "EmbeddingHead",
    "PoseEmbedding",
    "EmbeddingToPose",
]


def centre_and_scale_2d(keypoints: torch.Tensor) -> torch.Tensor:
    """Remove what uncalibrated cameras change freely: image position and apparent size.

    ``keypoints`` (B, T, J, F): x, y and, when F >= 3, a confidence in channel 2 that weights the
    joints (0 = missed). Each frame is centred on its confidence-weighted mean joint and each
    window divided by its weighted RMS joint spread; missed joints get x = y = 0. Other channels
    are passed through. Returns (B, T, J, F).
    """
    xy = keypoints[..., :2]
    if keypoints.shape[-1] >= 3:
        weight = keypoints[..., 2:3].clamp_min(0.0)
    else:
        weight = torch.ones_like(keypoints[..., :1])
    frame_weight = weight.sum(dim=-2, keepdim=True)  # (B, T, 1, 1)
    centre = (weight * xy).sum(dim=-2, keepdim=True) / frame_weight.clamp_min(1e-6)
    centred = (xy - centre) * (weight > 0)
    spread = (weight * centred.square()).sum(dim=(-3, -2, -1), keepdim=True)
    spread = spread / weight.sum(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-6)
    scaled = centred / spread.sqrt().clamp_min(1e-6)
    return torch.cat([scaled, keypoints[..., 2:]], dim=-1)


class WindowTrunk(nn.Module):
    """Temporal convolutions over a window: (B, T, J, F) -> (B, C), T = ``receptive_field``.

    Layout of VideoPose3D's training-time model (REFERENCES.md section 1): an expanding conv of
    width ``filter_widths[0]``, then one residual block (conv width w_i, conv 1x1) per further
    width, every conv strided by its own width so that no output frame is computed twice. With
    ``normalize_input`` the window first goes through :func:`centre_and_scale_2d`.
    """

    def __init__(
        self,
        num_joints_in: int,
        in_features: int = 3,
        filter_widths: Sequence[int] = (3, 3, 3),
        channels: int = 256,
        dropout: float = 0.25,
        normalize_input: bool = True,
    ):
        super().__init__()
        widths = [int(w) for w in filter_widths]
        if not widths or any(w < 1 or w % 2 == 0 for w in widths):
            raise ValueError(f"filter widths must be odd and positive, got {list(filter_widths)}")
        self.num_joints_in, self.in_features = num_joints_in, in_features
        self.filter_widths = widths
        self.channels = channels
        self.normalize_input = normalize_input
        self.receptive_field = math.prod(widths)
        self.drop = nn.Dropout(dropout)
        self.expand_conv = nn.Conv1d(
            num_joints_in * in_features, channels, widths[0], stride=widths[0], bias=False
        )
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        convs, bns = [], []
        for w in widths[1:]:
            convs += [nn.Conv1d(channels, channels, w, stride=w, bias=False),
                      nn.Conv1d(channels, channels, 1, bias=False)]
            bns += [nn.BatchNorm1d(channels, momentum=0.1), nn.BatchNorm1d(channels, momentum=0.1)]
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(bns)

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        b, t, j, f = keypoints.shape
        if t != self.receptive_field or j != self.num_joints_in or f != self.in_features:
            raise ValueError(
                f"expected windows (B, {self.receptive_field}, {self.num_joints_in}, "
                f"{self.in_features}), got {tuple(keypoints.shape)}"
            )
        if self.normalize_input:
            keypoints = centre_and_scale_2d(keypoints)
        x = keypoints.reshape(b, t, j * f).transpose(1, 2)  # channels j*F + f over time
        x = self.drop(F.relu(self.expand_bn(self.expand_conv(x))))
        for i, w in enumerate(self.filter_widths[1:]):
            residual = x[:, :, w // 2::w]  # the centre frame of each strided window
            conv, bn = self.layers_conv[2 * i], self.layers_bn[2 * i]
            x = self.drop(F.relu(bn(conv(x))))
            conv, bn = self.layers_conv[2 * i + 1], self.layers_bn[2 * i + 1]
            x = residual + self.drop(F.relu(bn(conv(x))))
        return x.reshape(b, self.channels)


class EmbeddingHead(nn.Module):
    """Trunk feature (B, C) -> unit embedding (B, D): linear, ReLU, linear, L2 normalisation."""

    def __init__(self, in_channels: int, embedding_dim: int = 128, hidden: int | None = None):
        super().__init__()
        hidden = hidden or in_channels
        self.hidden = nn.Linear(in_channels, hidden)
        self.out = nn.Linear(hidden, embedding_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = features.reshape(features.shape[0], -1)
        return F.normalize(self.out(F.relu(self.hidden(features))), dim=-1)


class PoseEmbedding(nn.Module):
    """2D keypoint window (B, T, J_in, F) -> L2-normalised embedding (B, D).

    Own trunk by default (:class:`WindowTrunk` with ``filter_widths``, ``channels``, ``dropout``,
    ``normalize_input``; T must equal ``receptive_field``). Pass ``trunk`` (a module mapping the
    input to (B, C) or (B, C, 1)) and ``trunk_channels`` = C to embed another network's features
    instead; ``self.head`` embeds precomputed (B, C) features.
    """

    def __init__(
        self,
        num_joints_in: int,
        in_features: int = 3,
        embedding_dim: int = 128,
        filter_widths: Sequence[int] = (3, 3, 3),
        channels: int = 256,
        dropout: float = 0.25,
        normalize_input: bool = True,
        trunk: nn.Module | None = None,
        trunk_channels: int | None = None,
    ):
        super().__init__()
        if trunk is None:
            trunk = WindowTrunk(
                num_joints_in, in_features, filter_widths, channels, dropout, normalize_input
            )
            trunk_channels = channels
        elif trunk_channels is None:
            raise ValueError("an external trunk needs trunk_channels (its feature size)")
        self.trunk = trunk
        self.head = EmbeddingHead(trunk_channels, embedding_dim)
        self.embedding_dim = embedding_dim
        self._architecture = {
            "num_joints_in": num_joints_in, "in_features": in_features,
            "embedding_dim": embedding_dim, "filter_widths": [int(w) for w in filter_widths],
            "channels": channels, "dropout": dropout, "normalize_input": normalize_input,
            "trunk_channels": trunk_channels,
        }

    @property
    def architecture(self) -> dict:
        """Constructor keyword arguments (to save beside the state dict). An external trunk is
        not included: pass it again when rebuilding."""
        return dict(self._architecture)

    @property
    def receptive_field(self) -> int:
        """Input frames per embedding (1 for an external trunk without this attribute)."""
        return getattr(self.trunk, "receptive_field", 1)

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(keypoints))


class EmbeddingToPose(nn.Module):
    """Embedding (B, D) -> canonical 3D pose (B, J_out, 3) in millimetres.

    An MLP (two hidden ReLU layers with dropout) whose raw outputs are scaled by ``output_scale``
    (1000: the network works in metres, numbers near 1, and returns millimetres).
    """

    def __init__(
        self,
        embedding_dim: int,
        num_joints_out: int,
        hidden: int = 256,
        dropout: float = 0.1,
        output_scale: float = 1000.0,
    ):
        super().__init__()
        self.num_joints_out = num_joints_out
        self.output_scale = output_scale
        self.architecture = {
            "embedding_dim": embedding_dim, "num_joints_out": num_joints_out, "hidden": hidden,
            "dropout": dropout, "output_scale": output_scale,
        }
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_joints_out * 3),
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        out = self.mlp(embedding) * self.output_scale
        return out.reshape(embedding.shape[0], self.num_joints_out, 3)
