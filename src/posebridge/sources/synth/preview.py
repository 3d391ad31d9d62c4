"""A one-image preview of a synthetic dataset, to judge its realism at a glance.

Top left: one frame of one take in several skeleton formats overlaid in 3D (the same body; each
format's own joint definitions, so same-named joints visibly differ). Top right: the capture
setup seen from above (cameras, the take's pelvis path). Bottom: a few camera views with the
dataset's skeleton projected through the camera (distortion included) and, when given, the 2D
detections (colour = confidence; missed joints are not drawn).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from posebridge.geometry import skeletons

OVERLAY_FORMATS = ("h36m_17", "smpl_24", "mpi_inf_3dhp_17", "coco_19", "humaneva_15", "coco_17")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


def _draw_3d(ax, joints: np.ndarray, skeleton, colour: str, label: str) -> None:
    for a, b in skeleton.edges:
        ax.plot(*joints[[a, b]].T, color=colour, lw=1.4, alpha=0.85)
    ax.scatter(*joints.T, color=colour, s=8, label=label, depthshade=False)


@dataclass
class _PreviewData:
    """What the preview draws, read from the dataset (3D in world mm)."""

    name: str
    sequence: str
    subject: str
    action: str
    fps: float
    frame: int
    frames: int
    own: str  # the dataset's skeleton format
    own_3d: np.ndarray  # (T, J, 3) the sequence in that format
    poses: dict  # format -> (T, J_f, 3), the formats overlaid
    cams: list  # the cameras whose views are drawn
    all_cams: list  # the take's rig


def _read_preview(dataset_path, sequence: str | None, frame: int | None, views: int) -> _PreviewData:
    """Read one frame's sequence of ``dataset_path`` (its middle frame by default); DataError when
    ``frame`` is outside the sequence."""
    from posebridge.data.store import open_dataset
    from posebridge.errors import DataError

    with open_dataset(dataset_path) as ds:
        sequence = sequence or ds.sequences[0]
        _, frames = ds.span(sequence)
        frame = frames // 2 if frame is None else int(frame)
        if not 0 <= frame < frames:
            raise DataError(dataset_path, f"frame {frame} is outside sequence {sequence!r} ({frames} frames)")
        own = ds.skeleton.name
        own_3d = ds.sequence_3d(sequence)
        poses = {}
        for fmt in OVERLAY_FORMATS:
            if fmt == own:
                poses[fmt] = own_3d
            elif fmt in ds.extra_formats:
                poses[fmt] = ds.sequence_extra(fmt, sequence)
        if own not in poses and not any(skeletons.get(own).num_joints > skeletons.get(f).num_joints
                                        and f.split("_")[0] == own.split("_")[0] for f in poses):
            poses = {own: own_3d, **poses}  # a raw format whose subset is not drawn anyway
        rows = ds.index[ds.index["sequence"] == sequence]
        picks = np.floor(np.linspace(0, len(rows), max(1, min(views, len(rows))), endpoint=False))
        cams = [ds.camera_for(r) for _, r in rows.iloc[picks.astype(int)].iterrows()]
        all_cams = [ds.camera_for(r) for _, r in rows.iterrows()]  # the take's rig
        return _PreviewData(ds.name, sequence, rows["subject"].iloc[0], rows["action"].iloc[0],
                            float(rows["fps"].iloc[0]), frame, frames, own, own_3d, poses, cams, all_cams)


def render_preview(dataset_path: str | os.PathLike, output: str | os.PathLike,
                   detections_path: str | os.PathLike | None = None, sequence: str | None = None,
                   frame: int | None = None, views: int = 3) -> None:
    """Write the preview PNG of one frame of ``dataset_path`` to ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from posebridge.atomic import savefig
    from posebridge.data.detections import read_detections

    data = _read_preview(dataset_path, sequence, frame, views)
    detections = None
    if detections_path is not None:
        with read_detections(detections_path) as det:
            detections = {c.name: det.get(data.sequence, c.name)[data.frame] for c in data.cams}

    cols = max(len(data.cams), 3)
    fig = plt.figure(figsize=(5.0 * cols, 11.0))
    grid = fig.add_gridspec(2, cols, height_ratios=[1.3, 1.0])
    fig.suptitle(f"{data.name}: {data.sequence} ({data.subject}, {data.action}), frame {data.frame} of "
                 f"{data.frames} at {data.fps:g} fps", fontsize=12)
    _draw_overlay(fig.add_subplot(grid[0, 0:cols - 1], projection="3d"), data)
    _draw_setup(fig.add_subplot(grid[0, cols - 1]), data)
    for i, cam in enumerate(data.cams):
        _draw_view(fig, fig.add_subplot(grid[1, i]), data, cam,
                   None if detections is None else detections[cam.name])
    fig.tight_layout()
    savefig(output, fig, dpi=90)
    plt.close(fig)


def _draw_overlay(ax, data: _PreviewData) -> None:
    """The frame in every overlaid format, in 3D, centred on the joints' mean."""
    centre = data.own_3d[data.frame].mean(axis=0)
    for (fmt, joints), colour in zip(data.poses.items(), COLOURS):
        _draw_3d(ax, joints[data.frame] - centre, skeletons.get(fmt), colour, fmt)
    half = 1.05 * max(np.abs(data.own_3d[data.frame] - centre).max(), 500.0)
    ax.set_xlim(-half, half)
    ax.set_ylim(-half, half)
    ax.set_zlim(-half, half)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_zlabel("z (mm)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("one frame in several skeleton formats (world mm, pelvis-centred)", fontsize=10)


def _draw_setup(ax, data: _PreviewData) -> None:
    """The capture setup from above: the take's root path and its cameras (drawn views in red)."""
    path = data.own_3d[:, skeletons.get(data.own).root, :2]
    ax.plot(path[:, 0], path[:, 1], color="0.4", lw=1, label="root path")
    ax.plot(*path[data.frame], "ko", ms=5)
    for cam in data.all_cams:
        pos = cam.position
        look = cam.R[2] * 600.0
        highlight = any(cam.name == c.name for c in data.cams)
        ax.plot(pos[0], pos[1], "^", color="C3" if highlight else "C0", ms=7)
        ax.plot([pos[0], pos[0] + look[0]], [pos[1], pos[1] + look[1]], color="C3" if highlight else "C0", lw=1)
        if highlight:
            ax.annotate(f"{cam.name} ({pos[2] / 1000:.1f} m high)", pos[:2], fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
    ax.set_aspect("equal")
    ax.set_title("cameras and the take's path from above (mm); red = views below", fontsize=10)
    ax.grid(alpha=0.3)


def _draw_view(fig, ax, data: _PreviewData, cam, keypoints: np.ndarray | None) -> None:
    """One camera's view: the dataset's skeleton projected (distortion included) and, when given,
    the (17, 3) coco_17 detections coloured by confidence."""
    import matplotlib

    skeleton = skeletons.get(data.own)
    uv = cam.project(data.own_3d[data.frame].astype(np.float64))
    w, h = cam.image_size
    ax.add_patch(matplotlib.patches.Rectangle((0, 0), w, h, fill=False, color="k", lw=1))
    for a, b in skeleton.edges:
        ax.plot(uv[[a, b], 0], uv[[a, b], 1], color=COLOURS[0], lw=1.5)
    if keypoints is not None:
        det_skeleton = skeletons.get("coco_17")
        ok = keypoints[:, 2] > 0
        for a, b in det_skeleton.edges:
            if ok[a] and ok[b]:
                ax.plot(keypoints[[a, b], 0], keypoints[[a, b], 1], color="C1", lw=0.8, ls="--")
        sc = ax.scatter(keypoints[ok, 0], keypoints[ok, 1], c=keypoints[ok, 2], cmap="viridis", vmin=0, vmax=1,
                        s=14, zorder=3)
        fig.colorbar(sc, ax=ax, fraction=0.04, label="detection confidence")
        missed = ", ".join(det_skeleton.joint_names[j] for j in np.flatnonzero(~ok)) or "none"
        ax.set_xlabel(f"missed: {missed}", fontsize=8)
    # zoom on the person, keeping the image border in view when it is close
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    pad = 0.35 * (hi - lo).max() + 20
    ax.set_xlim(max(lo[0] - pad, -0.02 * w), min(hi[0] + pad, 1.02 * w))
    ax.set_ylim(min(hi[1] + pad, 1.02 * h), max(lo[1] - pad, -0.02 * h))
    ax.set_aspect("equal")
    f = cam.intrinsics[0]
    ax.set_title(f"{cam.name}: {w}x{h} px, f = {f:.0f} px, k1 = {cam.distortion[0]:+.3f}\n"
                 f"{data.own} projected (blue)" + ("; detections coco_17 (dots)" if keypoints is not None else ""),
                 fontsize=8)
