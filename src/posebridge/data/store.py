"""The dataset store: one HDF5 file (arrays) + one Parquet index (one row per sequence x camera).

Layout (docs/internals.md, "Converted dataset"): attrs ``format_version``, ``name``, ``skeleton``,
``role``, ``has_3d`` (false: real footage without 3D, ``joints_3d`` all NaN; absent = true); ``joints_3d`` (N, J, 3) float32 world millimetres, every sequence concatenated in time,
NaN = missing; ``cameras/{name,intrinsics,distortion,R,t,image_size}`` and
``cameras/distortion_model`` (names; absent in stores written before it: all ``opencv``); optional
``extra/<format>`` (N, J_f, 3) float32; optional ``annotations/<name>`` (N, ...) per-frame labels a
source carries (:data:`ANNOTATIONS`: per-joint occlusion, activity, a moving camera's per-frame
pose); optional attributes ``parts_converted`` / ``parts_missing`` (JSON lists: which parts of a
partly downloaded dataset the file holds). A sequence is one take: all its camera rows share one
block ``joints_3d[start:start + frames]``.

Everything is validated when written and again when opened, so a broken file fails at once with
a one-line ``DataError`` naming the file, not deep inside training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import numpy as np
import pandas as pd

from posebridge.geometry import cameras as cameras_mod
from posebridge.geometry import skeletons
from posebridge.atomic import atomic_path
from posebridge.errors import ConfigError, DataError

FORMAT_VERSION = 1
ROLES = ("labeled", "unlabeled_video", "unlabeled_multiview", "test")
SPLITS = ("train", "test")
CHUNK_FRAMES = 1024  # HDF5 chunk length along time: one sequence read touches few chunks

# index column -> kind ("str", "int", "float"); the order is the order on disk
INDEX_COLUMNS = {
    "sequence": "str", "subject": "str", "action": "str", "split": "str", "camera": "str",
    "camera_index": "int", "start": "int", "frames": "int", "fps": "float", "role": "str",
    "group": "str",
}
# optional index columns a converter may add (checked when present): where a take comes from in
# the dataset's own files, so files keyed that way (VideoPose3D's 2D npz) match it exactly
SOURCE_COLUMNS = ("source_subject", "source_action")  # e.g. "S1", "Directions 1"; one per sequence
CAMERA_FIELDS = {  # field -> (shape after C, dtype kind)
    "intrinsics": ((4,), "f"), "distortion": ((5,), "f"), "R": ((3, 3), "f"), "t": ((3,), "f"),
    "image_size": ((2,), "i"),
}


# per-frame annotations (name -> (shape after N with J for the joint count, dtype kind, meaning));
# a frame a take does not annotate holds the fill value (-1, NaN)
ANNOTATIONS = {
    "occluded": (("J",), "i", "per joint: 1 occluded, 0 visible, -1 unknown (MuPoTS occlusion labels)"),
    "activity": ((), "i", "activity code, -1 unknown (MPI-INF-3DHP test set: 1-7, see ACTIVITY_NAMES)"),
    "camera_R": ((3, 3), "f", "world -> camera rotation of a moving camera in this frame (3DPW)"),
    "camera_t": ((3,), "f", "world -> camera translation (mm) of a moving camera in this frame"),
}
# MPI-INF-3DHP's test-set activity labels (its evaluation's order)
ACTIVITY_NAMES = {1: "Stand/Walk", 2: "Exercise", 3: "Sit on Chair", 4: "Reach/Crouch", 5: "On Floor",
                  6: "Sports", 7: "Misc."}


def default_index_path(h5_path: str | os.PathLike) -> Path:
    return Path(h5_path).with_suffix(".parquet")


# ---------------------------------------------------------------------------------------------
# Validation shared by writing and opening. Each check returns a problem string or raises
# _Invalid; the caller wraps it into DataError with the right path.

class _Invalid(Exception):
    pass


def _resolve_skeleton(name, where: str | None = None):
    try:
        return skeletons.get(name)
    except ConfigError as err:
        raise _Invalid(str(err) if where is None else f"{where}: {err}") from None


def _check_role(role) -> None:
    if role not in ROLES:
        raise _Invalid(f"unknown role {role!r} (known: {', '.join(ROLES)})")


def _check_joints(array_shape: tuple, dtype, num_joints: int, num_frames: int | None, what: str) -> None:
    if len(array_shape) != 3 or array_shape[2] != 3:
        raise _Invalid(f"{what} has shape {array_shape}, expected (frames, {num_joints}, 3)")
    if array_shape[1] != num_joints:
        raise _Invalid(f"{what} has {array_shape[1]} joints, its skeleton format has {num_joints}")
    if num_frames is not None and array_shape[0] != num_frames:
        raise _Invalid(f"{what} has {array_shape[0]} frames, joints_3d has {num_frames}")
    if dtype is not None and np.dtype(dtype) != np.float32:
        raise _Invalid(f"{what} has dtype {np.dtype(dtype)}, expected float32")


def _camera_arrays(cams: list) -> dict[str, np.ndarray]:
    return {
        "name": np.array([str(c.name) for c in cams], dtype=object),
        "intrinsics": np.array([np.asarray(c.intrinsics, dtype=np.float64) for c in cams]).reshape(-1, 4),
        "distortion": np.array([np.asarray(c.distortion, dtype=np.float64) for c in cams]).reshape(-1, 5),
        "R": np.array([np.asarray(c.R, dtype=np.float64) for c in cams]).reshape(-1, 3, 3),
        "t": np.array([np.asarray(c.t, dtype=np.float64) for c in cams]).reshape(-1, 3),
        "image_size": np.array([np.asarray(c.image_size) for c in cams]).reshape(-1, 2),
        "distortion_model": np.array([str(getattr(c, "distortion_model", "opencv")) for c in cams], dtype=object),
    }


def _check_camera_arrays(arrays: dict[str, np.ndarray]) -> None:
    names = arrays["name"]
    count = len(names)
    if count == 0:
        raise _Invalid("no cameras")
    for field, (shape, kind) in CAMERA_FIELDS.items():
        a = arrays[field]
        if a.shape != (count, *shape):
            raise _Invalid(f"cameras/{field} has shape {a.shape}, expected {(count, *shape)} "
                           f"({count} camera names)")
        if kind == "f" and a.dtype.kind != "f" or kind == "i" and a.dtype.kind not in "iu":
            raise _Invalid(f"cameras/{field} has dtype {a.dtype}, expected "
                           f"{'floating point' if kind == 'f' else 'integer'}")
        if kind == "f" and not np.isfinite(a).all():
            bad = names[np.flatnonzero(~np.isfinite(a.reshape(count, -1)).all(axis=1))[0]]
            raise _Invalid(f"cameras/{field} of camera {bad!r} holds NaN or inf")
    if (arrays["image_size"] <= 0).any():
        raise _Invalid("cameras/image_size must be positive")
    if len(set(names)) != count:
        raise _Invalid("camera names are not unique")
    models = arrays["distortion_model"]
    if models.shape != (count,):
        raise _Invalid(f"cameras/distortion_model has shape {models.shape}, expected {(count,)}")
    unknown = sorted(set(models) - set(cameras_mod.DISTORTION_MODELS))
    if unknown:
        raise _Invalid(f"cameras/distortion_model {unknown[0]!r} is not one of "
                       f"{', '.join(cameras_mod.DISTORTION_MODELS)}")


def _normalise_index(index: pd.DataFrame) -> pd.DataFrame:
    """Check columns and dtypes; return a copy with canonical dtypes (str, int64, float64)."""
    if not isinstance(index, pd.DataFrame):
        raise _Invalid(f"index must be a pandas DataFrame, not {type(index).__name__}")
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise _Invalid(f"index lacks column(s) {', '.join(missing)}")
    if len(index) == 0:
        raise _Invalid("index has no rows")
    out = index.reset_index(drop=True).copy()
    for column, kind in INDEX_COLUMNS.items():
        values = out[column]
        if values.isna().any():
            raise _Invalid(f"index column {column!r} has missing values")
        if kind == "str":
            if not (pd.api.types.is_string_dtype(values)
                    and values.map(lambda v: isinstance(v, str)).all()):
                raise _Invalid(f"index column {column!r} must hold strings (dtype {values.dtype})")
            out[column] = values.astype(str)
        elif kind == "int":
            if not pd.api.types.is_integer_dtype(values):
                raise _Invalid(f"index column {column!r} must be integer (dtype {values.dtype})")
            out[column] = values.astype(np.int64)
        else:
            if not (pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values)):
                raise _Invalid(f"index column {column!r} must be numeric (dtype {values.dtype})")
            out[column] = values.astype(np.float64)
    for column in SOURCE_COLUMNS:
        if column in out.columns and not (out[column].map(lambda v: isinstance(v, str)).all()):
            raise _Invalid(f"index column {column!r} must hold strings (no missing values)")
    rest = [c for c in out.columns if c not in INDEX_COLUMNS]
    return out[[*INDEX_COLUMNS, *rest]]


def _check_index(index: pd.DataFrame, num_frames: int, camera_names: np.ndarray) -> None:
    """Row-level checks of a normalised index against the arrays."""
    def fail(mask: np.ndarray, problem: str):
        row = int(np.flatnonzero(mask)[0])
        raise _Invalid(f"index row {row} (sequence {index['sequence'].iloc[row]!r}): {problem}")

    bad = ~index["split"].isin(SPLITS).to_numpy()
    if bad.any():
        fail(bad, f"split must be one of {', '.join(SPLITS)}")
    bad = ~index["role"].isin(ROLES).to_numpy()
    if bad.any():
        fail(bad, f"unknown role (known: {', '.join(ROLES)})")
    start = index["start"].to_numpy()
    frames = index["frames"].to_numpy()
    if (bad := frames < 1).any():
        fail(bad, "frames must be at least 1")
    if (bad := (start < 0) | (start + frames > num_frames)).any():
        fail(bad, f"frames [start, start + frames) out of range of the {num_frames} frames in joints_3d")
    if (bad := ~(index["fps"].to_numpy() > 0) | ~np.isfinite(index["fps"].to_numpy())).any():
        fail(bad, "fps must be positive")
    camera_index = index["camera_index"].to_numpy()
    if (bad := (camera_index < 0) | (camera_index >= len(camera_names))).any():
        fail(bad, f"camera_index out of range of the {len(camera_names)} cameras")
    if (bad := camera_names[camera_index] != index["camera"].to_numpy()).any():
        fail(bad, "camera name does not match cameras/name[camera_index]")
    if (bad := index.duplicated(["sequence", "camera"]).to_numpy()).any():
        fail(bad, "duplicate (sequence, camera) row")
    # every camera row of one sequence points at the same take
    per_sequence = ["start", "frames", "subject", "action", "split", "fps", "role", "group",
                    *(c for c in SOURCE_COLUMNS if c in index.columns)]
    first = index.groupby("sequence", sort=False)[per_sequence].transform("first")
    differs = (first != index[per_sequence]).to_numpy()
    if (bad := differs.any(axis=1)).any():
        column = per_sequence[int(np.flatnonzero(differs[np.flatnonzero(bad)[0]])[0])]
        fail(bad, f"its {column!r} differs from the sequence's first row (one take, one {column})")
    takes = index.drop_duplicates("sequence").sort_values("start")
    ends = (takes["start"] + takes["frames"]).to_numpy()
    if (overlap := takes["start"].to_numpy()[1:] < ends[:-1]).any():
        row = int(np.flatnonzero(overlap)[0]) + 1
        raise _Invalid(f"sequence {takes['sequence'].iloc[row]!r} overlaps sequence "
                       f"{takes['sequence'].iloc[row - 1]!r} in joints_3d")


# ---------------------------------------------------------------------------------------------
# Writing

def write_dataset(h5_path: str | os.PathLike, *, name: str, skeleton, role: str,
                  joints_3d: np.ndarray, cameras: list, index: pd.DataFrame,
                  extra: dict[str, np.ndarray] | None = None,
                  index_path: str | os.PathLike | None = None, has_3d: bool = True,
                  annotations: dict[str, np.ndarray] | None = None, parts: dict[str, list] | None = None) -> None:
    """Validate and write a converted dataset: ``h5_path`` and its Parquet index, each atomically.

    joints_3d: (N, J, 3) world millimetres (NaN = missing), J = the skeleton's joint count.
    cameras: list of ``cameras.Camera``; index: one row per sequence x camera (``INDEX_COLUMNS``,
    extra columns are kept); extra: format name -> (N, J_f, 3) arrays of the same frames.
    has_3d: False for footage without any 3D (``joints_3d`` all NaN, e.g. videos to triangulate);
    otherwise a joints_3d that is entirely NaN is refused.
    annotations: name -> (N, ...) per-frame labels (:data:`ANNOTATIONS`); a moving camera's
    ``camera_R`` / ``camera_t`` are the true world -> camera pose per frame of a take seen by that
    one camera, while ``joints_3d`` and ``cameras`` hold a frame in which that camera is static.
    parts: {"converted": [...], "missing": [...]} of a partly downloaded dataset.
    Invalid input raises ``DataError(h5_path, ...)`` and writes nothing.
    """
    h5_path = Path(h5_path)
    index_path = Path(index_path) if index_path is not None else default_index_path(h5_path)
    try:
        if not isinstance(name, str) or not name:
            raise _Invalid("dataset name must be a non-empty string")
        skeleton_obj = _resolve_skeleton(skeleton)
        _check_role(role)
        joints_3d = _float32_points(joints_3d, skeleton_obj.num_joints, None, "joints_3d")
        num_frames = joints_3d.shape[0]
        if num_frames == 0:
            raise _Invalid("joints_3d has no frames")
        if has_3d and np.isnan(joints_3d).all():
            raise _Invalid("joints_3d is entirely missing (every value is NaN)")
        if not has_3d and not np.isnan(joints_3d).all():
            raise _Invalid("a dataset without 3D (has_3d false) must have joints_3d all NaN")
        if isinstance(cameras, cameras_mod.Camera):
            raise _Invalid("cameras must be a list of Camera")
        camera_arrays = _camera_arrays(list(cameras))
        _check_camera_arrays(camera_arrays)
        index = _normalise_index(index)
        _check_index(index, num_frames, camera_arrays["name"])
        extra_arrays = {}
        for fmt, array in (extra or {}).items():
            fmt_skeleton = _resolve_skeleton(fmt, f"extra/{fmt}")
            extra_arrays[fmt_skeleton.name] = _float32_points(array, fmt_skeleton.num_joints,
                                                              num_frames, f"extra/{fmt}")
        annotation_arrays = {k: _check_annotation(k, np.asarray(v), num_frames, skeleton_obj.num_joints)
                             for k, v in (annotations or {}).items()}
        _check_motion(annotation_arrays, index)
    except _Invalid as err:
        raise DataError(h5_path, f"cannot write dataset: {err}") from None
    attrs = {"format_version": FORMAT_VERSION, "name": name, "skeleton": skeleton_obj.name, "role": role,
             "has_3d": bool(has_3d)}
    for key, values in (parts or {}).items():
        attrs[f"parts_{key}"] = json.dumps([str(v) for v in values])
    _write_files(h5_path, index_path, attrs, joints_3d, camera_arrays, index,
                 {**{f"extra/{k}": v for k, v in extra_arrays.items()},
                  **{f"annotations/{k}": v for k, v in annotation_arrays.items()}})


def _check_annotation(name: str, array: np.ndarray, num_frames: int, num_joints: int) -> np.ndarray:
    """A per-frame annotation checked against :data:`ANNOTATIONS` (shape, dtype), as stored."""
    if name not in ANNOTATIONS:
        raise _Invalid(f"unknown annotation {name!r} (known: {', '.join(ANNOTATIONS)})")
    shape, kind, _ = ANNOTATIONS[name]
    expected = (num_frames, *(num_joints if d == "J" else d for d in shape))
    if array.shape != expected:
        raise _Invalid(f"annotations/{name} has shape {array.shape}, expected {expected}")
    if kind == "i" and array.dtype.kind not in "biu" or kind == "f" and array.dtype.kind not in "fiu":
        raise _Invalid(f"annotations/{name} has dtype {array.dtype}, expected "
                       f"{'integers' if kind == 'i' else 'numbers'}")
    if kind == "f" and np.isinf(array).any():
        raise _Invalid(f"annotations/{name} holds inf")
    return array.astype(np.int16 if kind == "i" else np.float64)


def _check_motion(annotations: dict, index: pd.DataFrame) -> None:
    """A moving camera's pose comes as camera_R with camera_t, for takes seen by one camera only."""
    have = {"camera_R", "camera_t"} & set(annotations)
    if not have:
        return
    if len(have) == 1:
        raise _Invalid(f"annotations/{have.pop()} needs its partner (camera_R and camera_t go together)")
    moving = np.isfinite(annotations["camera_t"]).all(axis=1)
    for sequence, rows in index.groupby("sequence", sort=False):
        start, frames = int(rows["start"].iloc[0]), int(rows["frames"].iloc[0])
        if moving[start:start + frames].any() and len(rows) > 1:
            raise _Invalid(f"sequence {sequence!r}: a moving camera's pose needs a take seen by one camera, "
                           f"it has {len(rows)}")


def _float32_points(array, num_joints: int, num_frames: int | None, what: str) -> np.ndarray:
    """``array`` as (N, num_joints, 3) float32 after checking its dtype, shape and values."""
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise _Invalid(f"{what} has dtype {array.dtype}, expected floating point")
    _check_joints(array.shape, None, num_joints, num_frames, what)
    if np.isinf(array).any():
        raise _Invalid(f"{what} holds inf (use NaN for missing joints)")
    return array.astype(np.float32, copy=False)


def _write_files(h5_path: Path, index_path: Path, attrs: dict, joints_3d: np.ndarray,
                 camera_arrays: dict, index: pd.DataFrame, per_frame: dict) -> None:
    """Write the checked dataset: the index renamed first, then the HDF5 file; if anything fails
    neither target is touched."""
    import h5py

    def chunked(array: np.ndarray) -> dict:
        return {"chunks": (min(CHUNK_FRAMES, array.shape[0]), *array.shape[1:])}

    with atomic_path(h5_path) as h5_tmp, atomic_path(index_path) as index_tmp:
        index.to_parquet(index_tmp, index=False)
        with h5py.File(h5_tmp, "w") as f:
            f.attrs.update(attrs)
            f.create_dataset("joints_3d", data=joints_3d, **chunked(joints_3d))
            group = f.create_group("cameras")
            group.create_dataset("name", data=camera_arrays["name"], dtype=h5py.string_dtype())
            for field in CAMERA_FIELDS:
                group.create_dataset(field, data=camera_arrays[field])
            group.create_dataset("distortion_model", data=camera_arrays["distortion_model"],
                                 dtype=h5py.string_dtype())
            for key, array in per_frame.items():  # extra/<format>, annotations/<name>
                f.create_dataset(key, data=array, **chunked(array))


# ---------------------------------------------------------------------------------------------
# Reading

class LazyHDF5:
    """Opens ``self.path`` read-only on first use, and again in a forked worker (HDF5 handles
    must not cross fork: DataLoader workers). A context manager; ``close()`` releases the file."""

    path: Path
    _file = None
    _file_pid = None

    def _h5(self):
        if self._file is None or self._file_pid != os.getpid():
            import h5py

            try:
                self._file = h5py.File(self.path, "r")
            except OSError as err:
                raise DataError(self.path, f"cannot open HDF5 file: {_short(err)}") from None
            self._file_pid = os.getpid()
        return self._file

    def close(self) -> None:
        if self._file is not None and self._file_pid == os.getpid():
            self._file.close()
        self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Dataset(LazyHDF5):
    """An opened, validated dataset. Arrays stay on disk; the HDF5 file is opened on first read.

    Use as a context manager or call ``close()``. Attributes: ``name``, ``skeleton`` (Skeleton),
    ``role``, ``index`` (DataFrame), ``cameras`` (list[Camera]), ``num_frames``, ``extra_formats``,
    ``has_3d`` (False: footage without 3D, whose joints cannot be read), ``annotations`` (names of
    the per-frame annotations it carries), ``parts`` ({"converted": [...], "missing": [...]} of a
    partly downloaded dataset; empty otherwise).
    """

    def __init__(self, path: Path, index_path: Path, *, name: str, skeleton, role: str,
                 index: pd.DataFrame, cameras: list, num_frames: int, extra_formats: list[str],
                 has_3d: bool = True, annotations: list[str] | None = None, parts: dict | None = None):
        self.path = path
        self.index_path = index_path
        self.name = name
        self.skeleton = skeleton
        self.role = role
        self.index = index
        self.cameras = cameras
        self.num_frames = num_frames
        self.extra_formats = extra_formats
        self.has_3d = has_3d
        self.annotations = list(annotations or [])
        self.parts = dict(parts or {})
        takes = index.drop_duplicates("sequence")
        self._spans = dict(zip(takes["sequence"], zip(takes["start"].tolist(), takes["frames"].tolist())))

    def _read(self, key: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """Frames [start, stop) of joint array ``key``; NaN marks a missing joint, inf is refused
        (written by another tool or damaged: write_dataset never stores it)."""
        try:
            array = np.asarray(self._h5()[key][start:stop], dtype=np.float32)
        except (OSError, KeyError) as err:
            raise DataError(self.path, f"cannot read {key}: {_short(err)}") from None
        if np.isinf(array).any():
            frame = int(np.flatnonzero(np.isinf(array).reshape(len(array), -1).any(axis=1))[0]) + (start or 0)
            raise DataError(self.path, f"{key} holds inf (frame {frame}); missing joints must be NaN")
        return array

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, skeleton={self.skeleton.name!r}, role={self.role!r}, "
                f"{len(self._spans)} sequences, {len(self.index)} rows, {self.num_frames} frames)")

    # -- queries -----------------------------------------------------------------------------
    @property
    def sequences(self) -> list[str]:
        """Sequence names in index order."""
        return list(self._spans)

    def span(self, sequence: str) -> tuple[int, int]:
        """(start, frames) of a sequence's block in ``joints_3d``."""
        try:
            return self._spans[sequence]
        except KeyError:
            raise DataError(self.path, f"dataset {self.name!r} has no sequence {sequence!r}") from None

    def sequence_3d(self, sequence: str) -> np.ndarray:
        """(T, J, 3) float32 world joints (mm) of one sequence; reads only that slice."""
        self._require_3d()
        start, frames = self.span(sequence)
        return self._read("joints_3d", start, start + frames)

    def frames_3d(self, start: int, stop: int) -> np.ndarray:
        """(stop - start, J, 3) float32 world joints (mm) of frames [start, stop) of
        ``joints_3d`` (one contiguous read: the file is chunked by time)."""
        self._require_3d()
        return self._read("joints_3d", start, stop)

    def _require_3d(self) -> None:
        if not self.has_3d:
            raise DataError(self.path, f"dataset {self.name!r} has no 3D joints (footage without ground "
                                       f"truth: posebridge triangulate gives multi-view footage 3D)")

    def sequence_extra(self, format: str, sequence: str) -> np.ndarray:
        """(T, J_f, 3) float32 world joints of one sequence in another skeleton format."""
        if format not in self.extra_formats:
            raise DataError(self.path, f"dataset {self.name!r} has no extra format {format!r} "
                                       f"(it has: {', '.join(self.extra_formats) or 'none'})")
        start, frames = self.span(sequence)
        return self._read(f"extra/{format}", start, start + frames)

    def sequence_annotation(self, name: str, sequence: str) -> np.ndarray | None:
        """One sequence's frames of per-frame annotation ``name`` (``ANNOTATIONS``), None when the
        dataset does not carry it."""
        if name not in self.annotations:
            return None
        start, frames = self.span(sequence)
        try:
            return np.asarray(self._h5()[f"annotations/{name}"][start:start + frames])
        except (OSError, KeyError) as err:
            raise DataError(self.path, f"cannot read annotations/{name}: {_short(err)}") from None

    def sequence_camera_motion(self, sequence: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A moving camera's true world -> camera pose per frame of ``sequence``: R (T, 3, 3),
        t (T, 3) mm (NaN where unknown); None when the sequence's camera does not move."""
        R, t = self.sequence_annotation("camera_R", sequence), self.sequence_annotation("camera_t", sequence)
        if R is None or not np.isfinite(t).any():
            return None
        return R, t

    def sequence_world_3d(self, sequence: str) -> np.ndarray:
        """(T, J, 3) float64 joints in the true world: ``sequence_3d`` itself for static cameras;
        for a moving one (``sequence_camera_motion``) each frame taken from the stored frame, where
        the camera is static, into the camera and back out with that frame's pose."""
        joints = self.sequence_3d(sequence).astype(np.float64)
        motion = self.sequence_camera_motion(sequence)
        if motion is None:
            return joints
        R, t = motion
        row = self.index[self.index["sequence"] == sequence].iloc[0]
        in_camera = self.camera_for(row).world_to_camera(joints)
        return np.einsum("tji,tkj->tki", R, in_camera - t[:, None, :])

    def joints_3d_all(self) -> np.ndarray:
        """(N, J, 3) float32: every frame of the dataset; DataError when every joint is missing."""
        self._require_3d()
        joints = self._read("joints_3d")
        if np.isnan(joints).all():
            self._all_missing()
        return joints

    def check_3d_present(self) -> None:
        """DataError unless some joint of ``joints_3d`` is known; reads chunk by chunk and stops
        at the first known value (bounded memory, one chunk for any usable dataset)."""
        self._require_3d()
        for start in range(0, self.num_frames, CHUNK_FRAMES):
            if not np.isnan(self._read("joints_3d", start, start + CHUNK_FRAMES)).all():
                return
        self._all_missing()

    def _all_missing(self):
        raise DataError(self.path, "joints_3d is entirely missing (every value is NaN)")

    def camera_for(self, row) -> "cameras_mod.Camera":
        """The Camera of an index row (a row of ``index``/``rows()``, or its position in ``index``)."""
        if isinstance(row, (int, np.integer)):
            row = self.index.iloc[int(row)]
        return self.cameras[int(row["camera_index"])]

    def rows(self, split: str | None = None) -> pd.DataFrame:
        """Index rows, all or those of one split ("train" / "test")."""
        if split is None:
            return self.index
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
        return self.index[self.index["split"] == split]


def _short(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _read_attr(f, key: str):
    if key not in f.attrs:
        raise _Invalid(f"missing attribute {key!r}")
    value = f.attrs[key]
    if isinstance(value, bytes):
        value = value.decode()
    return value


def _read_field(f, key: str, ndim: int | None = None):
    if key not in f:
        raise _Invalid(f"missing field {key!r}")
    node = f[key]
    if not hasattr(node, "shape"):
        raise _Invalid(f"{key!r} is not an array")
    if ndim is not None and node.ndim != ndim:
        raise _Invalid(f"{key} has shape {node.shape}, expected {ndim} dimensions")
    return node


def _read_strings(f, key: str, default: str, count: int) -> np.ndarray:
    """A 1-D string array of the file, or ``count`` times ``default`` where an older file lacks it."""
    if key not in f:
        return np.array([default] * count, dtype=object)
    node = _read_field(f, key, 1)
    if node.dtype.kind not in "OSU":
        raise _Invalid(f"{key} has dtype {node.dtype}, expected strings")
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in node[()]], dtype=object)


def _load_arrays(f) -> dict:
    """Validate the HDF5 structure; return the attrs, cameras and array shapes."""
    version = _read_attr(f, "format_version")
    if version != FORMAT_VERSION:
        raise _Invalid(f"format_version {version} is not supported (expected {FORMAT_VERSION})")
    name = str(_read_attr(f, "name"))
    skeleton = _resolve_skeleton(str(_read_attr(f, "skeleton")))
    role = str(_read_attr(f, "role"))
    _check_role(role)
    joints = _read_field(f, "joints_3d")
    _check_joints(joints.shape, joints.dtype, skeleton.num_joints, None, "joints_3d")
    num_frames = joints.shape[0]

    names = _read_field(f, "cameras/name", 1)
    if names.dtype.kind not in "OSU":
        raise _Invalid(f"cameras/name has dtype {names.dtype}, expected strings")
    arrays = {"name": np.array([n.decode() if isinstance(n, bytes) else str(n) for n in names[()]],
                               dtype=object)}
    for field in CAMERA_FIELDS:
        arrays[field] = np.asarray(_read_field(f, f"cameras/{field}")[()])
    arrays["distortion_model"] = _read_strings(f, "cameras/distortion_model", "opencv", len(arrays["name"]))
    _check_camera_arrays(arrays)

    extra_formats = []
    if "extra" in f:
        for fmt in sorted(f["extra"].keys()):
            fmt_skeleton = _resolve_skeleton(fmt, f"extra/{fmt}")
            node = _read_field(f, f"extra/{fmt}")
            _check_joints(node.shape, node.dtype, fmt_skeleton.num_joints, num_frames, f"extra/{fmt}")
            extra_formats.append(fmt)
    has_3d = f.attrs.get("has_3d", True)
    if not isinstance(has_3d, (bool, np.bool_)):
        raise _Invalid(f"attribute has_3d must be true or false, got {has_3d!r}")
    annotations = sorted(f["annotations"].keys()) if "annotations" in f else []
    for key in annotations:
        node = _read_field(f, f"annotations/{key}")
        _check_annotation(key, np.empty((0, *node.shape[1:]), node.dtype), 0, skeleton.num_joints)
        if node.shape[0] != num_frames:
            raise _Invalid(f"annotations/{key} has {node.shape[0]} frames, joints_3d has {num_frames}")
    return {"name": name, "skeleton": skeleton, "role": role, "num_frames": num_frames,
            "camera_arrays": arrays, "extra_formats": extra_formats, "has_3d": bool(has_3d),
            "annotations": annotations, "parts": _read_parts(f)}


def _read_parts(f) -> dict[str, list[str]]:
    """The ``parts_*`` attributes (JSON lists of names): which parts of the dataset were converted."""
    parts = {}
    for key in ("converted", "missing"):
        value = f.attrs.get(f"parts_{key}")
        if value is None:
            continue
        try:
            parts[key] = [str(v) for v in json.loads(value)]
        except (TypeError, ValueError):
            raise _Invalid(f"attribute parts_{key} is not a JSON list: {value!r}") from None
    return parts


def _cameras_from_arrays(arrays: dict[str, np.ndarray]) -> list:
    return [
        cameras_mod.Camera(name=str(arrays["name"][i]), intrinsics=arrays["intrinsics"][i].astype(np.float64),
                           distortion=arrays["distortion"][i].astype(np.float64),
                           R=arrays["R"][i].astype(np.float64), t=arrays["t"][i].astype(np.float64),
                           image_size=tuple(int(v) for v in arrays["image_size"][i]),
                           distortion_model=str(arrays["distortion_model"][i]))
        for i in range(len(arrays["name"]))
    ]


def open_dataset(h5_path: str | os.PathLike, index_path: str | os.PathLike | None = None) -> Dataset:
    """Open and validate a converted dataset (HDF5 + Parquet index); see the module docstring.

    Raises ``DataError(path, problem)`` for a missing, corrupt or inconsistent file.
    """
    import h5py

    path = Path(h5_path)
    index_path = Path(index_path) if index_path is not None else default_index_path(path)
    if not path.is_file():
        raise DataError(path, "no such dataset file" if not path.exists() else "not a regular file")
    try:
        with h5py.File(path, "r") as f:
            info = _load_arrays(f)
        cameras = _cameras_from_arrays(info["camera_arrays"])
    except OSError as err:
        raise DataError(path, f"not a readable HDF5 file (truncated or corrupt?): {_short(err)}") from None
    except (_Invalid, ConfigError) as err:  # Camera() rejects e.g. a matrix that is no rotation
        raise DataError(path, str(err)) from None

    if not index_path.is_file():
        raise DataError(index_path, f"index of dataset {path.name} is missing")
    try:
        index = pd.read_parquet(index_path)
    except Exception as err:  # pyarrow raises several types for a broken file
        raise DataError(index_path, f"not a readable Parquet index: {_short(err)}") from None
    try:
        index = _normalise_index(index)
        _check_index(index, info["num_frames"], info["camera_arrays"]["name"])
    except _Invalid as err:
        raise DataError(index_path, str(err)) from None

    return Dataset(path, index_path, name=info["name"], skeleton=info["skeleton"], role=info["role"],
                   index=index, cameras=cameras,
                   num_frames=info["num_frames"], extra_formats=info["extra_formats"], has_3d=info["has_3d"],
                   annotations=info["annotations"], parts=info["parts"])

