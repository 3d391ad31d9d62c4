"""The CUDA path: training (with weight averaging, killed and resumed), the semi-supervised and
multi-view objectives, the command-line chain train -> pseudo-gt -> fit-acae -> finetune ->
evaluate, and lifting, each on a GPU, checked against what the same weights give on the CPU.

Skipped where no CUDA device is visible (CI has none); on a GPU machine: ``pytest tests/test_cuda.py``.
"""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from posebridge.inference.lift import LiftingModel, lift, load_model
from posebridge.training.loop import TrainConfig, train
from posebridge.training.objectives import multiview
from test_finetune import toy_pipeline
from test_multiview import write_multiview_dataset
from test_train import (TINY, Killed, coco_keypoints, kill_at, make_camera, make_sequences, make_set,
                        write_toy_dataset)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")

QUIET = {"progress": False, "log": lambda m: None}
# posebridge runs CUDA convolutions in float32, not cuDNN's TF32 (posebridge.device): the GPU and
# the CPU then agree to float rounding, far below this; TF32 alone moved these poses by 2.7 mm
SAME_MM = 0.05


def on_device(module: torch.nn.Module) -> set[str]:
    return {p.device.type for p in module.parameters()} | {b.device.type for b in module.buffers()}


def tensors(entry):
    """Every tensor in a (nested) file payload."""
    if torch.is_tensor(entry):
        yield entry
    elif isinstance(entry, dict):
        for value in entry.values():
            yield from tensors(value)
    elif isinstance(entry, (list, tuple)):
        for value in entry:
            yield from tensors(value)


def lift_both(lifter, keypoints, camera):
    """The h36m_17 poses (mm) of one lifter run on the GPU and, from a copy, on the CPU."""
    poses = []
    for device in ("cuda", "cpu"):
        model = LiftingModel.from_lifter(copy.deepcopy(lifter), {"h36m_17": np.zeros((17, 3))}, device=device)
        poses.append(lift(model, keypoints, *camera.image_size, intrinsics=camera.intrinsics,
                          distortion=camera.distortion)["h36m_17"])
    return poses


def test_training_on_cuda_learns_resumes_its_weight_average_and_lifts_as_on_the_cpu(tmp_path):
    data, val = make_set(rows=6, frames=80, seed=0), make_set(rows=2, frames=80, seed=1)
    config = TrainConfig(**{**TINY, "epochs": 4, "samples_per_epoch": 640, "lr": 3e-3,
                            "bn_recalibration_batches": 2, "average_last_epochs": 2})
    reference, log = train(config, data, val, seed=5, device="cuda", checkpoint=tmp_path / "a.pt", **QUIET)
    assert on_device(reference) == {"cuda"}
    assert log["loss"].iloc[-1] < 0.7 * log["loss"].iloc[0]
    assert log["val_mpjpe"].iloc[-1] < log["val_mpjpe"].iloc[0]

    kill = kill_at(3, 0)  # inside the averaged epochs, one of them already added

    with pytest.raises(Killed):
        train(config, data, val, seed=5, device="cuda", checkpoint=tmp_path / "b.pt", on_batch=kill, **QUIET)
    # the checkpoint is read onto the GPU (map_location): the average's sums must stay usable
    messages = []
    resumed, _ = train(config, data, val, seed=5, device="cuda", checkpoint=tmp_path / "b.pt",
                       progress=False, log=messages.append)
    assert any("resuming" in m for m in messages) and any("averaged over the last 2" in m for m in messages)
    a, b = reference.temporal.state_dict(), resumed.temporal.state_dict()
    for name in a:  # cuDNN may sum in another order: equal to float32 rounding, not bit for bit
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5)
    # the same checkpoint finishes on the CPU: a run moves between machines
    on_cpu, _ = train(config, data, val, seed=5, device="cpu", checkpoint=tmp_path / "b.pt", **QUIET)
    c = on_cpu.temporal.state_dict()
    for name in a:
        torch.testing.assert_close(c[name].cuda(), a[name], rtol=1e-3, atol=1e-4)

    camera = make_camera()
    keypoints = coco_keypoints(make_sequences(1, 60, 9)[0], camera, np.random.default_rng(2))
    gpu, cpu = lift_both(reference, keypoints, camera)
    assert np.isfinite(gpu).all() and np.abs(gpu).max() > 50
    np.testing.assert_allclose(gpu, cpu, atol=SAME_MM)


def test_train_command_with_semi_supervised_and_multiview_data_on_cuda(tmp_path):
    from posebridge.cli import main

    a, a_det = write_toy_dataset(tmp_path, "toy", "h36m_17", seed=0)
    write_multiview_dataset(tmp_path)
    spec = json.dumps({**TINY, "epochs": 3, "samples_per_epoch": 192, "labeled_subjects": {"toy": 1}})
    assert main(["train", "--spec", spec, "--dataset", str(a), "--detections", str(a_det),
                 "--unlabeled-video", str(a), "--unlabeled-detections", str(a_det), "--semi-batch-size", "16",
                 "--multiview", str(tmp_path / "mv.h5"), "--multiview-detections", str(tmp_path / "mv_det.h5"),
                 "--multiview-pairs", "16", "--multiview-embedding-dim", "8", "--out-dir", str(tmp_path / "m"),
                 "--checkpoint", str(tmp_path / "m.pt"), "--device", "cuda", "--no-progress"]) == 0
    log = pd.read_parquet(tmp_path / "m" / "train_log.parquet")
    assert np.isfinite(log.filter(like="loss")).all().all()
    assert (log["loss_semi_proj"].iloc[1:] > 0).all() and (log["loss_semi_bone"].iloc[1:] > 0).all()
    assert log["loss_semi_traj"].iloc[-1] < log["loss_semi_traj"].iloc[0]
    assert (log["loss_multiview_triplet"] > 0).any()
    payload = torch.load(tmp_path / "m" / "model.pt", weights_only=True)  # written for any machine
    assert {"trajectory", "multiview"} <= set(payload)
    assert {t.device.type for t in tensors(payload)} == {"cpu"}
    model = load_model(tmp_path / "m", device="cpu")
    head, regressor, slices = multiview.load_embedding(model.metadata)
    assert on_device(head) == {"cpu"} and on_device(regressor) == {"cpu"}


def test_command_chain_on_cuda_writes_models_that_lift_as_on_the_cpu(tmp_path, capsys):
    from posebridge.cli import main

    data, spec, common = toy_pipeline(tmp_path, capsys, device="cuda")
    finetune = ["finetune", "--variant", "output_reg", "--init", str(tmp_path / "initial"), "--acae",
                str(tmp_path / "acae.pt"), "--spec", json.dumps({**TINY, "epochs": 1, "samples_per_epoch": 128}),
                *data, "--out-dir", str(tmp_path / "output_reg"), "--checkpoint", str(tmp_path / "ck" / "o.pt"),
                *common]
    assert main(finetune) == 0
    assert "on cuda" in capsys.readouterr().out
    for model in ("initial", "output_reg"):  # model files written on the GPU load on a CPU-only machine
        payload = torch.load(tmp_path / model / "model.pt", weights_only=True)
        assert {t.device.type for t in tensors(payload)} == {"cpu"}
    h5, det = write_toy_dataset(tmp_path, "toy_test", "h36m_17", seed=3)
    tables = {}
    for device in ("cuda", "cpu"):
        out = tmp_path / f"eval_{device}.parquet"
        assert main(["evaluate", "--model", str(tmp_path / "output_reg"), "--dataset", str(h5), "--detections",
                     str(det), "--output", str(out), "--device", device, "--no-progress"]) == 0
        tables[device] = pd.read_parquet(out)
    metrics = ["mpjpe", "pa_mpjpe"]
    assert np.isfinite(tables["cuda"][metrics].to_numpy()).all()
    np.testing.assert_allclose(tables["cuda"][metrics].to_numpy(), tables["cpu"][metrics].to_numpy(), atol=SAME_MM)
    camera = make_camera()
    keypoints = coco_keypoints(make_sequences(1, 40, 4)[0], camera, np.random.default_rng(1))
    poses = [lift(load_model(tmp_path / "initial", device=d), keypoints, *camera.image_size,
                  intrinsics=camera.intrinsics, distortion=camera.distortion)["h36m_17"] for d in ("cuda", "cpu")]
    np.testing.assert_allclose(poses[0], poses[1], atol=SAME_MM)
