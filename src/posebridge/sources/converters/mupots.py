"""MuPoTS-3D: the multi-person test set TS1-TS20 (``mpi_inf_3dhp_17`` joints, one camera each).

``TS<n>/annot.mat`` holds ``annotations``, a (frames x people) cell array of structs with fields
``annot2`` (2 x 17 px), ``annot3`` and ``univ_annot3`` (3 x 17, camera frame, mm) and
``isValidFrame``; ``TS<n>/occlusion.mat`` holds ``occlusion_labels``, a cell array of the same
shape of 1 x 17 logical per-joint occlusion flags. Each person of a sequence becomes one take
("TS<n>/<person>", split ``test``, group = the take); invalid frames are NaN.

World: the annotations are in camera coordinates and MuPoTS gives no gravity, so each sequence is
levelled with the up direction estimated from all its people (``common.estimate_up``: the plane
their feet touch, else their mean body axis): joints are stored as ``G X_cam`` (Z up) and the
camera is ``R = G^T, t = 0``, so it sees exactly the annotated camera-frame joints. MuPoTS ships no
intrinsics: they are fitted per sequence to annot2 / annot3 (pinhole, RMS reported), as other
MuPoTS tools do. Image sizes and frame rates: TS1-TS5 (studio) 2048 x 2048 at 30 fps, TS6-TS20
(outdoor) 1920 x 1080 at 60 fps (Mehta et al., 3DV 2018); ``fps`` overrides them all. When
occlusion.mat is present, the per-joint flags are stored (annotation ``occluded``: 1 occluded, 0
visible, -1 on invalid frames) and the index gets a column ``occluded_fraction`` (share of
occluded joints over the person's valid frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebridge.geometry.cameras import Camera
from posebridge.errors import ConfigError, DataError
from posebridge.sources.converters.common import (
    Converted,
    DatasetBuilder,
    available_parts,
    fit_pinhole,
    level_camera_frame,
    keypoints_with_confidence,
    load_mat,
    require_vars,
)

SEQUENCES = tuple(f"TS{s}" for s in range(1, 21))
IMAGE_SIZE = {s: (2048, 2048) if k < 5 else (1920, 1080) for k, s in enumerate(SEQUENCES)}
FPS = {s: 30.0 if k < 5 else 60.0 for k, s in enumerate(SEQUENCES)}  # studio 30, outdoor 60


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


def _occlusion(path: Path, shape: tuple[int, int], valid: np.ndarray) -> np.ndarray | None:
    """(P, T, 17) int8 per-joint flags (1 occluded, 0 visible, -1 invalid frame); None when
    occlusion.mat is absent."""
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
    return np.where(valid[..., None], occluded.astype(np.int8), np.int8(-1))


def _convert_sequence(builder: DatasetBuilder, folder: Path, name: str, fps: float, universal: bool) -> None:
    path = folder / "annot.mat"
    joints, metric, xy, valid = _read_annotations(path, universal)
    if not valid.any():
        raise DataError(path, "no frame of any person is valid (isValidFrame)")
    intrinsics, rms = fit_pinhole(metric[valid], xy[valid], path, name)
    level, how = level_camera_frame(joints[valid], "mpi_inf_3dhp_17")
    builder.notes.append(f"{name}: intrinsics fitted to annot2/annot3, RMS {rms:.3f} px; up from the {how}")
    camera = builder.add_camera(Camera(name, intrinsics, None, level.T, np.zeros(3), IMAGE_SIZE[name]))
    occlusion = _occlusion(folder / "occlusion.mat", (xy.shape[1], xy.shape[0]), valid)
    for p in range(len(joints)):
        mask = valid[p][:, None, None]
        extra, annotations = {}, {}
        if occlusion is not None:
            counted = max(int(valid[p].sum()), 1) * 17
            extra["occluded_fraction"] = float((occlusion[p] == 1).sum() / counted)
            annotations["occluded"] = occlusion[p]
        builder.add_take(sequence=f"{name}/{p + 1}", subject=f"{name}/{p + 1}", action=name, split="test",
                         fps=fps or FPS[name], joints=np.where(mask, joints[p], np.nan) @ level.T,
                         cameras=[camera], keypoints=[keypoints_with_confidence(np.where(mask, xy[p], np.nan))],
                         annotations=annotations, **extra)


def convert(source: str | Path, fps: float | None = None, universal: bool = False,
            strict: bool = False) -> Converted:
    """Convert the sequences TS1-TS20 found under ``source`` (or ``source/MultiPersonTestSet``);
    ``fps`` overrides the per-sequence frame rates; ``strict`` refuses a folder lacking any."""
    if fps is not None and not fps > 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    source = Path(source)
    builder = DatasetBuilder("mpi_inf_3dhp_17")
    present = {name: (sequence_folder(source, name) / "annot.mat").is_file() for name in SEQUENCES}
    for name in available_parts("mupots", source, present, strict, builder):
        _convert_sequence(builder, sequence_folder(source, name), name, fps, universal)
    return builder.finish("mpi_inf_3dhp_17", "gt")
