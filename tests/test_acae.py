import numpy as np
import pytest
import torch

from posebridge.bridge import autoencoder as acae
from posebridge.geometry import skeletons
from posebridge.bridge.autoencoder import AffineCombiningAutoencoder
from posebridge.errors import ConfigError, DataError

# two formats whose joints share names, listed in a scrambled order, plus an unpaired sided name
NAMES = [
    "h36m_17/lknee", "smpl_24/pelvis", "h36m_17/rhip", "smpl_24/rhip", "h36m_17/pelvis",
    "h36m_17/lhip", "smpl_24/lhip", "h36m_17/rknee", "coco_19/rear", "smpl_24/head",
    "smpl_24/lwrist", "smpl_24/rwrist",
]


def randomise(model: torch.nn.Module, seed: int = 0, scale: float = 3.0) -> None:
    """Arbitrary free weights, negative ones included (not the near-convex initialisation)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def random_poses(n: int, j: int, seed: int = 0) -> torch.Tensor:
    """(n, j, 3) float64 poses in front of the camera (mm)."""
    g = torch.Generator().manual_seed(seed)
    pts = 300.0 * torch.randn(n, j, 3, generator=g, dtype=torch.float64)
    return pts + torch.tensor([100.0, -200.0, 4000.0], dtype=torch.float64)


def random_rotation(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


# ------------------------------------------------------------------------------ pairing by name

def test_chiral_order_pairs_within_a_format_only():
    left, right, centre = acae.chiral_order(NAMES)
    pairs = {(NAMES[a], NAMES[b]) for a, b in zip(left, right)}
    assert pairs == {
        ("h36m_17/lknee", "h36m_17/rknee"), ("h36m_17/lhip", "h36m_17/rhip"),
        ("smpl_24/lhip", "smpl_24/rhip"), ("smpl_24/lwrist", "smpl_24/rwrist"),
    }
    assert [NAMES[i] for i in centre] == [
        "smpl_24/pelvis", "h36m_17/pelvis", "coco_19/rear", "smpl_24/head"]  # rear has no lear
    assert sorted(left + right + centre) == list(range(len(NAMES)))


def test_mirror_permutation_matches_the_skeleton_registry():
    for name in ("h36m_17", "smpl_24", "coco_19", "mpi_inf_3dhp_28"):
        s = skeletons.get(name)
        prefixed = [f"{name}/{n}" for n in s.joint_names]
        assert acae.mirror_permutation(prefixed) == s.mirror
        assert acae.mirror_permutation(s.joint_names) == s.mirror


def test_invalid_configurations():
    with pytest.raises(ConfigError, match="even"):
        AffineCombiningAutoencoder(NAMES, n_latent_sided=7)
    with pytest.raises(ConfigError, match="duplicate"):
        AffineCombiningAutoencoder(["lhip", "rhip", "lhip"])
    with pytest.raises(ConfigError):
        AffineCombiningAutoencoder(NAMES, 0, 0)
    AffineCombiningAutoencoder(NAMES, 7, 2, chiral=False)  # odd is fine without sides


# ------------------------------------------------------------------------------ the matrices

def test_default_size_is_48_latents():
    model = AffineCombiningAutoencoder(NAMES)
    assert model.num_latents == 48
    assert model.encoder_matrix().shape == (len(NAMES), 48)
    assert model.decoder_matrix().shape == (48, len(NAMES))
    assert model.encode(random_poses(5, len(NAMES)).float()).shape == (5, 48, 3)
    assert model.latent_names[:2] == ("l1", "l2") and model.latent_names[20] == "r1"
    assert model.latent_names[-1] == "c8"


@pytest.mark.parametrize("chiral", [True, False])
def test_columns_sum_to_one_for_any_weights(chiral):
    model = AffineCombiningAutoencoder(NAMES, 10, 3, chiral=chiral)
    randomise(model, scale=10.0)
    enc, dec = model.encoder_matrix(), model.decoder_matrix()
    assert (enc < 0).any() and (dec < 0).any()  # really arbitrary weights, not convex ones
    torch.testing.assert_close(enc.sum(0), torch.ones(13), rtol=0, atol=1e-6)
    torch.testing.assert_close(dec.sum(0), torch.ones(len(NAMES)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("chiral", [True, False])
def test_encoding_commutes_with_affine_maps(chiral):
    model = AffineCombiningAutoencoder(NAMES, 10, 3, chiral=chiral).double()
    randomise(model)
    x = random_poses(4, len(NAMES))
    z = model.encode(x)
    g = torch.Generator().manual_seed(1)
    t = 1000.0 * torch.randn(3, generator=g, dtype=torch.float64)
    maps = {
        "rotation": random_rotation(2),
        "uniform scale": 0.37 * torch.eye(3, dtype=torch.float64),
        "similarity": 2.5 * random_rotation(3),
        "general affine": torch.randn(3, 3, generator=g, dtype=torch.float64),
    }
    for name, m in maps.items():
        moved = x @ m.T + t
        torch.testing.assert_close(model.encode(moved), z @ m.T + t, msg=name)
        torch.testing.assert_close(model.decode(z @ m.T + t), model.decode(z) @ m.T + t, msg=name)
        torch.testing.assert_close(model(moved), model(x) @ m.T + t, msg=name)


def test_mirroring_the_input_mirrors_the_latents_exactly():
    model = AffineCombiningAutoencoder(NAMES, 10, 3, chiral=True).double()
    randomise(model, seed=5)
    jperm, lperm = model.joint_mirror_permutation(), model.latent_mirror_permutation()
    enc, dec = model.encoder_matrix(), model.decoder_matrix()
    # weight sharing is exact: relabelling joints and latents by the mirror leaves W unchanged
    assert torch.equal(enc[list(jperm)][:, list(lperm)], enc)
    assert torch.equal(dec[list(lperm)][:, list(jperm)], dec)

    x = random_poses(6, len(NAMES), seed=3)
    z = model.encode(x)
    torch.testing.assert_close(model.encode(acae.mirror_points(x, jperm)), acae.mirror_points(z, lperm),
                               rtol=0, atol=1e-9)
    torch.testing.assert_close(model.decode(acae.mirror_points(z, lperm)),
                               acae.mirror_points(model.decode(z), jperm), rtol=0, atol=1e-9)


def test_a_non_chiral_model_is_not_mirror_equivariant():
    # guards the test above: with free weights on both sides the property must fail
    model = AffineCombiningAutoencoder(NAMES, 10, 3, chiral=False).double()
    randomise(model, seed=5)
    jperm = model.joint_mirror_permutation()
    x = random_poses(6, len(NAMES), seed=3)
    with pytest.raises(ConfigError):
        model.latent_mirror_permutation()
    mirrored = model(acae.mirror_points(x, jperm))
    assert (mirrored - acae.mirror_points(model(x), jperm)).abs().max() > 1.0


# ------------------------------------------------------------------------------ losses

def nonnegative(model):
    """Free weights in [0, 1): every normalised weight is 1/n + (w - mean)/n > 0."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g))


@pytest.mark.parametrize("chiral", [True, False])
def test_regularizer_is_1_over_j_plus_1_over_l_for_nonnegative_weights(chiral):
    model = AffineCombiningAutoencoder(NAMES, 40, 8, chiral=chiral)
    nonnegative(model)
    assert (model.encoder_matrix() >= 0).all() and (model.decoder_matrix() >= 0).all()
    J, L = len(NAMES), 48
    assert acae.regularizer(model).item() == pytest.approx(1 / J + 1 / L, abs=1e-6)


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_regularizer_grows_with_a_negative_weight(part):
    model = AffineCombiningAutoencoder(NAMES, 40, 8)
    nonnegative(model)
    J, L = len(NAMES), 48
    with torch.no_grad():
        getattr(model, part).sided[0, 0] = -5.0  # one free weight far below its column's mean
    enc, dec = model.encoder_matrix(), model.decoder_matrix()
    negative = -enc.clamp(max=0).sum() - dec.clamp(max=0).sum()
    assert negative > 0 and ((enc >= 0).all() if part == "decoder" else (dec >= 0).all())
    # a column summing to 1 has |column| = 1 + 2 * (its negative part), so the excess is exact
    expected = 1 / J + 1 / L + 2 * negative / (J * L)
    reg = acae.regularizer(model)
    assert reg.item() > 1 / J + 1 / L + 1e-4
    assert reg.item() == pytest.approx(expected.item(), abs=1e-6)


def test_projected_loss_ignores_motion_along_camera_rays():
    target = random_poses(8, len(NAMES))
    g = torch.Generator().manual_seed(4)
    factors = 0.3 + 2.0 * torch.rand(8, len(NAMES), 1, generator=g, dtype=torch.float64)
    assert acae.projected_l1_loss(target * factors, target).item() == pytest.approx(0.0, abs=1e-9)
    assert acae.l1_3d_loss(target * factors, target).item() > 100.0  # the 3D loss does see it


def test_projected_loss_known_value_for_a_sideways_shift():
    target = random_poses(5, len(NAMES), seed=7)
    shifted = target + torch.tensor([12.0, 0.0, 0.0], dtype=torch.float64)
    z = target[..., 2]
    # x error per joint: 12/z_j * mean depth; y error 0; mean over both coordinates
    expected = (12.0 / z * z.mean(dim=1, keepdim=True)).mean() / 2
    loss = acae.projected_l1_loss(shifted, target)
    assert loss.item() > 1.0
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_losses_mask_missing_target_joints():
    pred = random_poses(1, len(NAMES), seed=1).requires_grad_(True)
    target = random_poses(1, len(NAMES), seed=2)
    target[0, 3] = float("nan")
    keep = [j for j in range(len(NAMES)) if j != 3]
    for loss in (acae.projected_l1_loss, acae.l1_3d_loss):
        value = loss(pred, target)
        # same as deleting the joint (the mean depth is that of the valid joints too)
        assert value.item() == pytest.approx(loss(pred[:, keep], target[:, keep]).item(), rel=1e-12)
        (grad,) = torch.autograd.grad(value, pred)
        assert torch.isfinite(grad).all() and (grad[0, 3] == 0).all()


def test_l1_3d_loss_known_value():
    target = random_poses(3, 4)
    assert acae.l1_3d_loss(target + torch.tensor([1.0, -2.0, 6.0], dtype=torch.float64), target).item() == \
        pytest.approx(3.0)


def test_objective_combines_in_metres():
    model = AffineCombiningAutoencoder(NAMES, 10, 3).double()
    randomise(model, scale=0.5)
    x = random_poses(4, len(NAMES))
    for loss, fn in (("projected", acae.projected_l1_loss), ("3d", acae.l1_3d_loss)):
        total, recon, reg = acae.objective(model, x, loss)
        assert recon.item() == pytest.approx(fn(model(x), x).item(), rel=1e-12)
        assert reg.item() == pytest.approx(acae.regularizer(model).item(), rel=1e-12)
        assert total.item() == pytest.approx(recon.item() / 1000 + 0.6 * reg.item(), rel=1e-12)
    with pytest.raises(ConfigError, match="unknown ACAE loss"):
        acae.objective(model, x, "l2")


# ------------------------------------------------------------------------------ fitting

LATENT_PAIRS, LATENT_CENTRE = 3, 2


def affine_joint_data(rng: np.random.Generator):
    """Joints that ARE affine combinations of 8 latent points (3 left, 3 right, 2 centre).

    16 joints: the latent points themselves and mirror-symmetric convex combinations of them,
    so a chiral ACAE with enough latents can reconstruct them exactly with non-negative weights.
    Returns (names, a function n -> (n, 16, 3) float32 camera-space poses in mm).
    """
    k = 2 * LATENT_PAIRS + LATENT_CENTRE
    swap = [*range(LATENT_PAIRS, 2 * LATENT_PAIRS), *range(LATENT_PAIRS), *range(2 * LATENT_PAIRS, k)]
    s = rng.uniform(0, 1, (3, k))
    left = np.concatenate([np.eye(k)[:LATENT_PAIRS], s / s.sum(1, keepdims=True)])
    c, zc = rng.uniform(0, 1, (2, LATENT_PAIRS)), rng.uniform(0, 1, (2, LATENT_CENTRE))
    centre = np.concatenate([c, c, zc], axis=1)
    combine = np.concatenate([left, left[:, swap], np.eye(k)[2 * LATENT_PAIRS:],
                              centre / centre.sum(1, keepdims=True)])
    names = [f"l{i}" for i in range(6)] + [f"r{i}" for i in range(6)] + [f"c{i}" for i in range(4)]

    def sample(count):
        latents = rng.normal(0, 300, (count, k, 3)) + rng.normal([0, 0, 4500], [400, 200, 500], (count, 1, 3))
        return np.einsum("jk,nkc->njc", combine, latents).astype(np.float32)

    return names, sample


def test_fit_reconstructs_affine_data_and_beats_the_mean_pose():
    names, sample = affine_joint_data(np.random.default_rng(0))
    train, test = sample(256), sample(200)
    model, history = acae.fit_acae(train, names, n_latent_sided=10, n_latent_center=4, epochs=50,
                                   lr_boundaries=(0.8, 0.9), seed=0, progress=False, val_points=test)
    err = acae.reconstruction_error(model, test)
    mean_pose = acae.mean_pose_baseline(train, test)
    assert history["val_mpjpe"].iloc[-1] == pytest.approx(err, rel=1e-6)
    assert err < 1.0  # mm
    assert mean_pose > 200.0
    assert err < 0.01 * mean_pose
    # the data's centred poses span 3 * 7 dimensions: PCA with 3 * L components is exact too
    assert acae.pca_baseline(train, test, 3 * 14) < 1e-3
    assert list(history.columns) == ["epoch", "lr", "loss", "reconstruction", "regularizer",
                                     "train_mpjpe", "val_mpjpe"]


def test_fit_is_deterministic_and_follows_the_lr_schedule():
    names, sample = affine_joint_data(np.random.default_rng(1))
    train = sample(64)
    kwargs = dict(n_latent_sided=4, n_latent_center=2, epochs=6, batch_size=16, progress=False)
    a, hist_a = acae.fit_acae(train, names, seed=3, **kwargs)
    b, hist_b = acae.fit_acae(train, names, seed=3, **kwargs)
    c, _ = acae.fit_acae(train, names, seed=4, **kwargs)
    assert torch.equal(a.encoder_matrix(), b.encoder_matrix())
    assert torch.equal(a.decoder_matrix(), b.decoder_matrix())
    assert hist_a.equals(hist_b)
    assert not torch.equal(a.encoder_matrix(), c.encoder_matrix())
    # 3e-2 for the first third of the steps, 3e-3 for the second, 3e-4 for the last
    assert hist_a["lr"].tolist() == [3e-2, 3e-2, 3e-3, 3e-3, 3e-4, 3e-4]


def test_fit_drops_incomplete_poses_and_rejects_bad_data():
    names, sample = affine_joint_data(np.random.default_rng(2))
    train = sample(40)
    train[::2, 5] = np.nan
    model, _ = acae.fit_acae(train, names, 4, 2, epochs=1, progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(DataError, match="pgt.h5: .*no pose has all its joints"):
        acae.fit_acae(train[::2], names, 4, 2, epochs=1, progress=False, source="pgt.h5")
    behind = sample(8)
    behind[0, 0, 2] = -10.0
    with pytest.raises(DataError, match="in front of the camera"):
        acae.fit_acae(behind, names, 4, 2, epochs=1, progress=False)
    with pytest.raises(DataError, match="16 joints but 3 joint names"):
        acae.fit_acae(sample(8), names[:3], 4, 2, epochs=1, progress=False)
    with pytest.raises(ConfigError, match="unknown ACAE loss"):
        acae.fit_acae(sample(8), names, 4, 2, epochs=1, progress=False, loss="l2")


# ------------------------------------------------------------------------------ baselines

def test_pca_and_mean_pose_baselines():
    rng = np.random.default_rng(3)
    J = 6
    basis = rng.normal(size=(2, J * 3))  # centred poses spanning 2 directions (plus a mean pose)
    mean_pose = rng.normal(0, 200, (J, 3))

    def sample(n):
        flat = rng.normal(0, 50, (n, 2)) @ basis
        pose = mean_pose + flat.reshape(n, J, 3)
        pose -= pose.mean(axis=1, keepdims=True)
        return pose + rng.normal([0, 0, 4000], 500, (n, 1, 3))

    train, test = sample(500), sample(100)
    assert acae.pca_baseline(train, test, 2) < 1e-6
    assert acae.pca_baseline(train, test, 1) > 1.0
    assert acae.pca_baseline(train, test, 3 * J) < 1e-6  # full basis (clipped) reconstructs anything
    # mean pose: the centroid-relative training mean put at each test pose's centroid
    centred = train - train.mean(axis=1, keepdims=True)
    guess = centred.mean(axis=0) + test.mean(axis=1, keepdims=True)
    expected = np.linalg.norm(guess - test, axis=-1).mean()
    assert acae.mean_pose_baseline(train, test) == pytest.approx(expected, rel=1e-9)
    assert acae.pca_baseline(train, test, 0) == acae.mean_pose_baseline(train, test)


def test_state_dict_round_trip_through_architecture():
    model = AffineCombiningAutoencoder(NAMES, 10, 3)
    randomise(model, seed=9)
    copy = AffineCombiningAutoencoder(**model.architecture)
    copy.load_state_dict(model.state_dict())
    assert torch.equal(copy.encoder_matrix(), model.encoder_matrix())
    assert torch.equal(copy.decoder_matrix(), model.decoder_matrix())
    assert not any("unorder" in key or "swap" in key for key in model.state_dict())  # derived, not saved
