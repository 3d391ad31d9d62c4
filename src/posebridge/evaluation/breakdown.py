"""The standard per-label evaluations of datasets whose frames carry labels.

- **MPI-INF-3DHP per activity** (Mehta et al., 3DV 2017, the test set's Table 3 protocol): the
  scores of the frames of each activity (Stand/Walk, Exercise, Sit on Chair, Reach/Crouch, On
  Floor, Sports, Misc.), from the stored per-frame ``activity`` annotation.
- **MuPoTS-3D occluded vs visible joints** (Mehta et al., 3DV 2018): the scores of the joints the
  per-joint ``occluded`` annotation marks occluded, and of the visible ones.

One record per model x format x test row x group, in ``BREAKDOWN_COLUMNS``: ``breakdown``
(``activity`` / ``occlusion``), ``group`` (the activity name, or ``occluded`` / ``visible``),
``frames`` and ``joints`` scored, and ``mpjpe``, ``pa_mpjpe`` (the pose aligned on all its joints,
then the group's joints measured), ``pck``, ``auc``. A dataset without the annotations gives none.
"""

from __future__ import annotations

import numpy as np

from posebridge.errors import ConfigError
from posebridge.evaluation import metrics

BREAKDOWN_COLUMNS = ("model", "source_model", "dataset", "format", "sequence", "camera", "breakdown", "group",
                     "frames", "joints", "mpjpe", "pa_mpjpe", "pck", "auc", "pck_threshold", "auc_threshold")
BREAKDOWNS = ("activity", "occluded")  # the annotations each breakdown reads


def row_labels(dataset, sequence: str, frames: int) -> dict[str, np.ndarray]:
    """The annotations of ``BREAKDOWNS`` a dataset carries, for the first ``frames`` of a sequence."""
    have = getattr(dataset, "annotations", [])
    return {name: np.asarray(dataset.sequence_annotation(name, sequence))[:frames]
            for name in BREAKDOWNS if name in have}


def _groups(labels: dict[str, np.ndarray], native: str, fmt: str):
    """Yield (breakdown, group, mask (T, J) of ``fmt`` joints) for each labelled group."""
    from posebridge.geometry import skeletons
    from posebridge.data.store import ACTIVITY_NAMES

    joints = skeletons.get(fmt).num_joints
    if "activity" in labels:
        activity = labels["activity"]
        for code in np.unique(activity[activity >= 0]):
            mask = np.repeat((activity == code)[:, None], joints, axis=1)
            yield "activity", ACTIVITY_NAMES.get(int(code), f"activity {int(code)}"), mask
    if "occluded" in labels:  # flags of the stored skeleton's joints: formats mapped from it only
        try:
            flags = labels["occluded"][:, skeletons.mapping(native, fmt)]
        except ConfigError:
            return
        for value, group in ((1, "occluded"), (0, "visible")):
            yield "occlusion", group, flags == value


def _scores(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, aligned: np.ndarray, config) -> dict:
    """The group's scores: ``gt`` joints outside ``mask`` (T, J) count as missing."""
    kept = np.where(mask[..., None], gt, np.nan)
    poses = mask.any(axis=1)
    return {"frames": int(poses.sum()), "joints": int((mask & np.isfinite(gt).all(axis=-1)).sum()),
            "mpjpe": metrics.mpjpe(pred[poses], kept[poses]),
            "pa_mpjpe": metrics.mpjpe(aligned[poses], kept[poses]),
            "pck": metrics.pck(pred[poses], kept[poses], threshold=config.pck_threshold),
            "auc": metrics.auc(pred[poses], kept[poses], threshold=config.auc_threshold)}


def breakdown_records(base: dict, native: str, predicted: dict, truth: dict, labels: dict, config) -> list[dict]:
    """Records (``BREAKDOWN_COLUMNS``) of one test row: ``base`` holds model, source_model,
    dataset, sequence, camera; ``predicted`` / ``truth`` format -> (T, J, 3) root-relative mm."""
    if not labels:
        return []
    records = []
    thresholds = {"pck_threshold": float(config.pck_threshold), "auc_threshold": float(config.auc_threshold)}
    for fmt, gt in truth.items():
        pred = np.asarray(predicted[fmt], dtype=np.float64)
        aligned = metrics.procrustes_align(pred, gt)
        for breakdown, group, mask in _groups(labels, native, fmt):
            if mask.any():
                records.append({**base, "format": fmt, "breakdown": breakdown, "group": group,
                                **_scores(pred, gt, mask, aligned, config), **thresholds})
    return records


def breakdown_table(records: list[dict]):
    """The records as a DataFrame with ``BREAKDOWN_COLUMNS`` (empty without labelled frames)."""
    import pandas as pd

    return pd.DataFrame.from_records(records, columns=list(BREAKDOWN_COLUMNS))


def summary_lines(table) -> list[str]:
    """One line per model x format x breakdown: frame- (activity) or joint-weighted (occlusion)
    MPJPE per group over the test rows (``table``: rows of ``BREAKDOWN_COLUMNS``)."""
    lines = []
    for (model, fmt, breakdown), rows in table.groupby(["model", "format", "breakdown"], sort=False):
        weight = "frames" if breakdown == "activity" else "joints"
        parts = []
        for group, g in rows.groupby("group", sort=False):
            ok = g["mpjpe"].notna()
            total = g.loc[ok, weight].sum()
            if total:
                parts.append(f"{group} {(g.loc[ok, 'mpjpe'] * g.loc[ok, weight]).sum() / total:.1f}")
        lines.append(f"{model} {fmt} MPJPE by {breakdown} (mm): " + ", ".join(parts))
    return lines
