"""The affine-combining autoencoder (ACAE; Sárándi et al., WACV 2023, "Learning 3D Human Pose
Estimation from Dozens of Datasets using a Geometry-Aware Autoencoder to Bridge Between Skeleton
Formats"): one set of latent points that explains the joints of every skeleton format.

Encoder and decoder are single matrices, no bias and no nonlinearity. Every latent point is an
affine combination of joints (the encoder's columns sum to 1) and every joint an affine combination
of latent points (the decoder's columns sum to 1), so the whole map commutes with any affine map of
3D space: rotation, translation, scaling.

Chirality: joints and latents are ordered left, right, centre internally (left/right pairs found by
name, ``l<x>`` / ``r<x>``) and each matrix is built from shared blocks

    [[S, Q, X],
     [Q, S, X],
     [C, C, Z]]

so that mirroring the input (swap left/right, negate x) mirrors the latents exactly, and decoding
mirrored latents gives mirrored joints. Public arrays always use the caller's joint order; latents
are ordered left sided, right sided (``right[k]`` mirrors ``left[k]``), centre.

Units: camera-space millimetres in and out. The training objective is in metres like the paper's,
because its regulariser weight 0.6 was chosen against an L1 error measured in metres.
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from posebridge.errors import ConfigError, DataError

__all__ = [
    "AffineCombiningAutoencoder",
    "chiral_order",
    "mirror_permutation",
    "mirror_points",
    "projected_l1_loss",
    "l1_3d_loss",
    "regularizer",
    "objective",
    "fit_acae",
    "reconstruction_error",
    "pca_baseline",
    "mean_pose_baseline",
    "REGULARIZER_WEIGHT",
]

REGULARIZER_WEIGHT = 0.6  # the paper's lambda, against an L1 error in metres
MM_PER_M = 1000.0
MIN_DEPTH_MM = 1.0  # predicted depths are clamped here so a point behind the camera cannot divide by 0


# ---------------------------------------------------------------------------------------------
# Left/right pairing by name

def _partner_name(name: str) -> str | None:
    """``h36m_17/lhip`` -> ``h36m_17/rhip``: swap the side letter of the part after the last '/'."""
    prefix, sep, base = name.rpartition("/")
    if len(base) < 2 or base[0] not in "lr":
        return None
    return prefix + sep + ("r" if base[0] == "l" else "l") + base[1:]


def chiral_order(joint_names: Sequence[str]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Split joints into (left, right, centre) index tuples, in the order the names are given.

    Pairs are found by name on the part after the last ``/`` (``smpl_24/lhip`` pairs with
    ``smpl_24/rhip``, never with another format's ``rhip``); ``right[k]`` is the partner of
    ``left[k]``. A sided name without a partner (``rear`` without ``lear``) is a centre joint.
    """
    names = [str(n) for n in joint_names]
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"duplicate joint names {dup}")
    left, right, centre = [], [], []
    for i, n in enumerate(names):
        j = index.get(_partner_name(n) or "")
        if j is None:
            centre.append(i)
        elif n.rpartition("/")[2].startswith("l"):
            left.append(i)
            right.append(j)
    return tuple(left), tuple(right), tuple(centre)


def mirror_permutation(joint_names: Sequence[str]) -> tuple[int, ...]:
    """``perm[i]`` is the joint that joint ``i`` becomes after a horizontal flip (by name, see
    :func:`chiral_order`); centre joints map to themselves."""
    left, right, _ = chiral_order(joint_names)
    perm = list(range(len(joint_names)))
    for a, b in zip(left, right):
        perm[a], perm[b] = b, a
    return tuple(perm)


def mirror_points(points: torch.Tensor, permutation: Sequence[int]) -> torch.Tensor:
    """Mirror (..., P, 3) points horizontally: reorder by ``permutation`` and negate x."""
    out = points[..., list(permutation), :].clone()
    out[..., 0] = -out[..., 0]
    return out


def _side_swap(pairs: int, n: int) -> tuple[int, ...]:
    """The flip of n items ordered (``pairs`` left, ``pairs`` right, centre): left k <-> right k."""
    return (*range(pairs, 2 * pairs), *range(pairs), *range(2 * pairs, n))


# ---------------------------------------------------------------------------------------------
# The model

class AffineCombination(nn.Module):
    """A matrix (n_in x n_out) whose columns are affine combinations of the n_in inputs.

    Inputs and outputs are ordered left, right, centre: ``in_pairs`` left then ``in_pairs`` right
    inputs then ``in_centre`` centre inputs, likewise for outputs. Free weights ``w`` become the
    matrix by ``1/n_in + (w - column mean of w) / n_in``: the columns sum to exactly 1, the map is
    linear (no division by a sum that could approach zero) and an Adam step of ``lr`` moves a
    normalised weight by about ``lr / n_in``, as the paper's ``w / sum(w)`` does near its
    initialisation.

    Chiral: only the left-output columns and the centre-output columns are free; right-output
    columns are the left ones with the left and right input rows swapped, and a centre column uses
    one weight for a left input and its right partner. Both are exact copies, not merely equal
    after training, so mirror equivariance holds for any weights.
    """

    def __init__(self, in_pairs: int, in_centre: int, out_pairs: int, out_centre: int,
                 chiral: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        self.in_pairs, self.in_centre = in_pairs, in_centre
        self.out_pairs, self.out_centre = out_pairs, out_centre
        self.chiral = chiral
        n_in = 2 * in_pairs + in_centre
        n_out = 2 * out_pairs + out_centre

        def free(rows, cols):
            # U(0, 2) on the scale above: normalised weights in about (0, 2/n_in), a random,
            # near-convex start like the paper's U(-0.1, 1) / sum
            return nn.Parameter(2.0 * torch.rand(rows, cols, generator=generator))

        if chiral:
            self.sided = free(n_in, out_pairs)  # [S; Q; C]: the left outputs' columns
            self.centre_sided = free(in_pairs, out_centre)  # X: shared by a left input and its partner
            self.centre_centre = free(in_centre, out_centre)  # Z
            swap = torch.tensor(_side_swap(in_pairs, n_in), dtype=torch.long)
            self.register_buffer("swap_inputs", swap, persistent=False)
        else:
            self.weight = free(n_in, n_out)

    @staticmethod
    def _affine(w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        return (1.0 + w - w.mean(dim=0, keepdim=True)) / n

    def matrix(self) -> torch.Tensor:
        """The normalised (n_in, n_out) matrix; every column sums to 1."""
        if not self.chiral:
            return self._affine(self.weight)
        left = self._affine(self.sided)
        right = left[self.swap_inputs]
        x = self.centre_sided
        centre = self._affine(torch.cat([x, x, self.centre_centre], dim=0))
        return torch.cat([left, right, centre], dim=1)


class AffineCombiningAutoencoder(nn.Module):
    """Joints (..., J, 3) -> latent points (..., L, 3) -> joints, by affine combinations.

    Args:
        joint_names: the J joint names in the order of the points passed in; may carry a format
            prefix (``h36m_17/lhip``); left/right pairs are found on the part after the last ``/``.
        n_latent_sided: sided latent points, both sides together (20 left + 20 right = 40); must
            be even when ``chiral``.
        n_latent_center: centre latent points.
        chiral: share weights so that the model is mirror-equivariant.
        generator: random source of the initial weights (default: torch's global generator).
    """

    def __init__(self, joint_names: Sequence[str], n_latent_sided: int = 40, n_latent_center: int = 8,
                 chiral: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        self.joint_names = tuple(str(n) for n in joint_names)
        self.n_latent_sided, self.n_latent_center = int(n_latent_sided), int(n_latent_center)
        self.chiral = bool(chiral)
        if not self.joint_names:
            raise ConfigError("the autoencoder needs at least one joint")
        if min(self.n_latent_sided, self.n_latent_center) < 0 or self.num_latents < 1:
            raise ConfigError(
                f"latent counts must be >= 0 with at least one latent point; got sided="
                f"{n_latent_sided}, centre={n_latent_center}")
        if self.chiral and self.n_latent_sided % 2:
            raise ConfigError(f"n_latent_sided counts both sides and must be even; got {n_latent_sided}")

        left, right, centre = chiral_order(self.joint_names)
        # the matrices are built in (left, right, centre) order; row k of the caller's order is
        # internal row joint_unorder[k]
        unorder = np.argsort(left + right + centre)
        self.register_buffer("joint_unorder", torch.as_tensor(unorder, dtype=torch.long), persistent=False)
        pairs, n_centre = len(left), len(centre)
        if self.chiral:
            lat_pairs, lat_centre = self.n_latent_sided // 2, self.n_latent_center
        else:  # no sides: one unstructured block of latents
            lat_pairs, lat_centre = 0, self.n_latent_sided + self.n_latent_center
        self.encoder = AffineCombination(pairs, n_centre, lat_pairs, lat_centre, self.chiral, generator)
        self.decoder = AffineCombination(lat_pairs, lat_centre, pairs, n_centre, self.chiral, generator)

    # ------------------------------------------------------------------ sizes and names

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_latents(self) -> int:
        return self.n_latent_sided + self.n_latent_center

    @property
    def architecture(self) -> dict:
        """Constructor keyword arguments, for saving the model beside its state_dict."""
        return dict(joint_names=list(self.joint_names), n_latent_sided=self.n_latent_sided,
                    n_latent_center=self.n_latent_center, chiral=self.chiral)

    @property
    def latent_names(self) -> tuple[str, ...]:
        """``l1..``, ``r1..``, ``c1..`` when chiral (``r<k>`` mirrors ``l<k>``), else ``z1..``."""
        if not self.chiral:
            return tuple(f"z{k + 1}" for k in range(self.num_latents))
        half = self.n_latent_sided // 2
        return (tuple(f"l{k + 1}" for k in range(half)) + tuple(f"r{k + 1}" for k in range(half))
                + tuple(f"c{k + 1}" for k in range(self.n_latent_center)))

    def joint_mirror_permutation(self) -> tuple[int, ...]:
        """The flip permutation of the joints, in the caller's joint order."""
        return mirror_permutation(self.joint_names)

    def latent_mirror_permutation(self) -> tuple[int, ...]:
        """The flip permutation of the latents: left k <-> right k, centre fixed (chiral only)."""
        if not self.chiral:
            raise ConfigError("a non-chiral autoencoder's latents have no left/right mirror")
        return _side_swap(self.n_latent_sided // 2, self.num_latents)

    # ------------------------------------------------------------------ the maps

    def encoder_matrix(self) -> torch.Tensor:
        """(J, L): latent l = sum_j W[j, l] * joint j; every column sums to 1. Rows in the caller's
        joint order."""
        return self.encoder.matrix()[self.joint_unorder]

    def decoder_matrix(self) -> torch.Tensor:
        """(L, J): joint j = sum_l W[l, j] * latent l; every column sums to 1. Columns in the
        caller's joint order."""
        return self.decoder.matrix()[:, self.joint_unorder]

    def encode(self, points: torch.Tensor) -> torch.Tensor:
        """(..., J, 3) joints (mm) -> (..., L, 3) latent points (mm)."""
        self._check(points, self.num_joints, "joints")
        w = self.encoder_matrix().to(points.dtype)
        return torch.einsum("...jc,jl->...lc", points, w)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(..., L, 3) latent points (mm) -> (..., J, 3) joints (mm)."""
        self._check(latents, self.num_latents, "latent points")
        w = self.decoder_matrix().to(latents.dtype)
        return torch.einsum("...lc,lj->...jc", latents, w)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``decode(encode(points))``, (..., J, 3)."""
        return self.decode(self.encode(points))

    @staticmethod
    def _check(x: torch.Tensor, n: int, what: str) -> None:
        if x.ndim < 2 or x.shape[-2:] != (n, 3):
            raise ValueError(f"expected {what} of shape (..., {n}, 3), got {tuple(x.shape)}")


# ---------------------------------------------------------------------------------------------
# Losses

def projected_l1_loss(pred_cam: torch.Tensor, target_cam: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (mm) of the 2D projections, scaled per pose by the target's mean depth.

    Both (..., J, 3) camera-space mm (z forward). Each point becomes (x/z, y/z) * mean depth of its
    pose's valid target joints, so moving a point along its camera ray costs nothing and the
    result reads as millimetres at the pose's distance. Target joints with a NaN are masked; the
    mean runs over valid (pose, joint, coordinate) entries. Predicted depths are clamped at
    ``MIN_DEPTH_MM``.
    """
    valid = torch.isfinite(target_cam).all(dim=-1)  # (..., J)
    # clean masked targets first: NaN inside torch.where would still poison the gradient
    target = torch.where(valid[..., None], target_cam, torch.ones_like(target_cam))
    count = valid.sum(dim=-1, keepdim=True)
    mean_depth = (target[..., 2] * valid).sum(dim=-1, keepdim=True) / count.clamp_min(1)
    scale = mean_depth[..., None]  # (..., 1, 1)
    target_2d = target[..., :2] / target[..., 2:] * scale
    pred_2d = pred_cam[..., :2] / pred_cam[..., 2:].clamp_min(MIN_DEPTH_MM) * scale
    err = (pred_2d - target_2d).abs() * valid[..., None]
    return err.sum() / (2 * valid.sum()).clamp_min(1)


def l1_3d_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute 3D coordinate error (mm) over valid target joints; (..., J, 3) each."""
    valid = torch.isfinite(target).all(dim=-1)
    target = torch.where(valid[..., None], target, torch.zeros_like(target))
    err = (pred - target).abs() * valid[..., None]
    return err.sum() / (3 * valid.sum()).clamp_min(1)


def regularizer(model: AffineCombiningAutoencoder) -> torch.Tensor:
    """mean |W_enc| + mean |W_dec| of the normalised matrices.

    A column of non-negative weights summing to 1 has absolute sum 1, so for non-negative weights
    this is L / (J L) + J / (L J) = 1/J + 1/L whatever the weights are; any negative weight makes
    its column's absolute sum exceed 1. It therefore penalises only negative weights, keeping the
    combinations near-convex and sparse.
    """
    return model.encoder_matrix().abs().mean() + model.decoder_matrix().abs().mean()


LOSSES = {"projected": projected_l1_loss, "3d": l1_3d_loss}


def objective(model: AffineCombiningAutoencoder, points: torch.Tensor, loss: str = "projected",
              regularizer_weight: float = REGULARIZER_WEIGHT) -> tuple[torch.Tensor, ...]:
    """The training objective on a batch of (B, J, 3) camera-space mm poses.

    Returns (total, reconstruction in mm, regulariser); total = reconstruction / 1000 (metres, as
    in the paper) + ``regularizer_weight`` * regulariser.
    """
    if loss not in LOSSES:
        raise ConfigError(f"unknown ACAE loss {loss!r}; choose one of {', '.join(LOSSES)}")
    # build each matrix once per step: the regulariser and the reconstruction share them
    enc, dec = model.encoder_matrix(), model.decoder_matrix()
    latents = torch.einsum("...jc,jl->...lc", points, enc)
    recon = LOSSES[loss](torch.einsum("...lc,lj->...jc", latents, dec), points)
    reg = enc.abs().mean() + dec.abs().mean()
    return recon / MM_PER_M + regularizer_weight * reg, recon, reg


# ---------------------------------------------------------------------------------------------
# Fitting

def _complete_poses(points, source: str, what: str, dtype=np.float32) -> np.ndarray:
    """(N, J, 3) ``dtype`` array of the poses without a missing joint; DataError if none is left."""
    points = np.asarray(points, dtype=dtype)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise DataError(source, f"{what} must have shape (N, J, 3), got {points.shape}")
    points = points[np.isfinite(points).all(axis=(1, 2))]
    if len(points) == 0:
        raise DataError(source, f"{what}: no pose has all its joints (every pose has a NaN)")
    return points


def _train_epoch(model, optimizer, data: torch.Tensor, batch_size: int, rates: Sequence[float],
                 generator: torch.Generator, loss: str, regularizer_weight: float,
                 bar) -> tuple[float, float]:
    """One shuffled pass over ``data`` with learning rate ``rates[k]`` at batch k; returns the sums
    of the batch totals and of the batch reconstruction errors (mm)."""
    model.train()
    order = torch.randperm(len(data), generator=generator).to(data.device)
    loss_sum = recon_sum = 0.0
    for k, start in enumerate(range(0, len(data), batch_size)):
        for group in optimizer.param_groups:
            group["lr"] = rates[k]
        total, recon, _ = objective(model, data[order[start:start + batch_size]], loss, regularizer_weight)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        loss_sum += total.item()
        recon_sum += recon.item()
        bar.update()
    model.eval()
    return loss_sum, recon_sum


def _no_grad_float(fn, *args) -> float:
    with torch.no_grad():
        return float(fn(*args))


@contextlib.contextmanager
def _one_cpu_thread(device):
    """Run the body with one intra-op CPU thread, then restore the setting.

    The batches are tiny (32 poses through two J x L matrices): a second thread brings no speed,
    and on a busy machine each op's thread hand-off costs far more than the op (measured 30x
    slower per step with 2 threads when the cores were shared).
    """
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _learning_rate(step: int, total: int, rates: Sequence[float], boundaries: Sequence[float]) -> float:
    k = sum(step >= b * total for b in boundaries)
    return float(rates[k])


def _fit_inputs(points, joint_names: Sequence[str], loss: str, learning_rates: Sequence[float],
                lr_boundaries: Sequence[float], val_points, source: str):
    """Check the fitting options and data; returns the complete (N, J, 3) training poses and the
    complete validation poses (None without ``val_points``)."""
    if loss not in LOSSES:
        raise ConfigError(f"unknown ACAE loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if len(learning_rates) != len(lr_boundaries) + 1:
        raise ConfigError("learning_rates needs exactly one more entry than lr_boundaries")
    data = _complete_poses(points, source, "points")
    if data.shape[1] != len(joint_names):
        raise DataError(source, f"points have {data.shape[1]} joints but {len(joint_names)} joint names")
    if loss == "projected" and not (data[..., 2] > 0).all():
        raise DataError(source, "the projected loss needs camera-space points in front of the camera (z > 0)")
    val = None if val_points is None else _complete_poses(val_points, source, "val_points")
    return data, val


def fit_acae(points, joint_names: Sequence[str], n_latent_sided: int = 40, n_latent_center: int = 8,
             chiral: bool = True, epochs: int = 30, batch_size: int = 32,
             learning_rates: Sequence[float] = (3e-2, 3e-3, 3e-4),
             lr_boundaries: Sequence[float] = (1 / 3, 2 / 3), loss: str = "projected",
             regularizer_weight: float = REGULARIZER_WEIGHT, seed: int = 0, device: str = "cpu",
             progress: bool = True, val_points=None, source: str = "points"):
    """Fit an ACAE with the paper's recipe (Adam, batch 32, 30 epochs, lr 3e-2 -> 3e-3 -> 3e-4).

    Args:
        points: (N, J, 3) camera-space mm, NaN for missing joints. A pose with any missing joint
            is left out: it cannot be encoded (pseudo-GT has every joint).
        joint_names: the J names (see :class:`AffineCombiningAutoencoder`).
        learning_rates, lr_boundaries: the rate drops at these fractions of all steps. The
            reference drops at steps 150k and 300k, i.e. equal thirds of a 450k-step run; fractions
            keep that shape on data of any size.
        loss: ``"projected"`` (the paper's) or ``"3d"`` (plain L1, for comparison).
        val_points: optional held-out (M, J, 3) poses whose MPJPE is logged every epoch.
        source: names the data in error messages (a file path).

    Returns:
        (model, history): the fitted model (on ``device``, eval mode) and a DataFrame with one row
        per epoch: epoch, lr, loss (mean total), reconstruction (mean, mm), regularizer,
        train_mpjpe (mm), and val_mpjpe (mm) when ``val_points`` is given.
    """
    import pandas as pd
    from tqdm import tqdm

    data, val = _fit_inputs(points, joint_names, loss, learning_rates, lr_boundaries, val_points, source)
    generator = torch.Generator().manual_seed(seed)
    model = AffineCombiningAutoencoder(joint_names, n_latent_sided, n_latent_center, chiral,
                                       generator=generator).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rates[0])
    data_t = torch.from_numpy(data).to(device)
    steps_per_epoch = math.ceil(len(data) / batch_size)
    total = epochs * steps_per_epoch

    history = []
    bar = tqdm(total=total, desc="fit ACAE", unit="step", disable=not progress)
    with _one_cpu_thread(device):
        for epoch in range(epochs):
            first_step = epoch * steps_per_epoch
            rates = [_learning_rate(first_step + k, total, learning_rates, lr_boundaries)
                     for k in range(steps_per_epoch)]
            loss_sum, recon_sum = _train_epoch(model, optimizer, data_t, batch_size, rates, generator,
                                               loss, regularizer_weight, bar)
            row = dict(epoch=epoch + 1, lr=rates[-1], loss=loss_sum / steps_per_epoch,
                       reconstruction=recon_sum / steps_per_epoch,
                       regularizer=_no_grad_float(regularizer, model),
                       train_mpjpe=reconstruction_error(model, data))
            if val is not None:
                row["val_mpjpe"] = reconstruction_error(model, val)
            history.append(row)
            bar.set_postfix(recon=f"{row['reconstruction']:.2f}mm", train_mpjpe=f"{row['train_mpjpe']:.2f}mm")
    bar.close()
    return model.eval(), pd.DataFrame(history)


# ---------------------------------------------------------------------------------------------
# Reconstruction errors (ACAE and baselines), for the report's comparison

def reconstruction_error(model: AffineCombiningAutoencoder, points, batch_size: int = 65536) -> float:
    """MPJPE (mm) of ``model(points)`` against ``points`` over the complete (N, J, 3) poses."""
    from posebridge.evaluation.metrics import mpjpe

    data = _complete_poses(points, "points", "points")
    param = next(model.parameters())
    with torch.no_grad():
        recon = [model(torch.from_numpy(data[i:i + batch_size]).to(param.device, param.dtype)).cpu()
                 for i in range(0, len(data), batch_size)]
    return mpjpe(torch.cat(recon).numpy(), data)


def _centred(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poses relative to their joint centroid, flattened (N, 3J), and the centroids (N, 1, 3)."""
    points = points.astype(np.float64)
    centre = points.mean(axis=1, keepdims=True)
    return (points - centre).reshape(len(points), -1), centre


def pca_baseline(train_points, test_points, n_components: int) -> float:
    """MPJPE (mm) of reconstructing the test poses from ``n_components`` principal components.

    Poses are made relative to their joint centroid and flattened to 3J coordinates; the PCA basis
    (mean + leading eigenvectors of the covariance) is fitted on the complete training poses, and
    each complete test pose is projected onto it and moved back to its own centroid. Compare
    with an ACAE by ``n_components = 3 * L``. ``n_components`` above 3J is clipped.
    """
    from posebridge.evaluation.metrics import mpjpe

    train, _ = _centred(_complete_poses(train_points, "train_points", "train_points", np.float64))
    test_pts = _complete_poses(test_points, "test_points", "test_points", np.float64)
    test, centre = _centred(test_pts)
    mean = train.mean(axis=0)
    k = max(0, min(int(n_components), train.shape[1]))
    _, vecs = np.linalg.eigh(np.cov(train - mean, rowvar=False, bias=True))
    basis = vecs[:, ::-1][:, :k]  # eigh sorts ascending
    recon = mean + (test - mean) @ basis @ basis.T
    return mpjpe(recon.reshape(test_pts.shape) + centre, test_pts)


def mean_pose_baseline(train_points, test_points) -> float:
    """MPJPE (mm) of predicting every test pose as the mean training pose (relative to the joint
    centroid) placed at the test pose's own centroid: PCA with zero components."""
    return pca_baseline(train_points, test_points, 0)


# ---------------------------------------------------------------------------------------------
# The model file (results/acae/acae.pt)

def save_acae(path, model: AffineCombiningAutoencoder, **extra) -> None:
    """Write ``{"architecture", "state_dict", **extra}`` atomically (loadable with weights_only)."""
    from posebridge.models.files import write_torch_file

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    write_torch_file(path, {"architecture": model.architecture, "state_dict": state, **extra})


def load_acae(path, device: str = "cpu") -> tuple[AffineCombiningAutoencoder, dict]:
    """The autoencoder of a file written by ``save_acae`` (eval mode, weights frozen) and the
    file's other entries; DataError when it is not such a file."""
    from posebridge.models.files import read_torch_file

    payload = read_torch_file(path, "ACAE model", ("architecture", "state_dict"), "run posebridge fit-acae")
    try:
        model = AffineCombiningAutoencoder(**payload["architecture"])
        model.load_state_dict(payload["state_dict"])
    except Exception as err:
        raise DataError(path, f"not an ACAE model file ({type(err).__name__}: {err})") from None
    model.requires_grad_(False)
    extra = {k: v for k, v in payload.items() if k not in ("architecture", "state_dict")}
    return model.to(device).eval(), extra
