"""Reading frames from videos or image folders, and writing renderings as MP4 or GIF.

Reading goes through OpenCV (``opencv-contrib-python-headless``, which MediaPipe needs anyway; its
wheel ships FFmpeg). An image folder (sorted ``.jpg`` / ``.png`` / ... files, one per frame) reads
like a video. Frames are RGB ``(H, W, 3) uint8`` arrays, as MediaPipe and matplotlib expect.

Writing: MP4 as H.264 (yuv420p, playable in browsers) through the FFmpeg binary that the
``imageio-ffmpeg`` wheel ships -- OpenCV's bundled FFmpeg has no H.264 encoder; GIF through Pillow.
Both write to a temporary name first (``posebridge.atomic``), so a killed run leaves no file that
looks complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from posebridge.atomic import atomic_path
from posebridge.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
WRITE_SUFFIXES = (".mp4", ".gif")


@dataclass(frozen=True)
class VideoInfo:
    """Size and frame rate of a video or image folder.

    ``frames`` is the container's frame count for a video (an estimate for some codecs; reading
    yields the true count) and the number of images for a folder; ``fps`` is 0 when unknown.
    """

    width: int
    height: int
    fps: float
    frames: int


def _cv2():
    try:
        import cv2
    except ImportError:
        raise ConfigError("reading video needs OpenCV: pip install opencv-contrib-python-headless") from None
    return cv2


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The frame images of a folder, sorted by name (``frame_000001.jpg`` ...)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_image(path: Path) -> np.ndarray:
    cv2 = _cv2()
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(path, "not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Width, height, fps and frame count of a video file or image folder (DataError if unreadable)."""
    path = Path(path)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise DataError(path, f"image folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        height, width = _read_image(files[0]).shape[:2]
        return VideoInfo(width, height, 0.0, len(files))
    if not path.is_file():
        raise DataError(path, "no such video file or image folder")
    cv2 = _cv2()
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(path, "not a readable video (unknown format or corrupt)")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    if width <= 0 or height <= 0:
        raise DataError(path, "video has no readable frame size")
    return VideoInfo(width, height, fps if np.isfinite(fps) and fps > 0 else 0.0, max(frames, 0))


def iter_frames(path: str | os.PathLike, limit: int | None = None) -> Iterator[np.ndarray]:
    """Yield RGB frames ``(H, W, 3) uint8`` of a video file or image folder, at most ``limit``."""
    path = Path(path)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise DataError(path, "image folder holds no images")
        size = None
        for file in files[:limit]:
            frame = _read_image(file)
            if size is None:
                size = frame.shape
            elif frame.shape != size:  # a dataset's frames must share one camera's size
                raise DataError(file, f"image size {frame.shape[1]}x{frame.shape[0]} differs from the "
                                      f"folder's first image ({size[1]}x{size[0]})")
            yield frame
        return
    info = probe(path)  # raises DataError for missing / unreadable files
    cv2 = _cv2()
    capture = cv2.VideoCapture(str(path))
    count = 0
    try:
        while limit is None or count < limit:
            ok, frame = capture.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
    if count == 0:
        raise DataError(path, f"video ({info.width}x{info.height}) yielded no frames")


class VideoWriter:
    """Write RGB frames to an MP4 (H.264) or GIF file atomically; use as a context manager.

    Frames must all have one size; MP4 needs even width and height (yuv420p), so odd sizes are
    padded by one pixel. The file appears under its name only when the ``with`` block ends without
    an exception.
    """

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        self.kind = self.path.suffix.lower()
        if self.kind not in WRITE_SUFFIXES:
            raise ConfigError(f"cannot write {self.path}: rendering must end in .mp4 or .gif")
        if not fps > 0:
            raise ConfigError(f"cannot write {self.path}: frame rate must be positive, got {fps}")
        self.fps = float(fps)
        self.frames_written = 0
        self._size = None
        self._gif_frames: list = []
        self._encoder = None
        self._atomic = None
        self._tmp: Path | None = None

    def __enter__(self) -> "VideoWriter":
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB frame ``(H, W, 3) uint8``."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if self._size is None:
            self._size = frame.shape
            if self.kind == ".mp4":
                self._encoder = self._start_mp4(frame.shape[1], frame.shape[0])
        elif frame.shape != self._size:
            raise ValueError(f"frame {self.frames_written} has shape {frame.shape}, the first had {self._size}")
        if self.kind == ".mp4":
            pad = ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0))
            self._encoder.send(np.ascontiguousarray(np.pad(frame, pad, mode="edge")))
        else:
            from PIL import Image

            self._gif_frames.append(Image.fromarray(frame))
        self.frames_written += 1

    def _start_mp4(self, width: int, height: int):
        try:
            import imageio_ffmpeg
        except ImportError:
            raise ConfigError("writing MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg), "
                              "or render to .gif") from None
        encoder = imageio_ffmpeg.write_frames(
            str(self._tmp), (width + width % 2, height + height % 2), fps=self.fps, codec="libx264",
            pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=7, macro_block_size=1)
        encoder.send(None)  # start the FFmpeg process
        return encoder

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self.frames_written == 0:
                    raise ValueError(f"no frames written to {self.path}")
                if self.kind == ".mp4":
                    self._encoder.close()
                else:
                    first, *rest = self._gif_frames
                    first.save(self._tmp, format="GIF", save_all=True, append_images=rest, loop=0,
                               duration=int(round(1000 / self.fps)), optimize=False)
            elif self._encoder is not None:
                self._encoder.close()
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(exc_type, exc, tb)
        self._gif_frames = []
