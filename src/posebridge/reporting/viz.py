"""Skeleton drawing with matplotlib: 3D poses in camera space and 2D keypoints on the image.

Any registered skeleton format draws the same way: its ``edges`` are the lines, and each line is
coloured by body side (the child joint's side) so left and right can be told apart. Callers own
the figure (use the Agg backend for files) and save it through ``posebridge.atomic.savefig``.

Camera space is OpenCV's (x right, y down, z forward); 3D axes show (x, z, -y) so that up is up
and depth runs away from the viewer, as seen from just beside the camera.
"""

from __future__ import annotations

import numpy as np

# side colours for a single pose (2D detections); two-pose comparisons use one colour per pose
SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "centre": "#555555"}
GT_COLOR = "#222222"
# one colour per model: eight distinct hues, so a report of seven models repeats none
PRED_COLORS = ("#e4572e", "#1b998b", "#6a4c93", "#f3a712", "#2e86ab", "#8c564b", "#e377c2", "#7cb518")


def edge_sides(skeleton) -> list[str]:
    """'left' / 'right' / 'centre' per edge of ``skeleton``.

    An edge is sided when its sided end(s) are all on one side (lhip-lknee, pelvis-lhip);
    centre lines and lines across the body (lshoulder-rshoulder) are 'centre'.
    """
    side = {i: "left" for i in skeleton.left} | {i: "right" for i in skeleton.right}
    sides = []
    for a, b in skeleton.edges:
        ends = {side[j] for j in (a, b) if j in side}
        sides.append(ends.pop() if len(ends) == 1 else "centre")
    return sides


def camera_label(sequence: str, camera: str) -> str:
    """A row's camera name without its sequence's name in front (synthetic rows repeat it)."""
    return (camera[len(sequence):].lstrip("_") or camera) if camera.startswith(sequence) else camera


def camera_to_plot(joints: np.ndarray) -> np.ndarray:
    """(..., 3) camera coordinates (x right, y down, z forward) -> plot axes (x, z, -y)."""
    joints = np.asarray(joints, dtype=np.float64)
    return np.stack([joints[..., 0], joints[..., 2], -joints[..., 1]], axis=-1)


def draw_pose_3d(ax, joints: np.ndarray, skeleton, color: str | None = None, label: str | None = None,
                 linestyle: str = "-", linewidth: float = 2.0, alpha: float = 1.0) -> None:
    """Draw one (J, 3) camera-space pose (mm) on a 3D axis; NaN joints and their edges are skipped.

    ``color`` None colours edges by body side. Joints are dots of the same colour. All edges go
    into one line collection (one artist per pose, not one per bone: much faster to draw).
    """
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    points = camera_to_plot(joints)
    edges = np.asarray(skeleton.edges).reshape(-1, 2)
    segments = points[edges]  # (E, 2, 3)
    keep = np.isfinite(segments).all(axis=(1, 2))
    colors = [color or SIDE_COLORS[side] for side, k in zip(edge_sides(skeleton), keep) if k]
    ax.add_collection3d(Line3DCollection(segments[keep], colors=colors, linestyles=linestyle,
                                         linewidths=linewidth, alpha=alpha, capstyle="round"))
    valid = np.isfinite(points).all(axis=-1)
    ax.scatter(points[valid, 0], points[valid, 1], points[valid, 2], color=color or GT_COLOR, s=6,
               alpha=alpha, depthshade=False)
    if label is not None:  # a proxy line so the legend shows the line style
        ax.plot([], [], [], color=color or GT_COLOR, linestyle=linestyle, linewidth=linewidth, label=label)


def draw_keypoints_2d(ax, keypoints: np.ndarray, skeleton, min_confidence: float = 0.05,
                      color: str | None = None, linewidth: float = 2.0) -> None:
    """Draw (K, 2) or (K, 3) pixel keypoints (x right, y down; optional confidence) on a 2D axis.

    Keypoints with confidence below ``min_confidence`` (missed detections) are left out; edge
    transparency follows the lower confidence of its two ends.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba

    keypoints = np.asarray(keypoints, dtype=np.float64)
    conf = keypoints[:, 2] if keypoints.shape[1] > 2 else np.ones(len(keypoints))
    seen = (conf >= min_confidence) & np.isfinite(keypoints[:, :2]).all(axis=1)
    edges = np.asarray(skeleton.edges).reshape(-1, 2)
    keep = seen[edges].all(axis=1)
    colors = [to_rgba(color or SIDE_COLORS[side], float(np.clip(conf[a], 0.3, 1.0) if conf[a] < conf[b]
                                                        else np.clip(conf[b], 0.3, 1.0)))
              for side, (a, b), k in zip(edge_sides(skeleton), edges, keep) if k]
    ax.add_collection(LineCollection(keypoints[:, :2][edges[keep]], colors=colors, linewidths=linewidth,
                                     capstyle="round"))
    ax.scatter(keypoints[seen, 0], keypoints[seen, 1], s=8, color=color or GT_COLOR, zorder=3)


def set_axes_equal_3d(ax, points: np.ndarray, margin: float = 0.1) -> None:
    """Give a 3D axis equal scale on all axes around ``points`` (..., 3) in plot coordinates."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        return
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    half = max((high - low).max() / 2 * (1 + margin), 1e-6)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))


def style_pose_axis_3d(ax, title: str | None = None, elev: float = 12.0, azim: float = -70.0) -> None:
    """A quiet 3D axis seen from beside the camera: no tick labels, light panes, zoomed in."""
    ax.view_init(elev=elev, azim=azim)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_ticklabels([])
        axis.set_pane_color((0.96, 0.96, 0.96, 1.0))
    ax.tick_params(length=0)
    ax.set_box_aspect((1, 1, 1), zoom=1.15)
    if title:
        ax.set_title(title, fontsize=8, pad=0)


def frame_keypoints_2d(ax, keypoints: np.ndarray, image_size: tuple[int, int], margin: float = 0.25,
                       min_confidence: float = 0.05) -> None:
    """Zoom a 2D axis onto the person (image y down), keeping the image outline for orientation."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    width, height = image_size
    conf = keypoints[:, 2] if keypoints.shape[1] > 2 else np.ones(len(keypoints))
    xy = keypoints[(conf >= min_confidence) & np.isfinite(keypoints[:, :2]).all(axis=1), :2]
    if len(xy) == 0:
        xy = np.array([[0.0, 0.0], [width, height]])
    low, high = xy.min(axis=0), xy.max(axis=0)
    centre = (low + high) / 2
    half = max((high - low).max() / 2 * (1 + margin), 20.0)
    ax.add_patch(_rectangle((0, 0), width, height))
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] + half, centre[1] - half)  # y down
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)


def _rectangle(xy, width, height):
    from matplotlib.patches import Rectangle

    return Rectangle(xy, width, height, fill=False, edgecolor="#999999", linestyle=":", linewidth=1)
