"""Skeleton consistency: how well one format's predicted joints are explained by the others'.

A model with several heads predicts the same body in several skeleton formats. If the heads agree,
each format's joints are (nearly) a fixed affine combination of the other formats' joints, as the
true joints of the synthetic body are. ``affine_consistency`` measures that: per format, the best
affine combination (least squares, weights of each combination summing to 1, so it commutes with
translation) of the other formats' predicted joints is fitted on the first half of the frames and
its MPJPE (mm) scored on the second half
(of each test set). 0 = perfectly consistent; it grows with independent
errors between heads. ``acae_consistency`` is the fitted ACAE's reconstruction error of the
predictions (Sárándi et al., WACV 2023, "Learning 3D Human Pose Estimation from Dozens of Datasets
using a Geometry-Aware Autoencoder to Bridge Between Skeleton Formats"): small when the prediction
lies in the ACAE's span.
"""

from __future__ import annotations

import numpy as np

from posebridge.errors import DataError

__all__ = ["fit_affine_combination", "apply_affine_combination", "affine_consistency", "acae_consistency",
           "predict_test_frames"]

RIDGE = 1e-6
"""Ridge on the normal equations relative to their mean diagonal: the other formats share many
near-identical joints, so the plain system is close to singular."""


def fit_affine_combination(source: np.ndarray, target: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """(A, B) weights W, columns summing to 1, minimising sum |target_b - sum_a W[a, b] source_a|^2
    over frames and coordinates; source (N, A, 3), target (N, B, 3).

    The constraint is eliminated by writing every point relative to source point 0:
    target_b - s_0 = sum_{a>0} W[a, b] (s_a - s_0), an ordinary least-squares problem.
    """
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    A, B = source.shape[1], target.shape[1]
    ref = source[:, :1]
    design = (source[:, 1:] - ref).transpose(0, 2, 1).reshape(-1, A - 1)  # (N * 3, A - 1)
    rhs = (target - ref).transpose(0, 2, 1).reshape(-1, B)
    gram = design.T @ design
    gram += ridge * max(np.trace(gram) / max(A - 1, 1), 1e-12) * np.eye(A - 1)
    rest = np.linalg.solve(gram, design.T @ rhs)  # (A - 1, B)
    return np.concatenate([1.0 - rest.sum(axis=0, keepdims=True), rest])


def apply_affine_combination(source: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, A, 3) points -> (N, B, 3) = their combinations by ``weights`` (A, B)."""
    return np.einsum("nac,ab->nbc", np.asarray(source, np.float64), weights)


def affine_consistency(points: np.ndarray, slices: dict[str, slice], scored: np.ndarray | None = None
                       ) -> dict[str, float]:
    """Per format: held-out MPJPE (mm) of its joints as the best affine combination of the other
    formats' joints. Fitted on the (N, J_union, 3) frames where ``scored`` (N,) is False and
    scored where it is True (default: fit on the first half, score the rest)."""
    points = np.asarray(points, np.float64)
    if scored is None:
        scored = np.arange(len(points)) >= len(points) // 2
    scored = np.asarray(scored, bool)
    if scored.sum() < 2 or (~scored).sum() < 2:
        raise ValueError(f"need at least 2 frames to fit and 2 to score, got {(~scored).sum()} and {scored.sum()}")
    if len(slices) < 2:
        return {}
    result = {}
    index = np.arange(points.shape[1])
    for fmt, sl in slices.items():
        others = np.setdiff1d(index, index[sl])
        weights = fit_affine_combination(points[~scored][:, others], points[~scored][:, sl])
        recon = apply_affine_combination(points[scored][:, others], weights)
        result[fmt] = float(np.linalg.norm(recon - points[scored][:, sl], axis=-1).mean())
    return result


def acae_consistency(acae, points: np.ndarray) -> float:
    """MPJPE (mm) between (N, J_union, 3) predictions and their ACAE reconstruction."""
    from posebridge.bridge.autoencoder import reconstruction_error

    return reconstruction_error(acae, np.asarray(points, np.float32))


def predict_test_frames(model, dataset, detections, max_frames: int | None = None, flip: bool = True,
                        dataset_path="dataset") -> np.ndarray:
    """(N, J_union, 3) mm: ``model``'s raw union output (one camera frame per row, all formats
    together, centred on the mean of all joints) on the test rows of ``dataset``."""
    import torch

    from posebridge.evaluation.evaluate import test_rows
    from posebridge.inference.lift import lift_network_input
    from posebridge.models.lifter import MM_PER_UNIT, keypoints_to_input

    rows = test_rows(dataset)
    if rows.empty:
        raise DataError(dataset_path, f"dataset {dataset.name!r} has no test rows")
    out = []
    for _, row in rows.iterrows():
        keypoints = np.asarray(detections.get(row["sequence"], row["camera"]), np.float32)[:max_frames]
        if len(keypoints) == 0:
            continue
        width, height = dataset.camera_for(row).image_size
        inputs = keypoints_to_input(keypoints, float(width), float(height), model.in_features)
        with torch.inference_mode():
            pred = lift_network_input(model, inputs, flip=flip).double().cpu().numpy()
        out.append((pred - pred.mean(axis=1, keepdims=True)) * MM_PER_UNIT)
    return np.concatenate(out)
