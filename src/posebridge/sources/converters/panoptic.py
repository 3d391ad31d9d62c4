"""CMU Panoptic Studio: per-frame ``body3DScene_<frame>.json`` (``coco_19`` joints, cm) + calibration.

Each sequence folder ``<source>/<sequence>/`` holds ``calibration_<sequence>.json`` (``cameras``:
``name``, ``type``, ``resolution`` [w, h], ``K`` 3 x 3, ``distCoef`` [k1, k2, p1, p2, k3] (OpenCV),
``R`` and ``t`` (cm) world -> camera) and the 3D poses as ``hdPose3d_stage1_coco19.tar`` as
downloaded, or the folder extracted from it. A frame file lists ``bodies``, each with an ``id``
and ``joints19`` = 19 x (x, y, z, confidence). Every body id of a sequence becomes one take
("<sequence>/<id>") spanning its first to last frame; frames where the body is absent and joints
with confidence below 0.1 (or negative) are NaN. Units cm -> mm; Panoptic's world has y pointing
down, so world and cameras are turned to the store's Z-up (``common.Y_DOWN_TO_Z_UP``: z = -y).
The 31 HD cameras (1920 x 1080, 29.97 fps) are kept; all of a take's cameras
share the take's group (time-synchronised views). Sequences of VoxelPose's validation list are
``test``, all others ``train``.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import numpy as np

from posebridge.geometry.cameras import Camera
from posebridge.errors import ConfigError, DataError
from posebridge.sources.converters.common import Y_DOWN_TO_Z_UP, Converted, DatasetBuilder, reading, rotate_world

FPS = 29.97
MIN_CONFIDENCE = 0.1
CM = 10.0  # mm per cm
POSE_FOLDER = "hdPose3d_stage1_coco19"
FRAME_FILE = re.compile(r"body3DScene_(\d+)\.json$")
# the validation sequences of VoxelPose (Tu et al., ECCV 2020), the usual Panoptic test split
TEST_SEQUENCES = ("160906_pizza1", "160422_haggling1", "160906_ian5", "160906_band4")


def sequence_folders(source: Path) -> list[Path]:
    """``source`` itself when it is a sequence folder, else its sequence subfolders (sorted)."""
    if any(source.glob("calibration_*.json")):
        return [source]
    return sorted(p for p in source.iterdir() if p.is_dir() and any(p.glob("calibration_*.json")))


def read_cameras(path: Path, sequence: str) -> list[Camera]:
    """The HD cameras of a calibration JSON, named "<sequence>/<camera name>", t in mm."""
    with reading(path, "calibration JSON"):
        data = json.loads(path.read_text())
    entries = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DataError(path, "has no 'cameras' list")
    cameras = []
    for k, cam in enumerate(entries):
        if not isinstance(cam, dict):
            raise DataError(path, f"cameras[{k}] is not an object")
        if cam.get("type") != "hd":
            continue
        try:
            K = np.array(cam["K"], dtype=np.float64).reshape(3, 3)
            k1, k2, p1, p2, k3 = np.array(cam["distCoef"], dtype=np.float64).reshape(5)
            R = np.array(cam["R"], dtype=np.float64).reshape(3, 3)
            t = np.array(cam["t"], dtype=np.float64).reshape(3) * CM
            width, height = (int(v) for v in cam["resolution"])
            name = f"{sequence}/{cam['name']}"
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(path, f"cameras[{k}] is malformed ({type(err).__name__}: {err})") from None
        if abs(K[0, 1]) > 1e-6 * K[0, 0]:
            raise DataError(path, f"camera {cam['name']}: skewed pixels (K[0][1] = {K[0, 1]}) are not supported")
        try:
            cameras.append(Camera(name, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), (k1, k2, k3, p1, p2), R, t,
                                  (width, height)))
        except ConfigError as err:
            raise DataError(path, str(err)) from None
    if not cameras:
        raise DataError(path, "lists no HD camera (type 'hd')")
    return cameras


def _check_tar_end(path: Path) -> None:
    """A tar archive ends with two zero blocks; Python's tarfile silently stops reading a truncated
    one instead of failing, so a cut-off download is recognised here."""
    with reading(path, "tar archive"), open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(size - 1024, 0))
        tail = f.read()
    if size % 512 or size < 1024 or tail.count(0) != len(tail):
        raise DataError(path, "truncated tar archive (it lacks the end-of-archive blocks); download it again")


def _frame_files(folder: Path):
    """Yield (frame number, display name, bytes reader) for every body3DScene file of a sequence."""
    extracted = folder / POSE_FOLDER
    if extracted.is_dir():
        for path in sorted(extracted.glob("body3DScene_*.json")):
            yield int(FRAME_FILE.search(path.name).group(1)), str(path), path.read_bytes
        return
    archive = folder / f"{POSE_FOLDER}.tar"
    _check_tar_end(archive)
    with reading(archive, "tar archive"):
        with tarfile.open(archive) as tar:
            for member in tar:
                match = FRAME_FILE.search(member.name)
                if member.isfile() and match:
                    yield (int(match.group(1)), f"{archive}:{member.name}",
                           lambda m=member: tar.extractfile(m).read())


def read_bodies(folder: Path) -> dict[int, dict[int, np.ndarray]]:
    """body id -> frame -> (19, 4) x, y, z (cm), confidence, from every frame file of a sequence."""
    bodies: dict[int, dict[int, np.ndarray]] = {}
    for frame, name, read in _frame_files(folder):
        with reading(name, "body3DScene JSON"):
            data = json.loads(read())
        listed = data.get("bodies") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise DataError(name, "has no 'bodies' list")
        for k, body in enumerate(listed):
            try:
                joints = np.array(body["joints19"], dtype=np.float64)
                body_id = int(body["id"])
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(name, f"bodies[{k}] is malformed ({type(err).__name__}: {err})") from None
            if joints.shape != (76,):
                raise DataError(name, f"bodies[{k}].joints19 has {joints.size} values, expected 76 (19 x 4)")
            bodies.setdefault(body_id, {})[frame] = joints.reshape(19, 4)
    return bodies


def convert(source: str | Path) -> Converted:
    """Convert every sequence folder under ``source`` (or ``source`` itself if it is one)."""
    from posebridge.sources.download import require_source

    source = Path(source)
    require_source("panoptic", source)
    builder = DatasetBuilder("coco_19")
    for folder in sequence_folders(source):
        sequence = folder.name
        calibration = sorted(folder.glob("calibration_*.json"))[0]
        if not ((folder / POSE_FOLDER).is_dir() or (folder / f"{POSE_FOLDER}.tar").is_file()):
            raise DataError(folder, f"place {POSE_FOLDER}.tar (or the folder extracted from it) under {folder}; "
                                    f"get it from http://domedb.perception.cs.cmu.edu/webdata/dataset/"
                                    f"{sequence}/{POSE_FOLDER}.tar (public)")
        cameras = [builder.add_camera(rotate_world(c, Y_DOWN_TO_Z_UP)) for c in read_cameras(calibration, sequence)]
        bodies = read_bodies(folder)
        if not bodies:
            builder.notes.append(f"{sequence}: no bodies, skipped")
        split = "test" if sequence in TEST_SEQUENCES else "train"
        for body_id, frames in sorted(bodies.items()):
            numbers = np.array(sorted(frames))
            first = int(numbers[0])
            raw = np.full((int(numbers[-1]) - first + 1, 19, 4), np.nan)
            raw[numbers - first] = np.stack([frames[n] for n in numbers])
            confident = raw[..., 3] >= MIN_CONFIDENCE  # NaN (absent) compares false
            joints = np.where(confident[..., None], raw[..., :3] * CM, np.nan) @ Y_DOWN_TO_Z_UP.T
            take = f"{sequence}/{body_id}"
            builder.add_take(sequence=take, subject=take, action=sequence, split=split, fps=FPS,
                             joints=joints, cameras=cameras, first_frame=first)
    if builder.empty:
        raise DataError(source, "no Panoptic sequence holds any body")
    return builder.finish()
