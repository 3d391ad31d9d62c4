"""The simulated 2D detector: COCO-17 keypoints with the errors of a real detector.

It projects the synthetic benchmark's own COCO keypoints (``extra/coco_17``: COCO's definitions,
surface points an annotator clicks) through each camera, distortion included, and corrupts them
the way a real detector errs. The error model is fitted to MediaPipe Pose (the detector
posebridge runs on real footage) against the triangulation of its own 2D from four calibrated
views (Pose2Sim's Demo_SinglePerson and Demo_MultiPerson, 733 view-frames of a person ~800 px
tall); where one monocular detector errs alike, the sizes follow CPN / HRNet on Human3.6M:

- jitter proportional to the person's size in the image, larger for hard joints (wrists,
  ankles) than for easy ones (eyes, shoulders), split into white noise, temporally correlated
  drift (AR(1), ~0.25 s) and a per-sequence bias; a little larger where the body hides the
  joint (MediaPipe: median error 1.9 % of the person's size there, 1.4 % in plain view);
- confidently wrong left/right swaps: both arms, both legs or the whole body's sides exchanged
  for 0.15-1 s, with the confidence of correct joints (MediaPipe: 4.4 % of view-frames with the
  arms swapped, 4.0 % with the legs, mostly together), a little more often in profile views;
- gross outliers, mostly of wrists and elbows (MediaPipe's wrists: 19 % of frames off by more
  than 5 % of the person's size against 2 % for the eyes);
- a confidence like MediaPipe's visibility score: drawn per joint from MediaPipe's measured
  distribution (face, shoulders and hips ~0.999; elbows, wrists, knees and ankles lower, wrists
  below 0.3 one frame in ten), slowly varying, and independent of which side faces away and of
  the error (MediaPipe: correlation of its logit with the occlusion -0.07, with the error -0.11),
  so the confidence carries no depth cue a real detector's lacks;
- joints outside the image are still guessed, as MediaPipe does, with a larger error and a low
  confidence; the person is lost (every joint confidence 0, x = y = 0) for runs of frames now
  and then, and whenever most of the body is outside the image.

``error_scale`` scales every error magnitude and the rates of swaps, outliers and lost frames:
1.0 is a good detector on Human3.6M (about 5 px mean error for a person ~400 px tall in a 1000 px
image, like CPN); MediaPipe on the Pose2Sim demos measures ~1.5 (median error 1.5 % of the
person's size against 1.0 % here at 1.0, an upper bound: the triangulated reference has errors
of its own); 0 gives exact projections with confidence 1.
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
OCCLUDED_JITTER = 0.3  # extra jitter of a joint the body hides (MediaPipe: 1.86 / 1.44 - 1)
SWAPS_PER_SECOND = 0.09  # left/right swap events at error_scale 1, weighted to profile views
SWAP_SECONDS = (0.15, 1.0)  # how long a swap lasts
# what a swap exchanges (coco_17 left-side indices, each with its mirror) and how often
SWAP_GROUPS = ((5, 7, 9), (11, 13, 15), (1, 3, 5, 7, 9, 11, 13, 15))
SWAP_GROUP_SHARES = (0.25, 0.25, 0.5)  # arms, legs, the whole body's sides
OUTLIER_RATE = np.full(17, 0.002)  # per joint and frame: a joint snaps to a wrong place ...
OUTLIER_RATE[[7, 8]] = 0.015  # ... far more often for the elbows
OUTLIER_RATE[[9, 10]] = 0.035  # ... and wrists (hands are small and fast)
OUTLIER_CONTINUES = 0.6  # chance an outlier lasts another frame
LOST_RATE = 0.005  # chance per frame that the person is not found (runs of frames)
OUTSIDE_JITTER = 3.0  # a joint outside the image is a guess: this much more jitter
# MediaPipe's visibility per joint group, as quantiles at CONFIDENCE_LEVELS (measured on the
# Pose2Sim demos, left and right pooled; the 0 and 1 levels are the assumed range)
CONFIDENCE_LEVELS = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0])
_CONFIDENCE_QUANTILES = {
    "face": (0.99, 0.997, 0.998, 0.999, 0.9995, 0.9997, 0.9998, 0.9999, 1.0),
    "shoulder": (0.99, 0.9977, 0.999, 0.9993, 0.9995, 0.9998, 0.99995, 1.0, 1.0),
    "elbow": (0.1, 0.44, 0.56, 0.77, 0.90, 0.954, 0.988, 0.9976, 0.9995),
    "wrist": (0.02, 0.089, 0.296, 0.689, 0.789, 0.923, 0.970, 0.991, 0.999),
    "hip": (0.99, 0.9987, 0.999, 0.9993, 0.9995, 0.9997, 0.9998, 0.9999, 1.0),
    "knee": (0.3, 0.64, 0.71, 0.82, 0.90, 0.966, 0.985, 0.9935, 0.999),
    "ankle": (0.4, 0.766, 0.821, 0.863, 0.91, 0.9625, 0.98, 0.990, 0.999),
}
CONFIDENCE_QUANTILES = np.array([_CONFIDENCE_QUANTILES[
    "face" if n in ("nose", "leye", "reye", "lear", "rear") else n[1:]] for n in _COCO.joint_names])
"""(17, len(CONFIDENCE_LEVELS)) the confidence distribution of each coco_17 joint."""
OUTSIDE_CONFIDENCE = (0.02, 0.4)  # uniform range of a guessed joint's confidence
CONFIDENCE_HZ = 0.5  # the confidence drifts slowly (MediaPipe smooths its landmarks over time)


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

    truth: (T, 17, 3) world COCO-17 keypoints (mm). Confidence 0 with x = y = 0: not found.
    """
    T = truth.shape[0]
    uv = camera.project(truth.astype(np.float64))
    w, h = camera.image_size
    # person size in pixels: height of the keypoints' box, smoothed over time
    size = gaussian_filter1d(np.ptp(uv[..., 1], axis=1) + 0.3 * np.ptp(uv[..., 0], axis=1),
                             max(0.3 * fps, 0.5), mode="nearest")
    size = np.maximum(size, 20.0)
    occlusion, profile = visibility(truth, camera.position)
    outside = (uv[..., 0] < 0) | (uv[..., 0] >= w) | (uv[..., 1] < 0) | (uv[..., 1] >= h)
    k = error_scale
    sd = k * JITTER * size[:, None] * DIFFICULTY * (1.0 + OCCLUDED_JITTER * occlusion)  # (T, 17) per axis
    sd = sd * np.where(outside, OUTSIDE_JITTER, 1.0)
    noise = (np.sqrt(SHARES["white"]) * rng.standard_normal((T, 17, 2))
             + np.sqrt(SHARES["drift"]) * _ar1(rng, (17, 2), T, fps)
             + np.sqrt(SHARES["bias"]) * rng.standard_normal((1, 17, 2)))
    det = uv + sd[..., None] * noise
    _swap_sides(det, profile, k, fps, rng)
    _add_outliers(det, uv, size, k, rng)
    confidence = _confidence(rng, T, fps) if k > 0 else np.ones((T, 17))
    if k > 0:
        confidence = np.where(outside, rng.uniform(*OUTSIDE_CONFIDENCE, (T, 17)), confidence)
    # the person is lost now and then, in runs, and when most of the body is out of view
    lost = ndtr(smooth_noise(rng, T, fps, (), 1.0)) < k * LOST_RATE
    lost |= outside.mean(axis=1) > 0.5
    out = np.concatenate([det, confidence[..., None]], axis=-1)
    out[lost] = 0.0
    return out.astype(np.float32)


def _swap_sides(det: np.ndarray, profile: np.ndarray, k: float, fps: float, rng) -> None:
    """Exchange left and right of the arms, the legs or the whole body in ``det`` (T, 17, 2)
    for runs of frames, in place; the swapped joints keep their (high) confidence."""
    T = det.shape[0]
    n_swaps = rng.poisson(k * SWAPS_PER_SECOND * T / fps)
    if not n_swaps:
        return
    p = profile + 0.5
    for start in rng.choice(T, size=n_swaps, p=p / p.sum()):
        group = np.array(SWAP_GROUPS[rng.choice(len(SWAP_GROUPS), p=SWAP_GROUP_SHARES)])
        mirror = np.array(_COCO.mirror)[group]
        stop = min(T, start + max(int(rng.uniform(*SWAP_SECONDS) * fps), 1))
        det[start:stop, group], det[start:stop, mirror] = det[start:stop, mirror].copy(), det[start:stop, group].copy()


def _add_outliers(det: np.ndarray, uv: np.ndarray, size: np.ndarray, k: float, rng) -> None:
    """Gross outliers in place: a joint jumps 5-25 % of the person's size off for a few frames."""
    T = det.shape[0]
    outlier = rng.random((T, 17)) < k * OUTLIER_RATE
    for t in range(1, T):
        outlier[t] |= outlier[t - 1] & (rng.random(17) < OUTLIER_CONTINUES)
    if outlier.any():
        angle = rng.uniform(0, 2 * np.pi, outlier.sum())
        radius = rng.uniform(0.05, 0.25, outlier.sum()) * np.broadcast_to(size[:, None], (T, 17))[outlier]
        det[outlier] = uv[outlier] + radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)


def _confidence(rng, T: int, fps: float) -> np.ndarray:
    """(T, 17) confidences drawn from each joint's MediaPipe distribution, slowly varying and
    independent of the pose, the view and the error."""
    u = ndtr(smooth_noise(rng, T, fps, (17,), CONFIDENCE_HZ))
    out = np.empty((T, 17))
    for j in range(17):
        out[:, j] = np.interp(u[:, j], CONFIDENCE_LEVELS, CONFIDENCE_QUANTILES[j])
    return out


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
