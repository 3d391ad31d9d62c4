"""One table of 2D frames for every training source (labeled, unlabeled video, multi-view).

Training reads *rows* (one sequence seen by one camera) of 2D detections as network input, the
frames of all rows concatenated into one flat array: row ``r`` owns frames
``[row_start[r], row_start[r] + row_frames[r])``. Rows come from *sources* (datasets, in the order
given), each source's rows one after the other. ``FrameTableBuilder`` reads rows into a table;
``FrameTable`` holds it with each row's camera, and answers what every consumer asks of it: the
mirrored frames (a horizontal flip is a choice of table), the input windows of sampled (row,
centre frame) pairs and a content digest (what a checkpoint must match to be resumed).

A table is *in memory* (``inputs`` holds every frame) or *read on demand* (``inputs`` None: the
builder with ``cache_mb`` keeps only the index, and a ``data.frame_reader.FrameReader`` reads and
encodes blocks of frames from the detection files when windows ask for them, within a bounded
cache). Both give the same windows and the same digest.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from posebridge.data.frame_reader import BLOCK_FRAMES, FrameReader, OpenFiles, row_segments
from posebridge.data.keypoints import InputCodec
from posebridge.data.windows import window_index
from posebridge.errors import DataError
from posebridge.geometry import skeletons
from posebridge.geometry.cameras import distortion_model_code

__all__ = ["FrameTable", "FrameTableBuilder", "check_detections", "mirror_points", "open_sources"]


@contextmanager
def open_sources(dataset_paths, detection_paths):
    """(``store.Dataset``, ``detections.Detections``) pairs of the files at the same positions,
    closed on exit; the caller checks that the lists pair up."""
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset

    opened = []
    try:
        for dataset_path, detection_path in zip(dataset_paths, detection_paths):
            opened.append(open_dataset(dataset_path))
            opened.append(read_detections(detection_path))
        yield list(zip(opened[::2], opened[1::2]))
    finally:
        for f in opened:
            f.close()


def check_detections(detections, dataset, keypoint_format: str) -> None:
    """Detections fit the lifter's input format and every row of ``dataset``; DataError otherwise."""
    if detections.keypoint_format != keypoint_format:
        raise DataError(detections.path, f"keypoints are {detections.keypoint_format}; the lifter "
                                         f"takes {keypoint_format}")
    detections.check_against(dataset)


def mirror_points(points: np.ndarray, mirror, width=None) -> np.ndarray:
    """Horizontal mirror of (N, J, C) points: swap left/right joints and negate channel 0 (or, with
    ``width`` (N,), replace pixel x by width - x)."""
    out = points[:, list(mirror)].copy()
    out[..., 0] = -out[..., 0] if width is None else width[:, None] - out[..., 0]
    return out


@dataclass(kw_only=True)
class FrameTable:
    """Rows of 2D network input from several sources, frames concatenated.

    Attributes:
        names: the source datasets' names, one per source (a labeled set's groups).
        keypoint_format: the skeleton format of the input keypoints.
        inputs: (N, K, F) float32 network input of every frame, encoded by ``codec``
            (``data.keypoints.InputCodec``); None when read on demand by ``reader``.
        group_start: (G,) first flat frame of each source in ``inputs``.
        row_group, row_start, row_frames: (R,) per row: source, first flat frame, frame count.
        row_intrinsics (R, 4) px, row_distortion (R, 5), row_size (R, 2) width, height px: each
            row's camera; row_distortion_model (R,) int64 its distortion model's code
            (``geometry.cameras.DISTORTION_MODELS``), None = all opencv (hand-built tables).
        row_sequence, row_camera: (R,) names, for messages.
        row_up: (R, 3) the world's up direction in each row's camera frame (``R @ (0, 0, 1)``);
            None when unknown (hand-built tables).
        codec: how ``inputs`` were encoded (default: screen + raw confidence).
        confidence: (N, K) float32 the detector's confidence of every keypoint (0: missed),
            whatever the codec feeds the network; None in hand-built tables (then read from
            ``inputs``, see ``keypoint_confidence``) and in tables read on demand (whose reader
            may hold it: ``gather_confidence``).
        reader: the ``FrameReader`` of a table read on demand (its field ``inputs``, and
            ``confidence`` where the builder kept it); else None.
    """

    names: list[str]
    keypoint_format: str
    inputs: np.ndarray
    group_start: np.ndarray
    row_group: np.ndarray
    row_start: np.ndarray
    row_frames: np.ndarray
    row_intrinsics: np.ndarray
    row_distortion: np.ndarray
    row_size: np.ndarray
    row_sequence: np.ndarray
    row_camera: np.ndarray
    row_up: np.ndarray | None = None
    row_distortion_model: np.ndarray | None = None
    codec: InputCodec = field(default_factory=InputCodec)
    confidence: np.ndarray | None = None
    reader: FrameReader | None = None

    @property
    def num_frames(self) -> int:
        return len(self.inputs) if self.inputs is not None else int(self.row_frames.sum())

    @property
    def num_keypoints(self) -> int:
        """K, the keypoints of a frame's input."""
        return skeletons.get(self.keypoint_format).num_joints

    @property
    def in_memory(self) -> bool:
        """Whether ``inputs`` holds every frame (else ``reader`` reads them on demand)."""
        return self.inputs is not None

    @property
    def num_rows(self) -> int:
        return len(self.row_frames)

    def distortion_codes(self) -> np.ndarray:
        """(R,) int64 every row's distortion model code (0 = opencv where the table has none)."""
        if self.row_distortion_model is None:
            return np.zeros(self.num_rows, dtype=np.int64)
        return np.asarray(self.row_distortion_model, dtype=np.int64)

    def frames_per_group(self) -> list[np.ndarray]:
        """Per source, the frame counts of its rows."""
        return [self.row_frames[self.row_group == g] for g in range(len(self.names))]

    def frame_rows(self) -> np.ndarray:
        """(N,) the row of every flat frame."""
        return np.repeat(np.arange(self.num_rows), self.row_frames)

    def locate(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat frame indices (B,) -> (row (B,), frame within the row (B,)); rows must be
        contiguous in row order (as the builder makes them)."""
        cum = np.concatenate([[0], np.cumsum(self.row_frames)])
        rows = np.searchsorted(cum, flat, side="right") - 1
        return rows, flat - cum[rows]

    def keypoint_confidence(self) -> np.ndarray:
        """(N, K) the detector's confidence of every keypoint (a table without the column: the
        input's raw confidence feature)."""
        if self.confidence is not None:
            return self.confidence
        self._require_memory("the keypoint confidence")
        if self.codec.confidence != "raw":
            raise ValueError(f"a table encoded with {self.codec} needs its confidence column")
        return self.inputs[..., 2]

    def gather_confidence(self, index: np.ndarray) -> np.ndarray:
        """(..., K) the detector's confidence (``keypoint_confidence``) of the flat frames ``index``
        (any int array), or, for indices N..2N-1, of the mirrored frames (left and right keypoints
        swapped; the index space of ``mirrored_inputs``). A table read on demand needs the
        reader's ``confidence`` field (``FrameTableBuilder.columns(confidence=True)``)."""
        if not self.in_memory and "confidence" not in self.reader.fields:
            raise ValueError("this table read on demand was built without its keypoint confidence")
        mirror = list(skeletons.get(self.keypoint_format).mirror)
        return self._gather_mirrored(index, "confidence", self.keypoint_confidence if self.in_memory else None,
                                     lambda values: values[:, mirror])

    def mirrored_inputs(self) -> np.ndarray:
        """(2N, K, F): every frame as is, then horizontally mirrored (left/right keypoints
        swapped, x negated, as ``SeparateHeadLifter.flip_input``)."""
        self._require_memory("the mirrored inputs")
        mirror = skeletons.get(self.keypoint_format).mirror
        return np.concatenate([self.inputs, mirror_points(self.inputs, mirror)])

    def _require_memory(self, what: str) -> None:
        if not self.in_memory:
            raise ValueError(f"{what} of every frame need a table in memory; this one is read on demand")

    def gather(self, index: np.ndarray) -> np.ndarray:
        """(..., K, F) inputs of the flat frames ``index`` (any int array), or, for indices
        N..2N-1, the mirrored frames (the index space of ``mirrored_inputs``)."""
        mirror = skeletons.get(self.keypoint_format).mirror
        return self._gather_mirrored(index, "inputs", (lambda: self.inputs) if self.in_memory else None,
                                     lambda values: mirror_points(values, mirror))

    def _gather_mirrored(self, index: np.ndarray, field: str, column, mirrored) -> np.ndarray:
        """Values of ``field`` for the flat frames ``index``, indices N..2N-1 being the mirrored
        frames: read from ``column()`` (the whole in-memory array) or, when None, from the reader,
        and ``mirrored(values)`` where flipped."""
        index = np.asarray(index, np.int64)
        flip = index >= self.num_frames
        flat = index - self.num_frames * flip
        values = column()[flat] if column is not None else self.reader.read(flat, [field])[field]
        if flip.any():
            values[flip] = mirrored(values[flip])
        return values

    def window_index(self, rows, centres, before: int, after: int, flip=None) -> np.ndarray:
        """(B, before + 1 + after) indices of the windows around ``centres`` (B,) of ``rows``
        (B,), edge frames repeated (``windows.window_index``): into ``inputs``, or, with ``flip``
        (B,) bool, into ``mirrored_inputs()`` (mirrored frames where True)."""
        index = window_index(self.row_start, self.row_frames, rows, centres, before, after)
        if flip is not None:
            index += self.num_frames * np.asarray(flip, bool)[:, None]
        return index

    def windows(self, rows, centres, before: int, after: int) -> np.ndarray:
        """(B, before + 1 + after, K, F) input windows (not mirrored)."""
        return self.gather(self.window_index(rows, centres, before, after))

    def digest(self, *extra) -> str:
        """sha256 of the inputs, the row structure, the cameras and ``extra`` (arrays, or
        iterables of array blocks: streamed): a regenerated dataset of the same size must not
        resume a stale run. A table read on demand streams its inputs block by block (the same
        bytes, so the same digest as in memory)."""
        digest = hashlib.sha256()
        inputs = [self.inputs] if self.in_memory else (b["inputs"] for _, b in self.reader.blocks(["inputs"]))
        # the model codes count only where some lens is not opencv (older digests stay valid)
        models = (self.distortion_codes(),) if self.distortion_codes().any() else ()
        for part in (inputs, self.row_start, self.row_frames, self.row_intrinsics, self.row_distortion,
                     *models, self.row_size, *extra):
            for array in ([part] if isinstance(part, np.ndarray) else part):
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


class RowInputs:
    """The network input of a table read on demand: flat frames [start, stop) read from each
    row's detection file and encoded with its camera, by the same code as an in-memory table.

    rows: per row (``Detections``, first frame in the file, ``Camera``); row_start, row_frames: the
    table's (R,) columns; files: the ``OpenFiles`` that bounds the detection files kept open.
    """

    def __init__(self, codec: InputCodec, rows: list, row_start: np.ndarray, row_frames: np.ndarray,
                 files: OpenFiles):
        self.codec = codec
        self.rows = rows
        self.row_start = row_start
        self.row_frames = row_frames
        self.files = files

    def __call__(self, start: int, stop: int, names=("inputs",)) -> dict[str, np.ndarray]:
        """name -> values of the fields ``names``: ``inputs`` (stop - start, K, F) float32
        network input, ``confidence`` (stop - start, K) float32 the detector's confidence (as an
        in-memory table's column), both from one read of the keypoints."""
        parts = {name: [] for name in names}
        for row, first, end in row_segments(self.row_start, self.row_frames, start, stop):
            detections, offset, camera = self.rows[row]
            keypoints = self.files.use(detections).frames(offset + first, offset + end)
            if "inputs" in parts:
                parts["inputs"].append(_encode(self.codec, keypoints, camera))
            if "confidence" in parts:
                parts["confidence"].append(np.asarray(keypoints[..., 2], np.float32))
        return {name: np.concatenate(values) for name, values in parts.items()}


def _encode(codec: InputCodec, keypoints: np.ndarray, camera) -> np.ndarray:
    """(T, K, F) network input of one row's (T, K, 3) keypoints seen by ``camera``."""
    width, height = camera.image_size
    return codec.encode(keypoints, width, height, camera.intrinsics, camera.distortion, camera.distortion_model)


class FrameTableBuilder:
    """Reads index rows of datasets into the columns of a ``FrameTable``.

    ``add_source`` starts a source (checks its detections), ``add_row`` reads one row's 2D and
    returns its camera (for what a caller keeps besides, e.g. 3D targets), ``columns`` gives the
    ``FrameTable`` fields. ``codec`` encodes the keypoints (default: screen + raw confidence).
    ``cache_mb``: None reads every row's 2D now (a table in memory); a size in MiB records where
    each row's 2D lies and gives a table read on demand through a cache of that size, in blocks
    of ``block_frames``, its loaders keeping at most ``OPEN_FILES`` files open (``files``, which
    a subclass's loader shares).
    """

    def __init__(self, keypoint_format: str, codec: InputCodec | None = None, cache_mb: float | None = None,
                 block_frames: int = BLOCK_FRAMES):
        self.keypoint_format = skeletons.get(keypoint_format).name
        self.codec = codec or InputCodec()
        self.cache_mb = cache_mb
        self.block_frames = block_frames
        self.names: list[str] = []
        self.group_start: list[int] = []
        self.inputs: list[np.ndarray] = []
        self.confidence: list[np.ndarray] = []
        self.on_disk: list[tuple] = []  # per row of a table read on demand: (detections, offset, camera)
        self.files = OpenFiles()
        self.rows = {k: [] for k in ("group", "start", "frames", "intrinsics", "distortion", "model", "size",
                                     "sequence", "camera", "up")}
        self.offset = 0
        self.detections = None

    @property
    def num_rows(self) -> int:
        """Rows added so far (the index the next row gets)."""
        return len(self.rows["start"])

    def add_source(self, dataset, detections) -> int:
        """Start the rows of ``dataset`` with ``detections`` (checked against it); its index."""
        check_detections(detections, dataset, self.keypoint_format)
        self.names.append(dataset.name)
        self.group_start.append(self.offset)
        self.detections = detections
        return len(self.names) - 1

    def add_row(self, dataset, row, frames: int | None = None):
        """Append an index row of the current source (its first ``frames`` frames; None: all);
        returns its ``Camera``."""
        camera = dataset.camera_for(row)
        offset, count = self.detections.span(row["sequence"], row["camera"])
        count = count if frames is None else min(count, frames)
        if self.cache_mb is None:
            self.detections.keypoints  # load the whole file once (on a source's first row); get() slices it
            keypoints = self.detections.get(row["sequence"], row["camera"])[:count]
            self.inputs.append(_encode(self.codec, keypoints, camera))
            self.confidence.append(np.asarray(keypoints[..., 2], np.float32))
        else:
            self.on_disk.append((self.detections, offset, camera))
        width, height = camera.image_size
        values = {"group": len(self.names) - 1, "start": self.offset, "frames": count,
                  "intrinsics": camera.intrinsics, "distortion": camera.distortion,
                  "model": distortion_model_code(camera.distortion_model), "size": (width, height),
                  "sequence": str(row["sequence"]), "camera": str(row["camera"]),
                  "up": camera.R @ np.array([0.0, 0.0, 1.0])}  # the world is Z-up
        for key, value in values.items():
            self.rows[key].append(value)
        self.offset += count
        return camera

    def columns(self, fields: dict | None = None, load=None, confidence: bool = False) -> dict:
        """The ``FrameTable`` fields of the rows read so far. A table read on demand gets its
        ``reader``, which reads the field ``inputs``, with ``confidence`` the detector's
        confidence too (``FrameTable.gather_confidence``), and, with ``fields`` (name -> ``Field``
        or ``RaggedField``) and ``load(start, stop, names)``, a subclass's per-frame arrays."""
        K = skeletons.get(self.keypoint_format).num_joints
        rows = self.rows
        columns = dict(
            names=list(self.names), keypoint_format=self.keypoint_format, codec=self.codec,
            group_start=np.asarray(self.group_start, dtype=np.int64),
            row_group=np.asarray(rows["group"], dtype=np.int64),
            row_start=np.asarray(rows["start"], dtype=np.int64),
            row_frames=np.asarray(rows["frames"], dtype=np.int64),
            row_intrinsics=np.asarray(rows["intrinsics"], dtype=np.float64).reshape(-1, 4),
            row_distortion=np.asarray(rows["distortion"], dtype=np.float64).reshape(-1, 5),
            row_distortion_model=np.asarray(rows["model"], dtype=np.int64),
            row_size=np.asarray(rows["size"], dtype=np.float64).reshape(-1, 2),
            row_sequence=np.asarray(rows["sequence"], dtype=object),
            row_camera=np.asarray(rows["camera"], dtype=object),
            row_up=np.asarray(rows["up"], dtype=np.float64).reshape(-1, 3))
        if self.cache_mb is None:
            empty = np.zeros((0, K, self.codec.in_features), np.float32)
            columns["inputs"] = np.concatenate(self.inputs) if self.inputs else empty
            columns["confidence"] = np.concatenate(self.confidence) if self.confidence else np.zeros((0, K), np.float32)
            return columns
        inputs = RowInputs(self.codec, list(self.on_disk), columns["row_start"], columns["row_frames"], self.files)

        own = {"inputs": ((K, self.codec.in_features), np.float32, 0.0)}
        if confidence:
            own["confidence"] = ((K,), np.float32, 0.0)

        def load_all(start, stop, names):
            out = load(start, stop, [n for n in names if n not in own]) if load is not None else {}
            mine = [n for n in names if n in own]
            return {**out, **inputs(start, stop, mine)} if mine else out

        fields = {**own, **(fields or {})}
        columns["reader"] = FrameReader(self.offset, fields, load_all, self.cache_mb, self.block_frames)
        columns["inputs"] = None
        return columns
