"""2D detection files: per sequence x camera keypoints (pixels) + confidence, from one detector.

Layout (docs/internals.md, "2D detections"), ``results/detections/<dataset>/<detector>.h5``:
attrs ``detector``, ``keypoint_format`` (skeleton registry name), ``dataset``, ``format_version``;
``keypoints`` (N, K, 3) float32 (x px, y px, confidence in [0, 1]), the rows' frames concatenated
in the order of the dataset's index rows; ``row_start``, ``row_frames`` (int64, per row);
``sequence``, ``camera`` (str, per row). A missed joint has confidence 0 (its x, y are still finite).
Optional ``others`` (N, P, K, 3) float32: up to P further people the detector found in each frame
besides the main person of ``keypoints`` (all-zero where fewer), for multi-view footage in which a
view's main person may be someone else (``posebridge triangulate`` looks there for the person the
other views agree on).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from posebridge.geometry import skeletons
from posebridge.atomic import atomic_path
from posebridge.errors import ConfigError, DataError
from posebridge.data.store import LazyHDF5, _short

FORMAT_VERSION = 1
CHUNK_FRAMES = 1024


class _Invalid(Exception):
    pass


def _keypoint_skeleton(name):
    try:
        return skeletons.get(name)
    except ConfigError as err:
        raise _Invalid(f"keypoint format: {err}") from None


def keypoint_value_problem(keypoints: np.ndarray) -> str | None:
    """Why (N, K, 3) keypoints are invalid (non-finite values, confidence outside [0, 1]), or None."""
    if not np.isfinite(keypoints).all():
        return "keypoints hold NaN or inf (a missed joint has confidence 0 and finite x, y)"
    confidence = keypoints[..., 2]
    if (confidence < 0).any() or (confidence > 1).any():
        return f"confidences must lie in [0, 1] (found {confidence.min():g} to {confidence.max():g})"
    return None


def _check_rows(sequence: np.ndarray, camera: np.ndarray, frames: np.ndarray) -> None:
    if len(sequence) == 0:
        raise _Invalid("no rows")
    if (frames < 1).any():
        row = int(np.flatnonzero(frames < 1)[0])
        raise _Invalid(f"row {row} ({sequence[row]!r}, {camera[row]!r}) has {frames[row]} frames")
    duplicated = pd.DataFrame({"s": sequence, "c": camera}).duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise _Invalid(f"duplicate row ({sequence[row]!r}, {camera[row]!r})")


def write_detections(path: str | os.PathLike, *, dataset, detector: str, keypoint_format,
                     rows: pd.DataFrame, keypoints: np.ndarray, others: np.ndarray | None = None) -> None:
    """Validate and write a detection file atomically.

    dataset: the dataset's name (or a ``store.Dataset``); rows: DataFrame with ``sequence``,
    ``camera``, ``frames``, one row per dataset index row, in order; keypoints: (sum(frames), K, 3)
    x, y in pixels and confidence in [0, 1], K = the keypoint format's joint count; others:
    None or (sum(frames), P, K, 3), further people per frame (module docstring).
    Invalid input raises ``DataError(path, ...)`` and writes nothing.
    """
    path = Path(path)
    dataset_name = getattr(dataset, "name", dataset)
    try:
        if not isinstance(dataset_name, str) or not dataset_name:
            raise _Invalid("dataset name must be a non-empty string")
        if not isinstance(detector, str) or not detector:
            raise _Invalid("detector name must be a non-empty string")
        skeleton = _keypoint_skeleton(keypoint_format)
        missing = [c for c in ("sequence", "camera", "frames") if c not in rows.columns]
        if missing:
            raise _Invalid(f"rows lack column(s) {', '.join(missing)}")
        if not pd.api.types.is_integer_dtype(rows["frames"]):
            raise _Invalid(f"rows column 'frames' must be integer (dtype {rows['frames'].dtype})")
        sequence = rows["sequence"].astype(str).to_numpy(dtype=object)
        camera = rows["camera"].astype(str).to_numpy(dtype=object)
        frames = rows["frames"].to_numpy(dtype=np.int64)
        _check_rows(sequence, camera, frames)
        keypoints = np.asarray(keypoints)
        expected = (int(frames.sum()), skeleton.num_joints, 3)
        if keypoints.shape != expected:
            raise _Invalid(f"keypoints have shape {keypoints.shape}, expected {expected} "
                           f"(sum of frames, {skeleton.name} joints, x/y/confidence)")
        if keypoints.dtype.kind not in "fiu":
            raise _Invalid(f"keypoints have dtype {keypoints.dtype}, expected floating point")
        keypoints = keypoints.astype(np.float32, copy=False)
        problem = keypoint_value_problem(keypoints)
        if problem:
            raise _Invalid(problem)
        if len(keypoints) and not (keypoints[..., 2] > 0).any():
            raise _Invalid("no keypoint was found in any frame (every confidence is 0)")
        if others is not None:
            others = np.asarray(others)
            if others.ndim != 4 or others.shape[0] != expected[0] or others.shape[2:] != expected[1:]:
                raise _Invalid(f"others have shape {others.shape}, expected ({expected[0]}, people, "
                               f"{skeleton.num_joints}, 3)")
            if others.dtype.kind not in "fiu":
                raise _Invalid(f"others have dtype {others.dtype}, expected floating point")
            others = others.astype(np.float32, copy=False)
            problem = keypoint_value_problem(others)
            if problem:
                raise _Invalid(f"others: {problem}")
    except _Invalid as err:
        raise DataError(path, f"cannot write detections: {err}") from None

    import h5py

    starts = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(np.int64)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["dataset"] = dataset_name
        f.attrs["detector"] = detector
        f.attrs["keypoint_format"] = skeleton.name
        f.create_dataset("keypoints", data=keypoints,
                         chunks=(min(CHUNK_FRAMES, len(keypoints)), *keypoints.shape[1:]))
        if others is not None:
            f.create_dataset("others", data=others, chunks=(min(CHUNK_FRAMES, len(others)), *others.shape[1:]))
        f.create_dataset("row_start", data=starts)
        f.create_dataset("row_frames", data=frames)
        f.create_dataset("sequence", data=sequence, dtype=h5py.string_dtype())
        f.create_dataset("camera", data=camera, dtype=h5py.string_dtype())


class Detections(LazyHDF5):
    """An opened, validated detection file; keypoints are read per row or loaded in full lazily.

    Attributes: ``path``, ``dataset``, ``detector``, ``keypoint_format`` (name), ``skeleton``,
    ``rows`` (DataFrame: sequence, camera, start, frames), ``num_others`` (P of the optional
    ``others``, 0 without). Use as a context manager or ``close()``.
    """

    def __init__(self, path: Path, *, dataset: str, detector: str, skeleton, rows: pd.DataFrame,
                 num_others: int = 0):
        self.path = path
        self.num_others = int(num_others)
        self.dataset = dataset
        self.detector = detector
        self.skeleton = skeleton
        self.keypoint_format = skeleton.name
        self.rows = rows
        self._lookup = {(s, c): (int(b), int(n)) for s, c, b, n in
                        zip(rows["sequence"], rows["camera"], rows["start"], rows["frames"])}
        self._keypoints = None

    def _read(self, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of the keypoints, their values checked as ``write_detections`` does
        (a file written by another tool or damaged must not reach a model)."""
        try:
            keypoints = np.asarray(self._h5()["keypoints"][start:stop], dtype=np.float32)
        except OSError as err:
            raise DataError(self.path, f"cannot read keypoints: {_short(err)}") from None
        problem = keypoint_value_problem(keypoints)
        if problem:
            raise DataError(self.path, problem)
        return keypoints

    @property
    def keypoints(self) -> np.ndarray:
        """(N, K, 3) float32: every row's keypoints, loaded once on first use."""
        if self._keypoints is None:
            self._keypoints = self._read()
        return self._keypoints

    def span(self, sequence: str, camera: str) -> tuple[int, int]:
        """(first frame in ``keypoints``, frame count) of one sequence x camera."""
        try:
            return self._lookup[(sequence, camera)]
        except KeyError:
            raise DataError(self.path, f"no detections for sequence {sequence!r}, camera {camera!r}") from None

    def frames(self, start: int, stop: int) -> np.ndarray:
        """(stop - start, K, 3) float32 keypoints of frames [start, stop) of ``keypoints``, read
        from the file unless it is loaded (one contiguous read: the file is chunked by time)."""
        if self._keypoints is not None:
            return self._keypoints[start:stop]
        return self._read(start, stop)

    def get(self, sequence: str, camera: str) -> np.ndarray:
        """(T, K, 3) float32 keypoints (x px, y px, confidence) of one sequence x camera."""
        start, frames = self.span(sequence, camera)
        return self.frames(start, start + frames)

    def others(self, sequence: str, camera: str) -> np.ndarray:
        """(T, P, K, 3) float32: the further people of one sequence x camera (P = ``num_others``,
        0 when the file has none)."""
        start, frames = self.span(sequence, camera)
        if not self.num_others:
            return np.zeros((frames, 0, self.skeleton.num_joints, 3), np.float32)
        try:
            others = np.asarray(self._h5()["others"][start:start + frames], dtype=np.float32)
        except OSError as err:
            raise DataError(self.path, f"cannot read others: {_short(err)}") from None
        problem = keypoint_value_problem(others)
        if problem:
            raise DataError(self.path, f"others: {problem}")
        return others

    def check_against(self, dataset) -> None:
        """Raise DataError unless every index row of ``dataset`` (a store.Dataset) has detections
        of the same length, and the file was made for that dataset."""
        if self.dataset != dataset.name:
            raise DataError(self.path, f"detections are for dataset {self.dataset!r}, not {dataset.name!r}")
        merged = dataset.index[["sequence", "camera", "frames"]].merge(
            self.rows[["sequence", "camera", "frames"]], on=["sequence", "camera"], how="left",
            suffixes=("", "_det"))
        bad = (merged["frames_det"].isna() | (merged["frames_det"] != merged["frames"])).to_numpy()
        if bad.any():
            r = merged.iloc[int(np.flatnonzero(bad)[0])]
            found = "none" if pd.isna(r["frames_det"]) else f"{int(r['frames_det'])} frames"
            raise DataError(self.path, f"sequence {r['sequence']!r}, camera {r['camera']!r}: dataset has "
                                       f"{int(r['frames'])} frames, detections {found}")

    def __repr__(self) -> str:
        return (f"Detections({self.detector!r} on {self.dataset!r}, {self.keypoint_format}, "
                f"{len(self.rows)} rows)")


def _attr(f, key: str) -> str:
    if key not in f.attrs:
        raise _Invalid(f"missing attribute {key!r}")
    value = f.attrs[key]
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(f, key: str, ndim: int):
    if key not in f or not hasattr(f[key], "shape"):
        raise _Invalid(f"missing field {key!r}")
    node = f[key]
    if node.ndim != ndim:
        raise _Invalid(f"{key} has shape {node.shape}, expected {ndim} dimension(s)")
    return node


def _strings(node) -> np.ndarray:
    if node.dtype.kind not in "OSU":
        raise _Invalid(f"{node.name.lstrip('/')} has dtype {node.dtype}, expected strings")
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in node[()]], dtype=object)


def read_detections(path: str | os.PathLike) -> Detections:
    """Open and validate a detection file (see the module docstring). Keypoints stay on disk.

    Raises ``DataError(path, problem)`` for a missing, corrupt or inconsistent file. Values
    (finite, confidence range) are checked when written, not on every read.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such detection file" if not path.exists() else "not a regular file")
    try:
        with h5py.File(path, "r") as f:
            if "format_version" in f.attrs and f.attrs["format_version"] != FORMAT_VERSION:
                raise _Invalid(f"format_version {f.attrs['format_version']} is not supported "
                               f"(expected {FORMAT_VERSION})")
            dataset, detector = _attr(f, "dataset"), _attr(f, "detector")
            skeleton = _keypoint_skeleton(_attr(f, "keypoint_format"))
            keypoints = _field(f, "keypoints", 3)
            if keypoints.shape[1:] != (skeleton.num_joints, 3):
                raise _Invalid(f"keypoints have shape {keypoints.shape}, expected "
                               f"(frames, {skeleton.num_joints}, 3) for {skeleton.name}")
            if keypoints.dtype != np.float32:
                raise _Invalid(f"keypoints have dtype {keypoints.dtype}, expected float32")
            starts = np.asarray(_field(f, "row_start", 1)[()])
            frames = np.asarray(_field(f, "row_frames", 1)[()])
            sequence, camera = _strings(_field(f, "sequence", 1)), _strings(_field(f, "camera", 1))
            if not (len(starts) == len(frames) == len(sequence) == len(camera)):
                raise _Invalid(f"per-row fields disagree in length (row_start {len(starts)}, row_frames "
                               f"{len(frames)}, sequence {len(sequence)}, camera {len(camera)})")
            if starts.dtype.kind not in "iu" or frames.dtype.kind not in "iu":
                raise _Invalid("row_start and row_frames must be integer")
            _check_rows(sequence, camera, frames)
            expected = np.concatenate([[0], np.cumsum(frames)[:-1]])
            if not np.array_equal(starts, expected) or frames.sum() != keypoints.shape[0]:
                raise _Invalid(f"rows do not tile the {keypoints.shape[0]} keypoint frames "
                               f"(row_start must be the running sum of row_frames)")
            num_others = 0
            if "others" in f:
                others = _field(f, "others", 4)
                if others.shape[0] != keypoints.shape[0] or others.shape[2:] != keypoints.shape[1:]:
                    raise _Invalid(f"others have shape {others.shape}, expected ({keypoints.shape[0]}, "
                                   f"people, {skeleton.num_joints}, 3)")
                if others.dtype != np.float32:
                    raise _Invalid(f"others have dtype {others.dtype}, expected float32")
                num_others = others.shape[1]
    except OSError as err:
        raise DataError(path, f"not a readable HDF5 file (truncated or corrupt?): {_short(err)}") from None
    except _Invalid as err:
        raise DataError(path, str(err)) from None
    rows = pd.DataFrame({"sequence": pd.Series(sequence, dtype=str), "camera": pd.Series(camera, dtype=str),
                         "start": starts.astype(np.int64), "frames": frames.astype(np.int64)})
    return Detections(path, dataset=dataset, detector=detector, skeleton=skeleton, rows=rows,
                      num_others=num_others)
