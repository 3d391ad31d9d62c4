"""`posebridge import-videopose3d`: checkpoints in VideoPose3D's exact layout (random weights),
imported and run through posebridge's inference, give the TemporalModel's own predictions; bad
files give one-line errors naming the file."""

import numpy as np
import pytest
import torch

from posebridge import cli
from posebridge.geometry import skeletons
from posebridge.errors import DataError
from posebridge.inference.lift import lift, load_model
from posebridge.models.temporal import TemporalModel, TemporalModelOptimized
from posebridge.interop.videopose3d import import_checkpoint, infer_architecture


def random_model(cls, joints_out, widths=(3, 3, 3), channels=48, causal=False, seed=0):
    """A VideoPose3D-shaped model with random weights and random batch-norm statistics."""
    torch.manual_seed(seed)
    model = cls(num_joints_in=17, in_features=2, num_joints_out=joints_out, filter_widths=list(widths),
                causal=causal, channels=channels)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.3)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                buf.fill_(1234)
        for name, p in model.named_parameters():
            if "bn" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.normal_(0, 0.1)
    return model


def write_videopose3d_checkpoint(path, model_pos, model_traj=None, epoch=80, lr=1e-3 * 0.95 ** 79):
    """torch.save exactly as VideoPose3D's run.py does (the training model's state dict)."""
    params = list(model_pos.parameters()) + (list(model_traj.parameters()) if model_traj is not None else [])
    optimizer = torch.optim.Adam(params, lr=lr, amsgrad=True)
    torch.save({"epoch": epoch, "lr": lr, "random_state": np.random.RandomState(1234).get_state(),
                "optimizer": optimizer.state_dict(), "model_pos": model_pos.state_dict(),
                "model_traj": model_traj.state_dict() if model_traj is not None else None}, path)


def reference_lift(model, keypoints, width, height):
    """Root-relative metres from the TemporalModel run directly on edge-padded normalised input."""
    x = torch.as_tensor(keypoints[..., :2] / width * 2 - np.array([1, height / width]), dtype=torch.float32)
    before, after = model.window()
    x = torch.cat([x[:1].expand(before, -1, -1), x, x[-1:].expand(after, -1, -1)])
    with torch.no_grad():
        out = model.eval()(x[None])[0]
    return (out - out[:, :1]).numpy()


@pytest.mark.parametrize("causal", [False, True])
def test_imported_checkpoint_predicts_like_the_temporal_model(tmp_path, causal):
    pos = random_model(TemporalModelOptimized, 17, causal=causal)
    traj = random_model(TemporalModelOptimized, 1, causal=causal, seed=1)
    write_videopose3d_checkpoint(tmp_path / "epoch_80.bin", pos, traj)
    argv = ["import-videopose3d", str(tmp_path / "epoch_80.bin"), "--out-dir", str(tmp_path / "model")]
    assert cli.main(argv + (["--causal"] if causal else [])) == 0
    for name in ("model.pt", "config.yaml", "train_log.parquet"):
        assert (tmp_path / "model" / name).is_file()

    model = load_model(tmp_path / "model")
    assert model.formats == ["h36m_17"] and model.keypoint_format == "h36m_17" and model.in_features == 2
    assert model.receptive_field() == 27 and model.lifter.temporal.causal == causal
    rng = np.random.default_rng(0)
    width, height = 1000, 1002
    keypoints = np.concatenate([rng.uniform(100, 900, (150, 17, 2)), np.ones((150, 17, 1))], -1)
    reference = TemporalModel.sharing(pos)  # the dilated model with the written weights
    expected = reference_lift(reference, keypoints, width, height)
    got = lift(model, keypoints, width, height, flip=False)["h36m_17"] / 1000.0
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # test-time flip averaging uses h36m_17's left/right joints
    mirrored = keypoints.copy()
    mirrored[..., 0] = width - mirrored[..., 0]
    mirrored = mirrored[:, list(skeletons.get("h36m_17").mirror)]
    flipped = reference_lift(reference, mirrored, width, height)[:, list(skeletons.get("h36m_17").mirror)]
    flipped[..., 0] *= -1
    got_flip = lift(model, keypoints, width, height, flip=True)["h36m_17"] / 1000.0
    np.testing.assert_allclose(got_flip, (expected + flipped) / 2, atol=1e-5)

    payload = torch.load(tmp_path / "model" / "model.pt", weights_only=True)
    assert payload["training"]["epoch"] == 80 and payload["training"]["source"] == "videopose3d"
    entry = payload["trajectory"]
    assert entry["architecture"]["num_joints_out"] == 1 and entry["format"] == "h36m_17"
    assert entry["architecture"]["causal"] == causal
    restored = TemporalModel(**entry["architecture"])
    restored.load_state_dict(entry["state_dict"])
    assert all(torch.equal(v, traj.state_dict()[k]) for k, v in restored.state_dict().items())


def test_architecture_is_read_from_the_weights(tmp_path):
    model = random_model(TemporalModel, 15, widths=(3, 5, 3), channels=16)
    arch = infer_architecture(model.state_dict(), tmp_path, in_features=2)
    assert arch == {"num_joints_in": 17, "in_features": 2, "num_joints_out": 15,
                    "filter_widths": [3, 5, 3], "channels": 16}
    # without a trajectory model (model_traj None), a DataParallel "module." prefix, HumanEva output
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "lr": 1e-3, "model_pos": state, "model_traj": None,
                "random_state": np.random.RandomState(0).get_state(), "optimizer": {}}, tmp_path / "he.bin")
    lifter = import_checkpoint(tmp_path / "he.bin", tmp_path / "he", keypoint_format="coco_17")
    assert lifter.formats == ["humaneva_15"] and lifter.keypoint_format == "coco_17"
    assert "trajectory" not in torch.load(tmp_path / "he" / "model.pt", weights_only=True)


def _bad_files(tmp_path):
    good = random_model(TemporalModelOptimized, 17, channels=8).state_dict()
    missing = dict(good)
    del missing["layers_bn.1.running_var"]
    resized = dict(good, **{"layers_conv.1.weight": torch.zeros(8, 8, 3)})
    diverged = dict(good, **{"shrink.weight": torch.full_like(good["shrink.weight"], float("nan"))})
    files = {}
    for name, payload in {"missing": {"model_pos": missing}, "resized": {"model_pos": resized},
                          "nan": {"model_pos": diverged},
                          "no_model": {"epoch": 1, "model": good}, "no_shrink": {
                              "model_pos": {k: v for k, v in good.items() if not k.startswith("shrink")}}}.items():
        files[name] = tmp_path / f"{name}.bin"
        torch.save(payload, files[name])
    files["corrupt"] = tmp_path / "corrupt.bin"
    files["corrupt"].write_bytes(b"PK\x03\x04 not a checkpoint at all" * 10)
    files["absent"] = tmp_path / "absent.bin"
    return files


def test_corrupt_or_incomplete_checkpoints_give_one_line_errors(tmp_path, capsys):
    for name, path in _bad_files(tmp_path).items():
        with pytest.raises(DataError) as info:
            import_checkpoint(path, tmp_path / f"out_{name}")
        message = str(info.value)
        assert str(path) in message and "\n" not in message, (name, message)
        assert not (tmp_path / f"out_{name}" / "model.pt").exists()
        assert cli.main(["import-videopose3d", str(path), "--out-dir", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(path) in err
    with pytest.raises(DataError, match="layers_bn.1.running_var"):
        import_checkpoint(tmp_path / "missing.bin", tmp_path / "x")
    with pytest.raises(DataError, match=r"nan.bin: 'model_pos' holds NaN or inf weights \(shrink.weight\)"):
        import_checkpoint(tmp_path / "nan.bin", tmp_path / "x")
