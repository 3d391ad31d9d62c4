"""MuPoTS-3D: the multi-person test set TS1-TS20 (``mpi_inf_3dhp_17`` joints, one camera each).

``TS<n>/annot.mat`` holds ``annotations``, a (frames x people) cell array of structs with fields
``annot2`` (2 x 17 px), ``annot3`` and ``univ_annot3`` (3 x 17, camera frame, mm) and
``isValidFrame``; ``TS<n>/occlusion.mat`` holds ``occlusion_labels``, a cell array of the same
shape of 1 x 17 logical per-joint occlusion flags. Each person of a sequence becomes one take
("TS<n>/<person>", split ``test``, group = the take); invalid frames are NaN. The camera frame is
the world (R = I, t = 0). MuPoTS ships no intrinsics: they are fitted per sequence to annot2 /
annot3 (pinhole, RMS reported), as other MuPoTS tools do. Image sizes: TS1-TS5 (studio)
2048 x 2048, TS6-TS20 (outdoor) 1920 x 1080. The dataset does not state its frame rate, so the
caller passes ``fps``. When occlusion.mat is present, the index gets a column
``occluded_fraction`` (share of occluded joints over the person's valid frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebridge.geometry.cameras import Camera
from posebridge.errors import ConfigError, DataError
from posebridge.sources.converters.common import (
    Converted,
    DatasetBuilder,
    fit_pinhole,
    keypoints_with_confidence,
    load_mat,
    require_vars,
)

SEQUENCES = tuple(f"TS{s}" for s in range(1, 21))
IMAGE_SIZE = {s: (2048, 2048) if k < 5 else (1920, 1080) for k, s in enumerate(SEQUENCES)}


def sequence_folder(source: Path, name: str) -> Path:
    direct = source / name
    return direct if direct.is_dir() else source / "MultiPersonTestSet" / name


def _struct_field(path: Path, cell, name: str, where: str) -> np.ndarray:
    """Field ``name`` of one annotation struct (scipy loads a 1 x 1 struct as a record array)."""
    try:
        value = np.asarray(cell[name]).reshape(-1)[0]
    except (KeyError, ValueError, IndexError, TypeError):
        raise DataError(path, f"{where} has no field {name!r}") from None
    value = np.asarray(value)
    if value.dtype.kind not in "fiub":
        raise DataError(path, f"{where}.{name} is not numeric")
    return value


def _read_annotations(path: Path, universal: bool):
    """-> joints (P, T, 17, 3) camera mm (as chosen), metric (P, T, 17, 3), 2D (P, T, 17, 2), valid (P, T)."""
    mat = load_mat(path, ("annotations",))
    require_vars(path, mat, ("annotations",))
    cells = mat["annotations"]
    if cells.dtype != object or cells.ndim != 2 or cells.size == 0:
        raise DataError(path, f"annotations is not a (frames x people) cell array (shape {cells.shape})")
    frames, people = cells.shape
    key = "univ_annot3" if universal else "annot3"
    joints = np.full((people, frames, 17, 3), np.nan)
    metric = np.full((people, frames, 17, 3), np.nan)
    xy = np.full((people, frames, 17, 2), np.nan)
    valid = np.zeros((people, frames), dtype=bool)
    for t in range(frames):
        for p in range(people):
            cell, where = cells[t, p], f"annotations{{{t + 1},{p + 1}}}"
            fields = {}
            for name, rows in (("annot2", 2), ("annot3", 3), (key, 3)):
                value = _struct_field(path, cell, name, where)
                if value.shape != (rows, 17):
                    raise DataError(path, f"{where}.{name} has shape {value.shape}, expected ({rows}, 17)")
                fields[name] = value.T
            valid[p, t] = bool(_struct_field(path, cell, "isValidFrame", where).reshape(-1)[0])
            xy[p, t], metric[p, t], joints[p, t] = fields["annot2"], fields["annot3"], fields[key]
    return joints, metric, xy, valid


def _occluded_fraction(path: Path, shape: tuple[int, int], valid: np.ndarray) -> np.ndarray | None:
    """Per person, the share of occluded joints over valid frames; None when occlusion.mat is absent."""
    if not path.is_file():
        return None
    mat = load_mat(path, ("occlusion_labels",))
    require_vars(path, mat, ("occlusion_labels",))
    cells = mat["occlusion_labels"]
    if cells.dtype != object or cells.shape != shape:
        raise DataError(path, f"occlusion_labels has shape {cells.shape}, annot.mat has {shape}")
    occluded = np.zeros((shape[1], shape[0], 17), dtype=bool)
    for (t, p), cell in np.ndenumerate(cells):
        flags = np.asarray(cell).reshape(-1)
        if flags.size != 17:
            raise DataError(path, f"occlusion_labels{{{t + 1},{p + 1}}} has {flags.size} flags, expected 17")
        occluded[p, t] = flags.astype(bool)
    counted = np.maximum(valid.sum(axis=1), 1) * 17
    return (occluded & valid[..., None]).sum(axis=(1, 2)) / counted


def convert(source: str | Path, fps: float | None = None, universal: bool = False) -> Converted:
    """Convert TS1-TS20 under ``source`` (or ``source/MultiPersonTestSet``); ``fps`` is required."""
    from posebridge.sources.download import require_source

    if fps is None or not fps > 0:
        raise ConfigError("MuPoTS-3D does not state its frame rate: pass it with --fps")
    source = Path(source)
    require_source("mupots", source)
    builder = DatasetBuilder("mpi_inf_3dhp_17")
    for name in SEQUENCES:
        folder = sequence_folder(source, name)
        path = folder / "annot.mat"
        joints, metric, xy, valid = _read_annotations(path, universal)
        if not valid.any():
            raise DataError(path, "no frame of any person is valid (isValidFrame)")
        intrinsics, rms = fit_pinhole(metric[valid], xy[valid], path, name)
        builder.notes.append(f"{name}: intrinsics fitted to annot2/annot3, RMS {rms:.3f} px")
        camera = builder.add_camera(Camera(name, intrinsics, None, np.eye(3), np.zeros(3), IMAGE_SIZE[name]))
        occluded = _occluded_fraction(folder / "occlusion.mat", (xy.shape[1], xy.shape[0]), valid)
        for p in range(len(joints)):
            mask = valid[p][:, None, None]
            extra = {} if occluded is None else {"occluded_fraction": float(occluded[p])}
            builder.add_take(sequence=f"{name}/{p + 1}", subject=f"{name}/{p + 1}", action=name, split="test",
                             fps=fps, joints=np.where(mask, joints[p], np.nan), cameras=[camera],
                             keypoints=[keypoints_with_confidence(np.where(mask, xy[p], np.nan))], **extra)
    return builder.finish("mpi_inf_3dhp_17", "gt")
