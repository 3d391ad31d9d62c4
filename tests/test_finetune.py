"""ACAE heads and fine-tuning: a latent head's output is the decoder applied to its latents (in
training, folded for inference and after a model.pt round trip); a latent head started from the
initial model predicts exactly D(E(initial)); merged joints share outputs; the objectives' terms
are the formulas; the command pipeline (train -> pseudo-gt -> fit-acae -> finetune) runs, writes
a model that load_model / lift read, and resumes."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from posebridge.geometry import skeletons
from posebridge.bridge.autoencoder import AffineCombiningAutoencoder, load_acae
from posebridge.errors import ConfigError
from posebridge.bridge.finetune import AcaeObjective, init_state, output_map
from posebridge.inference.lift import LiftingModel, lift, load_model
from posebridge.models.lifter import SeparateHeadLifter, merged_output_map, union_joint_names
from posebridge.training.loop import StepOutputs, TrainConfig

from test_train import TINY, coco_keypoints, make_camera, make_sequences, write_toy_dataset

FORMATS = ["h36m_17", "humaneva_15"]


def random_acae(formats=FORMATS, seed=0):
    g = torch.Generator().manual_seed(seed)
    return AffineCombiningAutoencoder(union_joint_names(formats), 10, 4, generator=g).eval()


def lifter_with(formats=FORMATS, seed=0, **kwargs):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        lifter = SeparateHeadLifter(formats, filter_widths=[3, 3], channels=24, **kwargs)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding matters
        g = torch.Generator().manual_seed(seed)
        for bn in [lifter.temporal.expand_bn, *lifter.temporal.layers_bn]:
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 0.2)
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
    return lifter.eval()


def inputs(B=3, T=9, seed=0):
    return torch.randn(B, T, 17, 3, generator=torch.Generator().manual_seed(seed))


def test_latent_head_outputs_the_decoded_latents_in_training_folded_and_from_model_pt(tmp_path):
    acae = random_acae()
    lifter = lifter_with(output_map=output_map("latent", FORMATS, acae))
    assert lifter.mapped and lifter.num_joints_out == 32 and lifter.temporal.num_raw_out == acae.num_latents
    x = inputs()
    with torch.no_grad():
        features = lifter.temporal.features(x)[:, 0]
        latents = lifter.temporal.raw_head(features)  # (B, L, 3)
        expected = acae.decode(latents)
        with torch.enable_grad():  # the unfolded path
            plain = lifter(x)[:, 0].detach()
        folded = lifter.temporal.folded_forward(x)[:, 0]
    torch.testing.assert_close(plain, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(folded, expected, atol=1e-5, rtol=1e-5)

    # the strided training variant shares weights and map
    strided = lifter.variant(strided=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(strided(x)[:, 0], expected, atol=1e-5, rtol=1e-5)

    # model.pt round trip: load_model + lift predict the same (union of formats, root-relative)
    (tmp_path / "m").mkdir()
    torch.save(lifter.file_dict({f: np.zeros((skeletons.get(f).num_joints, 3)) for f in FORMATS}),
               tmp_path / "m" / "model.pt")
    loaded = load_model(tmp_path / "m")
    assert loaded.lifter.mapped and loaded.formats == FORMATS
    torch.testing.assert_close(loaded.lifter.temporal.output_map, acae.decoder_matrix().detach())
    kp = coco_keypoints(make_sequences(1, 30, 2)[0], make_camera(), np.random.default_rng(0))
    a = lift(loaded, kp, 1000, 1000)
    b = lift(LiftingModel.from_lifter(lifter, name="mem"), kp, 1000, 1000)
    for f in FORMATS:
        np.testing.assert_allclose(a[f], b[f], atol=1e-3)


@pytest.mark.parametrize("variant", ["latent", "hybrid"])
def test_latent_head_started_from_the_initial_model_predicts_its_acae_reconstruction(variant):
    acae = random_acae(seed=1)
    initial = lifter_with(seed=2)
    mapping = output_map(variant, FORMATS, acae)
    state = init_state(variant, initial.temporal.state_dict(), acae, mapping)
    tuned = lifter_with(seed=3, output_map=mapping)
    tuned.temporal.load_state_dict(state)
    x = inputs(seed=4)
    with torch.no_grad():
        p = initial.temporal.folded_forward(x)[:, 0]
        out = tuned.temporal.folded_forward(x)[:, 0]
        raw = tuned.temporal.raw_head(tuned.temporal.features(x)[:, 0])
    torch.testing.assert_close(out, acae(p), atol=1e-5, rtol=1e-4)
    if variant == "hybrid":  # the full head is the initial one, the latent head its encoding
        torch.testing.assert_close(raw[:, :32], p, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(raw[:, 32:], acae.encode(p), atol=1e-5, rtol=1e-4)


def test_merged_head_gives_same_named_joints_one_output():
    formats = ["h36m_17", "mpi_inf_3dhp_17", "humaneva_15"]
    mapping, names = merged_output_map(formats)
    union = [n.rpartition("/")[2] for n in union_joint_names(formats)]
    assert names == list(dict.fromkeys(union)) and mapping.sum(0).eq(1).all()
    lifter = lifter_with(formats, output_map=mapping)
    with torch.no_grad():
        out = lifter.split(lifter.temporal.folded_forward(inputs())[:, 0])
    h36m, hdp, heva = (skeletons.get(f) for f in formats)
    for name in ("lwrist", "rknee", "neck"):
        torch.testing.assert_close(out["h36m_17"][:, h36m.index(name)], out["mpi_inf_3dhp_17"][:, hdp.index(name)])
        if name in heva.joint_names:
            torch.testing.assert_close(out["h36m_17"][:, h36m.index(name)], out["humaneva_15"][:, heva.index(name)])
    # joints with different names are free to differ
    assert not torch.allclose(out["h36m_17"][:, h36m.index("lwrist")], out["h36m_17"][:, h36m.index("rwrist")])


def test_objective_terms_are_the_formulas():
    acae = random_acae(seed=5)
    config = TrainConfig(**TINY)
    pred = torch.randn(4, 32, 3, generator=torch.Generator().manual_seed(0))
    out = StepOutputs(lifter=None, labeled=None, labeled_pred=pred, labeled_features=None)
    terms = AcaeObjective("output_reg", acae, config, weight=0.5).losses(out, 0)
    expected = (pred - acae(pred)).abs().mean()
    torch.testing.assert_close(terms["consistency"], expected)
    torch.testing.assert_close(terms["total"], 0.5 * expected)
    with pytest.raises(ConfigError):
        AcaeObjective("latent", acae, config)


def toy_pipeline(tmp_path, capsys, device="cpu"):
    """Initial model on two toy datasets (trained on ``device``), its pseudo-GT and a fitted ACAE."""
    from posebridge.cli import main

    a, a_det = write_toy_dataset(tmp_path, "toy_a", "h36m_17", seed=0)
    b, b_det = write_toy_dataset(tmp_path, "toy_b", "h36m_17", seed=1)
    data = ["--dataset", str(a), "--detections", str(a_det), "--train-format", "h36m_17",
            "--dataset", str(b), "--detections", str(b_det), "--train-format", "native"]
    spec = json.dumps({**TINY, "epochs": 1, "samples_per_epoch": 128})
    common = ["--seed", "1", "--device", device, "--threads", "1", "--no-progress"]
    assert main(["train", "--spec", spec, *data, "--out-dir", str(tmp_path / "initial"),
                 "--checkpoint", str(tmp_path / "ck" / "initial.pt"), *common]) == 0
    assert main(["pseudo-gt", "--model", str(tmp_path / "initial"), *data[:4], "--spec",
                 json.dumps({"stride": 3, "min_confidence": 0.0}), "--output", str(tmp_path / "pgt.npz"),
                 "--device", device]) == 0
    assert main(["fit-acae", "--pseudo-gt", str(tmp_path / "pgt.npz"), "--output", str(tmp_path / "acae.pt"),
                 "--spec", json.dumps({"epochs": 2, "n_latent_sided": 6, "n_latent_center": 2}),
                 "--metrics", str(tmp_path / "m.parquet"), "--history", str(tmp_path / "h.parquet"),
                 "--no-progress"]) == 0
    return data, spec, common


def test_finetune_command_trains_a_loadable_hybrid_model_and_resumes(tmp_path, capsys):
    from posebridge.cli import main

    data, spec, common = toy_pipeline(tmp_path, capsys)
    metrics = pd.read_parquet(tmp_path / "m.parquet")
    assert list(metrics["coordinates"]) == [24, 24, 0]
    acae, _ = load_acae(tmp_path / "acae.pt")
    assert acae.joint_names == tuple(union_joint_names(["h36m_17"]))

    spec2 = json.dumps({**TINY, "epochs": 2, "samples_per_epoch": 128, "lr": 5e-4})
    argv = ["finetune", "--variant", "hybrid", "--init", str(tmp_path / "initial"), "--acae",
            str(tmp_path / "acae.pt"), "--warmup-epochs", "1", "--spec", spec2, *data,
            "--out-dir", str(tmp_path / "hybrid"), "--checkpoint", str(tmp_path / "ck" / "hybrid.pt"), *common]
    assert main(argv) == 0
    log = pd.read_parquet(tmp_path / "hybrid" / "train_log.parquet")
    assert {"loss_acae_full", "loss_acae_teacher"} <= set(log.columns)
    model = load_model(tmp_path / "hybrid")
    assert model.lifter.mapped and model.metadata["head"]["variant"] == "hybrid"
    camera = make_camera()
    kp = coco_keypoints(make_sequences(1, 20, 4)[0], camera, np.random.default_rng(1))
    pose = lift(model, kp, 1000, 1000, intrinsics=camera.intrinsics, distortion=camera.distortion)["h36m_17"]
    assert pose.shape == (20, 17, 3) and np.isfinite(pose).all()
    # inference reads only the latent head: the full head's rows of the map are zero
    mapping = model.lifter.temporal.output_map
    assert torch.equal(mapping[:17], torch.zeros(17, 17))
    torch.testing.assert_close(mapping[17:], acae.decoder_matrix())

    capsys.readouterr()
    assert main(argv) == 0
    assert "resuming" in capsys.readouterr().out

    # wrong pairings are one-line errors
    capsys.readouterr()
    assert main(["finetune", "--variant", "latent", "--init", str(tmp_path / "initial"), "--spec", spec2, *data,
                 "--out-dir", str(tmp_path / "x"), "--checkpoint", str(tmp_path / "ck" / "x.pt"), *common]) == 1
    assert "variant latent needs --acae" in capsys.readouterr().err
