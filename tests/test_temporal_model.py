"""The VideoPose3D temporal model: structure, parameter counts, strided == dilated, causality,
the fused dropout, and the separate-head lifter built on it."""

import numpy as np
import pytest
import torch

from posebridge.errors import ConfigError
from posebridge.models import SeparateHeadLifter, TemporalModel, TemporalModelOptimized
from posebridge.models.temporal import (
    _keep_factor,
    _keep_levels,
    _keep_mask,
    _pointwise,
    _StridedConvTap,
    batch_norm_relu_dropout,
    relu_dropout,
)


def randomised(model, seed=0, dtype=torch.float64):
    """Weights and BatchNorm statistics far from their initial values (so BN matters)."""
    g = torch.Generator().manual_seed(seed)
    model = model.to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) / max(1, p[0].numel()) ** 0.5)
        for bn in [model.expand_bn, *model.layers_bn]:
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g, dtype=dtype) * 0.3)
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g, dtype=dtype) + 0.5)
            bn.weight.mul_(0.3).add_(1.0)
    return model


def small(cls=TemporalModel, widths=(3, 3, 3), causal=False, channels=32, j_in=17, f=3, j_out=9):
    return cls(j_in, f, j_out, list(widths), causal=causal, dropout=0.25, channels=channels)


@pytest.mark.parametrize("widths,j_out,expected", [
    ([3, 3, 3, 3, 3], 17, 16_952_371),
    ([3, 3, 3, 3], 17, 12_753_971),
    ([3, 3, 3], 17, 8_555_571),
    ([3, 3, 3, 3, 3], 1, 16_903_171),
])
def test_parameter_counts_match_videopose3d(widths, j_out, expected):
    for cls in (TemporalModel, TemporalModelOptimized):
        model = cls(17, 2, j_out, widths, channels=1024)
        assert sum(p.numel() for p in model.parameters()) == expected


def test_state_dict_keys_are_videopose3d_names():
    model = TemporalModel(17, 2, 17, [3, 3, 3])
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    expected = ["expand_conv.weight", *(f"expand_bn.{k}" for k in bn)]
    for i in range(4):  # 2 blocks x (conv k, conv 1x1)
        expected.append(f"layers_conv.{i}.weight")
    for i in range(4):
        expected += [f"layers_bn.{i}.{k}" for k in bn]
    expected += ["shrink.weight", "shrink.bias"]
    assert sorted(model.state_dict()) == sorted(expected)
    sd = model.state_dict()
    assert sd["expand_conv.weight"].shape == (1024, 34, 3)
    assert sd["layers_conv.0.weight"].shape == (1024, 1024, 3)
    assert sd["layers_conv.1.weight"].shape == (1024, 1024, 1)
    assert sd["shrink.weight"].shape == (51, 1024, 1)
    # the strided model loads the dilated one's state dict unchanged
    TemporalModelOptimized(17, 2, 17, [3, 3, 3]).load_state_dict(sd)


def test_receptive_field_and_window():
    assert TemporalModel(17, 2, 17, [3, 3, 3, 3, 3]).receptive_field() == 243
    assert TemporalModel(17, 2, 17, [3, 3, 3]).window() == (13, 13)
    assert TemporalModel(17, 2, 17, [3, 3, 3], causal=True).window() == (26, 0)
    assert TemporalModel(17, 2, 17, [5, 3]).receptive_field() == 15
    with pytest.raises(ConfigError):
        TemporalModel(17, 2, 17, [3, 4])


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("widths", [(3, 3, 3), (5, 3), (1,)])
def test_strided_equals_dilated_on_a_window(widths, causal):
    dilated = randomised(small(widths=widths, causal=causal), dtype=torch.float32).eval()
    strided = small(TemporalModelOptimized, widths=widths, causal=causal).float().eval()
    strided.load_state_dict(dilated.state_dict())
    rf = dilated.receptive_field()
    x = torch.randn(5, rf, 17, 3)
    with torch.enable_grad():  # the plain (unfolded) dilated path
        a = dilated(x)
    b = strided(x)
    assert a.shape == b.shape == (5, 1, 9, 3)
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    # float64: equal to rounding
    d64, s64 = dilated.double(), strided.double()
    with torch.enable_grad():
        assert torch.allclose(d64(x.double()), s64(x.double()), atol=1e-12, rtol=0)


@pytest.mark.parametrize("causal", [False, True])
def test_dilated_on_long_sequence_equals_sliding_strided_windows(causal):
    dilated = randomised(small(causal=causal))
    dilated.eval()
    strided = TemporalModelOptimized.sharing(dilated).eval()
    T, rf = 70, dilated.receptive_field()
    x = torch.randn(2, T, 17, 3, dtype=torch.float64)
    with torch.no_grad():
        long = dilated(x)  # folded path
        windows = torch.stack([x[:, i:i + rf] for i in range(T - rf + 1)], 1)  # (2, n, rf, J, F)
        slid = strided(windows.reshape(-1, rf, 17, 3)).reshape(2, T - rf + 1, 9, 3)
    assert long.shape == (2, T - rf + 1, 9, 3)
    assert torch.allclose(long, slid, atol=1e-10, rtol=0)


def test_folded_batchnorm_forward_equals_plain_eval_forward():
    model = randomised(small(widths=(3, 3, 3, 3), channels=16), dtype=torch.float32).eval()
    x = torch.randn(2, 100, 17, 3)
    with torch.enable_grad():
        plain = model(x)
    with torch.no_grad():
        folded = model(x)
    assert torch.allclose(plain, folded, atol=1e-5, rtol=1e-5)


def test_strided_gradients_equal_dilated_gradients():
    # eval mode (fixed BN statistics) and no dropout: the two graphs compute the same function
    dilated = randomised(small(widths=(3, 3), channels=8)).eval()
    dilated.dropout = 0.0
    strided = small(TemporalModelOptimized, widths=(3, 3), channels=8).double().eval()
    strided.load_state_dict(dilated.state_dict())
    x = torch.randn(4, 9, 17, 3, dtype=torch.float64)
    target = torch.randn(4, 1, 9, 3, dtype=torch.float64)
    grads = []
    for model in (dilated, strided):
        model.zero_grad()
        with torch.enable_grad():
            ((model(x) - target) ** 2).sum().backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], atol=1e-10), k


def test_causal_model_never_reads_future_frames():
    model = randomised(small(causal=True)).eval()
    before, after = model.window()
    assert after == 0
    T = 60
    x = torch.randn(1, T, 17, 3, dtype=torch.float64)
    pad = torch.cat([x[:, :1].expand(1, before, 17, 3), x], 1)  # output i belongs to frame i
    with torch.no_grad():
        y = model(pad)
        k = 40
        x2 = x.clone()
        x2[:, k] += 5.0
        y2 = model(torch.cat([x2[:, :1].expand(1, before, 17, 3), x2], 1))
    assert y.shape[1] == T
    assert torch.equal(y[:, :k], y2[:, :k])  # frames before k: untouched
    assert not torch.allclose(y[:, k], y2[:, k])  # frame k sees itself
    # the same perturbation does reach earlier frames of the non-causal model
    centred = randomised(small(causal=False)).eval()
    half = centred.window()[0]
    with torch.no_grad():
        a = centred(torch.cat([x[:, :1].expand(1, half, 17, 3), x, x[:, -1:].expand(1, half, 17, 3)], 1))
        b = centred(torch.cat([x2[:, :1].expand(1, half, 17, 3), x2, x2[:, -1:].expand(1, half, 17, 3)], 1))
    assert not torch.allclose(a[:, k - 1], b[:, k - 1])


def test_relu_dropout_keeps_the_right_fraction_and_scales():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1000, 1000) + 0.5  # positive: ReLU keeps everything
    y = relu_dropout(x, 0.25, True, g)
    kept = (y > 0).double().mean().item()
    assert abs(kept - 0.75) < 5 * (0.75 * 0.25 / 1e6) ** 0.5
    assert torch.allclose(y[y > 0], x[y > 0] / 0.75)
    # reproducible from the generator; eval mode is plain ReLU
    assert torch.equal(relu_dropout(x, 0.25, True, torch.Generator().manual_seed(0)), y)
    z = torch.randn(10, 10)
    assert torch.equal(relu_dropout(z, 0.25, False), torch.relu(z))
    # p = 0.1 is honoured (rounded to 1/65536)
    kept = (relu_dropout(x, 0.1, True, g) > 0).double().mean().item()
    assert abs(kept - 0.9) < 5 * (0.9 * 0.1 / 1e6) ** 0.5


def test_relu_dropout_gradient_is_mask_times_scale():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 50, dtype=torch.float64, requires_grad=True)
    y = relu_dropout(x, 0.25, True, g)
    w = torch.randn_like(y)
    (y * w).sum().backward()
    mask = (y > 0).double()
    assert torch.allclose(x.grad, w * mask / 0.75)


@pytest.mark.parametrize("p,bits", [(0.25, 8), (0.5, 8), (0.1, 16)])
def test_keep_levels_give_the_exact_dropout_rate(p, bits):
    """8-bit levels when p * 256 is an integer, else 16-bit; P(level >= threshold) = 1 - p exactly
    (8 bits) or to 1/65536 (16 bits), counted over every level; the levels are uniform."""
    levels, threshold = _keep_levels(400_000, p, torch.Generator().manual_seed(3), "cpu")
    assert levels.dtype == (np.uint8 if bits == 8 else np.uint16) and len(levels) == 400_000
    keep_rate = (2**bits - threshold) / 2**bits
    assert keep_rate == 1 - p if bits == 8 else abs(keep_rate - (1 - p)) <= 0.5 / 2**bits
    counts = np.bincount(levels >> (bits - 4), minlength=16)  # top 4 bits: 16 equally likely bins
    expected = len(levels) / 16
    assert np.all(np.abs(counts - expected) < 5 * expected**0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keep_factor_is_the_keep_mask_as_float(dtype):
    """The float mask the training path multiplies by keeps the same units as the boolean mask
    from the same generator state; it is reproducible and differs between seeds."""
    shape = (300, 70)
    factor = _keep_factor(shape, 0.25, torch.Generator().manual_seed(11), "cpu", dtype)
    keep = _keep_mask(shape, 0.25, torch.Generator().manual_seed(11), "cpu")
    assert factor.dtype == dtype and factor.shape == shape and keep.dtype == torch.bool
    assert torch.equal(factor, keep.to(dtype))
    assert torch.equal(factor, _keep_factor(shape, 0.25, torch.Generator().manual_seed(11), "cpu", dtype))
    assert not torch.equal(factor, _keep_factor(shape, 0.25, torch.Generator().manual_seed(12), "cpu", dtype))
    # one draw from the generator per mask: consecutive masks differ
    g = torch.Generator().manual_seed(11)
    assert not torch.equal(_keep_factor(shape, 0.25, g, "cpu", dtype), _keep_factor(shape, 0.25, g, "cpu", dtype))


def test_pointwise_weight_is_a_view_with_the_selection_gradient():
    w = torch.randn(7, 5, 1, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 5, dtype=torch.float64)
    assert _pointwise(w).data_ptr() == w.data_ptr()
    assert torch.equal(_pointwise(w), w[:, :, 0])
    (grad_view,) = torch.autograd.grad(torch.nn.functional.linear(x, _pointwise(w)).square().sum(), w)
    (grad_select,) = torch.autograd.grad(torch.nn.functional.linear(x, w[:, :, 0]).square().sum(), w)
    assert torch.allclose(grad_view, grad_select, atol=1e-12)


@pytest.mark.parametrize("p,momentum", [(0.25, 0.1), (0.1, None), (0.0, 0.1)])
def test_fused_batchnorm_relu_dropout_equals_the_modules(p, momentum):
    """Output, gradients and running statistics of the fused node equal BatchNorm1d (training
    mode) -> ReLU -> dropout with the same mask, over two steps (float64)."""
    torch.manual_seed(0)
    fused_bn, plain_bn = (torch.nn.BatchNorm1d(6, momentum=momentum).double() for _ in range(2))
    with torch.no_grad():
        for bn in (fused_bn, plain_bn):
            bn.weight.copy_(torch.linspace(0.5, 2.0, 6, dtype=torch.float64))
            bn.bias.copy_(torch.linspace(-1.0, 1.0, 6, dtype=torch.float64))
    for step in range(2):
        z = (torch.randn(40, 6, dtype=torch.float64) * 3 + 1).requires_grad_()
        z_plain = z.detach().clone().requires_grad_()
        out = batch_norm_relu_dropout(z, fused_bn, p, True, torch.Generator().manual_seed(step))
        keep = _keep_mask(z.shape, p, torch.Generator().manual_seed(step), z.device) if p > 0 else torch.tensor(True)
        ref = torch.where(keep, torch.relu(plain_bn(z_plain)), 0.0) / (1 - p)
        assert torch.allclose(out, ref, atol=1e-12)
        w = torch.randn_like(out)
        (out * w).sum().backward()
        (ref * w).sum().backward()
        assert torch.allclose(z.grad, z_plain.grad, atol=1e-12)
        for name in ("weight", "bias"):
            assert torch.allclose(getattr(fused_bn, name).grad, getattr(plain_bn, name).grad, atol=1e-12), name
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            assert torch.allclose(getattr(fused_bn, name), getattr(plain_bn, name), atol=1e-12), name
    assert int(fused_bn.num_batches_tracked) == 2


def test_strided_conv_tap_passes_gradcheck():
    h = torch.randn(4 * 3, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 5, 3, dtype=torch.float64, requires_grad=True)
    z, tap = _StridedConvTap.apply(h, w, 3, 1)
    assert torch.equal(tap, h.view(4, 3, 5)[:, 1])
    assert torch.allclose(z, torch.nn.functional.conv1d(h.view(4, 3, 5).transpose(1, 2), w, stride=3)[..., 0])
    assert torch.autograd.gradcheck(lambda h, w: _StridedConvTap.apply(h, w, 3, 2), (h, w))


def test_strided_training_step_equals_plain_modules():
    """Training mode with dropout: output, every parameter's gradient and the BatchNorm running
    statistics of the strided model equal stride = width Conv1d + BatchNorm1d + ReLU + dropout
    (the same masks, drawn in the same order) written out plainly."""
    model = randomised(small(TemporalModelOptimized, widths=(3, 3, 3), channels=8)).train()
    plain = randomised(small(TemporalModelOptimized, widths=(3, 3, 3), channels=8)).train()
    model.dropout_generator = torch.Generator().manual_seed(5)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 27, 17, 3, dtype=torch.float64)

    def drop(y):
        return torch.where(_keep_mask(y.transpose(1, 2).shape, 0.25, g, y.device).transpose(1, 2),
                           torch.relu(y), 0.0) / 0.75

    h = x.reshape(6, 27, -1).transpose(1, 2)
    h = drop(plain.expand_bn(torch.nn.functional.conv1d(h, plain.expand_conv.weight, stride=3)))
    for i in range(2):
        res = h[:, :, 1::3]
        h = drop(plain.layers_bn[2 * i](torch.nn.functional.conv1d(h, plain.layers_conv[2 * i].weight, stride=3)))
        h = res + drop(plain.layers_bn[2 * i + 1](plain.layers_conv[2 * i + 1](h)))
    ref = plain.shrink(h).transpose(1, 2).reshape(6, 1, 9, 3)
    out = model(x)
    assert torch.allclose(out, ref, atol=1e-10)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    for (name, p), q in zip(model.named_parameters(), plain.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-10), name
    for (name, b), c in zip(model.named_buffers(), plain.buffers()):
        assert torch.allclose(b, c, atol=1e-12), name


def test_sharing_uses_the_same_tensors():
    dilated = small()
    strided = TemporalModelOptimized.sharing(dilated)
    with torch.no_grad():
        dilated.shrink.bias.fill_(3.0)
    assert torch.equal(strided.shrink.bias, dilated.shrink.bias)
    assert strided.expand_bn.running_var.data_ptr() == dilated.expand_bn.running_var.data_ptr()


def test_bn_momentum_setter():
    model = small()
    model.set_bn_momentum(0.01)
    assert all(bn.momentum == 0.01 for bn in [model.expand_bn, *model.layers_bn])


# ----------------------------------------------------------------------------- lifter


def test_lifter_slices_split_and_file_round_trip():
    lifter = SeparateHeadLifter(["h36m_17", "humaneva_15"], filter_widths=[3, 3], channels=16)
    assert lifter.slices == {"h36m_17": slice(0, 17), "humaneva_15": slice(17, 32)}
    assert lifter.temporal.num_joints_in == 17 and lifter.temporal.in_features == 3
    lifter.eval()
    x = torch.randn(2, 20, 17, 3)
    with torch.no_grad():
        y = lifter(x)
    parts = lifter.split(y)
    assert parts["humaneva_15"].shape == (2, 12, 15, 3)
    assert torch.equal(parts["h36m_17"], y[..., :17, :])
    payload = lifter.file_dict({"h36m_17": np.zeros((17, 3))})
    assert "expand_conv.weight" in payload["state_dict"]  # VideoPose3D keys, no prefix
    copy = SeparateHeadLifter.from_file_dict(payload).eval()
    with torch.no_grad():
        assert torch.equal(copy(x), y)
    strided = lifter.variant(strided=True)
    assert strided.temporal.expand_conv is lifter.temporal.expand_conv


def test_lifter_flips_are_involutions_and_mirror_per_format():
    lifter = SeparateHeadLifter(["h36m_17", "coco_19"], filter_widths=[3], channels=8)
    y = torch.randn(4, 36, 3)
    assert torch.equal(lifter.flip_output(lifter.flip_output(y)), y)
    flipped = lifter.flip_output(y)
    # h36m_17: joint 1 (rhip) <-> 4 (lhip); coco_19 joints are offset by 17
    assert torch.equal(flipped[:, 1, 0], -y[:, 4, 0]) and torch.equal(flipped[:, 1, 1:], y[:, 4, 1:])
    from posebridge.geometry import skeletons

    coco19 = skeletons.get("coco_19")
    l, r = coco19.index("lshoulder"), coco19.index("rshoulder")
    assert torch.equal(flipped[:, 17 + l, 1:], y[:, 17 + r, 1:])
    x = torch.randn(3, 27, 17, 3)
    assert torch.equal(lifter.flip_input(lifter.flip_input(x)), x)
