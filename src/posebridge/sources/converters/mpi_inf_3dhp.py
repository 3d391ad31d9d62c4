"""MPI-INF-3DHP: the training set (S1-S8, 28 joints, 14 cameras) and the test set (TS1-TS6, 17 joints).

Training: ``S<s>/Seq<q>/annot.mat`` holds per camera (cell arrays, 14 x 1) ``annot2`` (T x 56 px),
``annot3`` and ``univ_annot3`` (T x 84, joints in that camera's frame, mm), plus ``cameras`` (the
camera ids) and ``frames``; ``camera.calibration`` (the "Skeletool Camera Calibration File V1.0"
text format) gives each camera's 4 x 4 intrinsic and world -> camera extrinsic matrices (mm) and
image size. The world joints are recovered from every camera's annotation
(``R^T (X_cam - t)``, averaged) and checked for agreement; the studio's world is y-up, so world
and cameras are turned to the store's Z-up (``common.Y_UP_TO_Z_UP``).
Frame rates per sequence are those of the dataset's ``mpii_get_sequence_info`` (25 or 50 fps).

Test: ``TS<n>/annot_data.mat`` (MATLAB v7.3; v5 is read too) with ``annot2`` (2 x 17 x 1 x T),
``annot3`` / ``univ_annot3`` (3 x 17 x 1 x T, camera frame, mm), ``valid_frame`` and (read when
present) ``activity_annotation`` (1 x T, codes 1-7 of ``store.ACTIVITY_NAMES``, stored as the
annotation ``activity`` for the per-activity evaluation). The annotations are in camera
coordinates without gravity, so each sequence is levelled with the up direction estimated from
its poses (``common.estimate_up``: the plane the feet touch, else the mean body axis): joints are
stored as ``G X_cam`` and the camera is ``R = G^T, t = 0``. Invalid frames are NaN. The test set
ships no intrinsics: they are fitted to annot2 / annot3 per sequence (pinhole, RMS residual
reported).

A folder holding only some subjects / sequences converts those and names the missing ones in a
note (``strict`` refuses it instead).

``universal=True`` uses ``univ_annot3`` (scaled to the universal skeleton height, what the
official test evaluation scores) instead of the metric ``annot3``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebridge.geometry import skeletons
from posebridge.geometry.cameras import Camera
from posebridge.errors import ConfigError, DataError
from posebridge.sources.converters.common import (
    Y_UP_TO_Z_UP,
    Converted,
    DatasetBuilder,
    available_parts,
    fit_pinhole,
    level_camera_frame,
    keypoints_with_confidence,
    load_mat,
    reading,
    require_vars,
    rotate_world,
)

TRAIN_SUBJECTS = tuple(f"S{s}" for s in range(1, 9))
TRAIN_SEQUENCES = ("Seq1", "Seq2")
TEST_SEQUENCES = tuple(f"TS{s}" for s in range(1, 7))
PARTS = ("train", "test", "all")
# frame rate of each training sequence (the dataset's mpii_get_sequence_info)
TRAIN_FPS = {("S1", "Seq1"): 25, ("S1", "Seq2"): 50, ("S2", "Seq1"): 25, ("S2", "Seq2"): 25,
             ("S3", "Seq1"): 50, ("S3", "Seq2"): 50, ("S4", "Seq1"): 25, ("S4", "Seq2"): 25,
             ("S5", "Seq1"): 50, ("S5", "Seq2"): 50, ("S6", "Seq1"): 25, ("S6", "Seq2"): 25,
             ("S7", "Seq1"): 25, ("S7", "Seq2"): 25, ("S8", "Seq1"): 25, ("S8", "Seq2"): 25}
# test set: green-screen studio TS1-TS4 (2048 x 2048, 25 fps), outdoor TS5-TS6 (1920 x 1080, 50 fps)
TEST_IMAGE_SIZE = {**{s: (2048, 2048) for s in TEST_SEQUENCES[:4]}, "TS5": (1920, 1080), "TS6": (1920, 1080)}
TEST_FPS = {**{s: 25 for s in TEST_SEQUENCES[:4]}, "TS5": 50, "TS6": 50}
MAX_CAMERA_DISAGREEMENT_MM = 50.0  # world joints recovered from different cameras must agree this well
CALIBRATION_HEADER = "Skeletool Camera Calibration File V1.0"


# ---------------------------------------------------------------------------------------------
# Training set


def read_calibration(path: Path) -> dict[str, dict]:
    """Parse a ``camera.calibration`` file: camera name -> {size, intrinsic (4, 4), extrinsic (4, 4),
    radial}."""
    with reading(path, "camera calibration"):
        lines = path.read_text().splitlines()
    if not lines or lines[0].strip() != CALIBRATION_HEADER:
        raise DataError(path, f"not a camera calibration file (first line must be {CALIBRATION_HEADER!r})")
    cameras, current = {}, None
    sizes = {"sensor": 2, "size": 2, "animated": 1, "intrinsic": 16, "extrinsic": 16, "radial": 1}
    for number, line in enumerate(lines[1:], start=2):
        words = line.split()
        if not words:
            continue
        key, values = words[0], words[1:]
        if key == "name":
            if len(values) != 1:
                raise DataError(path, f"line {number}: 'name' needs one value")
            current = cameras.setdefault(values[0], {})
            continue
        if current is None or key not in sizes:
            raise DataError(path, f"line {number}: unexpected {key!r}")
        try:
            numbers = np.array([float(v) for v in values])
        except ValueError:
            raise DataError(path, f"line {number}: {key} values are not numbers") from None
        if len(numbers) != sizes[key]:
            raise DataError(path, f"line {number}: {key} has {len(numbers)} values, expected {sizes[key]}")
        current[key] = numbers.reshape(4, 4) if sizes[key] == 16 else numbers
    for name, camera in cameras.items():
        missing = [k for k in ("size", "intrinsic", "extrinsic") if k not in camera]
        if missing:
            raise DataError(path, f"camera {name}: no {', '.join(missing)}")
        if camera.get("radial", np.zeros(1))[0] != 0:
            raise DataError(path, f"camera {name}: radial distortion {camera['radial'][0]} is not supported")
    if not cameras:
        raise DataError(path, "lists no cameras")
    return cameras


def _camera(path: Path, name: str, calibration: dict) -> Camera:
    K, E = calibration["intrinsic"], calibration["extrinsic"]
    try:
        return Camera(name, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), None, E[:3, :3], E[:3, 3],
                      tuple(int(v) for v in calibration["size"]))
    except ConfigError as err:
        raise DataError(path, str(err)) from None


def _cells(path: Path, mat: dict, name: str, count: int, columns: int) -> list[np.ndarray]:
    """A (count x 1) cell array of (T, columns) matrices as a list of float arrays."""
    cells = mat[name]
    if cells.dtype != object or cells.size != count:
        raise DataError(path, f"{name} is not a cell array of {count} cameras (shape {cells.shape})")
    out = []
    for k, cell in enumerate(cells.reshape(-1)):
        if not isinstance(cell, np.ndarray) or cell.dtype.kind not in "fiu" or cell.ndim != 2 \
                or cell.shape[1] != columns:
            shape = getattr(cell, "shape", None)
            raise DataError(path, f"{name}{{{k + 1}}} has shape {shape}, expected (T, {columns})")
        out.append(cell.astype(np.float64))
    if len({len(c) for c in out}) != 1:
        raise DataError(path, f"the cameras of {name} have different frame counts")
    return out


def _train_sequence(folder: Path, subject: str, sequence: str, universal: bool):
    """-> (world joints (T, 28, 3), cameras, per-camera 2D (T, 28, 2), largest camera disagreement)."""
    annot_path, calibration_path = folder / "annot.mat", folder / "camera.calibration"
    key = "univ_annot3" if universal else "annot3"
    mat = load_mat(annot_path, ("annot2", key, "cameras"))
    require_vars(annot_path, mat, ("annot2", key, "cameras"))
    ids = [str(int(v)) for v in np.asarray(mat["cameras"]).reshape(-1)]
    annot3 = _cells(annot_path, mat, key, len(ids), 28 * 3)
    annot2 = _cells(annot_path, mat, "annot2", len(ids), 28 * 2)
    if len(annot2[0]) != len(annot3[0]):
        raise DataError(annot_path, f"annot2 has {len(annot2[0])} frames, {key} {len(annot3[0])}")
    calibration = read_calibration(calibration_path)
    cameras = []
    for cid in ids:
        if cid not in calibration:
            raise DataError(calibration_path, f"has no camera {cid} (annot.mat lists cameras {', '.join(ids)})")
        cameras.append(_camera(calibration_path, f"{subject}/{sequence}/{cid}", calibration[cid]))
    in_camera = np.stack([a.reshape(len(a), 28, 3) for a in annot3])  # (C, T, 28, 3)
    world = np.stack([c.camera_to_world(x.astype(np.float64)) for c, x in zip(cameras, in_camera)])
    joints = world.mean(axis=0)
    disagreement = float(np.nanmax(np.linalg.norm(world - joints, axis=-1))) if world.size else 0.0
    if not disagreement <= MAX_CAMERA_DISAGREEMENT_MM:
        raise DataError(annot_path, f"{key} of the cameras disagree by up to {disagreement:.0f} mm in world "
                                    f"coordinates: does {calibration_path.name} belong to this sequence?")
    xy = [a.reshape(len(a), 28, 2) for a in annot2]
    return joints, cameras, xy, disagreement


def convert_train(source: Path, universal: bool = False, skeleton: str = "mpi_inf_3dhp_28",
                  builder: DatasetBuilder | None = None, strict: bool = False) -> DatasetBuilder:
    """Add the training sequences S1-S8 / Seq1-Seq2 (every camera) found in ``source`` to
    ``builder``, turned from the studio's y-up world to Z-up."""
    builder = builder or DatasetBuilder(skeleton)
    select = skeletons.mapping("mpi_inf_3dhp_28", builder.skeleton.name)
    worst = 0.0
    present = {f"{s}/{q}": all((source / s / q / f).is_file() for f in ("annot.mat", "camera.calibration"))
               for s in TRAIN_SUBJECTS for q in TRAIN_SEQUENCES}
    for take in available_parts("mpi_inf_3dhp", source, present, strict, builder):
        subject, sequence = take.split("/")
        joints, cameras, xy, disagreement = _train_sequence(source / subject / sequence, subject,
                                                            sequence, universal)
        worst = max(worst, disagreement)
        builder.add_take(sequence=take, subject=subject, action=sequence,
                         split="train", fps=TRAIN_FPS[(subject, sequence)], joints=joints[:, select] @ Y_UP_TO_Z_UP.T,
                         cameras=[builder.add_camera(rotate_world(c, Y_UP_TO_Z_UP)) for c in cameras],
                         keypoints=[keypoints_with_confidence(x[:, select]) for x in xy])
    builder.notes.append(f"training world joints: cameras agree within {worst:.3f} mm")
    return builder


# ---------------------------------------------------------------------------------------------
# Test set


def test_folder(source: Path, name: str) -> Path:
    """TS<n> directly under the source folder, or inside mpi_inf_3dhp_test_set/."""
    direct = source / name
    return direct if direct.is_dir() else source / "mpi_inf_3dhp_test_set" / name


def matlab_joints(path: Path, name: str, array: np.ndarray, dims: int, joints: int = 17) -> np.ndarray:
    """A MATLAB (dims x joints x 1 x T) annotation as (T, joints, dims) float64."""
    array = np.asarray(array)
    if array.dtype.kind not in "fiu" or array.ndim < 2 or array.shape[:2] != (dims, joints):
        raise DataError(path, f"{name} has shape {array.shape}, expected ({dims}, {joints}, 1, T)")
    return array.reshape(dims, joints, -1).transpose(2, 1, 0).astype(np.float64)


def _test_sequence(path: Path, name: str, universal: bool):
    key = "univ_annot3" if universal else "annot3"
    names = ("annot2", "annot3", key, "valid_frame")
    mat = load_mat(path, (*names, "activity_annotation"))
    require_vars(path, mat, names)
    xy = matlab_joints(path, "annot2", mat["annot2"], 2)
    metric = matlab_joints(path, "annot3", mat["annot3"], 3)
    joints = metric if key == "annot3" else matlab_joints(path, key, mat[key], 3)
    valid = np.asarray(mat["valid_frame"]).reshape(-1)
    if not (len(xy) == len(metric) == len(joints) == len(valid)):
        raise DataError(path, f"frame counts differ: annot2 {len(xy)}, annot3 {len(metric)}, {key} "
                              f"{len(joints)}, valid_frame {len(valid)}")
    valid = valid.astype(bool)
    if not valid.any():
        raise DataError(path, "valid_frame marks no frame valid")
    intrinsics, rms = fit_pinhole(metric[valid], xy[valid], path, name)
    level, how = level_camera_frame(joints[valid], "mpi_inf_3dhp_17")
    joints = np.where(valid[:, None, None], joints, np.nan) @ level.T
    keypoints = keypoints_with_confidence(np.where(valid[:, None, None], xy, np.nan))
    camera = Camera(name, intrinsics, None, level.T, np.zeros(3), TEST_IMAGE_SIZE[name])
    annotations = {}
    if "activity_annotation" in mat:
        activity = np.asarray(mat["activity_annotation"]).reshape(-1)
        if activity.dtype.kind not in "fiu" or len(activity) != len(valid):
            raise DataError(path, f"activity_annotation has {len(activity)} entries for {len(valid)} frames")
        annotations["activity"] = np.where(valid, activity, -1).astype(np.int16)
    return joints, camera, keypoints, f"RMS {rms:.3f} px; up from the {how}", annotations


def convert_test(source: Path, universal: bool = False, builder: DatasetBuilder | None = None,
                 strict: bool = False) -> DatasetBuilder:
    """Add the test sequences TS1-TS6 found in ``source`` (17 joints, levelled camera frame, split
    ``test``) to ``builder``."""
    builder = builder or DatasetBuilder("mpi_inf_3dhp_17")
    present = {name: (test_folder(source, name) / "annot_data.mat").is_file() for name in TEST_SEQUENCES}
    for name in available_parts("mpi_inf_3dhp_test", source, present, strict, builder):
        joints, camera, keypoints, fit, annotations = _test_sequence(test_folder(source, name) / "annot_data.mat",
                                                                     name, universal)
        builder.notes.append(f"{name}: intrinsics fitted to annot2/annot3, {fit}")
        builder.add_take(sequence=name, subject=name, action=name, split="test", fps=TEST_FPS[name],
                         joints=joints, cameras=[builder.add_camera(camera)], keypoints=[keypoints],
                         annotations=annotations)
    return builder


def convert(source: str | Path, part: str = "train", universal: bool = False, strict: bool = False) -> Converted:
    """part: ``train`` (S1-S8 in mpi_inf_3dhp_28), ``test`` (TS1-TS6 in mpi_inf_3dhp_17) or ``all``
    (both in mpi_inf_3dhp_17, the training joints selected exactly). The 2D keypoints of the result
    are the datasets' own ground-truth projections (detector ``gt``). ``strict``: refuse a folder
    lacking any subject / sequence of the part (default: convert those there, note the others)."""
    source = Path(source)
    if part not in PARTS:
        raise ConfigError(f"unknown MPI-INF-3DHP part {part!r} (known: {', '.join(PARTS)})")
    if part == "train":
        builder = convert_train(source, universal, strict=strict)
        return builder.finish("mpi_inf_3dhp_28", "gt")
    builder = DatasetBuilder("mpi_inf_3dhp_17")
    if part == "all":
        convert_train(source, universal, builder=builder, strict=strict)
    convert_test(source, universal, builder=builder, strict=strict)
    return builder.finish("mpi_inf_3dhp_17", "gt")
