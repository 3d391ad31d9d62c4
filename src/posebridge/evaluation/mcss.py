"""The MCSS experiment's evaluation: canonical-frame N-MPJPE and cross-view retrieval.

On held-out synchronised multi-camera data (the test split of a labeled multi-view dataset, e.g.
synth_h36m), for each model trained with the multi-view objective (``posebridge.training.objectives.multiview``; its
triplet weight may be 0, the baseline):

- **N-MPJPE in the canonical frame** (Mitra et al., "Multiview-Consistent Semi-Supervised
  Learning for 3D Human Pose Estimation", CVPR 2020): the pose regressed from
  the embedding against the ground truth canonicalised in the world (Z up); beside it, the
  lifter's own camera-frame prediction canonicalised with each camera's up vector.
- **Cross-view retrieval**: for a query frame of camera a, is the nearest embedding among all test
  frames of camera b (a != b, every ordered pair) the same instant ("instant"), or a pose within
  ``pose_threshold`` mm canonical MPJPE ("pose")? The view-dependent baseline is the raw 2D
  keypoints, centred and scaled per frame (``models.embedding.centre_and_scale_2d``).
- **The distance matrix of the MCSS figure**: column j = pose j seen by one camera, row i = pose i
  seen by another camera; a view-invariant embedding has its smallest entries on the diagonal.

``evaluate_models`` computes it all; ``write_outputs`` writes the CSV tables, the figures and an
HTML page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from posebridge import atomic
from posebridge.geometry import canonical, skeletons
from posebridge.evaluation import metrics
from posebridge.training.objectives import multiview
from posebridge.training import metric_learning as ml
from posebridge.errors import DataError
from posebridge.inference.lift import lift, load_model
from posebridge.models.embedding import centre_and_scale_2d
from posebridge.models.lifter import keypoints_to_input

__all__ = ["TestViews", "load_test_views", "raw_2d_features", "retrieval_rates", "distance_matrix",
           "evaluate_models", "retrieval_only", "write_outputs", "OUTPUT_FILES", "RAW_2D"]

# What ``write_outputs`` writes into its directory, by content. The workflow's mcss_eval rule
# declares the same names (MCSS_OUTPUTS in workflow/rules/common.smk, which must not import torch;
# tests/test_multiview_workflow.py checks that they agree).
OUTPUT_FILES = {"nmpjpe_table": "nmpjpe.csv", "retrieval_table": "retrieval.csv", "nmpjpe_figure": "nmpjpe.png",
                "distance_figure": "distance_matrix.png", "page": "mcss.html"}
RAW_2D = "raw 2D (normalised)"


@dataclass
class TestViews:
    """Every test row (sequence x camera) of a dataset with synchronised cameras.

    Per row: keypoints (T, K, 3) px + confidence, image_size (w, h), up (3,) the world's up in the
    camera frame, take (int), camera (int), gt (T, J, 3) world ground truth in ``fmt`` (mm),
    lens ((4,) intrinsics px, (5,) distortion, distortion model name: what a model's input codec
    may need);
    per take: canonical (T, J, 3) ground truth (the same for every camera).
    """

    fmt: str
    keypoints: list[np.ndarray]
    image_size: list[tuple[int, int]]
    up: list[np.ndarray]
    take: np.ndarray
    camera: np.ndarray
    action: list[str]
    canonical: list[np.ndarray]  # per take
    lens: list[tuple[np.ndarray, np.ndarray, str]] = field(default_factory=list)

    def gt(self, row: int) -> np.ndarray:
        return self.canonical[self.take[row]][: len(self.keypoints[row])]


def load_test_views(dataset, detections, fmt: str) -> TestViews:
    """The test split of ``dataset`` (a ``store.Dataset``) with its ``detections``; ground truth
    converted to skeleton ``fmt`` and canonicalised."""
    detections.check_against(dataset)
    rows = dataset.rows("test")
    if rows.empty:
        raise DataError(dataset.path, "no test rows (split == test) to evaluate on")
    takes, cameras = {}, {}
    out = TestViews(fmt, [], [], [], np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64), [], [])
    for i, (_, row) in enumerate(rows.iterrows()):
        camera = dataset.camera_for(row)
        if row["group"] not in takes:
            world = skeletons.convert(dataset.sequence_3d(row["sequence"]), dataset.skeleton.name, fmt)
            takes[row["group"]] = len(takes)
            out.canonical.append(canonical.canonicalize(world.astype(np.float64), fmt))
        out.take[i] = takes[row["group"]]
        out.camera[i] = cameras.setdefault(row["camera"], len(cameras))
        out.keypoints.append(detections.get(row["sequence"], row["camera"]))
        out.image_size.append(tuple(camera.image_size))
        out.lens.append((camera.intrinsics, camera.distortion, camera.distortion_model))
        out.up.append(camera.R @ np.array([0.0, 0.0, 1.0]))
        out.action.append(str(row["action"]))
    if len(cameras) < 2:
        raise DataError(dataset.path, "test rows come from one camera; cross-view retrieval needs two or more")
    return out


def raw_2d_features(views: TestViews, row: int) -> np.ndarray:
    """(T, 2K) the view-dependent baseline: each frame's keypoints centred on their confidence-
    weighted mean and divided by their spread (missed joints 0)."""
    w, h = views.image_size[row]
    x = torch.from_numpy(keypoints_to_input(views.keypoints[row], w, h))
    frames = centre_and_scale_2d(x[:, None])[:, 0]  # a window of one frame: per-frame normalisation
    return frames[..., :2].reshape(len(frames), -1).double().numpy()


def retrieval_rates(views: TestViews, features: list[np.ndarray], stride: int, pose_threshold: float
                    ) -> dict[str, float]:
    """Mean hit rates (%) over ordered camera pairs: ``instant`` (nearest gallery frame is the
    query's instant) and ``pose`` (or a pose within ``pose_threshold`` mm canonical MPJPE).
    ``features``: per row (T, D); every ``stride``-th frame is used, as query and as gallery."""
    per_camera = {}
    for row in range(len(features)):
        frames = np.arange(0, len(features[row]), stride)
        part = per_camera.setdefault(int(views.camera[row]), {"f": [], "id": [], "pose": []})
        part["f"].append(features[row][frames])
        part["id"].append(np.stack([np.full(len(frames), views.take[row]), frames], 1))
        part["pose"].append(views.gt(row)[frames])
    cams = {c: {k: np.concatenate(v) for k, v in p.items()} for c, p in per_camera.items()}
    instant, pose = [], []
    for a in cams:
        for b in cams:
            if a == b:
                continue
            q, g = cams[a], cams[b]
            instant.append(ml.retrieval_hit_rate(q["f"], g["f"], q["id"], g["id"]))
            pose.append(ml.retrieval_hit_rate(q["f"], g["f"], q["id"], g["id"], query_poses=q["pose"],
                                              gallery_poses=g["pose"], pose_threshold=pose_threshold))
    return {"instant": float(np.mean(instant)), "pose": float(np.mean(pose))}


def distance_matrix(views: TestViews, features: list[np.ndarray], poses: int = 12) -> np.ndarray:
    """(P, P) distances: column j = pose j (the middle frame of test take j) seen by the first
    camera, row i = pose i seen by another camera (cycling through the others). Rows are scaled
    by their mean so that matrices of different features compare."""
    cams = sorted(set(views.camera.tolist()))
    takes = sorted(set(views.take.tolist()))[:poses]
    where = {(int(views.take[r]), int(views.camera[r])): r for r in range(len(views.take))}
    columns, rows = [], []
    for i, t in enumerate(takes):
        other = cams[1 + i % (len(cams) - 1)]
        if (t, cams[0]) not in where or (t, other) not in where:
            continue
        r0, r1 = where[(t, cams[0])], where[(t, other)]
        frame = min(len(features[r0]), len(features[r1])) // 2
        columns.append(features[r0][frame])
        rows.append(features[r1][frame])
    d = ml.pairwise_distances(torch.as_tensor(np.array(rows)), torch.as_tensor(np.array(columns))).numpy()
    return d / d.mean(axis=1, keepdims=True)


def _model_info(payload: dict, dataset_name: str, train_subjects: int) -> dict:
    training = payload.get("training", {})
    labeled = training.get("labeled_subjects", {}).get(dataset_name)
    count = train_subjects if labeled is None else (labeled if isinstance(labeled, int) else len(labeled))
    weight = float(payload[multiview.FILE_KEY]["settings"]["weight"])
    return {"labeled_subjects": int(count), "multiview_weight": weight,
            "variant": "with multi-view loss" if weight > 0 else "without multi-view loss"}


def evaluate_models(model_dirs, views: TestViews, dataset_name: str, train_subjects: int, *,
                    stride: int = 5, pose_threshold: float = 50.0, matrix_poses: int = 12,
                    device="cpu", log=print):
    """(nmpjpe table, retrieval table, {label: distance matrix}) for the models in ``model_dirs``."""
    nmpjpe_rows, retrieval_rows, matrices = [], [], {}
    raw = [raw_2d_features(views, r) for r in range(len(views.take))]
    retrieval_rows.append({"model": RAW_2D, "labeled_subjects": np.nan, "variant": RAW_2D,
                           **_rates(views, raw, stride, pose_threshold)})
    matrices[RAW_2D] = distance_matrix(views, raw, matrix_poses)
    gt = np.concatenate([views.gt(r) for r in range(len(views.take))])
    for model_dir in model_dirs:
        model = load_model(model_dir, device)
        head, regressor, slices = multiview.load_embedding(model.metadata, model.path, model.device)
        info = _model_info(model.metadata, dataset_name, train_subjects)
        embeddings, regressed, lifted = [], [], []
        for r in range(len(views.take)):
            w, h = views.image_size[r]
            e = _embed_row(model, head, views, r)
            embeddings.append(e.double().cpu().numpy())
            regressed.append(multiview.canonical_pose(regressor, e, slices, views.fmt))
            intrinsics, distortion, distortion_model = views.lens[r]
            camera_pose = lift(model, views.keypoints[r], w, h, flip=True, intrinsics=intrinsics,
                               distortion=distortion, distortion_model=distortion_model)[views.fmt].astype(np.float64)
            lifted.append(canonical.canonicalize(camera_pose, views.fmt, up_axis=views.up[r]))
        regressed, lifted = np.concatenate(regressed), np.concatenate(lifted)
        nmpjpe_rows.append({"model": model.name, **info, "frames": len(gt),
                            "n_mpjpe": metrics.n_mpjpe(regressed, gt), "mpjpe": metrics.mpjpe(regressed, gt),
                            "n_mpjpe_lifter": metrics.n_mpjpe(lifted, gt), "mpjpe_lifter": metrics.mpjpe(lifted, gt)})
        retrieval_rows.append({"model": model.name, "labeled_subjects": info["labeled_subjects"],
                               "variant": info["variant"], **_rates(views, embeddings, stride, pose_threshold)})
        matrices[model.name] = distance_matrix(views, embeddings, matrix_poses)
        log(f"{model.name}: N-MPJPE {nmpjpe_rows[-1]['n_mpjpe']:.1f} mm (lifter {nmpjpe_rows[-1]['n_mpjpe_lifter']:.1f}), "
            f"retrieval instant {retrieval_rows[-1]['hit_instant']:.1f} %, pose {retrieval_rows[-1]['hit_pose']:.1f} %")
    nmpjpe = pd.DataFrame(nmpjpe_rows).sort_values(["labeled_subjects", "multiview_weight"], kind="stable")
    retrieval = pd.DataFrame(retrieval_rows)
    retrieval["pose_threshold_mm"] = pose_threshold
    retrieval["frame_stride"] = stride
    return nmpjpe.reset_index(drop=True), retrieval, matrices


def _embed_row(model, head, views: TestViews, row: int) -> torch.Tensor:
    """(T, D) the embedding of test row ``row``'s 2D by ``model``'s trunk and MCSS ``head``."""
    w, h = views.image_size[row]
    return multiview.embed(model.lifter, head, model.encode(views.keypoints[row], w, h, *views.lens[row]))


def retrieval_only(model_dirs, views: TestViews, *, stride: int = 1, pose_threshold: float = 50.0,
                   device="cpu") -> pd.DataFrame:
    """Cross-view retrieval alone (no pose regression, so ``views`` may be in a format the models do
    not predict, e.g. real footage's triangulated COCO-17): one row per model (``model``,
    ``hit_instant``, ``hit_pose`` in %), the raw normalised 2D first."""
    raw = [raw_2d_features(views, r) for r in range(len(views.take))]
    rows = [{"model": RAW_2D, **_rates(views, raw, stride, pose_threshold)}]
    for model_dir in model_dirs:
        model = load_model(model_dir, device)
        head, _, _ = multiview.load_embedding(model.metadata, model.path, model.device)
        features = [_embed_row(model, head, views, r).double().cpu().numpy() for r in range(len(views.take))]
        rows.append({"model": model.name, **_rates(views, features, stride, pose_threshold)})
    return pd.DataFrame(rows)


def _rates(views, features, stride, pose_threshold) -> dict:
    rates = retrieval_rates(views, features, stride, pose_threshold)
    return {"hit_instant": rates["instant"], "hit_pose": rates["pose"]}


def _diagonal_hits(matrix: np.ndarray) -> float:
    """Percentage of rows whose smallest entry is on the diagonal (same pose, other view)."""
    return 100.0 * float((matrix.argmin(axis=1) == np.arange(len(matrix))).mean())


def write_outputs(out_dir, nmpjpe: pd.DataFrame, retrieval: pd.DataFrame, matrices: dict,
                  title: str = "MCSS") -> list[Path]:
    """Write ``OUTPUT_FILES`` under ``out_dir`` (each atomically); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {key: Path(out_dir) / name for key, name in OUTPUT_FILES.items()}
    for path, table in ((files["nmpjpe_table"], nmpjpe), (files["retrieval_table"], retrieval)):
        with atomic.atomic_path(path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.2f")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for variant, part in nmpjpe.groupby("variant", sort=True):
        line = ax.plot(part["labeled_subjects"], part["n_mpjpe"], "o-", label=f"{variant}: regressor")[0]
        ax.plot(part["labeled_subjects"], part["n_mpjpe_lifter"], "s--", color=line.get_color(), alpha=0.6,
                label=f"{variant}: lifter, canonicalised")
    ax.set_xlabel("training subjects with 3D labels")
    ax.set_ylabel("N-MPJPE, canonical frame (mm)")
    ax.set_xticks(sorted(nmpjpe["labeled_subjects"].unique()))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic.savefig(files["nmpjpe_figure"], fig, dpi=120)
    plt.close(fig)

    labels = list(matrices)
    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.4), squeeze=False)
    for ax, label in zip(axes[0], labels):
        m = matrices[label]
        ax.imshow(m, cmap="viridis")
        ax.set_title(f"{label}\nmin on diagonal: {_diagonal_hits(m):.0f} %", fontsize=8)
        ax.set_xlabel("pose j, first camera")
        ax.set_ylabel("pose i, another camera")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    atomic.savefig(files["distance_figure"], fig, dpi=120)
    plt.close(fig)

    page = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
            f"<h1>{html.escape(title)}: multi-view metric learning</h1>",
            "<h2>N-MPJPE in the canonical frame (mm) vs 3D supervision</h2>",
            "<p><code>n_mpjpe</code>: the pose regressed from the embedding; <code>n_mpjpe_lifter</code>: "
            "the lifter's camera-frame prediction canonicalised with the camera's up vector.</p>",
            nmpjpe.to_html(index=False, float_format="%.1f"), f"<img src='{OUTPUT_FILES['nmpjpe_figure']}'>",
            "<h2>Cross-view retrieval (hit rate, %)</h2>",
            "<p>Query: a test frame of one camera; gallery: every test frame of another camera. "
            "<code>hit_instant</code>: the nearest is the same instant; <code>hit_pose</code>: or a pose "
            "within the threshold (canonical MPJPE).</p>",
            retrieval.to_html(index=False, float_format="%.1f"),
            "<h2>Embedding distances</h2><p>Column j: pose j from the first camera; row i: pose i from "
            "another camera. A view-invariant embedding is darkest on the diagonal.</p>",
            f"<img src='{OUTPUT_FILES['distance_figure']}'>", "</body></html>"]
    atomic.write_text(files["page"], "\n".join(page))
    return list(files.values())
