"""Real 2D detectors: MediaPipe Pose on videos / image folders, imported detection files,
ground-truth 2D (the dataset's 3D projected through its cameras, ``ground_truth.py``) and the 2D
keypoints a dataset's own files carry (``builtin.py``).

``get_detector(name, **settings)`` gives a per-video detector (``detect(source)`` -> (T, K, 3)
x px, y px, confidence; 0 = not detected). ``detect_dataset(name, dataset, spec, seed)`` runs one
over every index row (sequence x camera) of a converted dataset, for ``posebridge detect-2d``.
The simulated detector of the synthetic benchmark lives in ``posebridge.sources.detectors.simulated``.

Where a dataset's videos are: each index row's video (a file, or a folder of frame images) is
the row's ``video`` index column when the converter wrote one, else ``spec["videos"]``, a path
template formatted with the row's index fields and the dataset's name, e.g.
``data/h36m/videos/{subject}/Videos/{action}.{camera}.mp4``. Relative paths are taken from
``spec["root"]`` (default: the working directory). Imported detections are found the same way
through ``spec["file"]``.

Detector settings (``spec``, the JSON of ``config.detect.<name>``):

- ``mediapipe``: ``videos``, ``root``; ``static_image_mode`` (false), ``min_detection_confidence``
  (0.5), ``min_tracking_confidence`` (0.5), ``smooth_landmarks`` (true); ``main_track`` (true:
  keep only the main person's track, ``detectors.tracks``), ``max_gap`` (5: interpolate misses
  of up to this many frames), ``repair_sides`` (true: swap back frames whose left and right the
  detector mixed up, ``detectors.sides``); ``others`` (0: also record up to this many further
  people per frame, found by ``detectors.people``, for multi-view footage where a view's main
  person can be someone else than the one the other views see: ``posebridge triangulate`` looks
  among them; ``detect_others``).
- ``gt2d``: ``keypoint_format`` (``coco_17``): the projected joints' format, stored by the
  dataset (``extra/<format>``) or exactly mapped from its skeleton (``h36m_17`` for H36M).
- ``builtin``: no settings of its own (the workflow passes the dataset's ``source``, ``path`` and
  ``convert`` options): MPI-INF-3DHP's and MuPoTS's ground-truth 2D, 3DPW's OpenPose detections.
- ``imported``: ``file`` (template; a VideoPose3D 2D file or one Detectron-style file per row),
  ``root``; for VideoPose3D files ``subject`` and ``action`` (templates of the file's keys,
  default ``{source_subject}`` / ``{source_action}`` where the converter recorded the take's keys in
  the index (h36m, humaneva), else ``{subject}`` / ``{action}``) and ``cameras`` (camera names in the file's camera order;
  default: the order of the sequence's rows in the index); ``main_track`` (false), ``max_gap`` (0),
  ``repair_sides`` (false: imported detections stay as published, e.g. VideoPose3D's CPN files).

A detection longer than its index row (VideoPose3D's H36M 2D files run a few frames past the
motion capture) is cut to the row's length, as VideoPose3D does; a shorter one is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posebridge.errors import ConfigError, DataError
from posebridge.specs import check_keys
from posebridge.sources.detectors import sides, tracks

KEYPOINT_FORMAT = "coco_17"
DATASET_DETECTORS = ("mediapipe", "imported", "gt2d", "builtin")
KIND_KEY = "kind"  # a config entry may name its detector kind, so one kind can have many entries


# ---------------------------------------------------------------------------- per-video detectors

class MediaPipeDetector:
    """MediaPipe Pose over one video or image folder at a time (a fresh tracking state per call)."""

    name = "mediapipe"
    keypoint_format = KEYPOINT_FORMAT
    SETTINGS = ("static_image_mode", "min_detection_confidence", "min_tracking_confidence",
                "smooth_landmarks")

    def __init__(self, **settings):
        check_keys(settings, self.SETTINGS, "mediapipe detector")
        self.settings = settings

    def detect(self, source: str | os.PathLike, limit: int | None = None, progress: bool = False,
               frames=None) -> np.ndarray:
        """(T, 17, 3) float32 COCO-17 keypoints of a video file or image folder (first ``limit``
        frames). ``frames``: an iterable of RGB frames to use instead of reading ``source``."""
        from posebridge.data import video
        from posebridge.sources.detectors.mediapipe_pose import MediaPipePose

        if frames is None:
            frames = video.iter_frames(source, limit)
        if progress:
            from tqdm import tqdm

            info = video.probe(source)
            total = info.frames if limit is None else min(limit, info.frames or limit)
            frames = tqdm(frames, total=total or None, desc=f"mediapipe {Path(source).name}", unit="frame")
        with MediaPipePose(**self.settings) as pose:
            return pose.detect(frames)


class ImportedDetector:
    """Detectron-style detection files: ``detect(path)`` reads one video's detections."""

    name = "imported"
    keypoint_format = KEYPOINT_FORMAT

    def __init__(self, **settings):
        check_keys(settings, (), "imported detector")

    def detect(self, source: str | os.PathLike, limit: int | None = None, progress: bool = False) -> np.ndarray:
        from posebridge.sources.detectors.imported import read_detectron

        return read_detectron(source).keypoints[:limit]


DETECTORS = {"mediapipe": MediaPipeDetector, "imported": ImportedDetector}


def names() -> list[str]:
    return sorted(DETECTORS)


def get_detector(name: str, **settings):
    """A per-video detector by name (``mediapipe``, ``imported``), configured with ``settings``."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ConfigError(f"unknown 2D detector {name!r}; known: {', '.join(names())}") from None
    return cls(**settings)


def clean_track(keypoints: np.ndarray, *, main_track: bool = True, max_gap: int = 5,
                repair_sides: bool = True, keypoint_format: str = KEYPOINT_FORMAT) -> np.ndarray:
    """Keep the main person's track (``tracks.main_track``), swap back the frames whose left and
    right the detector mixed up (``sides.repair_sides``; before gap filling, which must not
    interpolate between a swapped and a correct frame) and fill misses of <= ``max_gap`` frames."""
    if main_track:
        keypoints = tracks.keep_frames(keypoints, tracks.main_track(keypoints, max_gap=max_gap))
    if repair_sides:
        keypoints = sides.repair_sides(keypoints, keypoint_format)
    return tracks.fill_gaps(keypoints, max_gap)


# ---------------------------------------------------------------------------- whole datasets

def kind_of(name: str, spec: dict | None) -> str:
    """The detector kind of a ``config.detect`` entry: its ``kind`` setting, else its name."""
    return str((spec or {}).get(KIND_KEY, name))


def handles(name: str, spec: dict | None = None) -> bool:
    """True when ``detect_dataset`` runs the detector of config entry ``name`` (``spec``)."""
    return kind_of(name, spec) in DATASET_DETECTORS


def _fields(row, dataset_name: str) -> dict:
    fields = {k: v for k, v in row.items()}
    fields["dataset"] = dataset_name
    return fields


def fill_template(template: str, row, dataset_name: str, what: str) -> str:
    """``template`` formatted with an index row's fields and ``dataset`` (ConfigError if it cannot be)."""
    try:
        return str(template).format(**_fields(row, dataset_name))
    except (KeyError, IndexError, ValueError, AttributeError) as err:
        known = ", ".join(["dataset", *map(str, row.keys())])
        raise ConfigError(f"detector setting {what}={template!r}: cannot fill it ({err!r}); "
                          f"fields: {known}") from None


def resolve_path(template: str, row, dataset_name: str, root: str | os.PathLike = ".", what: str = "videos") -> Path:
    """A path template filled from an index row (``fill_template``); relative paths from ``root``."""
    path = Path(fill_template(template, row, dataset_name, what))
    return path if path.is_absolute() else Path(root) / path


def _fit_length(keypoints: np.ndarray, frames: int, source, row) -> np.ndarray:
    if len(keypoints) < frames:
        raise DataError(source, f"has {len(keypoints)} frames but sequence {row['sequence']!r}, camera "
                                f"{row['camera']!r} has {frames}")
    return keypoints[:frames]


def _row_source(spec: dict, key: str, row, dataset, root) -> Path:
    if key in spec:
        return resolve_path(spec[key], row, dataset.name, root, what=key)
    if "video" in row and key == "videos":
        return resolve_path(str(row["video"]), row, dataset.name, root, what="index column video")
    raise ConfigError(f"dataset {dataset.name!r} has no 'video' index column; set the detector's "
                      f"'{key}' to a path template, e.g. 'data/{dataset.name}/{{sequence}}.{{camera}}.mp4'")


def _split_spec(spec: dict, known: tuple[str, ...], kind: str) -> dict:
    spec = {k: v for k, v in (spec or {}).items() if k != KIND_KEY}
    check_keys(spec, known, f"{kind} detector")
    return spec


MEDIAPIPE_DATASET_SETTINGS = ("videos", "root", "main_track", "max_gap", "repair_sides", "others",
                              *MediaPipeDetector.SETTINGS)


def _others_count(spec: dict) -> int:
    count = spec.get("others", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"mediapipe detector: others must be a whole number >= 0, got {count!r}")
    return count


def _detect_mediapipe(dataset, spec: dict, progress: bool) -> tuple[np.ndarray, str]:
    spec = _split_spec(spec, MEDIAPIPE_DATASET_SETTINGS, "mediapipe")
    _others_count(spec)
    detector = MediaPipeDetector(**{k: spec[k] for k in MediaPipeDetector.SETTINGS if k in spec})
    root = spec.get("root", ".")
    out = []
    rows = dataset.index
    iterator = rows.iterrows()
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(rows), desc=f"mediapipe {dataset.name}", unit="row")
    for _, row in iterator:
        source = _row_source(spec, "videos", row, dataset, root)
        frames = int(row["frames"])
        keypoints = _fit_length(detector.detect(source, limit=frames), frames, source, row)
        out.append(clean_track(keypoints, main_track=bool(spec.get("main_track", True)),
                               max_gap=int(spec.get("max_gap", 5)),
                               repair_sides=bool(spec.get("repair_sides", True))))
    return np.concatenate(out).astype(np.float32), KEYPOINT_FORMAT


def _detect_imported(dataset, spec: dict, progress: bool) -> tuple[np.ndarray, str]:
    from posebridge.sources.detectors.imported import (
        is_videopose3d_2d,
        read_detectron,
        read_videopose3d_2d,
    )

    spec = _split_spec(spec, ("file", "root", "subject", "action", "cameras", "main_track", "max_gap",
                              "repair_sides"),
                       "imported")
    if "file" not in spec:
        raise ConfigError("imported detector: set 'file' to the detection file (a path template: "
                          "a VideoPose3D 2D .npz, or one Detectron-style .npz per sequence x camera)")
    root = spec.get("root", ".")
    rows = dataset.index
    opened: dict[Path, object] = {}  # a VideoPose3D file serves many rows: read it once
    formats, out = set(), []
    for _, row in rows.iterrows():
        source = resolve_path(spec["file"], row, dataset.name, root, what="file")
        if source not in opened:
            opened[source] = (read_videopose3d_2d(source, _dataset_layout(dataset)) if is_videopose3d_2d(source)
                              else read_detectron(source))
        data = opened[source]
        if hasattr(data, "positions"):
            subject = fill_template(spec.get("subject", _default_key(rows, "subject")), row, dataset.name, "subject")
            action = fill_template(spec.get("action", _default_key(rows, "action")), row, dataset.name, "action")
            keypoints = data.get(subject, action, _camera_position(spec, rows, row, source))
        else:
            keypoints = data.keypoints
        formats.add(data.keypoint_format)
        keypoints = _fit_length(keypoints, int(row["frames"]), source, row)
        out.append(clean_track(keypoints, main_track=bool(spec.get("main_track", False)),
                               max_gap=int(spec.get("max_gap", 0)),
                               repair_sides=bool(spec.get("repair_sides", False)),
                               keypoint_format=data.keypoint_format))
    if len(formats) != 1:
        raise ConfigError(f"imported detections of dataset {dataset.name!r} mix keypoint formats "
                          f"{sorted(formats)}")
    return np.concatenate(out).astype(np.float32), formats.pop()


def _dataset_layout(dataset) -> str | None:
    """The VideoPose3D 2D layout a dataset's own files use (for files without ``layout_name``):
    Human3.6M's 17 joints for an h36m skeleton, HumanEva's 15 for a humaneva one."""
    family = dataset.skeleton.name.split("_")[0]
    return {"h36m": "h36m_17", "humaneva": "humaneva_15"}.get(family)


def _default_key(rows, field: str) -> str:
    """The template of a VideoPose3D file's key: the take's own key in the source files
    (``source_subject`` / ``source_action``, written by the h36m and humaneva converters) when
    the index has it, else the plain ``subject`` / ``action``."""
    return "{source_%s}" % field if f"source_{field}" in rows.columns else "{%s}" % field


def _camera_position(spec: dict, rows, row, source) -> int:
    """Index of the row's camera in a VideoPose3D file's per-action camera list."""
    if "cameras" in spec:
        order = [str(c) for c in spec["cameras"]]
        if str(row["camera"]) not in order:
            raise ConfigError(f"imported detector: camera {row['camera']!r} is not in 'cameras' {order}")
        return order.index(str(row["camera"]))
    same = rows.loc[rows["sequence"] == row["sequence"], "camera"].astype(str).tolist()
    return same.index(str(row["camera"]))


# HOG proposes people on every this many frames while the other people are recorded (following
# keeps them in between): 2.5x faster than every frame, the same 99 of 100 frames found in Pose2Sim
# Demo_MultiPerson's cam03
OTHERS_DISCOVER_EVERY = 10


def detect_others(name: str, dataset, spec: dict | None, keypoints: np.ndarray,
                  progress: bool = True) -> np.ndarray | None:
    """The further people of every index row (``others`` setting of a mediapipe entry; None when
    it is 0 or the detector is of another kind): (sum of frames, others, 17, 3) float32, every
    frame's people found by ``detectors.people.PeopleDetector`` other than its main person in
    ``keypoints`` (``detect_dataset``'s output, rows concatenated in index order)."""
    if kind_of(name, spec) != "mediapipe":
        return None
    spec = _split_spec(spec, MEDIAPIPE_DATASET_SETTINGS, "mediapipe")
    count = _others_count(spec)
    if count == 0:
        return None
    from posebridge.data import video
    from posebridge.sources.detectors.people import PeopleDetector, other_people

    root, out, start = spec.get("root", "."), [], 0
    iterator = dataset.index.iterrows()
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(dataset.index), desc=f"people {dataset.name}", unit="row")
    for _, row in iterator:
        source = _row_source(spec, "videos", row, dataset, root)
        frames = int(row["frames"])
        with PeopleDetector(max_people=count + 1, discover_every=OTHERS_DISCOVER_EVERY) as people:
            found = _fit_length(people.detect(video.iter_frames(source, frames)), frames, source, row)
        out.append(other_people(keypoints[start:start + frames], found, count))
        start += frames
    return np.concatenate(out)


def detect_dataset(name: str, dataset, spec: dict | None, seed: int = 0,
                   progress: bool = True) -> tuple[np.ndarray, str]:
    """2D keypoints of every index row of ``dataset`` (a ``store.Dataset``), rows concatenated.

    ``name`` is the ``config.detect`` entry (its ``kind`` setting, else the name itself, picks
    ``mediapipe``, ``imported``, ``gt2d`` or ``builtin``); ``spec`` its settings (module docstring). Returns
    ``(keypoints (sum of frames, K, 3) float32, keypoint format name)``, ready for
    ``detections.write_detections``. ``seed`` is accepted for a uniform signature: these
    detectors are deterministic.
    """
    del seed
    kind = kind_of(name, spec)
    if kind == "mediapipe":
        return _detect_mediapipe(dataset, spec or {}, progress)
    if kind == "imported":
        return _detect_imported(dataset, spec or {}, progress)
    if kind == "gt2d":
        from posebridge.sources.detectors.ground_truth import detect_ground_truth

        return detect_ground_truth(dataset, spec)
    if kind == "builtin":
        from posebridge.sources.detectors.builtin import detect_builtin

        return detect_builtin(dataset, spec)
    raise ConfigError(f"detect_dataset: unknown detector {name!r}; known: {', '.join(DATASET_DETECTORS)}")
