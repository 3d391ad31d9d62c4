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

A dataset can instead draw every take's cameras from a wide distribution of the set-ups people
film themselves and others with (``VARIED``: phones held upright or sideways, tripods, cameras
on the floor and up on a shelf, tilted horizons, wide to tele lenses, the person anywhere in the
frame and partly cut off), or from a held-out one for testing only (``HELDOUT``: ceiling and
floor-level cameras, ultra-wide lenses, 20:9 images), see :class:`CameraRanges`.

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
             centre=(0.0, 0.0), extra_distance: float = 0.0, kind: str = "template") -> list[Camera]:
    """Cameras of one rig looking at the capture volume around ``centre`` (x, y mm).

    Names are ``f"{prefix}{k}"`` (k from 1). H36M rigs reuse the four published intrinsics in
    turn (jittered by ~1 %); other templates draw focal length, principal point and distortion.
    ``extra_distance`` (mm) moves the cameras back, e.g. to frame a walk with a per-take camera.
    ``kind`` "varied" or "heldout" draws each camera from ``RIG_KINDS[kind]`` instead of the
    template's layout (the template then only gives the default count).
    """
    tpl = TEMPLATES[template]
    count = tpl.cameras if count is None else int(count)
    if kind != "template":
        return [varied_camera(rng, f"{prefix}{k + 1}", RIG_KINDS[kind], centre, extra_distance=extra_distance)
                for k in range(count)]
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


# --------------------------------------------------------------------------------------------
# Varied single cameras: one set-up per camera, drawn from wide ranges


@dataclass(frozen=True)
class CameraRanges:
    """Where an everyday camera can be and what it sees (millimetres, pixels, degrees).

    image_sizes: (width, height) choices, drawn with ``size_weights``; focal: focal length /
    shorter image side (log-uniform; 0.7 is a phone's ultra-wide, 1.4 its main camera, 2.5 a
    tele); heights: camera height ranges drawn with ``height_weights``; person_fraction: the
    person's apparent height / image height (sets the distance for the focal length); offset:
    largest shift of the person from the image centre, as a fraction of the image size (with
    a large person_fraction parts of the body leave the frame); roll_sd and wild_roll: the
    horizon's tilt, normal with roll_sd, and uniform within +-wild_roll for ``wild_share`` of
    the cameras; k1: radial distortion range; look_height: the point of the person aimed at.
    """

    image_sizes: tuple[tuple[int, int], ...]
    size_weights: tuple[float, ...]
    focal: tuple[float, float]
    heights: tuple[tuple[float, float], ...]
    height_weights: tuple[float, ...]
    person_fraction: tuple[float, float]
    offset: float
    roll_sd: float
    wild_roll: float
    wild_share: float
    k1: tuple[float, float]
    look_height: tuple[float, float] = (300.0, 1500.0)
    distance: tuple[float, float] = (2000.0, 15000.0)  # clamp of the horizontal distance (the
    # nearest leaves room for a person lying or stepping towards the camera)


VARIED = CameraRanges(
    image_sizes=((1920, 1080), (1080, 1920), (1280, 720), (720, 1280), (1000, 1000), (640, 480)),
    size_weights=(0.3, 0.25, 0.1, 0.1, 0.15, 0.1),
    focal=(0.75, 2.5), heights=((350.0, 800.0), (800.0, 1900.0), (1900.0, 2500.0)),
    height_weights=(0.15, 0.7, 0.15), person_fraction=(0.3, 0.9), offset=0.22,
    roll_sd=4.0, wild_roll=25.0, wild_share=0.1, k1=(-0.12, 0.03))
"""The training variety of everyday cameras."""

HELDOUT = CameraRanges(
    image_sizes=((2400, 1080), (1080, 2400)), size_weights=(0.5, 0.5),
    focal=(0.5, 0.7), heights=((60.0, 300.0), (2600.0, 3500.0)), height_weights=(0.5, 0.5),
    person_fraction=(0.3, 0.9), offset=0.25, roll_sd=8.0, wild_roll=30.0, wild_share=0.3,
    k1=(-0.25, -0.15))
"""Set-ups no training camera has (floor-level and ceiling cameras, ultra-wide 20:9 images)."""

RIG_KINDS = {"varied": VARIED, "heldout": HELDOUT}


def _turn_towards(camera: Camera, direction: np.ndarray) -> Camera:
    """The camera rotated about its centre so its optical axis points along ``direction``
    (camera coordinates of the old frame): a point on the old axis then appears off-centre."""
    z = direction / np.linalg.norm(direction)
    axis = np.cross([0.0, 0.0, 1.0], z)
    s, c = np.linalg.norm(axis), z[2]
    if s < 1e-12:
        return camera
    k = axis / s
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    Q = np.eye(3) + s * K + (1 - c) * K @ K  # Rodrigues: rotates e_z onto z
    R = Q.T @ camera.R
    return Camera(camera.name, camera.intrinsics, camera.distortion, R, -R @ camera.position,
                  camera.image_size)


def varied_camera(rng: np.random.Generator, name: str, ranges: CameraRanges, centre=(0.0, 0.0),
                  stature: float = 1750.0, extra_distance: float = 0.0) -> Camera:
    """One camera drawn from ``ranges``, aimed at a person around ``centre`` (x, y mm).

    The distance follows from the drawn focal length and the person's drawn apparent size; the
    camera is then turned so the person lands off-centre, and rolled.
    """
    w, h = ranges.image_sizes[rng.choice(len(ranges.image_sizes), p=_normalised(ranges.size_weights))]
    short = min(w, h)
    f = short * float(np.exp(rng.uniform(*np.log(ranges.focal))))
    distance = f * stature / (rng.uniform(*ranges.person_fraction) * h)
    distance = float(np.clip(distance, *ranges.distance)) + extra_distance
    tier = ranges.heights[rng.choice(len(ranges.heights), p=_normalised(ranges.height_weights))]
    azimuth = rng.uniform(0.0, 2 * np.pi)
    position = np.array([centre[0] + distance * np.cos(azimuth), centre[1] + distance * np.sin(azimuth),
                         rng.uniform(*tier)])
    target = np.array([centre[0], centre[1], rng.uniform(*ranges.look_height)])
    intrinsics = np.array([f, f * (1.0 + rng.normal(0.0, 0.002)), w / 2 + rng.normal(0.0, 0.01 * short),
                           h / 2 + rng.normal(0.0, 0.01 * short)])
    k1 = rng.uniform(*ranges.k1)
    distortion = np.array([k1, -0.3 * k1 * rng.uniform(0.0, 1.0), 0.0, *rng.normal(0.0, 5e-4, 2)])
    if not _monotonic(*distortion[:3], np.hypot(w, h) / 2 / f):
        distortion[:] = 0.0
    cam = Camera.look_at(name, position, target, intrinsics, distortion, (int(w), int(h)))
    shift = rng.uniform(-ranges.offset, ranges.offset, 2) * np.array([w, h]) / f  # normalised image coords
    cam = _turn_towards(cam, np.array([-shift[0], -shift[1], 1.0]))
    roll = (rng.uniform(-ranges.wild_roll, ranges.wild_roll) if rng.random() < ranges.wild_share
            else rng.normal(0.0, ranges.roll_sd))
    return _roll(cam, roll)


def _normalised(weights) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return p / p.sum()
