"""Converters from the real datasets' own files into the dataset store (one module per dataset).

:func:`convert` dispatches on the dataset key used by ``posebridge convert --dataset``; each
converter first checks that its files are there (``posebridge.sources.download.require_source``) and
returns a :class:`~posebridge.sources.converters.common.Converted`, which :func:`write_converted` writes.

========================= ================== ===============================================
key                       native skeleton    module
========================= ================== ===============================================
``h36m``                  ``h36m_32``        :mod:`.h36m` (VideoPose3D npz, 2D npz optional)
``h36m_cdf``              ``h36m_32``        :mod:`.h36m` (original D3_Positions CDF files)
``mpi_inf_3dhp``          ``mpi_inf_3dhp_28`` :mod:`.mpi_inf_3dhp` (train; test set in _17)
``3dpw``                  ``smpl_24``        :mod:`.pw3d`
``panoptic``              ``coco_19``        :mod:`.panoptic`
``humaneva``              ``humaneva_15``    :mod:`.humaneva` (VideoPose3D npz)
``mupots``                ``mpi_inf_3dhp_17`` :mod:`.mupots`
``pose2sim``              ``coco_17``        :mod:`.pose2sim` (calibrated videos, no 3D)
``videos``                ``coco_17``        :mod:`.videos` (monocular videos, no 3D)
========================= ================== ===============================================
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from posebridge.errors import ConfigError

if TYPE_CHECKING:  # numpy / pandas load only when a conversion runs (keeps `posebridge --help` fast)
    from posebridge.sources.converters.common import Converted

DATASETS = ("h36m", "h36m_cdf", "mpi_inf_3dhp", "3dpw", "panoptic", "humaneva", "mupots", "pose2sim", "videos")
# datasets whose 2D keypoints come from a VideoPose3D 2D file named with --detections
NPZ_DETECTIONS = ("h36m", "humaneva")
# datasets that convert what a partial download holds (all of them with strict)
PARTIAL_DATASETS = ("h36m_cdf", "mpi_inf_3dhp", "3dpw", "mupots")
# datasets whose files carry 2D keypoints of their own (ground truth or a detector's)
BUILTIN_DETECTIONS = {"mpi_inf_3dhp": "gt", "3dpw": "openpose", "mupots": "gt"}

__all__ = ["DATASETS", "convert", "write_converted"]


def write_converted(*args, **kwargs) -> None:
    """See :func:`posebridge.sources.converters.common.write_converted`."""
    from posebridge.sources.converters.common import write_converted as write

    write(*args, **kwargs)


def convert(dataset: str, source: str | Path, *, detections: str | None = None, part: str = "train",
            universal: bool = False, fps: float | None = None, strict: bool = False) -> "Converted":
    """Convert one dataset found in the folder ``source``.

    detections: h36m / humaneva only: the VideoPose3D 2D file to attach (path or detector suffix).
    part: mpi_inf_3dhp only (train, test, all). universal: mpi_inf_3dhp / mupots: use the
    annotations scaled to the universal skeleton. fps: the frame rate for every sequence (overrides
    the dataset's own, e.g. MuPoTS's 30 / 60 fps per sequence). strict: h36m_cdf, mpi_inf_3dhp, 3dpw,
    mupots refuse a folder lacking any subject or sequence (default: convert those there and say
    which are missing).
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if detections is not None and dataset not in NPZ_DETECTIONS:
        raise ConfigError(f"--detections names a VideoPose3D 2D file, which only {' and '.join(NPZ_DETECTIONS)} "
                          f"have; {dataset} " + (f"brings its own 2D ({BUILTIN_DETECTIONS[dataset]})"
                                                 if dataset in BUILTIN_DETECTIONS else "has no 2D keypoints"))
    if part != "train" and dataset != "mpi_inf_3dhp":
        raise ConfigError("--part only applies to mpi_inf_3dhp")
    if universal and dataset not in ("mpi_inf_3dhp", "mupots"):
        raise ConfigError("--universal only applies to mpi_inf_3dhp and mupots")
    if fps is not None and not fps > 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    source = Path(source)
    if dataset == "h36m":
        from posebridge.sources.converters.h36m import convert_npz
        converted = convert_npz(source, detections)
    elif dataset == "h36m_cdf":
        from posebridge.sources.converters.h36m import convert_cdf
        converted = convert_cdf(source, strict)
    elif dataset == "mpi_inf_3dhp":
        from posebridge.sources.converters.mpi_inf_3dhp import convert as convert_3dhp
        converted = convert_3dhp(source, part, universal, strict)
    elif dataset == "3dpw":
        from posebridge.sources.converters.pw3d import convert as convert_3dpw
        converted = convert_3dpw(source, strict)
    elif dataset == "panoptic":
        from posebridge.sources.converters.panoptic import convert as convert_panoptic
        converted = convert_panoptic(source)
    elif dataset == "pose2sim":
        from posebridge.sources.converters.pose2sim import convert as convert_pose2sim
        return convert_pose2sim(source, fps)
    elif dataset == "videos":
        from posebridge.sources.converters.videos import convert as convert_videos
        return convert_videos(source, fps)
    elif dataset == "humaneva":
        from posebridge.sources.converters.humaneva import convert as convert_humaneva
        converted = convert_humaneva(source, detections)
    else:
        from posebridge.sources.converters.mupots import convert as convert_mupots
        return convert_mupots(source, fps, universal, strict)
    if fps is not None:
        converted.index["fps"] = float(fps)
    return converted
