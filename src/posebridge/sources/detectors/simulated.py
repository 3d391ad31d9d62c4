"""The simulated 2D detector: COCO-17 keypoints with the errors of a real detector.

It projects the synthetic benchmark's own COCO keypoints (``extra/coco_17``: COCO's definitions,
surface points an annotator clicks) through each camera, distortion included, and corrupts them
the way a top-down detector (CPN, HRNet) errs:

- jitter proportional to the person's size in the image, larger for hard joints (wrists,
  ankles) than for easy ones (eyes, shoulders), split into white noise, temporally correlated
  drift (AR(1), ~0.25 s) and a per-sequence bias;
- missed joints (confidence 0, x = y = 0) in runs of frames, far more often for joints the body
  hides from the camera (the far arm and leg in a side view, the face from behind) and always
  for joints outside the image; occluded joints that are found are noisier;
- left/right swaps of an arm or a leg for a few frames, mostly when the person is in profile;
- occasional gross outliers (a joint snapping to a wrong place for a frame or two);
- a confidence that falls as the error grows (plus noise), lower for occluded joints.

``error_scale`` scales every error magnitude and the rates of misses, swaps and outliers:
1.0 is a good detector on Human3.6M (about 5 px mean error for a person ~400 px tall in a 1000 px
image, like CPN); 2.0 doubles the mean error; 0 gives exact projections.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter
from scipy.special import ndtr

from posebridge.geometry import skeletons
from posebridge.errors import ConfigError, DataError
from posebridge.specs import check_keys

from posebridge.sources.synth.motion import smooth_noise

KEYPOINT_FORMAT = "coco_17"
_COCO = skeletons.get(KEYPOINT_FORMAT)

# per-joint difficulty (multiplies the jitter): nose, eyes, ears, shoulders, elbows, wrists,
# hips, knees, ankles
DIFFICULTY = np.array([0.7, 0.6, 0.6, 0.8, 0.8, 0.85, 0.85, 1.05, 1.05, 1.4, 1.4, 1.15, 1.15,
                       1.0, 1.0, 1.25, 1.25])
JITTER = 0.008  # per-axis error standard deviation / person height at error_scale 1
SHARES = {"white": 0.40, "drift": 0.45, "bias": 0.15}  # variance split of the jitter
DRIFT_SECONDS = 0.25  # correlation time of the drift
MISS_BASE = 0.004  # chance a visible joint is missed, per frame
MISS_OCCLUDED = 0.08  # extra chance when fully hidden by the body
SWAPS_PER_SECOND = 0.12  # left/right swap events (arm or leg), weighted to profile views
OUTLIER_RATE = 0.0015  # per joint and frame
SWAP_GROUPS = ((7, 9), (13, 15), (5, 7, 9), (11, 13, 15))  # coco_17 left-side indices


@dataclass(frozen=True)
class DetectorSpec:
    """Settings of the simulated detector (``--spec`` JSON)."""

    error_scale: float = 1.0

    @classmethod
    def from_dict(cls, d: dict | None) -> "DetectorSpec":
        d = {} if d is None else d
        if not isinstance(d, dict):
            raise ConfigError(f"simulated detector spec must be a mapping, got {type(d).__name__}")
        check_keys(d, [f.name for f in fields(cls)], "simulated detector")
        scale = d.get("error_scale", cls.error_scale)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale) or scale < 0:
            raise ConfigError(f"simulated detector: error_scale must be a number >= 0, got {scale!r}")
        return cls(error_scale=float(scale))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def visibility(joints: np.ndarray, camera_position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How hidden each joint is and how much the person is in profile.

    joints (T, 17, 3) world COCO keypoints. Returns occlusion (T, 17) in [0, 1] (1 = the body is
    between the joint and the camera) and profile (T,) in [0, 1] (1 = side view).
    """
    J = _COCO.index
    left = joints[:, [J("lshoulder"), J("lhip")]].sum(1) - joints[:, [J("rshoulder"), J("rhip")]].sum(1)
    up = joints[:, [J("lshoulder"), J("rshoulder")]].sum(1) - joints[:, [J("lhip"), J("rhip")]].sum(1)
    forward = _unit(np.cross(left, up))
    centre = joints[:, [J("lshoulder"), J("rshoulder"), J("lhip"), J("rhip")]].mean(1)
    view = _unit(camera_position - centre)
    side = np.einsum("ti,ti->t", _unit(left), view)  # > 0: the camera sees the left side
    facing = np.einsum("ti,ti->t", forward, view)  # > 0: the camera sees the front
    occlusion = np.zeros(joints.shape[:2])
    far_left = np.clip(-1.4 * side - 0.25, 0.0, 1.0)
    far_right = np.clip(1.4 * side - 0.25, 0.0, 1.0)
    for j, name in enumerate(_COCO.joint_names):
        if name in ("nose", "leye", "reye"):
            occlusion[:, j] = np.clip(-1.6 * facing - 0.2, 0.0, 1.0)
        elif name.startswith("l"):
            occlusion[:, j] = far_left
        elif name.startswith("r"):
            occlusion[:, j] = far_right
    return occlusion, 1.0 - np.abs(facing)


def _ar1(rng, shape, T, fps):
    """AR(1) noise (T, *shape) with unit stationary variance and correlation time DRIFT_SECONDS."""
    rho = float(np.exp(-1.0 / max(DRIFT_SECONDS * fps, 1e-6)))
    e = rng.standard_normal((T,) + shape) * np.sqrt(1 - rho * rho)
    e[0] /= np.sqrt(1 - rho * rho)  # start in the stationary distribution
    return lfilter([1.0], [1.0, -rho], e, axis=0)


def detect_row(truth: np.ndarray, camera, fps: float, error_scale: float,
               rng: np.random.Generator) -> np.ndarray:
    """Simulated detections (T, 17, 3) (x px, y px, confidence) of one sequence in one camera.

    truth: (T, 17, 3) world COCO-17 keypoints (mm).
    """
    T = truth.shape[0]
    uv = camera.project(truth.astype(np.float64))
    w, h = camera.image_size
    # person size in pixels: height of the keypoints' box, smoothed over time
    size = gaussian_filter1d(np.ptp(uv[..., 1], axis=1) + 0.3 * np.ptp(uv[..., 0], axis=1),
                             max(0.3 * fps, 0.5), mode="nearest")
    size = np.maximum(size, 20.0)
    occlusion, profile = visibility(truth, camera.position)
    k = error_scale

    sd = k * JITTER * size[:, None] * DIFFICULTY * (1.0 + 0.8 * occlusion)  # (T, 17) per axis
    noise = (np.sqrt(SHARES["white"]) * rng.standard_normal((T, 17, 2))
             + np.sqrt(SHARES["drift"]) * _ar1(rng, (17, 2), T, fps)
             + np.sqrt(SHARES["bias"]) * rng.standard_normal((1, 17, 2)))
    det = uv + sd[..., None] * noise

    # left/right swaps of an arm or a leg for a few frames, mostly in side views
    n_swaps = rng.poisson(k * SWAPS_PER_SECOND * T / fps)
    if n_swaps:
        p = profile + 0.05
        starts = rng.choice(T, size=n_swaps, p=p / p.sum())
        for start in starts:
            group = np.array(SWAP_GROUPS[rng.integers(len(SWAP_GROUPS))])
            mirror = np.array(_COCO.mirror)[group]
            stop = min(T, start + int(rng.integers(3, 16)))
            det[start:stop, group], det[start:stop, mirror] = det[start:stop, mirror].copy(), det[start:stop, group].copy()

    # gross outliers: a joint jumps to a wrong place for a frame or two
    outlier = rng.random((T, 17)) < k * OUTLIER_RATE
    outlier[1:] |= outlier[:-1] & (rng.random((T - 1, 17)) < 0.5)
    if outlier.any():
        angle = rng.uniform(0, 2 * np.pi, outlier.sum())
        radius = rng.uniform(0.1, 0.35, outlier.sum()) * np.broadcast_to(size[:, None], (T, 17))[outlier]
        det[outlier] = uv[outlier] + radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)

    # confidence falls with the error (in % of the person's size), lower when occluded
    error = np.linalg.norm(det - uv, axis=-1) / (0.01 * size[:, None])
    logit = 2.6 - 0.55 * error - 1.2 * occlusion + rng.normal(0.0, 0.45, (T, 17))
    confidence = np.clip(1.0 / (1.0 + np.exp(-logit)), 0.01, 1.0)

    # missed joints, in runs: correlated noise thresholded at the per-frame miss chance
    p_miss = np.clip(k * (MISS_BASE + MISS_OCCLUDED * occlusion ** 2), 0.0, 0.95)
    draw = ndtr(smooth_noise(rng, T, fps, (17,), 3.0))
    missed = draw < p_miss
    outside = (uv[..., 0] < 0) | (uv[..., 0] >= w) | (uv[..., 1] < 0) | (uv[..., 1] >= h)
    missed |= outside
    out = np.concatenate([det, confidence[..., None]], axis=-1)
    out[missed] = 0.0
    return out.astype(np.float32)


def _row_rng(seed: int, sequence: str, camera: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFF, zlib.crc32(sequence.encode()), zlib.crc32(camera.encode())]))


def simulate_detections(dataset, spec: DetectorSpec | dict | None, seed: int, progress: bool = False) -> np.ndarray:
    """Keypoints (sum of the index rows' frames, 17, 3) for every row of ``dataset`` (a
    ``store.Dataset`` with ``extra/coco_17``), in index order. Each row has its own random
    stream (seed, sequence, camera)."""
    if not isinstance(spec, DetectorSpec):
        spec = DetectorSpec.from_dict(spec)
    if KEYPOINT_FORMAT not in dataset.extra_formats and dataset.skeleton.name != KEYPOINT_FORMAT:
        raise DataError(dataset.path, "the simulated detector needs the synthetic benchmark's coco_17 "
                                      "landmarks (extra/coco_17), which this dataset lacks; use a real "
                                      "2D detector for real datasets")
    rows = dataset.index
    out = []
    cache: dict[str, np.ndarray] = {}
    iterator = rows.itertuples(index=False)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(rows), desc=f"detect {dataset.name}", unit="row")
    for row in iterator:
        if row.sequence not in cache:
            cache = {row.sequence: (dataset.sequence_extra(KEYPOINT_FORMAT, row.sequence)
                                    if KEYPOINT_FORMAT in dataset.extra_formats
                                    else dataset.sequence_3d(row.sequence))}
        truth = cache[row.sequence]
        camera = dataset.cameras[int(row.camera_index)]
        out.append(detect_row(truth, camera, float(row.fps), spec.error_scale,
                              _row_rng(seed, row.sequence, row.camera)))
    return np.concatenate(out)
