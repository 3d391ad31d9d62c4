"""MCSS pose embedding: trunk features -> a unit vector that ignores the camera, and back to pose.

``EmbeddingHead`` maps the lifter's trunk features (``TemporalModel.features``: a window of
VideoPose3D-normalised 2D keypoints seen through the temporal convolutions) to an L2-normalised
embedding, trained with ``posebridge.training.metric_learning`` so that two cameras seeing the same
instant give nearby embeddings (``posebridge.training.objectives.multiview``). ``EmbeddingToPose`` regresses the pose
in the canonical frame (``posebridge.geometry.canonical``) from the embedding: a view-invariant target for
a view-invariant input. ``centre_and_scale_2d`` removes image position and size from 2D
keypoints (the raw-2D retrieval baseline of the MCSS experiment).

The embedding reads the lifter's trunk rather than a trunk of its own, so the metric loss shapes
the features the lifter's pose head reads (MCSS's semi-supervision).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["centre_and_scale_2d", "EmbeddingHead", "EmbeddingToPose"]


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


class EmbeddingHead(nn.Module):
    """Trunk feature (B, C) -> unit embedding (B, D): linear, ReLU, linear, batch centring
    (BatchNorm without affine parameters), L2 normalisation.

    The centring removes what all embeddings share before projecting onto the sphere: without it
    the triplet loss with hardest in-batch negatives collapsed every embedding onto one point
    (measured on the synthetic benchmark: anchor-positive and anchor-negative distances both
    fell below 0.01 within two epochs, the loss stuck at the margin).
    """

    def __init__(self, in_channels: int, embedding_dim: int = 128, hidden: int | None = None):
        super().__init__()
        hidden = hidden or in_channels
        self.hidden = nn.Linear(in_channels, hidden)
        self.out = nn.Linear(hidden, embedding_dim)
        self.centre = nn.BatchNorm1d(embedding_dim, affine=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = features.reshape(features.shape[0], -1)
        return F.normalize(self.centre(self.out(F.relu(self.hidden(features)))), dim=-1)


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
