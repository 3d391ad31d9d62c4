import numpy as np
import torch

from posebridge.models.embedding import EmbeddingHead, EmbeddingToPose, centre_and_scale_2d


def _windows(seed, b=6, t=27, j=17, conf=True):
    g = torch.Generator().manual_seed(seed)
    xy = torch.randn(b, t, j, 2, generator=g) * 0.2
    if not conf:
        return xy
    return torch.cat([xy, torch.rand(b, t, j, 1, generator=g) * 0.5 + 0.5], dim=-1)


def _head(in_channels=40, dim=32):
    torch.manual_seed(0)
    return EmbeddingHead(in_channels, dim)


def test_centre_and_scale_known_values():
    kp = torch.tensor([[[[10.0, 5.0, 1.0], [14.0, 5.0, 1.0], [99.0, -7.0, 0.0]]]])  # (1, 1, 3, 3)
    out = centre_and_scale_2d(kp)
    # centre (12, 5) from the two seen joints; RMS spread 2; the missed joint is zeroed
    expected = torch.tensor([[[[-1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]])
    torch.testing.assert_close(out, expected)


def test_centre_and_scale_is_invariant_to_image_position_and_size_and_to_missed_joints():
    x = _windows(2)
    moved = x.clone()
    scale = torch.tensor([0.5, 1.0, 2.0, 3.0, 0.7, 1.3])[:, None, None, None]
    shift = torch.randn(6, 1, 1, 2)  # one camera placement per window, constant over time
    moved[..., :2] = x[..., :2] * scale + shift
    torch.testing.assert_close(centre_and_scale_2d(moved), centre_and_scale_2d(x), atol=1e-5, rtol=1e-5)
    missed = x.clone()
    missed[:, :, 4, 2] = 0.0
    garbage = missed.clone()
    garbage[:, :, 4, :2] = 123.0
    torch.testing.assert_close(centre_and_scale_2d(garbage), centre_and_scale_2d(missed), atol=1e-6, rtol=1e-6)
    # the shape of the pose is kept: a different pose stays different
    assert (centre_and_scale_2d(_windows(3)) - centre_and_scale_2d(x)).abs().max() > 0.1
    # without confidence every joint counts
    assert centre_and_scale_2d(x[..., :2]).shape == (6, 27, 17, 2)


def test_head_gives_unit_embeddings_that_do_not_collapse_onto_a_shared_component():
    head = _head()
    g = torch.Generator().manual_seed(1)
    # features dominated by what every window shares (trunk features after ReLU are like this)
    features = 50.0 + 0.1 * torch.randn(64, 40, generator=g)
    emb = head(features)
    assert emb.shape == (64, 32)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(64))
    d = torch.cdist(emb, emb)
    # centred before normalising: embeddings spread over the sphere (random directions: ~sqrt(2))
    assert d[~torch.eye(64, dtype=torch.bool)].mean() > 1.0
    head.eval()  # eval mode uses the running statistics, one embedding per window regardless of batch
    torch.testing.assert_close(head(features[:1]), head(features)[:1])


def test_head_architecture_rebuilds_the_same_head():
    head = _head()
    head(torch.randn(16, 40))  # non-trivial running statistics
    copy = EmbeddingHead(40, 32, hidden=head.hidden.out_features)
    copy.load_state_dict(head.state_dict())
    x = torch.randn(5, 40)
    torch.testing.assert_close(copy.eval()(x), head.eval()(x))
    regressor = EmbeddingToPose(32, 17, hidden=48)
    assert EmbeddingToPose(**regressor.architecture).mlp[0].out_features == 48


def test_embedding_to_pose_shape_units_and_gradients():
    regressor = EmbeddingToPose(32, num_joints_out=17, hidden=64)
    with torch.no_grad():
        last = regressor.mlp[-1]
        last.weight.zero_()
        last.bias.fill_(0.5)
    assert torch.equal(regressor(torch.randn(3, 32)), torch.full((3, 17, 3), 500.0))  # metres -> mm
    head = _head()
    regressor = EmbeddingToPose(32, num_joints_out=17, hidden=64)
    pose = regressor(head(torch.randn(6, 40)))
    assert pose.shape == (6, 17, 3)
    pose.square().mean().backward()
    assert head.hidden.weight.grad.abs().sum() > 0
    assert np.isfinite(pose.detach().numpy()).all()
