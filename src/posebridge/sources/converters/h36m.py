"""Human3.6M: VideoPose3D's npz files (3D + optional 2D) and the original CDF pose files.

3D joints stay in H36M's 32-joint motion-capture skeleton (``h36m_32``) and world frame (Z up);
the npz stores metres, the CDF files millimetres. Subjects S1, S5, S6, S7, S8 are ``train``, S9 and
S11 ``test``; S11 "Directions" (a corrupt video) is dropped and TakingPhoto / WalkingDog are renamed
Photo / WalkDog, as VideoPose3D does. ``action`` is the action without its take number
("Directions 1" -> "Directions"); the sequence is "<subject>/<action with take>", and the index
columns ``source_subject`` / ``source_action`` ("S1", "Directions 1") are the take's keys in
VideoPose3D's files, so its 2D files match each sequence x camera exactly.

Cameras: the four H36M intrinsics (``cameras.H36M_CAMERAS``, distortion model
``h36m_videopose3d``: the formula VideoPose3D's ground-truth 2D was projected with) with each
subject's extrinsics as
published in VideoPose3D's ``common/h36m_dataset.py`` (orientation quaternion (w, x, y, z) of the
camera in the world and camera position in mm). Camera names are "<subject>/<camera id>".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebridge.geometry import skeletons
from posebridge.geometry.cameras import H36M_CAMERA_IDS, H36M_CAMERAS, H36M_FPS
from posebridge.errors import DataError
from posebridge.sources.converters.common import (
    Converted,
    DatasetBuilder,
    available_parts,
    camera_from_pose,
    check_array,
    keypoint_format_of,
    load_npz_dict,
    load_npz_metadata,
    reading,
    resolve_2d_file,
    videopose3d_2d,
)

SPLITS = {"S1": "train", "S5": "train", "S6": "train", "S7": "train", "S8": "train",
          "S9": "test", "S11": "test"}
NUM_JOINTS = 32
FILE_3D = "data_3d_h36m.npz"
PREFIX_2D = "data_2d_h36m_"

# Extrinsics per subject, cameras in H36M_CAMERA_IDS order: (orientation (w, x, y, z), position mm).
# Data published with VideoPose3D (common/h36m_dataset.py), from the Human3.6M calibration.
EXTRINSICS = {
    "S1": [
        ((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
         (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
        ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
         (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
        ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
         (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
        ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
         (-1794.7896728515625, -3722.698974609375, 1574.8927001953125)),
    ],
    "S5": [
        ((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
         (2097.3916015625, 4880.94482421875, 1605.732421875)),
        ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
         (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
        ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
         (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
        ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
         (-1637.1737060546875, -3867.3173828125, 1547.033203125)),
    ],
    "S6": [
        ((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
         (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
        ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
         (1969.803955078125, -5128.73876953125, 1632.77880859375)),
        ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
         (-1769.596435546875, 5185.361328125, 1476.993408203125)),
        ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
         (-1721.668701171875, -3884.13134765625, 1540.4879150390625)),
    ],
    "S7": [
        ((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
         (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
        ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
         (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
        ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
         (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
        ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
         (-1734.7105712890625, -3832.42138671875, 1548.5830078125)),
    ],
    "S8": [
        ((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
         (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
        ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
         (2219.965576171875, -5148.453125, 1613.0440673828125)),
        ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
         (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
        ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
         (-1476.913330078125, -3896.7412109375, 1547.97216796875)),
    ],
    "S9": [
        ((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
         (2044.45849609375, 4935.1171875, 1481.2275390625)),
        ((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
         (1990.959716796875, -5123.810546875, 1568.8048095703125)),
        ((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
         (-1670.9921875, 5211.98583984375, 1528.387939453125)),
        ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
         (-1696.04345703125, -3827.099853515625, 1591.4127197265625)),
    ],
    "S11": [
        ((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
         (2098.440185546875, 4926.5546875, 1500.278564453125)),
        ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
         (2083.182373046875, -4912.1728515625, 1561.07861328125)),
        ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
         (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
        ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
         (-1590.738037109375, -3854.1689453125, 1578.017578125)),
    ],
}


def subject_cameras(subject: str) -> list:
    """The four calibrated cameras of one subject's sessions, named "<subject>/<camera id>"."""
    out = []
    for cid, (orientation, position) in zip(H36M_CAMERA_IDS, EXTRINSICS[subject]):
        base = H36M_CAMERAS[cid]
        out.append(camera_from_pose(f"{subject}/{cid}", orientation, position, base.intrinsics,
                                    base.distortion, base.image_size, base.distortion_model))
    return out


def canonical_action(name: str) -> str:
    """VideoPose3D's action naming (TakingPhoto -> Photo, WalkingDog -> WalkDog)."""
    return name.replace("TakingPhoto", "Photo").replace("WalkingDog", "WalkDog")


def base_action(name: str) -> str:
    """The action without its take number: "Directions 1" -> "Directions"."""
    return name.split(" ")[0]


def _dropped(subject: str, action: str) -> bool:
    return subject == "S11" and action == "Directions"  # corrupt video, dropped by every protocol


def _build(takes: dict, path_of, positions_2d=None, path_2d=None, keypoint_format=None,
           detector=None, builder: DatasetBuilder | None = None) -> Converted:
    """takes: subject -> action -> (T, 32, 3) mm; path_of(subject, action) names the source file."""
    builder = builder or DatasetBuilder("h36m_32")
    joints_2d = None if keypoint_format is None else skeletons.get(keypoint_format).num_joints
    for subject in sorted(takes, key=lambda s: int(s[1:])):
        cameras = [builder.add_camera(c) for c in subject_cameras(subject)]
        for action in sorted(takes[subject]):
            joints = takes[subject][action]
            keypoints = None
            if positions_2d is not None:
                keypoints = videopose3d_2d(path_2d, positions_2d, subject, action, len(cameras),
                                           len(joints), joints_2d)
            builder.add_take(sequence=f"{subject}/{action}", subject=subject, action=base_action(action),
                             split=SPLITS[subject], fps=H36M_FPS, joints=joints, cameras=cameras,
                             keypoints=keypoints, source_subject=subject, source_action=action)
    if builder.empty:
        raise DataError(path_of(None, None), "holds none of the subjects " + ", ".join(SPLITS))
    return builder.finish(keypoint_format, detector)


def convert_npz(source: str | Path, detections: str | None = None) -> Converted:
    """Convert ``<source>/data_3d_h36m.npz`` (``positions_3d[subject][action]`` (T, 32, 3) metres).

    detections: a VideoPose3D 2D file (path, or detector suffix such as ``cpn_ft_h36m_dbb`` for
    ``<source>/data_2d_h36m_cpn_ft_h36m_dbb.npz``) whose keypoints become the result's 2D.
    """
    from posebridge.sources.download import require_source

    source = Path(source)
    require_source("h36m", source)
    path = source / FILE_3D
    positions = load_npz_dict(path, "positions_3d")
    takes, skipped = {}, []
    for subject, actions in positions.items():
        if subject not in SPLITS:
            skipped.append(str(subject))
            continue
        if not isinstance(actions, dict):
            raise DataError(path, f"positions_3d[{subject!r}] is not a dict of actions")
        takes[subject] = {}
        for action, joints in actions.items():
            name = canonical_action(str(action))
            if _dropped(subject, name):
                continue
            joints = check_array(path, f"{subject} {action!r}", joints, (None, NUM_JOINTS, 3))
            takes[subject][name] = joints.astype(np.float32) * np.float32(1000.0)  # m -> mm
    positions_2d = path_2d = keypoint_format = detector = None
    if detections is not None:
        path_2d, detector = resolve_2d_file(source, detections, PREFIX_2D)
        keypoint_format = keypoint_format_of(path_2d, load_npz_metadata(path_2d), "h36m_17")
        positions_2d = load_npz_dict(path_2d, "positions_2d")
    converted = _build(takes, lambda s, a: path, positions_2d, path_2d, keypoint_format, detector)
    if skipped:
        converted.notes.append(f"skipped subjects without published extrinsics: {', '.join(sorted(skipped))}")
    return converted


def read_cdf_pose(path: Path) -> np.ndarray:
    """The ``Pose`` variable of an H36M CDF file as (T, 32, 3) millimetres."""
    try:
        import cdflib
    except ImportError:
        raise DataError(path, "reading Human3.6M CDF files needs the cdflib package (pip install cdflib)") from None
    with reading(path, "CDF file"):
        pose = np.asarray(cdflib.CDF(str(path)).varget("Pose"))
    if pose.dtype.kind not in "fiu" or pose.size == 0 or pose.shape[-1] != 3 * NUM_JOINTS:
        raise DataError(path, f"variable 'Pose' has shape {pose.shape}, expected (1, T, {3 * NUM_JOINTS})")
    return pose.reshape(-1, NUM_JOINTS, 3).astype(np.float32)


def convert_cdf(source: str | Path, strict: bool = False) -> Converted:
    """Convert the original pose files ``<source>/S*/MyPoseFeatures/D3_Positions/<action>.cdf`` of
    the subjects there (a missing subject is noted; ``strict`` refuses the folder instead)."""
    source = Path(source)
    builder = DatasetBuilder("h36m_32")
    folders = {s: source / s / "MyPoseFeatures" / "D3_Positions" for s in SPLITS}
    present = {s: any(folder.glob("*.cdf")) for s, folder in folders.items()}
    takes, files = {}, {}
    for subject in available_parts("h36m_cdf", source, present, strict, builder):
        folder = folders[subject]
        for path in sorted(folder.glob("*.cdf")):
            name = canonical_action(path.stem)
            if _dropped(subject, name) or name.startswith("_"):
                continue
            takes.setdefault(subject, {})[name] = read_cdf_pose(path)
            files[(subject, name)] = path
    return _build(takes, lambda s, a: files.get((s, a), source), builder=builder)
