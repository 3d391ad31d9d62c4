"""Pose2Sim projects: calibrated, synchronised multi-camera videos -> a multi-view dataset.

A Pose2Sim project folder (Pagnon et al., "Pose2Sim: an open-source Python package for
multiview markerless kinematics", JOSS 2022) holds ``calibration/`` (one calibration file) and
``videos/`` (one video per camera, named after the camera: ``cam01.mp4`` for camera ``cam01``).
``--source`` is such a folder (one take), a folder of such folders (one take each, e.g. a
Pose2Sim batch), or the word ``pose2sim-demos``: the two demonstration takes the ``pose2sim``
package ships (``Demo_SinglePerson``, ``Demo_MultiPerson``; ``pip install --no-deps
pose2sim==0.10.49``, nothing is downloaded).

The dataset has no 3D ground truth: ``joints_3d`` is all NaN in ``coco_17`` (``posebridge
triangulate`` fills it from a detector's 2D). Each take is one sequence and one multi-view group,
split ``test``, with one index row per camera holding its frame count and rate read from the
videos and the video's path (``video`` column, where the ``mediapipe`` detector reads it).

Calibration files (world Z up, millimetres in the store; see ``geometry.cameras``):

- Qualisys ``.qca.txt`` (XML): per ``camera`` (``serial`` = name), ``intrinsic`` holds
  ``focalLengthU/V`` and ``centerPointU/V`` multiplied by 64 (Qualisys' sub-pixel units; divided
  here) and ``radialDistortion1..3``, ``tangentalDistortion1..2`` as they are (OpenCV's k1, k2, k3,
  p1, p2). Pose2Sim's own converter divides the distortion by 64 too; on the demo rig's
  checkerboard images (``calibration/intrinsics``) the undistorted corners fit a plane's
  homography best with the coefficients as stored (mean RMS 0.489 / 0.502 / 0.446 / 1.372 px for
  cam01-04, against 0.518 / 0.533 / 0.464 / 1.396 px divided by 64, the minimum of a scan of the
  scale lying at 1-1.5 times the stored values). ``transform`` holds ``r11 .. r33`` and
  ``x, y, z``: read row by row as M, the OpenCV world -> camera rotation is ``diag(1, -1, -1) M``
  (Qualisys' camera looks down its -z with y up) and ``(x, y, z)`` is the camera centre in the
  world, in mm (the other readings -- R = M, or M transposed -- fail to triangulate the demo's
  MediaPipe 2D). ``fov_video`` gives the image size (right - left + 1, bottom - top + 1) and the
  crop the principal point is relative to.
- Pose2Sim ``.toml`` (``Pose2Sim.calibration``'s output): one table per camera with ``name``,
  ``size = [width, height]`` px, ``matrix`` (3x3 K), ``distortions = [k1, k2, p1, p2]``,
  ``rotation`` (Rodrigues vector of the world -> camera rotation), ``translation`` (world ->
  camera, metres), ``fisheye`` (must be false); other tables (``metadata``, ...) are skipped.
  The world axes are the calibration's own (Pose2Sim calibrates Z up).

A video whose size differs from its camera's (the demo's single-person ``cam01``/``cam02`` are
1080 px wide, their calibration 1088) is taken as a crop of the calibrated image at its top-left
corner (the demo's backgrounds register within 3 px that way); the camera keeps its calibrated
size and the conversion notes the difference.
"""

from __future__ import annotations

import math
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

import numpy as np

from posebridge.errors import ConfigError, DataError
from posebridge.geometry.cameras import Camera
from posebridge.sources.converters.common import Converted, DatasetBuilder, reading

SKELETON = "coco_17"
DEMO_SOURCE = "pose2sim-demos"
DEMO_TAKES = ("Demo_SinglePerson", "Demo_MultiPerson")
QUALISYS_SCALE = 64.0  # Qualisys stores focal lengths and principal points x64 (not the distortion)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])  # camera axes: Qualisys (y up, looks along -z)


# ---------------------------------------------------------------------------------------------
# Calibration files


def rodrigues_to_matrix(rvec) -> np.ndarray:
    """(3, 3) rotation of a Rodrigues vector (axis * angle in radians)."""
    rvec = np.asarray(rvec, dtype=np.float64).reshape(3)
    angle = float(np.linalg.norm(rvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rvec / angle
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def matrix_to_rodrigues(R) -> np.ndarray:
    """Inverse of :func:`rodrigues_to_matrix` (angle in [0, pi])."""
    R = np.asarray(R, dtype=np.float64)
    angle = math.acos(float(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)))
    if angle < 1e-12:
        return np.zeros(3)
    if math.pi - angle < 1e-6:  # sin(angle) ~ 0: the axis from R + I = 2 k k^T (sign is free)
        outer = (R + np.eye(3)) / 2
        column = outer[:, int(np.argmax(np.diag(outer)))]
        return column / np.linalg.norm(column) * angle
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2 * math.sin(angle))
    return axis * angle


def _number(path: Path, element, key: str) -> float:
    try:
        value = float(element.attrib[key])
    except KeyError:
        raise DataError(path, f"<{element.tag}> lacks the attribute {key!r}") from None
    except ValueError:
        raise DataError(path, f"<{element.tag}> {key}={element.attrib[key]!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(path, f"<{element.tag}> {key} is not finite")
    return value


def _child(path: Path, camera, tag: str):
    node = camera.find(tag)
    if node is None:
        raise DataError(path, f"camera {camera.attrib.get('serial', '?')!r} has no <{tag}>")
    return node


def _qca_camera(path: Path, node) -> Camera:
    name = node.attrib.get("serial")
    if not name:
        raise DataError(path, "a <camera> has no serial (its name)")
    fov, transform, intrinsic = (_child(path, node, tag) for tag in ("fov_video", "transform", "intrinsic"))
    left, top = _number(path, fov, "left"), _number(path, fov, "top")
    size = (int(_number(path, fov, "right") - left + 1), int(_number(path, fov, "bottom") - top + 1))
    pixels = lambda key: _number(path, intrinsic, key) / QUALISYS_SCALE  # noqa: E731
    intrinsics = (pixels("focalLengthU"), pixels("focalLengthV"),
                  pixels("centerPointU") - left, pixels("centerPointV") - top)
    distortion = tuple(_number(path, intrinsic, k) for k in (
        "radialDistortion1", "radialDistortion2", "radialDistortion3", "tangentalDistortion1", "tangentalDistortion2"))
    M = np.array([[_number(path, transform, f"r{i}{j}") for j in (1, 2, 3)] for i in (1, 2, 3)])
    centre = np.array([_number(path, transform, axis) for axis in "xyz"])
    R = QUALISYS_TO_OPENCV @ M
    try:
        return Camera(name, intrinsics, distortion, R, -R @ centre, size)
    except ConfigError as err:
        raise DataError(path, str(err)) from None


def read_qca(path: str | Path) -> list[Camera]:
    """The cameras of a Qualisys ``.qca.txt`` calibration (module docstring), in file order."""
    path = Path(path)
    with reading(path, "Qualisys calibration (XML)"):
        root = ElementTree.parse(path).getroot()  # plain XML: no entities or code are run
    nodes = root.findall("cameras/camera")
    if not nodes:
        raise DataError(path, "holds no <cameras>/<camera> entries")
    return [_qca_camera(path, node) for node in nodes]


def _toml_camera(path: Path, key: str, table: dict) -> Camera:
    where = f"[{key}]"
    try:
        if table.get("fisheye", False):
            raise DataError(path, f"{where}: fisheye cameras are not supported")
        K = np.asarray(table["matrix"], dtype=np.float64)
        k1, k2, p1, p2 = (float(v) for v in table["distortions"])
        R = rodrigues_to_matrix(table["rotation"])
        t = np.asarray(table["translation"], dtype=np.float64).reshape(3) * 1000.0
        width, height = (int(round(float(v))) for v in table["size"])
        name = str(table.get("name", key))
    except KeyError as err:
        raise DataError(path, f"{where} lacks {err}") from None
    except (TypeError, ValueError) as err:
        raise DataError(path, f"{where} is malformed ({err})") from None
    if K.shape != (3, 3) or abs(K[0, 1]) > 1e-6 * abs(K[0, 0]):
        raise DataError(path, f"{where}: matrix must be a 3x3 camera matrix without skew")
    try:
        return Camera(name, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), (k1, k2, 0.0, p1, p2), R, t,
                      (width, height))
    except ConfigError as err:
        raise DataError(path, str(err)) from None


def read_toml(path: str | Path) -> list[Camera]:
    """The cameras of a Pose2Sim ``.toml`` calibration (module docstring), in file order."""
    path = Path(path)
    with reading(path, "TOML calibration"), open(path, "rb") as handle:
        document = tomllib.load(handle)
    cameras = [_toml_camera(path, key, table) for key, table in document.items()
               if isinstance(table, dict) and "matrix" in table]
    if not cameras:
        raise DataError(path, "holds no camera table (one with a 'matrix')")
    return cameras


def write_toml(path: str | Path, cameras: list[Camera]) -> None:
    """Write ``cameras`` as a Pose2Sim ``.toml`` calibration (k3 must be 0: Pose2Sim has none)."""
    from posebridge.atomic import atomic_path

    lines = []
    for cam in cameras:
        if cam.distortion[2] != 0:
            raise ConfigError(f"camera {cam.name!r}: Pose2Sim's toml has no k3 (got {cam.distortion[2]})")
        fx, fy, cx, cy = (float(v) for v in cam.intrinsics)
        k1, k2, _, p1, p2 = (float(v) for v in cam.distortion)
        lines += [f"[{cam.name}]", f'name = "{cam.name}"', f"size = [ {cam.width}, {cam.height}]",
                  f"matrix = [ [ {fx!r}, 0.0, {cx!r}], [ 0.0, {fy!r}, {cy!r}], [ 0.0, 0.0, 1.0]]",
                  f"distortions = [ {k1!r}, {k2!r}, {p1!r}, {p2!r}]",
                  "rotation = [ " + ", ".join(repr(float(v)) for v in matrix_to_rodrigues(cam.R)) + "]",
                  "translation = [ " + ", ".join(repr(float(v) / 1000.0) for v in cam.t) + "]",
                  "fisheye = false", ""]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines + ["[metadata]", "adjusted = false", "error = 0.0", ""]))


def read_calibration(path: str | Path) -> list[Camera]:
    """Cameras of a ``.qca.txt`` or ``.toml`` calibration file."""
    path = Path(path)
    if path.name.lower().endswith(".qca.txt"):
        return read_qca(path)
    if path.suffix.lower() == ".toml":
        return read_toml(path)
    raise DataError(path, "unknown calibration format (expected a Qualisys .qca.txt or a Pose2Sim .toml)")


# ---------------------------------------------------------------------------------------------
# Projects


def installed_demos() -> list[Path]:
    """The demonstration project folders of the installed ``pose2sim`` package."""
    import importlib.util

    spec = importlib.util.find_spec("Pose2Sim")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"--source {DEMO_SOURCE} needs the pose2sim package's demo data: "
                          "pip install --no-deps pose2sim==0.10.49 (make's install step does)")
    root = Path(list(spec.submodule_search_locations)[0])
    return [root / take for take in DEMO_TAKES]


def project_folders(source: str | Path) -> list[Path]:
    """The take folders of ``source`` (module docstring): itself, its sub-projects, or the demos."""
    if str(source) == DEMO_SOURCE:
        return installed_demos()
    source = Path(source)
    if not source.is_dir():
        raise DataError(source, "no such Pose2Sim project folder")
    if (source / "videos").is_dir():
        return [source]
    takes = sorted(p for p in source.iterdir() if (p / "videos").is_dir())
    if not takes:
        raise DataError(source, "is no Pose2Sim project: it has no videos/ folder (nor subfolders with one)")
    return takes


def calibration_file(take: Path) -> Path:
    """The take's calibration: the one .toml or .qca.txt in calibration/ (a batch's parent's too)."""
    for folder in (take / "calibration", take.parent / "calibration"):
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir()
                           if p.name.lower().endswith(".qca.txt") or p.suffix.lower() == ".toml")
            if len(files) > 1:  # Pose2Sim's converted toml beside its source: use the toml
                files = [p for p in files if p.suffix.lower() == ".toml"] or files
            if len(files) == 1:
                return files[0]
            if files:
                raise DataError(folder, f"holds several calibration files ({', '.join(p.name for p in files)})")
    raise DataError(take / "calibration", "no calibration file (.qca.txt or .toml) found")


def take_videos(take: Path, cameras: list[Camera]) -> dict[str, Path]:
    """Camera name -> its video in ``take/videos`` (file stem = camera name)."""
    videos = {p.stem: p for p in sorted((take / "videos").iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES}
    missing = [c.name for c in cameras if c.name not in videos]
    if missing:
        raise DataError(take / "videos", f"no video for camera(s) {', '.join(missing)} (expected "
                                         f"{missing[0]}.mp4; found: {', '.join(sorted(videos)) or 'none'})")
    return {c.name: videos[c.name] for c in cameras}


def _add_take(builder: DatasetBuilder, take: Path, cameras: list[Camera]) -> dict[str, Path]:
    """Add one take (all-NaN joints, one row per camera); returns camera name -> video."""
    from posebridge.data import video

    videos = take_videos(take, cameras)
    infos = {name: video.probe(path) for name, path in videos.items()}
    rates = {round(info.fps, 3) for info in infos.values()}
    if len(rates) != 1 or not next(iter(rates)) > 0:
        raise DataError(take / "videos", f"the videos are not synchronised at one frame rate ({sorted(rates)} fps)")
    frames = min(info.frames for info in infos.values())
    if frames < 1:
        raise DataError(take / "videos", "a video reports no frames")
    for cam in cameras:
        size = (infos[cam.name].width, infos[cam.name].height)
        if size != cam.image_size:
            builder.notes.append(f"{take.name}/{cam.name}: video {size[0]}x{size[1]}, calibrated "
                                 f"{cam.width}x{cam.height} (read as a crop at the top-left corner)")
    if any(info.frames != frames for info in infos.values()):
        builder.notes.append(f"{take.name}: videos differ in length; the first {frames} frames are used")
    joints = np.full((frames, builder.skeleton.num_joints, 3), np.nan, np.float32)
    names = [builder.add_camera(cam) for cam in cameras]
    builder.add_take(sequence=take.name, subject=take.name, action=take.name, split="test",
                     fps=float(next(iter(rates))), joints=joints, cameras=names)
    return videos


def convert(source: str | Path, fps: float | None = None) -> Converted:
    """Convert a Pose2Sim project (or a folder of them, or ``pose2sim-demos``) into the store."""
    builder = DatasetBuilder(SKELETON)
    videos = {}
    for take in project_folders(source):
        try:
            cameras = read_calibration(calibration_file(take))
            for name, path in _add_take(builder, take, cameras).items():
                videos[take.name, name] = str(path.resolve())
        except ValueError as err:  # the same camera name with different calibrations across takes
            raise DataError(take, str(err)) from None
    converted = builder.finish()
    index = converted.index
    index["video"] = [videos[s, c] for s, c in zip(index["sequence"], index["camera"])]
    converted.has_3d = False
    if fps is not None:
        converted.index["fps"] = float(fps)
    return converted
