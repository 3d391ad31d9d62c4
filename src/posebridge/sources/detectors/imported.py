"""Imported 2D detections: files that other tools already wrote, in the public formats of the
VideoPose3D repository (github.com/facebookresearch/VideoPose3D, ``DATASETS.md`` and ``INFERENCE.md``).

Two formats:

- **VideoPose3D 2D files** (``data_2d_<dataset>_<detector>.npz``): ``positions_2d`` is a pickled
  dict ``[subject][action]`` -> list of ``(T, J, 2)`` pixel arrays, one per camera, and
  ``metadata`` a dict with ``layout_name`` (``coco``, ``h36m`` or ``humaneva15``), ``num_joints``
  and ``keypoints_symmetry``. These files hold no confidences: every keypoint gets 1. The
  ground-truth files VideoPose3D's ``prepare_data_*.py`` write (``data_2d_h36m_gt.npz``) carry no
  ``layout_name``: their layout is the one whose joint count and left/right lists (numpy integers
  there) the metadata gives, the dataset's own where that leaves a choice (:func:`videopose3d_layout`).
- **Detectron-style detections** of one video (VideoPose3D's ``infer_video.py`` /
  ``infer_video_d2.py``): per frame, ``boxes`` (K, 5) x0, y0, x1, y1, score and ``keypoints``
  (K, 4, 17) rows x, y, logit, prob (COCO-17), each either directly or as Detectron's per-class
  list whose entry 1 is the person class; optional ``metadata`` with ``w``, ``h``. The person with
  the highest box score is kept. Confidence: the sigmoid of the logit row; files whose logit row
  is all zero (the Detectron2 exporter puts its score in the prob row) use the prob row, through
  a sigmoid when it leaves [0, 1].

Both are pickled NumPy archives; they are read with ``posebridge.data.pickles`` (NumPy arrays and
builtin containers only), so a file carrying code is refused instead of run.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posebridge.data.pickles import read_npz
from posebridge.errors import DataError

# VideoPose3D metadata layout_name -> posebridge skeleton format
LAYOUTS = {"coco": "coco_17", "h36m": "h36m_17", "humaneva15": "humaneva_15"}
PERSON_CLASS = 1  # Detectron's class list: 0 is the background, 1 the person
MIN_CONFIDENCE = 1e-3


def _load_npz(path: Path, required: tuple[str, ...] = (), kind: str = "") -> dict:
    """The arrays of the .npz at ``path``; DataError when it is missing, unreadable or lacks one of
    the ``required`` keys (then it is not a ``kind`` file)."""
    data = _read_npz(path)
    missing = [k for k in required if k not in data]
    if missing:
        raise DataError(path, f"not a {kind} file: missing {', '.join(missing)} "
                              f"(found: {', '.join(sorted(data)) or 'none'})")
    return data


def _read_npz(path: Path) -> dict:
    if not path.is_file():
        from posebridge.sources.download import public_url

        url = public_url(path.name)
        raise DataError(path, ("no such detection file" if not path.exists() else "not a regular file")
                        + (f"; get it from {url} (public) and place it there" if url else ""))
    try:
        return read_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, TypeError, pickle.UnpicklingError) as err:
        raise DataError(path, f"not a readable .npz file (truncated or corrupt?): {err}") from None


def is_videopose3d_2d(path: str | os.PathLike) -> bool:
    """True when ``path`` is a VideoPose3D 2D file (has ``positions_2d``), False for Detectron-style."""
    return "positions_2d" in _load_npz(Path(path))


# ------------------------------------------------------------------------ VideoPose3D 2D files

@dataclass
class VideoPose3D2D:
    """A VideoPose3D 2D file: ``positions[subject][action]`` = list of (T, J, 3) float32 arrays
    (x px, y px, confidence 1), one per camera, in the ``keypoint_format`` skeleton."""

    path: Path
    keypoint_format: str
    positions: dict

    def get(self, subject: str, action: str, camera: int) -> np.ndarray:
        """(T, J, 3) keypoints of one subject, action and camera position; DataError if absent."""
        by_action = self.positions.get(subject)
        if by_action is None:
            raise DataError(self.path, f"no subject {subject!r} (subjects: {', '.join(sorted(self.positions))})")
        views = by_action.get(action)
        if views is None:
            raise DataError(self.path, f"subject {subject!r} has no action {action!r} "
                                       f"(actions: {', '.join(sorted(by_action))})")
        if not 0 <= camera < len(views):
            raise DataError(self.path, f"{subject} / {action} has {len(views)} camera(s), not camera {camera}")
        return views[camera]


def _symmetry(path: Path, metadata: dict):
    """The metadata's (sorted left, sorted right) joint lists, or None when it has none."""
    symmetry = metadata.get("keypoints_symmetry")
    if symmetry is None:
        return None
    try:
        left, right = (sorted(int(i) for i in side) for side in symmetry)
    except (TypeError, ValueError):
        raise DataError(path, f"metadata keypoints_symmetry is malformed: {symmetry!r}") from None
    return left, right


def videopose3d_layout(path: Path, metadata: dict | None, default: str | None = None, strict: bool = True) -> str:
    """The posebridge keypoint format of a VideoPose3D 2D file from its ``metadata``.

    ``layout_name`` when present (h36m -> h36m_17, coco -> coco_17, humaneva15 -> humaneva_15);
    without it (ground-truth files) the formats of :data:`LAYOUTS` with the metadata's
    ``num_joints`` and left/right ``keypoints_symmetry``, and of those ``default`` (the dataset's
    layout) where more than one fits. The joint count and symmetry must agree with the result;
    ``strict=False`` trusts a ``layout_name`` as it is (the arrays' shapes are checked later).
    """
    from posebridge.geometry import skeletons

    if metadata is None:
        raise DataError(path, "has no 'metadata' (num_joints, keypoints_symmetry, layout_name)")
    layout = metadata.get("layout_name")
    if layout is not None and layout not in LAYOUTS:
        raise DataError(path, f"2D layout {layout!r} has no posebridge keypoint format (metadata layout_name "
                              f"{layout!r} is not one of {', '.join(LAYOUTS)})")
    symmetry = _symmetry(path, metadata)
    joints = metadata.get("num_joints")

    def fits(fmt: str) -> bool:
        skeleton = skeletons.get(fmt)
        return ((joints is None or int(joints) == skeleton.num_joints)
                and (symmetry is None or symmetry == (sorted(skeleton.left), sorted(skeleton.right))))

    if layout is not None:
        fmt = LAYOUTS[layout]
        if not strict:
            return fmt
    else:
        candidates = [f for f in LAYOUTS.values() if fits(f)]
        fmt = candidates[0] if len(candidates) == 1 else default if default in candidates else None
        if fmt is None:
            raise DataError(path, f"metadata has no layout_name and its num_joints {joints!r} / keypoints_symmetry "
                                  f"fit {' and '.join(candidates) or 'none'} of {', '.join(LAYOUTS.values())}")
    skeleton = skeletons.get(fmt)
    if joints is not None and int(joints) != skeleton.num_joints:
        raise DataError(path, f"metadata num_joints {joints!r} does not match {fmt} ({skeleton.num_joints} joints)")
    if not fits(fmt):
        raise DataError(path, f"metadata keypoints_symmetry {metadata.get('keypoints_symmetry')!r} does not match "
                              f"{fmt}'s left/right joints {list(skeleton.left)} / {list(skeleton.right)}")
    return fmt


def read_videopose3d_2d(path: str | os.PathLike, default_format: str | None = None) -> VideoPose3D2D:
    """Read and validate a VideoPose3D 2D keypoint file (module docstring); ``default_format``: the
    dataset's own layout, for a file without ``layout_name`` that more than one layout fits."""
    path = Path(path)
    data = _load_npz(path, ("positions_2d", "metadata"), "VideoPose3D 2D")
    metadata, positions = data["metadata"].item(), data["positions_2d"].item()
    if not isinstance(metadata, dict) or not isinstance(positions, dict):
        raise DataError(path, "metadata and positions_2d must be pickled dicts")
    keypoint_format = videopose3d_layout(path, metadata, default_format, strict=False)
    from posebridge.geometry import skeletons

    joints = skeletons.get(keypoint_format).num_joints
    out: dict = {}
    for subject, by_action in positions.items():
        if not isinstance(by_action, dict):
            raise DataError(path, f"positions_2d[{subject!r}] must be a dict of actions")
        out[str(subject)] = {}
        for action, views in by_action.items():
            arrays = []
            for c, view in enumerate(views):
                view = np.asarray(view)
                where = f"positions_2d[{subject!r}][{action!r}][{c}]"
                if view.ndim != 3 or view.shape[1] != joints or view.shape[2] not in (2, 3):
                    raise DataError(path, f"{where} has shape {view.shape}, expected (frames, {joints}, 2) "
                                          f"for layout {keypoint_format}")
                if view.dtype.kind not in "fiu":
                    raise DataError(path, f"{where} has dtype {view.dtype}, expected numbers (pixels)")
                if not np.isfinite(view).all():
                    raise DataError(path, f"{where} holds NaN or inf")
                view = view.astype(np.float32)
                if view.shape[2] == 2:
                    view = np.concatenate([view, np.ones(view.shape[:2] + (1,), np.float32)], axis=2)
                arrays.append(view)
            out[str(subject)][str(action)] = arrays
    return VideoPose3D2D(path, keypoint_format, out)


# ------------------------------------------------------------------------ Detectron-style files

def _person_entry(entry):
    """A frame's person-class entry: Detectron's per-class list holds it at index 1."""
    if isinstance(entry, (list, tuple)) or (isinstance(entry, np.ndarray) and entry.dtype == object):
        return entry[PERSON_CLASS] if len(entry) > PERSON_CLASS else []
    return entry


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


@dataclass
class DetectronDetections:
    """One video's detections: ``keypoints`` (T, 17, 3) COCO-17 x px, y px, confidence (zeros
    where nobody was found), and the image size when the file's metadata gives it."""

    path: Path
    keypoints: np.ndarray
    width: int | None
    height: int | None
    keypoint_format: str = "coco_17"


def read_detectron(path: str | os.PathLike) -> DetectronDetections:
    """Read a Detectron-style detection file and keep the highest-scoring person of every frame."""
    path = Path(path)
    data = _load_npz(path, ("boxes", "keypoints"), "Detectron-style")
    boxes, keyps = data["boxes"], data["keypoints"]
    if len(boxes) != len(keyps):
        raise DataError(path, f"boxes cover {len(boxes)} frames but keypoints {len(keyps)}")
    if len(boxes) == 0:
        raise DataError(path, "holds no frames")
    frames = len(boxes)
    raw = np.zeros((frames, 4, 17), dtype=np.float64)
    found = np.zeros(frames, dtype=bool)
    for t in range(frames):  # ragged per-frame lists: no way around one step per frame here
        entry = _person_entry(boxes[t])
        if len(entry) == 0:
            continue
        frame_boxes = np.asarray(entry, dtype=np.float64).reshape(-1, 5)
        frame_keyps = np.asarray(_person_entry(keyps[t]), dtype=np.float64)
        if frame_keyps.shape != (len(frame_boxes), 4, 17):
            raise DataError(path, f"frame {t}: keypoints have shape {frame_keyps.shape}, expected "
                                  f"({len(frame_boxes)}, 4, 17) for its {len(frame_boxes)} box(es)")
        raw[t] = frame_keyps[int(np.argmax(frame_boxes[:, 4]))]
        found[t] = True
    if not np.isfinite(raw).all():
        raise DataError(path, "keypoints hold NaN or inf")
    logit, prob = raw[:, 2], raw[:, 3]
    if np.any(logit[found] != 0):
        confidence = _sigmoid(logit)
    elif np.all((prob[found] >= 0) & (prob[found] <= 1)):
        confidence = prob
    else:
        confidence = _sigmoid(prob)
    # confidence 0 means "not detected": a found person's keypoints keep at least MIN_CONFIDENCE
    confidence = np.where(found[:, None], np.clip(confidence, MIN_CONFIDENCE, 1.0), 0.0)
    keypoints = np.stack([raw[:, 0], raw[:, 1], confidence], axis=-1)
    width = height = None
    if "metadata" in data:
        meta = data["metadata"].item() if data["metadata"].dtype == object else None
        if isinstance(meta, dict) and "w" in meta and "h" in meta:
            width, height = int(meta["w"]), int(meta["h"])
    return DetectronDetections(path, keypoints.astype(np.float32), width, height)
