"""What every dataset converter shares: collecting takes into the store layout, reading files
with one-line errors, VideoPose3D npz files, small geometry helpers, and writing the result.

A converter reads one dataset's own files and returns a :class:`Converted` (world joints in mm,
cameras, index rows without the ``role`` column, optional 2D keypoints per row);
:func:`write_converted` adds the role and writes the dataset (and the detection file) atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from posebridge.geometry import skeletons
from posebridge.geometry.cameras import Camera
from posebridge.data.pickles import read_npz
from posebridge.errors import ConfigError, DataError, PoseBridgeError


def short(err: BaseException) -> str:
    """An exception as one short line (its type when it has no message)."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str = "file") -> Iterator[None]:
    """Turn any failure of a third-party reader (numpy, scipy, h5py, pickle, json, cdflib) into a
    one-line ``DataError`` naming ``path``; posebridge's own errors pass through unchanged."""
    try:
        yield
    except PoseBridgeError:
        raise
    except MemoryError:
        raise
    except Exception as err:  # readers raise many types for truncated or corrupt files
        raise DataError(path, f"cannot read {what} (truncated or corrupt?): {short(err)}") from None


# ---------------------------------------------------------------------------------------------
# The result of a conversion


@dataclass
class Converted:
    """One converted dataset before writing.

    joints_3d: (N, J, 3) float32 world millimetres, NaN = missing; cameras: list of Camera;
    index: one row per sequence x camera (store columns except ``role``, plus any extra columns);
    keypoints: (sum of row frames, K, 3) float32 pixels + confidence in index-row order, or None;
    keypoint_format / detector: what ``keypoints`` are; notes: lines for the command's summary;
    has_3d: False for footage without 3D (``joints_3d`` all NaN); annotations: per-frame labels
    (``store.ANNOTATIONS``); parts: {"converted": [...], "missing": [...]} of a partial download.
    """

    skeleton: str
    joints_3d: np.ndarray
    cameras: list
    index: pd.DataFrame
    keypoints: np.ndarray | None = None
    keypoint_format: str | None = None
    detector: str | None = None
    notes: list[str] = field(default_factory=list)
    has_3d: bool = True
    annotations: dict[str, np.ndarray] = field(default_factory=dict)
    parts: dict[str, list] = field(default_factory=dict)


class DatasetBuilder:
    """Collects takes (one block of world joints seen by one or more cameras) into store arrays.

    ``add_take`` appends a take's joints and one index row per camera; cameras are registered
    once by name. 2D keypoints are optional per row; :meth:`finish` keeps them only when every
    row has them.
    """

    def __init__(self, skeleton: str):
        self.skeleton = skeletons.get(skeleton)
        self._joints: list[np.ndarray] = []
        self._rows: list[dict] = []
        self._keypoints: list[np.ndarray | None] = []
        self._cameras: dict[str, Camera] = {}
        self._frames = 0
        self._annotations: list[dict[str, np.ndarray]] = []
        self.notes: list[str] = []
        self.parts: dict[str, list] = {}

    def add_camera(self, camera: Camera) -> str:
        old = self._cameras.get(camera.name)
        if old is None:
            self._cameras[camera.name] = camera
        elif old != camera:
            raise ValueError(f"two different cameras are both named {camera.name!r}")
        return camera.name

    def add_take(self, *, sequence: str, subject: str, action: str, split: str, fps: float,
                 joints: np.ndarray, cameras: list[str], group: str | None = None,
                 keypoints: list[np.ndarray] | None = None, annotations: dict | None = None,
                 **columns) -> None:
        """joints: (T, J, 3) world mm; cameras: names added with :meth:`add_camera`;
        keypoints: None or one (T, K, 3) array per camera; annotations: per-frame labels
        ``store.ANNOTATIONS`` name -> (T, ...); columns: extra index columns."""
        joints = np.asarray(joints, dtype=np.float32)
        if joints.ndim != 3 or joints.shape[1:] != (self.skeleton.num_joints, 3):
            raise ValueError(f"take {sequence!r}: joints of shape {joints.shape}, expected "
                             f"(T, {self.skeleton.num_joints}, 3)")
        frames = len(joints)
        if keypoints is not None and len(keypoints) != len(cameras):
            raise ValueError(f"take {sequence!r}: {len(keypoints)} keypoint arrays for {len(cameras)} cameras")
        for k, name in enumerate(cameras):
            self._rows.append({"sequence": sequence, "subject": subject, "action": action,
                               "split": split, "camera": name, "start": self._frames,
                               "frames": frames, "fps": float(fps),
                               "group": sequence if group is None else group, **columns})
            self._keypoints.append(None if keypoints is None else keypoints[k])
        self._joints.append(joints)
        self._annotations.append({k: np.asarray(v) for k, v in (annotations or {}).items()})
        self._frames += frames

    @property
    def empty(self) -> bool:
        return not self._rows

    def finish(self, keypoint_format: str | None = None, detector: str | None = None) -> Converted:
        if not self._rows:
            raise ValueError("no takes were added")
        names = list(self._cameras)
        position = {n: i for i, n in enumerate(names)}
        index = pd.DataFrame(self._rows)
        index.insert(index.columns.get_loc("camera") + 1, "camera_index",
                     index["camera"].map(position).astype(np.int64))
        index["start"] = index["start"].astype(np.int64)
        index["frames"] = index["frames"].astype(np.int64)
        keypoints = None
        if keypoint_format is not None and all(k is not None for k in self._keypoints):
            keypoints = np.concatenate(self._keypoints, dtype=np.float32)
        return Converted(skeleton=self.skeleton.name, joints_3d=np.concatenate(self._joints, dtype=np.float32),
                         cameras=[self._cameras[n] for n in names], index=index,
                         keypoints=keypoints, keypoint_format=keypoint_format if keypoints is not None else None,
                         detector=detector if keypoints is not None else None, notes=list(self.notes),
                         annotations=self._joined_annotations(), parts=dict(self.parts))

    def _joined_annotations(self) -> dict[str, np.ndarray]:
        """Every take's annotations concatenated; a take without one holds its fill value (-1 for
        labels, NaN for poses) in those frames."""
        joined = {}
        names = sorted({k for a in self._annotations for k in a})
        for name in names:
            example = next(a[name] for a in self._annotations if name in a)
            fill = np.nan if example.dtype.kind == "f" else -1
            parts = [a[name] if name in a else np.full((len(j), *example.shape[1:]), fill, example.dtype)
                     for a, j in zip(self._annotations, self._joints)]
            joined[name] = np.concatenate(parts)
        return joined


def write_converted(converted: Converted, output: str | os.PathLike, *, name: str, role: str,
                    detections_output: str | os.PathLike | None = None) -> None:
    """Write the dataset (``output`` + its Parquet index) and, if asked, its 2D detections.

    Both go through posebridge.atomic; when the detection file cannot be written the dataset
    just written is removed again, so a failed conversion leaves neither behind.
    """
    from posebridge.data.detections import write_detections
    from posebridge.data.store import default_index_path, write_dataset

    if detections_output is not None and converted.keypoints is None:
        raise ConfigError("this conversion has no 2D keypoints to write to --detections-output "
                          "(see `posebridge convert --help`, option --detections)")
    index = converted.index.copy()
    index["role"] = role
    write_dataset(output, name=name, skeleton=converted.skeleton, role=role,
                  joints_3d=converted.joints_3d, cameras=converted.cameras, index=index, has_3d=converted.has_3d,
                  annotations=converted.annotations, parts=converted.parts)
    if detections_output is None:
        return
    try:
        write_detections(detections_output, dataset=name, detector=converted.detector,
                         keypoint_format=converted.keypoint_format,
                         rows=index[["sequence", "camera", "frames"]], keypoints=converted.keypoints)
    except BaseException:
        for path in (Path(output), default_index_path(output)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise


def available_parts(dataset: str, source: Path, present: dict[str, bool], strict: bool,
                    builder: DatasetBuilder) -> list[str]:
    """The parts (subjects, sequences) of ``dataset`` found in ``source``, in order.

    ``present``: part name -> whether its files are there. People often hold part of a dataset:
    the parts there are converted, a note says in one line which are missing, and
    ``builder.parts`` records both (the store keeps them). ``strict`` (or no part at all) keeps the
    full check: any missing file is a one-line DataError saying what to place where.
    """
    from posebridge.sources.download import require_source

    if strict or not any(present.values()):
        require_source(dataset, source)
    found = [name for name, ok in present.items() if ok]
    missing = [name for name, ok in present.items() if not ok]
    for key, names in (("converted", found), ("missing", missing)):  # parts of several checks add up
        builder.parts[key] = builder.parts.get(key, []) + names
    if missing:
        builder.notes.append(f"partial download: {len(missing)} of {len(present)} missing ({', '.join(missing)}), "
                             f"converted {', '.join(found)} (strict: true refuses instead)")
    return found


# ---------------------------------------------------------------------------------------------
# Keypoints


def keypoints_with_confidence(xy: np.ndarray, confidence: np.ndarray | float = 1.0) -> np.ndarray:
    """(T, K, 2) pixels (NaN = missing) + confidence -> (T, K, 3) float32 in the detection-file
    convention: a missing joint has confidence 0 and x = y = 0."""
    xy = np.asarray(xy)
    out = np.empty(xy.shape[:-1] + (3,), dtype=np.float32)
    out[..., :2] = xy
    out[..., 2] = confidence
    missing = ~np.isfinite(out).all(axis=-1)
    if missing.any():
        out[missing] = 0.0
    return out


# ---------------------------------------------------------------------------------------------
# Geometry


def quaternion_to_matrix(q) -> np.ndarray:
    """Rotation matrix (3, 3) of a quaternion (w, x, y, z) (normalised first); it rotates a vector
    v to q v q*, as VideoPose3D's ``qrot`` does."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def camera_from_pose(name: str, orientation, position_mm, intrinsics, distortion, image_size,
                     distortion_model: str = "opencv") -> Camera:
    """A Camera from VideoPose3D-style extrinsics: ``orientation`` the quaternion (w, x, y, z)
    rotating camera axes into the world, ``position_mm`` the camera centre in the world."""
    R = quaternion_to_matrix(orientation).T  # world -> camera
    return Camera(name, intrinsics, distortion, R, -R @ np.asarray(position_mm, dtype=np.float64), image_size,
                  distortion_model)


# Z-up worlds. The store's world is Z-up (docs/internals.md); datasets whose world has another
# up axis are rotated by a fixed matrix, and data in camera coordinates are levelled with an
# estimate of the up direction (``estimate_up``).

Y_DOWN_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Rotation taking a y-down world (CMU Panoptic) to Z-up: (x, y, z) -> (x, z, -y)."""
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation taking a y-up world (MPI-INF-3DHP's studio) to Z-up: (x, y, z) -> (x, -z, y)."""
FEET_SPREAD_MM = 150.0  # the feet must cover the ground this widely (std, both ways) to fit its plane
FEET_PLANE_MAX_TILT_DEG = 30.0  # a plane normal further than this from the body axis is not the ground
_FEET = ("lankle", "rankle", "lfoot", "rfoot", "ltoe", "rtoe", "lheel", "rheel")
_HEAD = ("headtop", "head", "nose", "neck")


def rotation_between(a, b) -> np.ndarray:
    """The smallest rotation (3, 3) taking the direction of vector ``a`` to that of ``b``
    (Rodrigues' formula about ``a x b``; a half turn about an axis normal to ``a`` when opposite)."""
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = np.asarray(b, dtype=np.float64) / np.linalg.norm(b)
    axis, cos = np.cross(a, b), float(a @ b)
    if np.linalg.norm(axis) < 1e-12:
        if cos > 0:
            return np.eye(3)
        normal = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        normal /= np.linalg.norm(normal)
        return 2 * np.outer(normal, normal) - np.eye(3)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + k + k @ k / (1 + cos)


def estimate_up(joints: np.ndarray, skeleton: str) -> tuple[np.ndarray, str]:
    """The up direction (3,) of a static frame holding ``joints`` (..., J, 3) of people standing or
    moving on flat ground (NaN = missing), and how it was found.

    Where the feet (ankles, feet, toes) cover the ground in two directions (std above
    ``FEET_SPREAD_MM`` along both in-plane axes), the normal of the least-squares plane through
    them: the ground (as floor-plane estimates in monocular capture do, e.g. Mehta et al.'s VNect,
    SIGGRAPH 2017 scenes), turned towards the heads; else the mean body axis (ankles' midpoint ->
    head, one unit vector per pose), which assumes people upright on average. "plane" / "body".
    """
    s = skeletons.get(skeleton)
    feet = [s.index(n) for n in _FEET if n in s.joint_names]
    head = [s.index(n) for n in _HEAD if n in s.joint_names][:1]
    if not feet or not head:
        raise ValueError(f"{skeleton}: no feet or head joints to tell up from")
    joints = np.asarray(joints, dtype=np.float64).reshape(-1, s.num_joints, 3)
    axis = joints[:, head[0]] - joints[:, [s.index("lankle"), s.index("rankle")]].mean(axis=1)
    axis = axis[np.isfinite(axis).all(axis=1)]
    if not len(axis):
        raise ValueError(f"{skeleton}: no pose shows both the head and the ankles")
    body = np.mean(axis / np.linalg.norm(axis, axis=1, keepdims=True), axis=0)
    body /= np.linalg.norm(body)
    points = joints[:, feet].reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) >= 6:
        _, spread, vt = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
        normal = vt[2] * np.sign(vt[2] @ body)
        tilt = np.degrees(np.arccos(np.clip(normal @ body, -1.0, 1.0)))
        if spread[1] / np.sqrt(len(points)) > FEET_SPREAD_MM and tilt < FEET_PLANE_MAX_TILT_DEG:
            return normal, "plane"
    return body, "body"


def rotate_world(camera: Camera, rotation: np.ndarray) -> Camera:
    """The camera seeing the world rotated by ``rotation`` (X' = rotation @ X) as ``camera`` sees
    the original: ``R' = R rotation^T``, ``t`` unchanged."""
    return dataclasses.replace(camera, R=camera.R @ np.asarray(rotation).T)


def level_camera_frame(joints_cam: np.ndarray, skeleton: str, up_cam=None) -> tuple[np.ndarray, str]:
    """The rotation G (3, 3) that levels camera-frame data: ``G @ X_cam`` has the up direction
    (``up_cam``, the gravity a source gives in camera coordinates, else :func:`estimate_up` of
    ``joints_cam``) along +z. The store's camera is then ``R = G^T, t = 0``; returns G and how up
    was found ("gravity", "plane" or "body")."""
    how = "gravity"
    if up_cam is None:
        up_cam, how = estimate_up(joints_cam, skeleton)
    return rotation_between(up_cam, [0.0, 0.0, 1.0]), how


def fit_pinhole(points_cam: np.ndarray, pixels: np.ndarray, path, what: str,
                max_rms: float = 10.0) -> tuple[np.ndarray, float]:
    """Fit (fx, fy, cx, cy) of a distortion-free camera to camera-frame points (N, 3) and their
    image positions (N, 2) by linear least squares (u = fx X/Z + cx, v = fy Y/Z + cy).

    Used where a dataset ships 3D in camera coordinates and its 2D projections but no intrinsics.
    Returns the intrinsics and the RMS reprojection error (px); raises DataError(path, ...) when
    there are too few points or the 2D is not a pinhole projection of the 3D (RMS > max_rms).
    """
    points_cam = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(points_cam).all(axis=1) & np.isfinite(pixels).all(axis=1) & (points_cam[:, 2] > 1e-6)
    ray = points_cam[ok, :2] / points_cam[ok, 2:3]
    pixels = pixels[ok]
    if len(ray) < 3 or np.ptp(ray[:, 0]) < 1e-6 or np.ptp(ray[:, 1]) < 1e-6:
        raise DataError(path, f"{what}: too few valid 2D/3D joint pairs to recover the camera intrinsics")
    intrinsics = np.empty(4)
    residual = np.empty_like(pixels)
    for axis in (0, 1):
        design = np.stack([ray[:, axis], np.ones(len(ray))], axis=1)
        (focal, centre), *_ = np.linalg.lstsq(design, pixels[:, axis], rcond=None)
        intrinsics[axis], intrinsics[2 + axis] = focal, centre
        residual[:, axis] = design @ (focal, centre) - pixels[:, axis]
    rms = float(np.sqrt(np.mean(np.sum(residual ** 2, axis=1))))
    if not (intrinsics[0] > 0 and intrinsics[1] > 0) or not rms <= max_rms:
        raise DataError(path, f"{what}: the 2D annotations are not a pinhole projection of the 3D "
                              f"(fitted f = {intrinsics[0]:.1f}, {intrinsics[1]:.1f} px, "
                              f"RMS {rms:.1f} px > {max_rms} px)")
    return intrinsics, rms


# ---------------------------------------------------------------------------------------------
# VideoPose3D npz files (Human3.6M, HumanEva)

def load_npz_dict(path: Path, key: str) -> dict:
    """The pickled dict stored under ``key`` of a VideoPose3D npz (a 0-d object array)."""
    with reading(path, "npz file"):
        npz = read_npz(path)
    if key not in npz:
        raise DataError(path, f"has no {key!r} array (it has: {', '.join(npz) or 'none'})")
    value = npz[key]
    if value.dtype != object or value.shape != () or not isinstance(value.item(), dict):
        raise DataError(path, f"{key!r} is not a pickled dict (dtype {value.dtype}, shape {value.shape})")
    return value.item()


def load_npz_metadata(path: Path) -> dict | None:
    with reading(path, "npz file"):
        value = read_npz(path).get("metadata")
    if value is None:
        return None
    if value.dtype != object or value.shape != () or not isinstance(value.item(), dict):
        raise DataError(path, "'metadata' is not a pickled dict")
    return value.item()


def keypoint_format_of(path: Path, metadata: dict | None, default: str) -> str:
    """The registry keypoint format of a VideoPose3D 2D file from its metadata: ``layout_name``
    when present, else the layout its joint count and left/right symmetry fit (``default``, the
    dataset's, where several do: ground-truth files carry no layout name); see
    ``sources.detectors.imported.videopose3d_layout``."""
    from posebridge.sources.detectors.imported import videopose3d_layout

    return videopose3d_layout(path, metadata, default)


def check_array(path, where: str, value, shape: tuple) -> np.ndarray:
    """``value`` as a float array of ``shape`` (None = any length); DataError naming ``where``."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise DataError(path, f"{where} is not a numeric array ({type(value).__name__})")
    if value.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, value.shape)):
        want = "(" + ", ".join("T" if s is None else str(s) for s in shape) + ")"
        raise DataError(path, f"{where} has shape {value.shape}, expected {want}")
    if len(value) == 0:
        raise DataError(path, f"{where} has no frames")
    return value


def videopose3d_2d(path: Path, positions_2d: dict, subject: str, action: str, cameras: int,
                   frames: int, joints: int) -> list[np.ndarray]:
    """One take's 2D keypoints from a VideoPose3D 2D dict: ``cameras`` arrays (frames, joints, 3)
    (pixels + confidence 1). Longer 2D tracks are cut to the 3D length, as VideoPose3D does (some
    Human3.6M videos have extra frames); shorter ones are an error."""
    entry = positions_2d.get(subject, {}).get(action) if isinstance(positions_2d.get(subject), dict) else None
    if entry is None:
        raise DataError(path, f"has no 2D keypoints for {subject} {action!r}")
    if not isinstance(entry, (list, tuple)) or len(entry) != cameras:
        raise DataError(path, f"{subject} {action!r}: expected a list of {cameras} camera arrays")
    out = []
    for k, xy in enumerate(entry):
        where = f"{subject} {action!r} camera {k}"
        if xy is None:
            raise DataError(path, f"{where}: no 2D keypoints")
        xy = check_array(path, where, xy, (None, joints, 2))
        if len(xy) < frames:
            raise DataError(path, f"{where}: {len(xy)} frames of 2D, the 3D has {frames}")
        out.append(keypoints_with_confidence(xy[:frames]))
    return out


def resolve_2d_file(source: Path, detections: str, prefix: str) -> tuple[Path, str]:
    """The VideoPose3D 2D file named by ``detections``: a path, or the detector suffix of
    ``<prefix><suffix>.npz`` in ``source`` (e.g. ``cpn_ft_h36m_dbb``). Returns (path, detector)."""
    path = Path(detections)
    if path.suffix == ".npz" or path.exists():
        stem = path.stem
        detector = stem[len(prefix):] if stem.startswith(prefix) else stem
    else:
        detector = detections
        path = source / f"{prefix}{detections}.npz"
    if not path.is_file():
        raise DataError(path, f"2D keypoint file not found (--detections {detections!r}); VideoPose3D "
                              f"2D files are named {prefix}<detector>.npz")
    return path, detector


# ---------------------------------------------------------------------------------------------
# MATLAB files (MPI-INF-3DHP, MuPoTS)


def load_mat(path: Path, names: tuple[str, ...], **loadmat_options) -> dict:
    """Variables ``names`` of a MATLAB file, those present. A v7.3 file (HDF5) is read with h5py
    and its numeric arrays are transposed back to MATLAB's dimension order (HDF5 stores them
    reversed); older files go through ``scipy.io.loadmat`` (cells become object arrays)."""
    import h5py
    import scipy.io

    with reading(path, "MATLAB file"):
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                return {n: np.asarray(f[n]).T for n in names if n in f and isinstance(f[n], h5py.Dataset)}
        mat = scipy.io.loadmat(path, variable_names=list(names), **loadmat_options)
        return {n: mat[n] for n in names if n in mat}


def require_vars(path: Path, mat: dict, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in mat]
    if missing:
        raise DataError(path, f"lacks the variable(s) {', '.join(missing)}")
