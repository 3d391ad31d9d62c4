"""3D poses from a user's own video: detect 2D, keep the main person, lift, write, render.

Steps (``infer_video``):

1. 2D keypoints on every frame: MediaPipe Pose (``posebridge.sources.detectors``), or a Detectron-style
   detection file of the video.
2. The main person: detections linked into tracks by box overlap, the track with the most
   evidence kept (``detectors.tracks.main_track``); frames whose left and right the detector
   mixed up swapped back (``detectors.sides``); misses of up to ``max_gap`` frames inside it
   interpolated, longer ones keep confidence 0.
3. Lifting with a trained model (``posebridge.inference.predict.predict`` over ``inference.lift.lift``) on the
   main track's span of frames, with test-time flip averaging; the root's camera-space
   trajectory recovered from pose + 2D (``predict.recover_trajectory``) under an assumed camera
   (55 degree horizontal field of view unless a focal length is given).

Outputs (``write_outputs``), named after the video's stem in the output directory:

- ``<stem>_3d.npz``: one (T, J, 3) float32 array per skeleton format the model knows, keyed by the
  format's name: millimetres, root-relative, camera frame (x right, y down, z forward), NaN on
  frames without the person; ``joint_names_<format>``; ``trajectory`` (T, 3) mm (NaN likewise);
  ``keypoints_2d`` (T, 17, 3) the cleaned COCO-17 px + confidence the model saw;
  ``keypoints_2d_raw`` (T, 17, 3) the detector's output; ``valid`` (T,) bool; ``intrinsics``
  (fx, fy, cx, cy px); ``fps``, ``width``, ``height``.
- ``<stem>_3d.json``: the same poses, per format ``{"joint_names": [...], "poses": [frame ->
  [[x, y, z], ...] or null]}``, with the trajectory, the validity, the camera and the units.
- optionally a rendering (``render_video``): the video with the 2D keypoints beside the 3D skeleton.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posebridge.geometry import skeletons
from posebridge.atomic import write_text
from posebridge.errors import ConfigError, DataError

KEYPOINT_FORMAT = "coco_17"
RENDER_FORMAT_PREFERENCE = ("h36m_17", "mpi_inf_3dhp_17", "smpl_24")
PANEL_HALF_MM = 1100.0  # the 3D panel shows +-1.1 m around the root: a standing adult fits
MAX_STAGE_HALF_MM = 8000.0  # several people: the panel widens to hold them all, up to +-8 m
PERSON_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#bcbd22", "#7f7f7f")  # matplotlib's tab10: person k gets colour k - 1
MAX_RENDER_HEIGHT = 480


@dataclass
class InferResult:
    """What ``infer_video`` found. Arrays cover every frame of the video (T)."""

    video: Path
    width: int
    height: int
    fps: float
    keypoints_raw: np.ndarray  # (T, 17, 3) detector output, px + confidence
    keypoints: np.ndarray  # (T, 17, 3) main person, gaps filled: the lifter's input
    valid: np.ndarray  # (T,) bool: frames with the main person (detected or interpolated)
    poses: dict[str, np.ndarray]  # format -> (T, J, 3) float32 mm, root-relative camera space, NaN if invalid
    trajectory: np.ndarray  # (T, 3) float32 mm camera-space root, NaN if invalid or unrecoverable
    intrinsics: np.ndarray  # (4,) fx, fy, cx, cy px (assumed unless given)
    detector: str
    timings: dict = field(default_factory=dict)  # step -> seconds
    person: int | None = None  # 1, 2, ... in several-people mode (1 = most evidence); None: one person

    @property
    def frames(self) -> int:
        return len(self.keypoints)


def detect(video_path: Path, *, detections: str | os.PathLike | None = None, limit: int | None = None,
           progress: bool = True, detector_settings: dict | None = None) -> tuple[np.ndarray, str]:
    """(T, 17, 3) raw COCO-17 keypoints of a video and the detector's name (MediaPipe, or the
    Detectron-style file ``detections``)."""
    from posebridge.sources.detectors import get_detector

    if detections is not None:
        return get_detector("imported").detect(detections, limit=limit), "imported"
    detector = get_detector("mediapipe", **(detector_settings or {}))
    return detector.detect(video_path, limit=limit, progress=progress), "mediapipe"


def infer_video(video_path: str | os.PathLike, model, *, max_gap: int = 5, flip: bool = True,
                limit: int | None = None, detections: str | os.PathLike | None = None,
                focal_length: float | None = None, progress: bool = True, lift=None,
                detector_settings: dict | None = None, smoothing=None, repair_sides: bool = True) -> InferResult:
    """Detect, clean and lift one video (module docstring). ``model``: an
    ``inference.lift.LiftingModel`` (or anything with ``formats`` that ``lift`` accepts); ``lift``
    defaults to ``inference.lift.lift``; ``smoothing``: an ``inference.smoothing.Smoothing`` or None;
    ``repair_sides``: swap back frames whose left and right the detector mixed up."""
    from posebridge.data import video

    video_path = Path(video_path)
    info = video.probe(video_path)
    if getattr(model, "keypoint_format", KEYPOINT_FORMAT) != KEYPOINT_FORMAT:
        raise ConfigError(f"the model takes {model.keypoint_format} keypoints; infer detects {KEYPOINT_FORMAT}")
    t0 = time.perf_counter()
    raw, detector = detect(video_path, detections=detections, limit=limit, progress=progress,
                           detector_settings=detector_settings)
    detect_seconds = time.perf_counter() - t0
    if len(raw) == 0:
        raise DataError(video_path, "no frames")
    result = lift_detections(video_path, info, raw, detector, model, max_gap=max_gap, flip=flip,
                             focal_length=focal_length, lift=lift, smoothing=smoothing, repair_sides=repair_sides)
    result.timings = {"detect": detect_seconds, **result.timings}
    return result


def lift_detections(video_path: Path, info, raw: np.ndarray, detector: str, model, *, max_gap: int = 5,
                    flip: bool = True, focal_length: float | None = None, lift=None,
                    smoothing=None, main_track: bool = True, repair_sides: bool = True) -> InferResult:
    """Steps 2 and 3 of ``infer_video`` on a video's raw detections (T, 17, 3); ``info`` is its
    ``video.VideoInfo``; ``smoothing`` (``inference.smoothing.Smoothing``) goes to ``predict``.
    ``main_track=False``: ``raw`` already is one person's track."""
    from posebridge.sources.detectors import clean_track
    from posebridge.inference.predict import KeypointInput, default_intrinsics, predict

    keypoints = clean_track(raw, main_track=main_track, max_gap=max_gap, repair_sides=repair_sides)
    valid = (keypoints[..., 2] > 0).any(axis=1)

    intrinsics = default_intrinsics(info.width, info.height)
    if focal_length is not None:
        if not focal_length > 0:
            raise ConfigError(f"focal length must be positive, got {focal_length}")
        intrinsics[:2] = focal_length
    T = len(keypoints)
    poses = {f: np.full((T, skeletons.get(f).num_joints, 3), np.nan, np.float32) for f in model.formats}
    trajectory = np.full((T, 3), np.nan, np.float32)
    t0 = time.perf_counter()
    if valid.any():
        # lift the main track's span only: edge padding then replicates the person, not empty frames
        first, last = np.flatnonzero(valid)[[0, -1]]
        span = slice(first, last + 1)
        inputs = KeypointInput(keypoints[span], info.width, info.height, intrinsics, focal_length is None)
        out = predict(model, inputs, flip=flip, lift=lift, smoothing=smoothing)
        if "keypoints_2d_smoothed" in out:  # the keypoints the model saw
            keypoints[span] = out["keypoints_2d_smoothed"]
        inside = valid[span]
        for fmt in model.formats:
            poses[fmt][span] = np.where(inside[:, None, None], out[fmt], np.nan)
        if "trajectory" in out:
            trajectory[span] = np.where(inside[:, None], out["trajectory"], np.nan)
    timings = {"lift": time.perf_counter() - t0}
    return InferResult(Path(video_path), info.width, info.height, info.fps or 25.0, raw, keypoints, valid,
                       poses, trajectory, intrinsics, detector, timings)


def detect_people(video_path: Path, *, max_people: int | None = None, limit: int | None = None,
                  progress: bool = True) -> np.ndarray:
    """(T, P, 17, 3) COCO-17 keypoints of every person of a video (``detectors.people``)."""
    from posebridge.data import video
    from posebridge.sources.detectors.people import PeopleDetector

    frames = video.iter_frames(video_path, limit)
    if progress:
        from tqdm import tqdm

        total = video.probe(video_path).frames
        frames = tqdm(frames, total=min(limit or total, total) or None, desc=f"people {video_path.name}",
                      unit="frame")
    with PeopleDetector(max_people=max_people) as detector:
        return detector.detect(frames)


def infer_people(video_path: str | os.PathLike, model, *, max_people: int | None = None, max_gap: int = 5,
                 flip: bool = True, limit: int | None = None, focal_length: float | None = None,
                 progress: bool = True, lift=None, people: np.ndarray | None = None,
                 smoothing=None, repair_sides: bool = True) -> list[InferResult]:
    """Several people (``infer_video`` for each): every person of every frame found
    (``detectors.people``), linked into tracks (``inference.tracking``; the ``max_people`` with
    the most evidence kept, all when None), each track lifted on its own. ``people``: the
    (T, P, 17, 3) detections to use instead of running the detector. Returns one ``InferResult``
    per track, ``person`` 1, 2, ... (most evidence first); each carries the shared timings.
    ``smoothing``, ``repair_sides``: as for ``infer_video``, applied to each track."""
    from posebridge.data import video
    from posebridge.inference.tracking import track_people

    video_path = Path(video_path)
    info = video.probe(video_path)
    if getattr(model, "keypoint_format", KEYPOINT_FORMAT) != KEYPOINT_FORMAT:
        raise ConfigError(f"the model takes {model.keypoint_format} keypoints; infer detects {KEYPOINT_FORMAT}")
    t0 = time.perf_counter()
    if people is None:
        people = detect_people(video_path, max_people=max_people, limit=limit, progress=progress)
    timings = {"detect": time.perf_counter() - t0}
    if len(people) == 0:
        raise DataError(video_path, "no frames")
    t0 = time.perf_counter()
    # gaps are filled per track by lift_detections, after its left/right repair (not across a swap)
    tracks = track_people(people, max_gap=0, max_tracks=max_people)
    timings["track"] = time.perf_counter() - t0
    results = [lift_detections(video_path, info, track, "mediapipe-people", model, max_gap=max_gap, flip=flip,
                               focal_length=focal_length, lift=lift, smoothing=smoothing, main_track=False,
                               repair_sides=repair_sides)
               for track in tracks]
    timings["lift"] = sum(result.timings["lift"] for result in results)
    for k, result in enumerate(results):
        result.person, result.timings = k + 1, timings
    return results


# ------------------------------------------------------------------------------------ writing

def output_paths(result: InferResult, output_dir: str | os.PathLike) -> dict[str, Path]:
    out = Path(output_dir)
    stem = result.video.stem if result.person is None else f"{result.video.stem}_person{result.person}"
    return {"npz": out / f"{stem}_3d.npz", "json": out / f"{stem}_3d.json"}


def _nested(array: np.ndarray, valid: np.ndarray, decimals: int = 1) -> list:
    """(T, ...) -> per-frame nested lists rounded to ``decimals``, None on invalid frames."""
    rounded = np.round(array.astype(np.float64), decimals).tolist()
    return [frame if ok else None for frame, ok in zip(rounded, valid.tolist())]


def to_json(result: InferResult) -> dict:
    """The JSON document of ``<stem>_3d.json`` (module docstring)."""
    fx, fy, cx, cy = (float(v) for v in result.intrinsics)
    trajectory_ok = result.valid & np.isfinite(result.trajectory).all(axis=1)
    return {
        "video": result.video.name,
        "frames": result.frames,
        "fps": result.fps,
        "width": result.width,
        "height": result.height,
        "detector": result.detector,
        **({} if result.person is None else {"person": result.person}),
        "units": "millimetres; 2D keypoints in pixels",
        "coordinates": "camera frame (x right, y down, z forward); poses relative to each format's root joint",
        "camera": {"fx": fx, "fy": fy, "cx": cx, "cy": cy},
        "valid": result.valid.tolist(),
        "formats": {fmt: {"joint_names": list(skeletons.get(fmt).joint_names),
                          "root": skeletons.get(fmt).joint_names[skeletons.get(fmt).root],
                          "poses": _nested(result.poses[fmt], result.valid)}
                    for fmt in result.poses},
        "trajectory": _nested(result.trajectory, trajectory_ok),
        "keypoints_2d": {"format": KEYPOINT_FORMAT,
                         "joint_names": list(skeletons.get(KEYPOINT_FORMAT).joint_names),
                         "x_y_confidence": _nested(result.keypoints, np.ones(result.frames, bool), 2)},
    }


def write_outputs(result: InferResult, output_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``<stem>_3d.npz`` and ``<stem>_3d.json`` atomically; returns their paths."""
    from posebridge.inference.predict import write_prediction

    paths = output_paths(result, output_dir)
    arrays = {}
    for fmt, pose in result.poses.items():
        arrays[fmt] = pose.astype(np.float32)
        arrays[f"joint_names_{fmt}"] = np.array(skeletons.get(fmt).joint_names, dtype=str)
    arrays.update(trajectory=result.trajectory.astype(np.float32),
                  keypoints_2d=result.keypoints.astype(np.float32),
                  keypoints_2d_raw=result.keypoints_raw.astype(np.float32),
                  valid=result.valid, intrinsics=result.intrinsics.astype(np.float64),
                  fps=np.float64(result.fps), width=np.int64(result.width), height=np.int64(result.height))
    if result.person is not None:
        arrays["person"] = np.int64(result.person)
    write_prediction(paths["npz"], arrays)
    write_text(paths["json"], json.dumps(to_json(result), separators=(",", ":")))
    return paths


def write_people(results: list[InferResult], output_dir: str | os.PathLike) -> list[dict[str, Path]]:
    """Write every person's outputs (``write_outputs``: ``<stem>_3d.*`` for one person,
    ``<stem>_person<k>_3d.*`` in several-people mode); returns their paths, in order."""
    return [write_outputs(result, output_dir) for result in results]


# ------------------------------------------------------------------------------------ rendering

def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def render_format(formats: list[str], requested: str | None = None) -> str:
    """The format to draw in 3D: ``requested`` if the model has it, else a familiar one."""
    if requested is not None:
        if requested not in formats:
            raise ConfigError(f"the model has no format {requested!r}; it has {', '.join(formats)}")
        return requested
    return next((f for f in RENDER_FORMAT_PREFERENCE if f in formats), formats[0])


def view_rotation(azimuth_deg: float = 35.0, elevation_deg: float = 12.0) -> np.ndarray:
    """(3, 3) rotation from camera space to a view turned ``azimuth`` about the vertical (camera y)
    and tilted ``elevation`` down, so depth shows as sideways motion."""
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    yaw = np.array([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
    # seen from above: farther points (larger z) move up the panel (smaller y)
    pitch = np.array([[1, 0, 0], [0, math.cos(e), -math.sin(e)], [0, math.sin(e), math.cos(e)]])
    return pitch @ yaw


def draw_skeleton_3d(panel: np.ndarray, pose: np.ndarray, skeleton, rotation: np.ndarray,
                     half_mm: float = PANEL_HALF_MM, color: tuple | None = None, grid: bool = True) -> None:
    """Draw one camera-space pose (J, 3) mm, relative to the panel's centre, into a square RGB
    panel, in place.

    Orthographic view through ``rotation``; the origin sits at the panel centre, the panel spans
    +-``half_mm``. A floor grid (``grid``) under the lowest joint gives the depth cue; bones are
    drawn far to near so near limbs cover far ones, in ``color`` (RGB) or by body side.
    """
    import cv2

    size = panel.shape[0]
    scale = size / (2 * half_mm)
    if not np.isfinite(pose).all():
        return
    floor_y = float(pose[:, 1].max())  # camera y points down: the lowest joint has the largest y
    ticks = np.linspace(-half_mm * 0.8, half_mm * 0.8, 5)
    lines = [((x, floor_y, ticks[0]), (x, floor_y, ticks[-1])) for x in ticks] + \
            [((ticks[0], floor_y, z), (ticks[-1], floor_y, z)) for z in ticks] if grid else []
    to_px = lambda p: (np.asarray(p) @ rotation.T)[..., :2] * scale + size / 2  # noqa: E731
    for a, b in lines:
        pa, pb = to_px([a, b])
        cv2.line(panel, tuple(int(v) for v in pa), tuple(int(v) for v in pb), (215, 215, 215), 1, cv2.LINE_AA)
    from posebridge.reporting.viz import SIDE_COLORS, edge_sides

    view = pose @ rotation.T
    px = view[:, :2] * scale + size / 2
    edges = np.asarray(skeleton.edges)
    order = np.argsort(-(view[edges[:, 0], 2] + view[edges[:, 1], 2]))  # far (large z) first
    sides = edge_sides(skeleton)
    width = max(2, size // 120)
    for k in order:
        a, b = edges[k]
        cv2.line(panel, (int(px[a, 0]), int(px[a, 1])), (int(px[b, 0]), int(px[b, 1])),
                 color or _rgb(SIDE_COLORS[sides[k]]), width, cv2.LINE_AA)
    radius = width if color is None else max(1, width // 2)  # several small people: bones show
    for x, y in px:
        cv2.circle(panel, (int(x), int(y)), radius, (40, 40, 40), -1, cv2.LINE_AA)


def draw_keypoints(frame: np.ndarray, keypoints: np.ndarray, skeleton, scale: float,
                   min_confidence: float = 0.3, color: tuple | None = None) -> None:
    """Draw (K, 3) px + confidence keypoints on an RGB frame (already scaled by ``scale``), in
    place; bones in ``color`` (RGB) or by body side."""
    import cv2

    from posebridge.reporting.viz import SIDE_COLORS, edge_sides

    xy = keypoints[:, :2] * scale
    seen = keypoints[:, 2] >= min_confidence
    width = max(2, frame.shape[0] // 160)
    for (a, b), side in zip(skeleton.edges, edge_sides(skeleton)):
        if seen[a] and seen[b]:
            cv2.line(frame, (int(xy[a, 0]), int(xy[a, 1])), (int(xy[b, 0]), int(xy[b, 1])),
                     color or _rgb(SIDE_COLORS[side]), width, cv2.LINE_AA)
    for (x, y), ok in zip(xy, seen):
        if ok:
            cv2.circle(frame, (int(x), int(y)), width + 1, (255, 255, 255), -1, cv2.LINE_AA)


def person_color(result: InferResult) -> tuple[int, int, int] | None:
    """The RGB colour of a person in several-people mode; None (colour by body side) for one person."""
    return None if result.person is None else _rgb(PERSON_COLORS[(result.person - 1) % len(PERSON_COLORS)])


def stage(results: list[InferResult]) -> tuple[np.ndarray, float]:
    """Where the 3D panel looks: the camera-space point (3,) mm at its centre and its half-width mm.

    One person is drawn root-relative (origin, ``PANEL_HALF_MM``). Several people stand at their
    recovered trajectories: the panel centres on their median root (x, z) over the video, fixed
    so nobody drifts with the view, and widens to hold them all (at most ``MAX_STAGE_HALF_MM``).
    """
    roots = [r.trajectory[r.valid & np.isfinite(r.trajectory).all(axis=1)] for r in results if r.person is not None]
    roots = np.concatenate(roots) if roots else np.zeros((0, 3))
    if len(roots) == 0:
        return np.zeros(3), PANEL_HALF_MM
    centre = np.array([np.median(roots[:, 0]), 0.0, np.median(roots[:, 2])])
    reach = float(np.percentile(np.abs(roots[:, [0, 2]] - centre[[0, 2]]), 98)) + PANEL_HALF_MM
    return centre, min(reach, MAX_STAGE_HALF_MM)


def _offset(result: InferResult, t: int, centre: np.ndarray) -> np.ndarray:
    """(3,) where a person's root is drawn relative to the panel centre (0 for one person)."""
    root = result.trajectory[t]
    if result.person is None or not np.isfinite(root).all():
        return np.zeros(3)
    return np.array([root[0] - centre[0], 0.0, root[2] - centre[2]])


def render_frame(frame: np.ndarray, results: list[InferResult], t: int, fmt: str, height: int,
                 rotation: np.ndarray, view: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """One rendering frame: the video frame (scaled to ``height``) with every person's 2D keypoints
    | the 3D panel (``view``: ``stage(results)``), one colour per person in several-people mode."""
    import cv2

    centre, half_mm = view or stage(results)
    scale = height / frame.shape[0]
    left = cv2.resize(frame, (max(2, round(frame.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
    left = np.ascontiguousarray(left)
    panel = np.full((height, height, 3), 250, np.uint8)
    shown = [r for r in results if r.valid[t]]
    for k, result in enumerate(shown):
        color = person_color(result)
        draw_keypoints(left, result.keypoints[t], skeletons.get(KEYPOINT_FORMAT), scale, color=color)
        draw_skeleton_3d(panel, result.poses[fmt][t] + _offset(result, t, centre), skeletons.get(fmt), rotation,
                         half_mm, color=color, grid=k == 0)
        if color is not None:  # the person's number above its head, for following identities by eye
            seen = result.keypoints[t][result.keypoints[t, :, 2] > 0]
            x, y = seen[:, 0].mean() * scale, seen[:, 1].min() * scale - 8
            cv2.putText(left, str(result.person), (int(x), int(max(y, 16))), cv2.FONT_HERSHEY_SIMPLEX,
                        max(0.5, height / 600), color, 2, cv2.LINE_AA)
    label = f"{t:5d}  {fmt}" if shown else f"{t:5d}  no person"
    cv2.putText(panel, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    return np.concatenate([left, panel], axis=1)


def render_video(results: InferResult | list[InferResult], path: str | os.PathLike, *, fmt: str | None = None,
                 height: int | None = None, progress: bool = True, frames: list[int] | None = None) -> Path:
    """Write the rendering (MP4 or GIF, by suffix) of one result or of every person's (a list,
    one colour each; at least one): every frame, or only ``frames`` (indices) as PNG files when
    ``path`` ends in ``.png`` (``name_000123.png``; for looking at a few frames). Returns the path
    written (the first PNG's for PNGs)."""
    from posebridge.data import video

    path = Path(path)
    results = [results] if isinstance(results, InferResult) else list(results)
    result = results[0]
    fmt = render_format(list(result.poses), fmt)
    height = int(height or min(result.height, MAX_RENDER_HEIGHT))
    height += height % 2
    rotation, view = view_rotation(), stage(results)
    source = video.iter_frames(result.video, result.frames)
    if path.suffix.lower() == ".png":
        from PIL import Image

        from posebridge.atomic import atomic_path

        wanted = set(range(result.frames) if frames is None else frames)
        written = []
        for t, frame in enumerate(source):
            if t in wanted:
                target = path.with_name(f"{path.stem}_{t:06d}.png")
                with atomic_path(target) as tmp:
                    Image.fromarray(render_frame(frame, results, t, fmt, height, rotation, view)).save(tmp, format="PNG")
                written.append(target)
        return written[0] if written else path
    if progress:
        from tqdm import tqdm

        source = tqdm(source, total=result.frames, desc=f"render {path.name}", unit="frame")
    with video.VideoWriter(path, result.fps) as writer:
        for t, frame in enumerate(source):
            writer.write(render_frame(frame, results, t, fmt, height, rotation, view))
    return path
