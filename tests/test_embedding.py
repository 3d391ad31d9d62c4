import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from posebridge.models.embedding import (
    EmbeddingToPose,
    PoseEmbedding,
    WindowTrunk,
    centre_and_scale_2d,
)


def _windows(seed, b=6, t=27, j=17, conf=True):
    g = torch.Generator().manual_seed(seed)
    xy = torch.randn(b, t, j, 2, generator=g) * 0.2
    if not conf:
        return xy
    return torch.cat([xy, torch.rand(b, t, j, 1, generator=g) * 0.5 + 0.5], dim=-1)


def _model(**kw):
    torch.manual_seed(0)
    return PoseEmbedding(17, 3, embedding_dim=32, channels=64, **kw).eval()


def test_unit_embeddings_of_the_right_shape_and_window_checked():
    model = _model()
    assert model.receptive_field == 27
    emb = model(_windows(0))
    assert emb.shape == (6, 32)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(6))
    with pytest.raises(ValueError):
        model(_windows(0, t=26))
    mlp = PoseEmbedding(17, 2, embedding_dim=8, filter_widths=(1,), channels=16).eval()
    assert mlp.receptive_field == 1 and mlp(_windows(1, t=1, conf=False)).shape == (6, 8)
    with pytest.raises(ValueError):
        PoseEmbedding(17, filter_widths=(3, 2))


def test_centre_and_scale_known_values():
    kp = torch.tensor([[[[10.0, 5.0, 1.0], [14.0, 5.0, 1.0], [99.0, -7.0, 0.0]]]])  # (1, 1, 3, 3)
    out = centre_and_scale_2d(kp)
    # centre (12, 5) from the two seen joints; RMS spread 2; the missed joint is zeroed
    expected = torch.tensor([[[[-1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]])
    torch.testing.assert_close(out, expected)


def test_invariant_to_image_position_and_size_and_to_missed_joints():
    model = _model()
    x = _windows(2)
    moved = x.clone()
    scale = torch.tensor([0.5, 1.0, 2.0, 3.0, 0.7, 1.3])[:, None, None, None]
    shift = torch.randn(6, 1, 1, 2)  # one camera placement per window, constant over time
    moved[..., :2] = x[..., :2] * scale + shift
    torch.testing.assert_close(model(moved), model(x), atol=1e-5, rtol=1e-5)
    missed = x.clone()
    missed[:, :, 4, 2] = 0.0
    garbage = missed.clone()
    garbage[:, :, 4, :2] = 123.0
    torch.testing.assert_close(model(garbage), model(missed), atol=1e-6, rtol=1e-6)
    raw = _model(normalize_input=False)
    assert (raw(moved) - raw(x)).abs().max() > 1e-2


def _dilated_reference(trunk: WindowTrunk, keypoints):
    """The same weights run as VideoPose3D's dilated inference model over one window."""
    x = centre_and_scale_2d(keypoints)
    b, t, j, f = x.shape
    x = x.reshape(b, t, j * f).transpose(1, 2)
    bn = lambda m, v: F.batch_norm(v, m.running_mean, m.running_var, m.weight, m.bias, False)
    x = F.relu(bn(trunk.expand_bn, F.conv1d(x, trunk.expand_conv.weight)))
    dilation = trunk.filter_widths[0]
    for i, w in enumerate(trunk.filter_widths[1:]):
        pad = (w - 1) * dilation // 2
        residual = x[:, :, pad: x.shape[2] - pad]
        x = F.relu(bn(trunk.layers_bn[2 * i], F.conv1d(x, trunk.layers_conv[2 * i].weight, dilation=dilation)))
        x = residual + F.relu(bn(trunk.layers_bn[2 * i + 1], F.conv1d(x, trunk.layers_conv[2 * i + 1].weight)))
        dilation *= w
    return x.reshape(b, -1)


def test_strided_trunk_equals_the_dilated_model_on_one_window():
    model = _model(filter_widths=(3, 3, 3))
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = _windows(3)
    torch.testing.assert_close(model.trunk(x), _dilated_reference(model.trunk, x), atol=1e-5, rtol=1e-5)


def test_external_trunk_through_the_head():
    trunk = nn.Sequential(nn.Flatten(), nn.Linear(9 * 17 * 3, 40))
    model = PoseEmbedding(17, 3, embedding_dim=16, trunk=trunk, trunk_channels=40).eval()
    x = _windows(4, t=9)
    features = trunk(x)
    torch.testing.assert_close(model(x), model.head(features))
    torch.testing.assert_close(model.head(features).norm(dim=-1), torch.ones(6))
    with pytest.raises(ValueError):
        PoseEmbedding(17, trunk=trunk)


def test_architecture_rebuilds_the_same_model():
    model = _model(filter_widths=(3, 3))
    copy = PoseEmbedding(**model.architecture).eval()
    copy.load_state_dict(model.state_dict())
    x = _windows(6, t=9)
    torch.testing.assert_close(copy(x), model(x))
    regressor = EmbeddingToPose(32, 17, hidden=48)
    assert EmbeddingToPose(**regressor.architecture).mlp[0].out_features == 48


def test_embedding_to_pose_shape_units_and_gradients():
    model = _model()
    regressor = EmbeddingToPose(32, num_joints_out=17, hidden=64)
    with torch.no_grad():
        last = regressor.mlp[-1]
        last.weight.zero_()
        last.bias.fill_(0.5)
    assert torch.equal(regressor(torch.randn(3, 32)), torch.full((3, 17, 3), 500.0))  # metres -> mm
    regressor = EmbeddingToPose(32, num_joints_out=17, hidden=64)
    model.train()
    pose = regressor(model(_windows(5)))
    assert pose.shape == (6, 17, 3)
    pose.square().mean().backward()
    assert model.trunk.expand_conv.weight.grad.abs().sum() > 0
