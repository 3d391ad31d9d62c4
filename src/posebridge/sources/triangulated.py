"""3D joints for a calibrated multi-view dataset from a 2D detector: ``posebridge triangulate``.

Every take (sequence) of a converted dataset is triangulated from its rows' detections (one row
per camera; ``geometry.triangulation``). The result is the same dataset -- same name, cameras
and index, so the dataset's detection files still match it -- stored in the detections' keypoint
format (``coco_17`` for MediaPipe) with ``joints_3d`` filled in, and four index columns per
sequence x camera row that record how well the 3D fits that view:

- ``reprojection_median_px``, ``reprojection_p90_px``: median and 90th percentile of the
  reprojection error (px) of the triangulated joints onto the view's confident keypoints in
  the frames where the view sees the chosen person;
- ``person_share``: share of the take's frames in which the view's detection is the chosen person;
- ``others_share``: share of the take's frames in which it is not, but another person its
  detector found is (detections with ``others``: that person's 2D is the view's, below);
- ``swapped_pairs``: left/right keypoint pairs of the view swapped back.

``triangulate_dataset`` also gives the chosen person's 2D in every view (the detections, with a
view's main person replaced where another found person is the one triangulated): what a model
lifting each view alone is given (``posebridge triangulate --output-keypoints``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from posebridge.errors import DataError
from posebridge.geometry.triangulation import Triangulation, TriangulationConfig, triangulate

ERROR_COLUMNS = ("reprojection_median_px", "reprojection_p90_px", "person_share", "others_share", "swapped_pairs")


def take_keypoints(dataset, detections, sequence: str) -> tuple[pd.DataFrame, np.ndarray, list, np.ndarray]:
    """One take's rows, keypoints (V, T, K, 3) in row order, cameras and the detections' further
    people (V, T, P, K, 3; P = 0 when the file has none)."""
    rows = dataset.index[dataset.index["sequence"] == sequence]
    keypoints = np.stack([detections.get(sequence, camera) for camera in rows["camera"]])
    others = np.stack([detections.others(sequence, camera) for camera in rows["camera"]])
    return rows, keypoints, [dataset.camera_for(row) for _, row in rows.iterrows()], others


def view_summary(result: Triangulation) -> dict[str, np.ndarray]:
    """Per-view columns (``ERROR_COLUMNS``) of one take's triangulation, each (V,)."""
    errors = [e[np.isfinite(e)] for e in result.errors.reshape(len(result.errors), -1)]
    percentile = lambda q: np.array([np.percentile(e, q) if e.size else np.nan for e in errors])  # noqa: E731
    return {"reprojection_median_px": percentile(50), "reprojection_p90_px": percentile(90),
            "person_share": result.person.mean(axis=1), "others_share": result.taken_from_others.mean(axis=1),
            "swapped_pairs": result.swaps.sum(axis=1)}


def person_keypoints(dataset, detections, results: dict[str, Triangulation]) -> np.ndarray:
    """(N, K, 3) float32: the chosen person's 2D (``Triangulation.keypoints``) of every index row
    of ``dataset``, rows concatenated in index order (the layout of a detection file)."""
    out = []
    for _, row in dataset.index.iterrows():
        rows = dataset.index[dataset.index["sequence"] == row["sequence"]]
        view = list(rows["camera"]).index(row["camera"])
        out.append(results[row["sequence"]].keypoints[view])
    if not out:
        return np.zeros((0, detections.skeleton.num_joints, 3), np.float32)
    return np.concatenate(out).astype(np.float32)


def triangulate_dataset(dataset, detections, config: TriangulationConfig | None = None
                        ) -> tuple[np.ndarray, pd.DataFrame, dict[str, Triangulation]]:
    """Triangulate every take. Returns joints (N, K, 3) for ``joints_3d``, the index with the
    ``ERROR_COLUMNS`` added, and sequence -> :class:`Triangulation`."""
    detections.check_against(dataset)
    skeleton = detections.skeleton
    joints = np.full((dataset.num_frames, skeleton.num_joints, 3), np.nan, np.float32)
    index = dataset.index.copy()
    results = {}
    for sequence in dataset.sequences:
        rows, keypoints, cameras, others = take_keypoints(dataset, detections, sequence)
        if len(rows) < 2:
            raise DataError(dataset.path, f"sequence {sequence!r} has {len(rows)} camera; triangulation needs two")
        result = triangulate(keypoints, cameras, skeleton, config, others=others)
        start, frames = dataset.span(sequence)
        joints[start:start + frames] = result.joints
        for column, values in view_summary(result).items():
            index.loc[rows.index, column] = values
        results[sequence] = result
    index["swapped_pairs"] = index["swapped_pairs"].astype(np.int64)
    return joints, index, results
