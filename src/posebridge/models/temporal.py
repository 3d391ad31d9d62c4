"""VideoPose3D's temporal convolutional lifter (Pavllo et al., "3D human pose estimation in video
with temporal convolutions and semi-supervised training", CVPR 2019), in two shapes.

``TemporalModel`` is the dilated model: it maps a whole 2D sequence (B, T, J_in, F) to one pose
per receptive-field window, (B, T - RF + 1, J_out, 3). ``TemporalModelOptimized`` is the
training-time variant with identical weights: every convolution uses stride = kernel width and
no dilation, so a window of exactly RF frames yields one output frame and no work is spent on
neighbouring frames. Both have VideoPose3D's module names, so their state dicts share its keys
(``expand_conv``, ``expand_bn``, ``layers_conv.N``, ``layers_bn.N``, ``shrink``) and its
published checkpoints load unchanged.

Speed (the layer structure and the semantics stay the reference's):

- The strided model runs as matrix products on a (rows = batch x time, channels) layout: a
  stride = width convolution is then a plain ``linear`` over ``width`` consecutive rows viewed as
  one row, with no im2col, no transposes and no copies of the activations; the residual is a
  strided view of the same rows. Its input (B, RF, J, F) is already in that layout.
- Dropout masks come from 64-bit random words cut into 8-bit integers when ``p * 256`` is an
  integer (0.25: exact), else into 16-bit ones (``p`` rounded to 1/65536): one generator call per
  eight (four) activations instead of a float Bernoulli draw per activation. On the CPU the words
  are numpy's (PCG64, seeded from the model's torch generator) and the mask is compared straight
  into a 0 / 1 float tensor: torch's boolean mask costs a comparison and, in the multiply, a
  float copy (together ~4x the time of the mask made this way; small-size training ~4% faster,
  the full size unchanged within noise: its masks are <1% of a step).
- BatchNorm (training mode), ReLU, dropout and the 1/(1-p) scale are one autograd node
  (``_BatchNormReluDropout``): the scale is folded into the BatchNorm affine (scale > 0 commutes
  with ReLU), ReLU and the mask act in place on the BatchNorm output, and the backward needs only
  that output (> 0 exactly where the unit was kept and positive) and the convolution output.
- A block's strided convolution and its residual tap are one node (``_StridedConvTap``): its
  backward adds the residual's gradient into the slice of the input gradient in place, where
  autograd's select + sum would zero-fill and add a whole input-sized buffer; the weight's
  time-major copy made for the forward is kept for the backward.
- What is left is matrix products: measured on 2 quiet AVX2 cores (full size, batch 256), 94% of
  a training step is ``mm``, running at the machine's float32 peak (~145 GFLOP/s); BatchNorm,
  masks, ReLU, residual and the fused Adam step share the rest. bfloat16 matrix products have no
  fast kernel on AVX2 (measured 0.5 GFLOP/s), so reduced precision is not used on the CPU.
- For evaluation without gradients, the dilated model folds each BatchNorm into the preceding
  convolution (``folded_forward``), leaving one convolution, one in-place ReLU and one in-place
  residual add per layer.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from posebridge.errors import ConfigError
from posebridge.specs import check_filter_widths

__all__ = ["TemporalModelBase", "TemporalModel", "TemporalModelOptimized", "relu_dropout",
           "batch_norm_relu_dropout"]


# ---------------------------------------------------------------------------------------------
# Fused training-time layers (one autograd node each, fewer passes over the activations)


def _keep_levels(n: int, p: float, generator: torch.Generator | None, device):
    """(n random levels, threshold): P(level >= threshold) = 1 - p, with 8-bit levels when
    p * 256 is an integer (exact), else 16-bit ones (p rounded to 1/65536).

    On the CPU the levels are numpy arrays from a PCG64 stream seeded by one draw from
    ``generator``: torch's CPU generator (a Mersenne Twister), its comparison into a boolean tensor
    and the multiply by it measured ~25 ms per 7M units on one core, numpy's words, comparison into
    a float mask and its multiply ~6.5 ms. Elsewhere (CUDA) they are torch tensors drawn on the
    device from ``generator``."""
    exact = float(p * 256).is_integer()
    bits = 8 if exact else 16
    threshold = round(p * 2**bits)
    words = (n * bits + 63) // 64
    if torch.device(device).type == "cpu":
        seed = int(torch.empty((), dtype=torch.int64).random_(generator=generator))
        raw = np.random.Generator(np.random.PCG64(seed)).bit_generator.random_raw(words)
        return raw.view(np.uint8 if exact else np.uint16)[:n], threshold
    raw = torch.empty(words, dtype=torch.int64, device=device)
    raw.random_(-(2**63), None, generator=generator)  # all 64 bits uniform
    # torch compares signed integers: shift the threshold by half the range
    return raw.view(torch.int8 if exact else torch.int16)[:n], threshold - 2**(bits - 1)


def _keep_mask(shape, p: float, generator: torch.Generator | None, device) -> torch.Tensor:
    """Boolean keep mask with P(keep) = 1 - p (the units ``_keep_factor`` keeps)."""
    levels, threshold = _keep_levels(math.prod(shape), p, generator, device)
    keep = levels >= threshold
    return (torch.from_numpy(keep) if isinstance(keep, np.ndarray) else keep).view(shape)


def _keep_factor(shape, p: float, generator: torch.Generator | None, device, dtype) -> torch.Tensor:
    """``_keep_mask`` as 0 / 1 in ``dtype``: multiplying by a float mask is one vectorised pass,
    where torch's multiply by a boolean tensor first converts it to a float copy."""
    levels, threshold = _keep_levels(math.prod(shape), p, generator, device)
    if isinstance(levels, np.ndarray) and dtype in (torch.float32, torch.float64):
        keep = np.empty(len(levels), np.float32 if dtype == torch.float32 else np.float64)
        np.greater_equal(levels, threshold, out=keep, casting="unsafe")
        return torch.from_numpy(keep).view(shape)
    keep = levels >= threshold
    keep = torch.from_numpy(keep) if isinstance(keep, np.ndarray) else keep
    return keep.to(device=device, dtype=dtype).view(shape)


class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, keep, scale):
        out = torch.relu(x).mul_(keep).mul_(scale)
        ctx.save_for_backward(out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # out > 0 exactly where the unit was kept and its input positive
        grad_in = torch.ops.aten.threshold_backward(grad, out, 0.0).mul_(ctx.scale)
        return grad_in, None, None


def relu_dropout(x: torch.Tensor, p: float, training: bool,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``dropout(relu(x), p)`` (inverted dropout: kept units scaled by 1 / (1 - p))."""
    if not training or p == 0:
        return F.relu(x)
    keep = _keep_factor(x.shape, p, generator, x.device, x.dtype)
    return _ReluDropout.apply(x, keep, 1.0 / (1.0 - p))


class _BatchNormReluDropout(torch.autograd.Function):
    """``dropout(relu(batch_norm(z)))`` on (N, C) rows, BatchNorm in training mode (batch
    statistics, running statistics updated by ``native_batch_norm`` itself)."""

    @staticmethod
    def forward(ctx, z, weight, bias, running_mean, running_var, factor, eps, keep, scale):
        # scale * relu(y) == relu(scale * y): fold the dropout scale into the affine
        w, b = weight * scale, bias * scale
        out, mean, invstd = torch.ops.aten.native_batch_norm(z, w, b, running_mean, running_var, True, factor, eps)
        out.relu_()
        if keep is not None:
            out.mul_(keep)
        ctx.save_for_backward(z, w, mean, invstd, out)
        ctx.eps, ctx.scale = eps, scale
        return out

    @staticmethod
    def backward(ctx, grad):
        z, w, mean, invstd, out = ctx.saved_tensors
        grad_y = torch.ops.aten.threshold_backward(grad, out, 0.0)
        grad_z, grad_w, grad_b = torch.ops.aten.native_batch_norm_backward(
            grad_y, z, w, None, None, mean, invstd, True, ctx.eps, [ctx.needs_input_grad[0], True, True])
        return grad_z, grad_w * ctx.scale, grad_b * ctx.scale, None, None, None, None, None, None


def batch_norm_relu_dropout(z: torch.Tensor, bn: nn.BatchNorm1d, p: float, training: bool,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """``dropout(relu(bn(z)), p)`` for (N, C) rows; the same result, running statistics and
    gradients as the three modules in a row, with fewer passes in training mode."""
    if not (training and bn.training and bn.track_running_stats and bn.affine and z.shape[0] > 1):
        return relu_dropout(bn(z), p, training, generator)  # (the module raises on a single row)
    # nn.BatchNorm1d's running-statistics bookkeeping
    bn.num_batches_tracked.add_(1)
    factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    keep = _keep_factor(z.shape, p, generator, z.device, z.dtype) if p > 0 else None
    return _BatchNormReluDropout.apply(z, bn.weight, bn.bias, bn.running_mean, bn.running_var, factor, bn.eps,
                                       keep, 1.0 / (1.0 - p))


class _StridedConvTap(torch.autograd.Function):
    """A stride = width convolution on (N * w, C) rows, ``rows.view(N, w * C) @ W.T``, and the
    residual tap ``rows.view(N, w, C)[:, offset]`` (a copy), as one node."""

    @staticmethod
    def forward(ctx, h, weight, width, offset):
        rows = h.view(-1, width * h.shape[1])
        weight = _time_major(weight)  # a copy: kept for the backward rather than made again
        z = rows @ weight.t()
        tap = h.view(-1, width, h.shape[1])[:, offset].clone()
        ctx.save_for_backward(h, weight)
        ctx.width, ctx.offset = width, offset
        return z, tap

    @staticmethod
    def backward(ctx, grad_z, grad_tap):
        h, weight = ctx.saved_tensors
        width, C = ctx.width, h.shape[1]
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_h = (grad_z @ weight).view(-1, width, C)
            if grad_tap is not None:
                grad_h[:, ctx.offset] += grad_tap
            grad_h = grad_h.view_as(h)
        if ctx.needs_input_grad[1]:
            # (O, w * C) time-major -> the Conv1d layout (O, C, w)
            grad_w = (grad_z.t() @ h.view(-1, width * C)).view(-1, width, C).permute(0, 2, 1).contiguous()
        return grad_h, grad_w, None, None


def _pointwise(weight: torch.Tensor) -> torch.Tensor:
    """Kernel-width-1 Conv1d weight (O, C, 1) -> (O, C) as a view (``flatten``, not ``[:, :, 0]``:
    the gradient of a view is a view, that of a selection a zero-filled copy)."""
    return weight.flatten(1)


def _time_major(weight: torch.Tensor) -> torch.Tensor:
    """Conv1d weight (O, C, w) -> (O, w * C), matching rows of ``w`` consecutive frames."""
    return weight.permute(0, 2, 1).reshape(weight.shape[0], -1)


# ---------------------------------------------------------------------------------------------
# Models


class TemporalModelBase(nn.Module):
    """Layers and bookkeeping shared by the dilated and the strided model.

    Args:
        num_joints_in: input joints J_in.
        in_features: features per input joint F (2: x, y; 3: x, y, confidence).
        num_joints_out: output joints J_out (3 coordinates each).
        filter_widths: odd temporal kernel widths; receptive field = their product.
        causal: the window for output frame t is [t - RF + 1, t] instead of centred on t.
        dropout: dropout probability after every convolution.
        channels: convolution channels C.
    """

    def __init__(self, num_joints_in: int, in_features: int, num_joints_out: int,
                 filter_widths, causal: bool = False, dropout: float = 0.25, channels: int = 1024):
        super().__init__()
        widths = check_filter_widths(filter_widths)
        for name, value in (("num_joints_in", num_joints_in), ("in_features", in_features),
                            ("num_joints_out", num_joints_out), ("channels", channels)):
            if int(value) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value}")
        if not 0 <= float(dropout) < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {dropout}")
        self.num_joints_in = int(num_joints_in)
        self.in_features = int(in_features)
        self.num_joints_out = int(num_joints_out)
        self.filter_widths = widths
        self.causal = bool(causal)
        self.dropout = float(dropout)
        self.channels = int(channels)
        # generator for dropout masks (None: torch's default generator)
        self.dropout_generator: torch.Generator | None = None

        C = self.channels
        self.expand_conv = nn.Conv1d(self.num_joints_in * self.in_features, C, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(C, momentum=0.1)
        layers_conv, layers_bn = [], []
        # pad[i]: frames lost on each side by layer i; dilation of block i = product of earlier widths
        self.pad = [widths[0] // 2]
        self.dilations = [1]
        dilation = widths[0]
        for w in widths[1:]:
            self.pad.append((w - 1) * dilation // 2)
            self.dilations.append(dilation)
            layers_conv.append(nn.Conv1d(C, C, w, dilation=dilation, bias=False))
            layers_bn.append(nn.BatchNorm1d(C, momentum=0.1))
            layers_conv.append(nn.Conv1d(C, C, 1, bias=False))
            layers_bn.append(nn.BatchNorm1d(C, momentum=0.1))
            dilation *= w
        self.layers_conv = nn.ModuleList(layers_conv)
        self.layers_bn = nn.ModuleList(layers_bn)
        self.shrink = nn.Conv1d(C, self.num_joints_out * 3, 1)

    @property
    def architecture(self) -> dict:
        """Constructor keyword arguments (to save beside the state dict)."""
        return {"num_joints_in": self.num_joints_in, "in_features": self.in_features,
                "num_joints_out": self.num_joints_out, "filter_widths": list(self.filter_widths),
                "causal": self.causal, "dropout": self.dropout, "channels": self.channels}

    def receptive_field(self) -> int:
        """Input frames that determine one output frame (the product of the widths)."""
        return 1 + 2 * sum(self.pad)

    def total_causal_shift(self) -> int:
        """Frames the window is shifted into the past: (RF - 1) / 2 when causal, else 0."""
        return sum(self.pad) if self.causal else 0

    def window(self) -> tuple[int, int]:
        """(frames before, frames after) the output frame that its window covers."""
        half = sum(self.pad)
        shift = self.total_causal_shift()
        return half + shift, half - shift

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """(..., C) trunk features -> (..., J_out * 3): the ``shrink`` layer."""
        return F.linear(features, _pointwise(self.shrink.weight), self.shrink.bias)

    def set_bn_momentum(self, momentum: float) -> None:
        self.expand_bn.momentum = momentum
        for bn in self.layers_bn:
            bn.momentum = momentum

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[-2] != self.num_joints_in or x.shape[-1] != self.in_features:
            raise ValueError(f"expected input (B, T, {self.num_joints_in}, {self.in_features}), "
                             f"got {tuple(x.shape)}")

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return relu_dropout(x, self.dropout, self.training, self.dropout_generator)

    def _bn_drop(self, z: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
        """``_drop(bn(z))`` for (N, C) rows, fused in training mode."""
        return batch_norm_relu_dropout(z, bn, self.dropout, self.training, self.dropout_generator)

    @classmethod
    def sharing(cls, other: "TemporalModelBase") -> "TemporalModelBase":
        """A model of this class that uses ``other``'s parameters and BatchNorm buffers (the same
        tensors, not copies): train the strided model, evaluate the dilated one."""
        model = cls(**other.architecture)
        for name in ("expand_conv", "expand_bn", "layers_conv", "layers_bn", "shrink"):
            setattr(model, name, getattr(other, name))
        model.dropout_generator = other.dropout_generator
        model.train(other.training)
        return model


@torch.no_grad()
def recalibrate_batch_norm(model: TemporalModelBase, batches) -> None:
    """Replace ``model``'s BatchNorm running statistics by their plain average over the input
    windows in ``batches`` (train-mode forward passes without dropout or gradients).

    VideoPose3D anneals the BatchNorm momentum to 0.001; in a short schedule the running
    statistics then trail the weights, and the eval-mode model is worse than the trained one
    (measured on the default benchmark: validation MPJPE 72.8 -> 70.3 mm after recalibrating).
    """
    layers = [model.expand_bn, *model.layers_bn]
    momenta = [bn.momentum for bn in layers]
    was_training, dropout = model.training, model.dropout
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    model.dropout = 0.0  # the statistics of the eval-mode network, which has no dropout
    try:
        for x in batches:
            model(x)
    finally:
        for bn, momentum in zip(layers, momenta):
            bn.momentum = momentum
        model.dropout = dropout
        model.train(was_training)


class TemporalModel(TemporalModelBase):
    """The dilated model: (B, T, J_in, F) -> (B, T - RF + 1, J_out, 3).

    Output frame i is computed from input frames [i, i + RF - 1]; it belongs to frame
    i + (RF - 1) / 2 (centre), or to frame i + RF - 1 when ``causal``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        B = x.shape[0]
        if not self.training and not torch.is_grad_enabled():
            return self.folded_forward(x)
        return self.head(self.features(x)).reshape(B, -1, self.num_joints_out, 3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J_in, F) -> (B, T - RF + 1, C): the trunk's output, the input of ``shrink``
        (what a second head, e.g. MCSS's embedding, reads)."""
        self._check_input(x)
        B, T = x.shape[:2]
        x = x.reshape(B, T, -1).transpose(1, 2)
        x = self._drop(self.expand_bn(self.expand_conv(x)))
        for i in range(len(self.pad) - 1):
            pad, shift = self.pad[i + 1], (self.pad[i + 1] if self.causal else 0)
            res = x[:, :, pad + shift: x.shape[2] - pad + shift]
            x = self._drop(self.layers_bn[2 * i](self.layers_conv[2 * i](x)))
            x = res + self._drop(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x)))
        return x.transpose(1, 2)

    def folded_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) of every convolution with its eval-mode BatchNorm folded in, in order
        expand, block convolutions..., shrink."""
        folded = []
        for conv, bn in zip([self.expand_conv, *self.layers_conv], [self.expand_bn, *self.layers_bn]):
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            folded.append((conv.weight * scale[:, None, None], bn.bias - bn.running_mean * scale))
        folded.append((self.shrink.weight, self.shrink.bias))
        return folded

    @torch.no_grad()
    def folded_forward(self, x: torch.Tensor, folded=None) -> torch.Tensor:
        """Eval-mode forward with BatchNorm folded into the convolutions (no dropout, no
        gradients). ``folded`` = ``folded_weights()`` may be passed to reuse it across calls."""
        self._check_input(x)
        return self.folded_layers(x, self.folded_weights() if folded is None else folded)

    def folded_layers(self, x: torch.Tensor, folded) -> torch.Tensor:
        """``folded_forward``'s computation (B, T, J_in, F) -> (B, T - RF + 1, J_out, 3), written
        without shape-dependent Python values so that it traces and exports (ONNX, TorchScript)
        for any T: a residual is cut by static margins at both ends."""
        x = x.flatten(2).transpose(1, 2)
        w, b = folded[0]
        x = F.conv1d(x, w, b).relu_()
        for i in range(len(self.pad) - 1):
            pad, shift = self.pad[i + 1], (self.pad[i + 1] if self.causal else 0)
            end = pad - shift  # frames cut at the end (0 when causal)
            res = x[:, :, pad + shift: -end] if end else x[:, :, pad + shift:]
            w, b = folded[1 + 2 * i]
            x = F.conv1d(x, w, b, dilation=self.dilations[i + 1]).relu_()
            w, b = folded[2 + 2 * i]
            x = F.conv1d(x, w, b).relu_().add_(res)
        w, b = folded[-1]
        x = F.conv1d(x, w, b)
        return x.transpose(1, 2).unflatten(-1, (self.num_joints_out, 3))


class TemporalModelOptimized(TemporalModelBase):
    """The strided training model: (B, k * RF, J_in, F) -> (B, k, J_out, 3), one output per
    disjoint window of RF frames; same weights and same output as ``TemporalModel`` on a window."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        return self.head(self.features(x)).view(B, -1, self.num_joints_out, 3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, k * RF, J_in, F) -> (B, k, C): the trunk's output, the input of ``shrink``."""
        self._check_input(x)
        B, T = x.shape[:2]
        rf = self.receptive_field()
        if T % rf:
            raise ValueError(f"the strided model takes windows of {rf} frames (or multiples), got {T}")
        w0 = self.filter_widths[0]
        rows = x.reshape(B * T // w0, w0 * self.num_joints_in * self.in_features)
        h = self._bn_drop(F.linear(rows, _time_major(self.expand_conv.weight)), self.expand_bn)
        for i, w in enumerate(self.filter_widths[1:]):
            offset = w // 2 + (w // 2 if self.causal else 0)
            # z: the strided convolution; res: VideoPose3D's x[:, :, offset::w]
            z, res = _StridedConvTap.apply(h, self.layers_conv[2 * i].weight, w, offset)
            h = self._bn_drop(z, self.layers_bn[2 * i])
            z = F.linear(h, _pointwise(self.layers_conv[2 * i + 1].weight))
            h = res + self._bn_drop(z, self.layers_bn[2 * i + 1])
        return h.view(B, T // rf, h.shape[1])
