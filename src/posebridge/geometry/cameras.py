"""Cameras: Brown-Conrady projection (numpy and torch), world <-> camera, VideoPose3D normalisation.

Conventions (see docs/internals.md):

- World frame Z up, millimetres. Camera frame OpenCV: x right, y down, z forward.
  ``X_cam = R @ X_world + t`` (``R`` world -> camera rotation, ``t`` in mm).
- Intrinsics ``(fx, fy, cx, cy)`` in pixels; distortion ``(k1, k2, k3, p1, p2)`` under one of
  two *distortion models* (:data:`DISTORTION_MODELS`), for normalised coordinates
  ``x = X/Z, y = Y/Z``::

      r2     = x^2 + y^2
      radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
      opencv:            x_d = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
                         y_d = y radial + p1 (r2 + 2 y^2) + 2 p2 x y
      h36m_videopose3d:  tan = p1 x + p2 y
                         x_d = x (radial + tan) + p1 r2
                         y_d = y (radial + tan) + p2 r2
      pixel  = (fx x_d + cx, fy y_d + cy)

  ``opencv`` is OpenCV's Brown-Conrady model (Panoptic, Pose2Sim, synthetic rigs);
  ``h36m_videopose3d`` is the tangential formula of the Human3.6M MATLAB code as VideoPose3D
  re-implements it (``project_to_2d`` in its ``common/camera.py``, Pavllo et al., CVPR 2019), with
  which VideoPose3D's ground-truth 2D of Human3.6M was computed. The two differ by up to ~0.6 px on
  the H36M cameras. Functions taking arrays of cameras take ``model`` as one name or as an array of
  codes (index into :data:`DISTORTION_MODELS`) aligned like the other camera parameters.

- Depth clamp: before dividing, ``Z`` is replaced by
  ``max(Z, MIN_DEPTH_RATIO * (|X| + |Y|), MIN_DEPTH)``. This leaves every point within ~89.4
  degrees of the optical axis untouched (any real lens' field of view) and bounds ``|x|, |y|`` by
  ``1 / MIN_DEPTH_RATIO`` for points at or behind the image plane (``Z <= 0``), so that projections
  and their gradients stay finite (also in float32, with the distortion polynomial) instead of
  dividing by zero. Such points get meaningless pixels: mask them out of losses.
- Parameter broadcasting: camera parameter arrays align with the *leading* dimensions of the
  points, VideoPose3D style. ``X`` (B, T, J, 3) with ``intrinsics`` (B, 4) uses camera b for all of
  X[b]; (4,) applies to everything; parameters with as many dimensions as ``X`` broadcast normally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from posebridge.errors import ConfigError

__all__ = [
    "Camera",
    "MIN_DEPTH",
    "MIN_DEPTH_RATIO",
    "project_points",
    "project_points_torch",
    "distort",
    "distort_torch",
    "undistort",
    "undistort_points",
    "normalize_screen",
    "image_coordinates",
    "videopose3d_intrinsics",
    "H36M_CAMERAS",
    "H36M_CAMERA_IDS",
    "H36M_FPS",
    "DISTORTION_MODELS",
    "distortion_model_code",
    "flip_distortion",
]

DISTORTION_MODELS = ("opencv", "h36m_videopose3d")
"""Known lens distortion models (module docstring); a model's code is its position here."""

MIN_DEPTH_RATIO = 1e-2
"""Depth is clamped to at least this fraction of ``|X| + |Y|`` before the perspective division."""
MIN_DEPTH = 1e-6
"""Absolute lower bound of the clamped depth (only matters for points at the camera centre)."""


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _align(param, ndim: int):
    """Insert singleton axes after the leading axes of ``param`` (..., P) so it has ``ndim`` axes
    (camera parameters align with the leading dimensions of the points)."""
    if param.ndim <= 1 or param.ndim >= ndim:
        return param
    shape = tuple(param.shape[:-1]) + (1,) * (ndim - param.ndim) + (param.shape[-1],)
    return param.reshape(shape)


def _check_last(x, n: int, what: str):
    if x.shape[-1] != n:
        raise ValueError(f"{what} must have shape (..., {n}), got {tuple(x.shape)}")


def distortion_model_code(model) -> int:
    """The code of a distortion model name (its index in :data:`DISTORTION_MODELS`); ConfigError
    for an unknown name."""
    if model is None:
        return 0
    if isinstance(model, (int, np.integer)) and 0 <= int(model) < len(DISTORTION_MODELS):
        return int(model)
    if model not in DISTORTION_MODELS:
        raise ConfigError(f"unknown distortion model {model!r} (known: {', '.join(DISTORTION_MODELS)})")
    return DISTORTION_MODELS.index(model)


def _videopose3d_mask(model, ndim: int, like):
    """Where the h36m_videopose3d formula applies, for points with ``ndim`` - 1 coordinate axes:
    a Python bool for one model (None = opencv), else a bool array of the per-camera codes
    aligned with the leading dimensions (numpy or torch like ``like``)."""
    if model is None or isinstance(model, (str, int, np.integer)):
        return distortion_model_code(model) == 1
    if _is_torch(model):
        codes = model.to(like.device) if _is_torch(like) else model.cpu().numpy()
    else:
        codes = np.asarray([distortion_model_code(m) for m in np.ravel(model)]).reshape(np.shape(model))
        if _is_torch(like):
            import torch

            codes = torch.as_tensor(codes, device=like.device)
    return _align(codes.reshape(*codes.shape, 1), ndim)[..., 0] == 1


def _lens(x, y, k1, k2, k3, p1, p2, videopose3d=False):
    """Distortion of normalised coordinates (module docstring), numpy or torch alike.

    ``videopose3d``: False (opencv), True (h36m_videopose3d) or a bool array choosing per point.
    Returns x_d, y_d and the terms r2 and radial (Newton's method in :func:`undistort` reuses them).
    """
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    if videopose3d is True:
        tan = p1 * x + p2 * y
        return x * (radial + tan) + p1 * r2, y * (radial + tan) + p2 * r2, r2, radial
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    if videopose3d is False:
        return xd, yd, r2, radial
    vx, vy, _, _ = _lens(x, y, k1, k2, k3, p1, p2, True)
    where = _where_fn(videopose3d)
    return where(videopose3d, vx, xd), where(videopose3d, vy, yd), r2, radial


def _where_fn(mask):
    if _is_torch(mask):
        import torch

        return torch.where
    return np.where


def _lens_jacobian(x, y, k1, k2, k3, p1, p2, r2, radial, videopose3d):
    """d(x_d, y_d) / d(x, y) of :func:`_lens` as (jxx, jxy, jyx, jyy) (numpy)."""
    dradial = k1 + r2 * (2 * k2 + 3 * k3 * r2)  # d radial / d r2
    # opencv: the cross terms are equal
    cross = 2 * x * y * dradial + 2 * p1 * x + 2 * p2 * y
    cv = (radial + 2 * x * x * dradial + 2 * p1 * y + 6 * p2 * x, cross, cross,
          radial + 2 * y * y * dradial + 6 * p1 * y + 2 * p2 * x)
    tan = p1 * x + p2 * y
    vp = (radial + tan + 2 * x * x * dradial + 3 * p1 * x, 2 * x * y * dradial + p2 * x + 2 * p1 * y,
          2 * x * y * dradial + p1 * y + 2 * p2 * x, radial + tan + 2 * y * y * dradial + 3 * p2 * y)
    return tuple(np.where(videopose3d, v, c) for v, c in zip(vp, cv))


def flip_distortion(distortion, model=None):
    """Coefficients (..., 5) of the horizontally mirrored lens (numpy or torch, a copy).

    Mirroring the image (``u' = width - u``, so ``x' = -x``) keeps ``x_d`` odd in x only if the
    tangential coefficient paired with x changes sign: p2 for opencv (its ``p2 (r2 + 2 x^2)`` term
    in x_d), p1 for h36m_videopose3d (its ``p1 x`` in ``tan`` and ``p1 r2`` in x_d). Everything
    else is unchanged, so flipping twice gives back the original. ``model``: one name or codes
    aligned with the leading dimensions of ``distortion``.
    """
    if _is_torch(distortion):
        out = distortion.clone()
    else:
        out = np.array(distortion, dtype=np.float64, copy=True)
    videopose3d = _videopose3d_mask(model, out.ndim, out)
    if isinstance(videopose3d, bool):
        column = 3 if videopose3d else 4
        out[..., column] = -out[..., column]
        return out
    where = _where_fn(videopose3d)
    p1, p2 = out[..., 3].clone() if _is_torch(out) else out[..., 3].copy(), out[..., 4] * 1
    out[..., 3] = where(videopose3d, -p1, p1)
    out[..., 4] = where(videopose3d, p2, -p2)
    return out


# ---------------------------------------------------------------------- numpy projection


def _clamped_depth_np(X):
    lim = MIN_DEPTH_RATIO * (np.abs(X[..., 0]) + np.abs(X[..., 1]))
    return np.maximum(np.maximum(X[..., 2], lim), MIN_DEPTH)


def distort(xy, distortion, model=None):
    """Apply lens distortion to normalised coordinates ``xy`` (..., 2); ``distortion`` (..., 5)
    = (k1, k2, k3, p1, p2), aligned with the leading dimensions of ``xy``; ``model`` a name of
    :data:`DISTORTION_MODELS` (None = opencv) or per-camera codes aligned the same way."""
    xy = np.asarray(xy)
    xy = xy.astype(np.result_type(xy, np.float32), copy=False)
    d = np.asarray(distortion, dtype=xy.dtype)
    _check_last(xy, 2, "xy")
    _check_last(d, 5, "distortion")
    d = _align(d, xy.ndim)
    videopose3d = _videopose3d_mask(model, xy.ndim, xy)
    xd, yd, _, _ = _lens(xy[..., 0], xy[..., 1], *(d[..., i] for i in range(5)), videopose3d)
    return np.stack([xd, yd], axis=-1)


def project_points(X_cam, intrinsics, distortion=None, model=None):
    """Project camera-frame points (..., 3) to pixels (..., 2).

    ``intrinsics`` (..., 4) fx, fy, cx, cy; ``distortion`` (..., 5) k1, k2, k3, p1, p2 or None for
    a pinhole camera; ``model`` its distortion model (name or codes, None = opencv). Parameters align with the leading dimensions of ``X_cam`` (module docstring);
    depth is clamped as described there.
    """
    X = np.asarray(X_cam)
    X = X.astype(np.result_type(X, np.float32), copy=False)
    _check_last(X, 3, "X_cam")
    K = _align(np.asarray(intrinsics, dtype=X.dtype), X.ndim)
    _check_last(K, 4, "intrinsics")
    z = _clamped_depth_np(X)
    xy = X[..., :2] / z[..., None]
    if distortion is not None:
        d = np.asarray(distortion, dtype=X.dtype)
        _check_last(d, 5, "distortion")
        xy = distort(xy, _align(d, X.ndim), model)
    return xy * K[..., 0:2] + K[..., 2:4]


def undistort(xy_distorted, distortion, iterations: int = 10, model=None):
    """Invert :func:`distort` by Newton's method (analytic 2x2 Jacobian of either model), starting
    from the distorted coordinates. Normalised coordinates (..., 2) in and out, float64 inside."""
    xd = np.asarray(xy_distorted, dtype=np.float64)
    d = np.asarray(distortion, dtype=np.float64)
    _check_last(xd, 2, "xy_distorted")
    _check_last(d, 5, "distortion")
    d = _align(d, xd.ndim)
    k1, k2, k3, p1, p2 = (d[..., i] for i in range(5))
    videopose3d = _videopose3d_mask(model, xd.ndim, xd)
    x, y = xd[..., 0].copy(), xd[..., 1].copy()
    for _ in range(int(iterations)):
        x_now, y_now, r2, radial = _lens(x, y, k1, k2, k3, p1, p2, videopose3d)
        jxx, jxy, jyx, jyy = _lens_jacobian(x, y, k1, k2, k3, p1, p2, r2, radial, videopose3d)
        fx = x_now - xd[..., 0]
        fy = y_now - xd[..., 1]
        det = jxx * jyy - jxy * jyx
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        x = x - (jyy * fx - jxy * fy) / det
        y = y - (jxx * fy - jyx * fx) / det
    return np.stack([x, y], axis=-1)


def undistort_points(uv, intrinsics, distortion, iterations: int = 10, normalised: bool = False,
                     model=None):
    """Remove lens distortion from pixel coordinates (..., 2).

    Returns the pixels an ideal pinhole camera with the same intrinsics would see (or, with
    ``normalised=True``, the normalised ray coordinates ``(X/Z, Y/Z)``). Newton iterations; for
    H36M-like lenses 10 iterations are accurate far below 1e-3 px anywhere in the image.
    ``model``: the distortion model (name or per-camera codes; None = opencv).
    """
    uv = np.asarray(uv, dtype=np.float64)
    _check_last(uv, 2, "uv")
    K = _align(np.asarray(intrinsics, dtype=np.float64), uv.ndim)
    _check_last(K, 4, "intrinsics")
    xd = (uv - K[..., 2:4]) / K[..., 0:2]
    xy = undistort(xd, distortion, iterations, model)
    return xy if normalised else xy * K[..., 0:2] + K[..., 2:4]


# ---------------------------------------------------------------------- torch projection


def _param_torch(p, like):
    import torch

    if isinstance(p, np.ndarray) and not p.flags.writeable:  # shared read-only constants
        p = p.copy()
    return torch.as_tensor(p, dtype=like.dtype, device=like.device)


def distort_torch(xy, distortion, model=None):
    """Torch version of :func:`distort` (differentiable)."""
    import torch

    d = _align(_param_torch(distortion, xy), xy.ndim)
    _check_last(xy, 2, "xy")
    _check_last(d, 5, "distortion")
    videopose3d = _videopose3d_mask(model, xy.ndim, xy)
    xd, yd, _, _ = _lens(xy[..., 0], xy[..., 1], *d.unbind(-1), videopose3d)
    return torch.stack([xd, yd], dim=-1)


def project_points_torch(X_cam, intrinsics, distortion=None, model=None):
    """Differentiable torch version of :func:`project_points`, same formula and depth clamp.

    ``X_cam`` (B, ..., 3); ``intrinsics`` (B, 4) / ``distortion`` (B, 5) (one camera per batch
    element), (4,) / (5,), or any shapes that broadcast after aligning with the leading
    dimensions. Parameters may be numpy arrays; they are converted to ``X_cam``'s dtype/device.
    ``model``: the distortion model, a name or per-camera codes (None = opencv).
    """
    import torch

    _check_last(X_cam, 3, "X_cam")
    K = _align(_param_torch(intrinsics, X_cam), X_cam.ndim)
    _check_last(K, 4, "intrinsics")
    lim = MIN_DEPTH_RATIO * (X_cam[..., 0].abs() + X_cam[..., 1].abs())
    z = torch.clamp(torch.maximum(X_cam[..., 2], lim), min=MIN_DEPTH)
    xy = X_cam[..., :2] / z.unsqueeze(-1)
    if distortion is not None:
        xy = distort_torch(xy, _align(_param_torch(distortion, X_cam), X_cam.ndim), model)
    return xy * K[..., 0:2] + K[..., 2:4]


# ---------------------------------------------------------------------- VideoPose3D conventions


def _wh_like(X, width, height):
    if _is_torch(X):
        w = _param_torch(width, X)
        h = _param_torch(height, X)
    else:
        w = np.asarray(width, dtype=X.dtype)
        h = np.asarray(height, dtype=X.dtype)
    return w, h


def _float_array(X):
    if _is_torch(X):
        return X if X.is_floating_point() else X.float()
    X = np.asarray(X)
    return X.astype(np.result_type(X, np.float32), copy=False)


def normalize_screen(X_px, width, height):
    """VideoPose3D screen normalisation ``X / w * 2 - [1, h / w]`` (numpy or torch).

    Maps x in [0, w] to [-1, 1] and y to [-h/w, h/w], keeping the aspect ratio. Only channels 0 and
    1 are transformed; further channels (e.g. confidence) pass through. ``width`` / ``height`` are
    scalars or arrays broadcastable against ``X_px[..., 0]``.
    """
    X = _float_array(X_px)
    if X.shape[-1] < 2:
        raise ValueError(f"X_px must have shape (..., >=2), got {tuple(X.shape)}")
    w, h = _wh_like(X, width, height)
    x = X[..., 0] / w * 2 - 1
    y = X[..., 1] / w * 2 - h / w
    return _replace_xy(X, x, y)


def image_coordinates(X_norm, width, height):
    """Inverse of :func:`normalize_screen`: ``(X + [1, h / w]) * w / 2`` (numpy or torch)."""
    X = _float_array(X_norm)
    if X.shape[-1] < 2:
        raise ValueError(f"X_norm must have shape (..., >=2), got {tuple(X.shape)}")
    w, h = _wh_like(X, width, height)
    x = (X[..., 0] + 1) * w / 2
    y = (X[..., 1] + h / w) * w / 2
    return _replace_xy(X, x, y)


def _replace_xy(X, x, y):
    if _is_torch(X):
        import torch

        xy = torch.stack(torch.broadcast_tensors(x, y), dim=-1)
        if X.shape[-1] == 2:
            return xy
        rest = X[..., 2:].expand(*xy.shape[:-1], X.shape[-1] - 2)
        return torch.cat([xy, rest], dim=-1)
    xy = np.stack(np.broadcast_arrays(x, y), axis=-1)
    if X.shape[-1] == 2:
        return xy
    rest = np.broadcast_to(X[..., 2:], xy.shape[:-1] + (X.shape[-1] - 2,))
    return np.concatenate([xy, rest.astype(xy.dtype)], axis=-1)


def videopose3d_intrinsics(camera: "Camera") -> np.ndarray:
    """The camera as VideoPose3D's 9-vector ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` in its
    normalised screen frame: ``f * 2 / w``, ``c`` normalised like a point (:func:`normalize_screen`).
    Distortion coefficients are copied unchanged (float64); VideoPose3D's ``project_to_2d`` applies
    them with the ``h36m_videopose3d`` model, so only such a camera projects there as here."""
    w, h = camera.image_size
    fx, fy, cx, cy = camera.intrinsics
    c = normalize_screen(np.array([cx, cy], dtype=np.float64), w, h)
    return np.concatenate([[fx * 2 / w, fy * 2 / w], c, camera.distortion]).astype(np.float64)


# ---------------------------------------------------------------------- Camera


def _vec(value, n: int, what: str, name: str) -> np.ndarray:
    try:
        a = np.array(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"camera {name!r}: {what} is not numeric: {value!r}") from None
    if a.shape != (n,):
        raise ConfigError(f"camera {name!r}: {what} must have {n} values, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"camera {name!r}: {what} has non-finite values")
    return a


@dataclass(eq=False)
class Camera:
    """A calibrated camera.

    Attributes:
        name: identifier (e.g. ``"54138969"``).
        intrinsics: (4,) fx, fy, cx, cy in pixels.
        distortion: (5,) k1, k2, k3, p1, p2; zeros for a pinhole camera.
        R: (3, 3) world -> camera rotation (proper rotation, checked to 1e-3).
        t: (3,) world -> camera translation, mm: ``X_cam = R @ X_world + t``.
        image_size: (width, height) in pixels.
        distortion_model: how ``distortion`` applies, one of :data:`DISTORTION_MODELS`
            (``opencv`` unless the calibration says otherwise: Human3.6M's is ``h36m_videopose3d``).

    Arrays are stored as float64 copies. Equality compares names, sizes and values exactly.
    """

    name: str
    intrinsics: np.ndarray
    distortion: np.ndarray
    R: np.ndarray
    t: np.ndarray
    image_size: tuple[int, int]
    distortion_model: str = "opencv"

    def __post_init__(self):
        self.name = str(self.name)
        self.distortion_model = DISTORTION_MODELS[distortion_model_code(self.distortion_model)]
        self.intrinsics = _vec(self.intrinsics, 4, "intrinsics", self.name)
        self.distortion = (
            np.zeros(5) if self.distortion is None
            else _vec(self.distortion, 5, "distortion", self.name)
        )
        self.R = _vec(self.R, 9, "R", self.name).reshape(3, 3)
        self.t = _vec(self.t, 3, "t", self.name)
        if not (np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-3) and np.linalg.det(self.R) > 0):
            raise ConfigError(f"camera {self.name!r}: R is not a rotation matrix")
        try:
            w, h = (int(v) for v in self.image_size)
        except (TypeError, ValueError):
            raise ConfigError(
                f"camera {self.name!r}: image_size must be (width, height), got {self.image_size!r}"
            ) from None
        if w <= 0 or h <= 0:
            raise ConfigError(f"camera {self.name!r}: image_size must be positive, got {(w, h)}")
        self.image_size = (w, h)
        if self.intrinsics[0] <= 0 or self.intrinsics[1] <= 0:
            raise ConfigError(f"camera {self.name!r}: focal lengths must be positive")

    def __eq__(self, other):
        if not isinstance(other, Camera):
            return NotImplemented
        return (
            self.name == other.name
            and self.image_size == other.image_size
            and self.distortion_model == other.distortion_model
            and all(
                np.array_equal(getattr(self, k), getattr(other, k))
                for k in ("intrinsics", "distortion", "R", "t")
            )
        )

    __hash__ = None

    # ------------------------------------------------------------------ geometry

    @property
    def width(self) -> int:
        return self.image_size[0]

    @property
    def height(self) -> int:
        return self.image_size[1]

    @property
    def K(self) -> np.ndarray:
        """The 3x3 intrinsic matrix."""
        fx, fy, cx, cy = self.intrinsics
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates (mm): ``-R^T t``."""
        return -self.R.T @ self.t

    def _params(self, like):
        if _is_torch(like):
            return _param_torch(self.R, like), _param_torch(self.t, like)
        dtype = np.result_type(like, np.float32)
        return self.R.astype(dtype), self.t.astype(dtype)

    def world_to_camera(self, X):
        """World points (..., 3) -> camera frame (numpy or torch)."""
        X = _float_array(X)
        _check_last(X, 3, "X")
        R, t = self._params(X)
        return X @ R.T + t

    def camera_to_world(self, X):
        """Camera-frame points (..., 3) -> world (numpy or torch)."""
        X = _float_array(X)
        _check_last(X, 3, "X")
        R, t = self._params(X)
        return (X - t) @ R

    def project_camera(self, X_cam):
        """Camera-frame points (..., 3) -> pixels (..., 2), with distortion (numpy or torch)."""
        if _is_torch(X_cam):
            return project_points_torch(X_cam, self.intrinsics, self.distortion, self.distortion_model)
        return project_points(X_cam, self.intrinsics, self.distortion, self.distortion_model)

    def undistort_pixels(self, uv, normalised: bool = False):
        """Pixels (..., 2) -> those of the ideal pinhole camera (or normalised rays), see
        :func:`undistort_points`; this camera's distortion model applies."""
        return undistort_points(uv, self.intrinsics, self.distortion, normalised=normalised,
                                model=self.distortion_model)

    def project(self, X_world):
        """World points (..., 3) -> pixels (..., 2), with distortion (numpy or torch)."""
        return self.project_camera(self.world_to_camera(X_world))

    def flipped(self, world_axis: int = 0) -> "Camera":
        """The camera that sees the horizontal mirror image of this one.

        With ``F = diag(-1, 1, 1)`` (camera x) and ``M`` negating world axis ``world_axis`` (x by
        default, as :meth:`Skeleton.flip` does), the new camera has ``R' = F R M`` (still a proper
        rotation: two reflections) and ``t' = F t``, so ``X'_cam = F X_cam`` for the mirrored world
        point ``M X``. In the image, ``u' = width - u`` needs ``x'_d = -x_d``: ``cx -> width - cx``
        and the tangential coefficient paired with x changes sign (:func:`flip_distortion`: p2 for
        opencv, p1 for h36m_videopose3d, as VideoPose3D's flip augmentation negates its ``p[0]``);
        k1, k2, k3, the other p, fx, fy and cy are unchanged. Flipping twice gives back the
        original camera.
        """
        F = np.diag([-1.0, 1.0, 1.0])
        M = np.eye(3)
        M[world_axis, world_axis] = -1.0
        fx, fy, cx, cy = self.intrinsics
        return Camera(
            name=self.name,
            intrinsics=np.array([fx, fy, self.width - cx, cy]),
            distortion=flip_distortion(self.distortion, self.distortion_model),
            R=F @ self.R @ M,
            t=F @ self.t,
            image_size=self.image_size,
            distortion_model=self.distortion_model,
        )

    @classmethod
    def look_at(
        cls,
        name: str,
        position: Sequence[float],
        target: Sequence[float],
        intrinsics: Sequence[float],
        distortion: Sequence[float] | None,
        image_size: tuple[int, int],
        up: Sequence[float] = (0.0, 0.0, 1.0),
        distortion_model: str = "opencv",
    ) -> "Camera":
        """A camera at ``position`` (world, mm) whose optical axis passes through ``target``, with
        image "up" (-y) along the projection of ``up`` (world Z by default)."""
        position = np.asarray(position, dtype=np.float64)
        forward = np.asarray(target, dtype=np.float64) - position
        n = np.linalg.norm(forward)
        if not n > 0:
            raise ConfigError(f"camera {name!r}: look_at position and target coincide")
        z = forward / n
        right = np.cross(z, np.asarray(up, dtype=np.float64))
        n = np.linalg.norm(right)
        if not n > 1e-9:
            raise ConfigError(f"camera {name!r}: look_at viewing direction is parallel to up")
        x = right / n
        y = np.cross(z, x)  # image down
        R = np.stack([x, y, z])
        return cls(name, intrinsics, distortion, R, -R @ position, image_size, distortion_model)

    # ------------------------------------------------------------------ storage

    def to_dict(self) -> dict:
        """Plain-Python representation (JSON/YAML-safe) for storage."""
        return {
            "name": self.name,
            "intrinsics": [float(v) for v in self.intrinsics],
            "distortion": [float(v) for v in self.distortion],
            "R": [[float(v) for v in row] for row in self.R],
            "t": [float(v) for v in self.t],
            "image_size": [int(v) for v in self.image_size],
            "distortion_model": self.distortion_model,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        """Inverse of :meth:`to_dict`; ``distortion`` may be missing (pinhole), ``distortion_model``
        too (opencv: descriptions written before models were recorded)."""
        missing = [k for k in ("name", "intrinsics", "R", "t", "image_size") if k not in d]
        if missing:
            raise ConfigError(f"camera description lacks {', '.join(missing)}")
        return cls(
            name=d["name"],
            intrinsics=d["intrinsics"],
            distortion=d.get("distortion"),
            R=d["R"],
            t=d["t"],
            image_size=tuple(d["image_size"]),
            distortion_model=d.get("distortion_model", "opencv"),
        )


# ---------------------------------------------------------------------- Human3.6M


class _CameraIds(dict):
    """dict keyed by camera id strings that also accepts the ids as ints."""

    def __getitem__(self, key):
        return super().__getitem__(str(key))

    def __contains__(self, key):
        return super().__contains__(str(key))

    def get(self, key, default=None):
        return super().get(str(key), default)


H36M_FPS = 50

# Published Human3.6M calibration as VideoPose3D's common/h36m_dataset.py lists it (distortion in
# k1, k2, k3, p1, p2 order, applied with the h36m_videopose3d model). Extrinsics differ per subject
# and are left as identity here.
_H36M = [
    ("54138969", (1145.0494384765625, 1143.7811279296875), (512.54150390625, 515.4514770507812),
     (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
     (-0.0009756988729350269, -0.00142447161488235), (1000, 1002)),
    ("55011271", (1149.6756591796875, 1147.5916748046875), (508.8486328125, 508.0649108886719),
     (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
     (-0.0016190266469493508, -0.0027408944442868233), (1000, 1000)),
    ("58860488", (1149.1407470703125, 1148.7989501953125), (519.8158569335938, 501.40264892578125),
     (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
     (0.0014843869721516967, -0.0007599993259645998), (1000, 1000)),
    ("60457274", (1145.5113525390625, 1144.77392578125), (514.9682006835938, 501.88201904296875),
     (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
     (-0.0005872055771760643, -0.0018133620033040643), (1000, 1002)),
]


def _h36m_cameras() -> _CameraIds:
    cams = _CameraIds()
    for cid, f, c, k, p, size in _H36M:
        cam = Camera(cid, (*f, *c), (*k, *p), np.eye(3), np.zeros(3), size, "h36m_videopose3d")
        for a in (cam.intrinsics, cam.distortion, cam.R, cam.t):
            a.setflags(write=False)  # shared constants; use dataclasses.replace() to derive
        cams[cid] = cam
    return cams


H36M_CAMERAS = _h36m_cameras()
"""Human3.6M camera id -> Camera (intrinsics, distortion, image size; identity extrinsics). Keys
are id strings; int ids are accepted too (``H36M_CAMERAS[54138969]``)."""
H36M_CAMERA_IDS = tuple(H36M_CAMERAS)
