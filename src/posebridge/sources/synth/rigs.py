"""Camera rigs modelled on the real capture setups: static calibrated cameras around a capture
volume, with realistic intrinsics and Brown-Conrady distortion.

=========== ======================================================== ============ ===========
template    layout                                                   image (px)   frame rate
=========== ======================================================== ============ ===========
h36m        4 cameras in the corners of the room, ~1.3-1.9 m high    1000 x 1000  50
3dhp        cameras on three tiers, incl. ceiling height looking down 1024 x 1024  25
3dpw        one handheld phone camera per take, portrait             1080 x 1920  30
panoptic    a dome of HD cameras at many heights                     1920 x 1080  30
humaneva    3 colour cameras, mounted high                           640 x 480    60
video       one camera per take, anywhere (monocular footage)        1920 x 1080  30
multiview   a synchronised ring of 4-6 cameras per subject           1920 x 1080  30
=========== ======================================================== ============ ===========

Focal lengths are about 1.0-1.5 times the image's shorter side (1145 px for H36M's 1000 px
images); distances 3-6 m from the volume centre. H36M cameras start from the published
calibration (``cameras.H36M_CAMERAS``) with small jitter. The capture volume (the disc in which
subjects move) is sized so that people stay in view most of the time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebridge.geometry.cameras import H36M_CAMERAS, Camera


@dataclass(frozen=True)
class RigTemplate:
    """How one kind of capture setup places its cameras (millimetres, pixels)."""

    name: str
    image_size: tuple[int, int]
    fps: float
    cameras: int  # default count
    per: str  # "dataset", "subject" or "take": how often a new rig is built
    volume_radius: float  # subjects move within this disc around the volume centre
    distance: tuple[float, float]  # horizontal distance of a camera from its target
    heights: tuple[tuple[float, float], ...]  # camera height ranges (tiers, used in turn)
    focal: tuple[float, float]  # focal length / shorter image side
    k1: tuple[float, float]  # radial distortion range (k2 follows k1's magnitude)
    look_height: tuple[float, float] = (850.0, 1050.0)  # height of the point the cameras aim at
    roll_deg: float = 0.0  # standard deviation of the camera roll (handheld)
    even_azimuths: bool = True


TEMPLATES: dict[str, RigTemplate] = {
    "h36m": RigTemplate("h36m", (1000, 1000), 50.0, 4, "dataset", 1700.0, (4500.0, 5600.0),
                        ((1300.0, 1900.0),), (1.14, 1.15), (-0.21, -0.19)),
    "3dhp": RigTemplate("3dhp", (1024, 1024), 25.0, 10, "dataset", 1300.0, (3600.0, 4800.0),
                        ((400.0, 900.0), (1200.0, 1800.0), (2400.0, 3000.0)), (0.98, 1.15),
                        (-0.22, -0.10), look_height=(800.0, 1000.0)),
    "3dpw": RigTemplate("3dpw", (1080, 1920), 30.0, 1, "take", 900.0, (3000.0, 4500.0),
                        ((1200.0, 1700.0),), (1.25, 1.48), (-0.06, 0.02), roll_deg=2.5,
                        even_azimuths=False),
    "panoptic": RigTemplate("panoptic", (1920, 1080), 30.0, 10, "dataset", 1100.0, (4000.0, 4800.0),
                            ((500.0, 1200.0), (1300.0, 2200.0), (2300.0, 3200.0)), (1.16, 1.34),
                            (-0.25, -0.12), look_height=(800.0, 950.0)),
    "humaneva": RigTemplate("humaneva", (640, 480), 60.0, 3, "dataset", 1200.0, (3800.0, 4800.0),
                            ((1500.0, 2300.0),), (1.50, 1.62), (-0.22, -0.12)),
    "video": RigTemplate("video", (1920, 1080), 30.0, 1, "take", 1300.0, (3000.0, 5000.0),
                         ((800.0, 2000.0),), (1.0, 1.45), (-0.15, 0.02), roll_deg=2.0,
                         even_azimuths=False),
    "multiview": RigTemplate("multiview", (1920, 1080), 30.0, 5, "subject", 1300.0, (3500.0, 5500.0),
                             ((1000.0, 2500.0),), (1.1, 1.4), (-0.2, -0.05)),
}


def _monotonic(k1: float, k2: float, k3: float, r_max: float) -> bool:
    """Whether r (1 + k1 r^2 + k2 r^4 + k3 r^6) increases on [0, r_max] (no fold-over in view)."""
    r2 = np.linspace(0.0, r_max * r_max * 1.05, 200)
    return bool(np.all(1 + 3 * k1 * r2 + 5 * k2 * r2 ** 2 + 7 * k3 * r2 ** 3 > 0.2))


def _distortion(rng: np.random.Generator, tpl: RigTemplate, r_max: float) -> np.ndarray:
    for _ in range(100):
        k1 = rng.uniform(*tpl.k1)
        k2 = abs(k1) * rng.uniform(0.2, 1.1)
        k3 = rng.normal(0.0, 0.01)
        p1, p2 = rng.normal(0.0, 8e-4, 2)
        if _monotonic(k1, k2, k3, r_max):
            return np.array([k1, k2, k3, p1, p2])
    return np.zeros(5)


def _roll(camera: Camera, degrees: float) -> Camera:
    a = np.deg2rad(degrees)
    Rz = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return Camera(camera.name, camera.intrinsics, camera.distortion, Rz @ camera.R, Rz @ camera.t,
                  camera.image_size)


def make_rig(template: str, rng: np.random.Generator, count: int | None = None, prefix: str = "cam",
             centre=(0.0, 0.0), extra_distance: float = 0.0) -> list[Camera]:
    """Cameras of one rig looking at the capture volume around ``centre`` (x, y mm).

    Names are ``f"{prefix}{k}"`` (k from 1). H36M rigs reuse the four published intrinsics in
    turn (jittered by ~1 %); other templates draw focal length, principal point and distortion.
    ``extra_distance`` (mm) moves the cameras back, e.g. to frame a walk with a per-take camera.
    """
    tpl = TEMPLATES[template]
    count = tpl.cameras if count is None else int(count)
    w, h = tpl.image_size
    short = min(w, h)
    start = rng.uniform(0.0, 2 * np.pi)
    cams = []
    h36m = list(H36M_CAMERAS.values())
    for k in range(count):
        if tpl.even_azimuths:
            azimuth = start + 2 * np.pi * k / count + rng.normal(0.0, np.deg2rad(8.0))
        else:
            azimuth = rng.uniform(0.0, 2 * np.pi)
        distance = rng.uniform(*tpl.distance) + extra_distance
        height = rng.uniform(*tpl.heights[k % len(tpl.heights)])
        position = np.array([centre[0] + distance * np.cos(azimuth),
                             centre[1] + distance * np.sin(azimuth), height])
        target = np.array([centre[0] + rng.normal(0.0, 150.0), centre[1] + rng.normal(0.0, 150.0),
                           rng.uniform(*tpl.look_height)])
        if template == "h36m":
            ref = h36m[k % len(h36m)]
            fx, fy, cx, cy = ref.intrinsics
            s = 1.0 + rng.normal(0.0, 0.01)
            intrinsics = np.array([fx * s, fy * s, cx + rng.normal(0.0, 3.0), cy + rng.normal(0.0, 3.0)])
            distortion = ref.distortion * (1.0 + rng.normal(0.0, 0.05, 5))
        else:
            f = short * rng.uniform(*tpl.focal)
            intrinsics = np.array([f, f * (1.0 + rng.normal(0.0, 0.002)),
                                   w / 2 + rng.normal(0.0, 0.01 * short),
                                   h / 2 + rng.normal(0.0, 0.01 * short)])
            r_max = np.hypot(w, h) / 2 / f
            distortion = _distortion(rng, tpl, r_max)
        cam = Camera.look_at(f"{prefix}{k + 1}", position, target, intrinsics, distortion, (w, h))
        if tpl.roll_deg:
            cam = _roll(cam, rng.normal(0.0, tpl.roll_deg))
        cams.append(cam)
    return cams
