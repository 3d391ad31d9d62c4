"""Training that diverges: caught, rolled back (or stopped), logged and recorded; a NaN loss stops
with one line and writes no model; a healthy run is unchanged by the guard, bit for bit."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from posebridge.errors import ConfigError, TrainingError
from posebridge.models.files import read_torch_file
from posebridge.training.divergence import DivergenceGuard, events
from posebridge.training.loop import Objective, TrainConfig, train, write_model_dir
from posebridge.training.objectives.semi_supervised import reprojection_error, robust_error
from posebridge.training.settings import DivergenceSettings

from test_train import TINY, Killed, kill_at, make_set, write_toy_dataset

RUN = {**TINY, "epochs": 6, "samples_per_epoch": 640, "lr": 3e-3, "bn_recalibration_batches": 0}


class Sabotage(Objective):
    """An injected objective that throws the lifter off: in the epochs of ``weights`` (0-based ->
    weight) it rewards spreading every joint away from the root, which Adam follows at full step
    size, so the validation error climbs; ``nan_epoch``: the loss is NaN from that epoch."""

    name = "sabotage"
    terms = ("push",)

    def __init__(self, weights: dict, nan_epoch: int | None = None):
        self.weights, self.nan_epoch = weights, nan_epoch
        self.lifter = None

    def losses(self, out, epoch):
        self.lifter = out.lifter
        pred = out.labeled_pred
        w = self.weights.get(epoch, 0.0)
        push = -w * (pred - pred[:, :1]).norm(dim=-1).mean()
        if epoch == self.nan_epoch:
            push = push + float("nan") * pred.sum()
        return {"push": push.abs(), "total": push}


def sets():
    return make_set(rows=6, frames=80, seed=0), make_set(rows=2, frames=80, seed=1)


def weights(lifter):
    return {k: v.detach().clone() for k, v in lifter.temporal.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- the checks


def test_guard_judges_loss_spikes_and_validation_jumps_against_the_best():
    guard = DivergenceGuard(DivergenceSettings())
    rows = []
    for epoch, (loss, semi, val) in enumerate([(1.0, 0.0, 400.0), (0.5, 0.0, 300.0), (0.4, 3.0, 320.0),
                                               (0.4, 2.0, 449.0)], start=1):
        row = {"epoch": epoch, "loss_meanrel": loss, "loss_semi_proj": semi, "val_mpjpe": val}
        decision, message = guard.judge(row, rows)
        rows.append(row)
        # a term joining after its warm-up (epoch 3) has no history yet; 449 < 1.5 x the best 300
        assert decision == ("keep" if epoch <= 2 else "accept") and message == ""
    assert (guard.best_epoch, guard.best_val) == (2, 300.0)
    spike = {"epoch": 5, "loss_meanrel": 0.4, "loss_semi_proj": 16.0, "val_mpjpe": 310.0}
    decision, message = guard.judge(spike, rows)
    assert decision == "rollback" and guard.lr_scale == 0.5 and spike["rolled_back_to"] == 2
    assert message == ("diverged at epoch 5: loss_semi_proj 16 > 5 x its median 2.5; rolled back to epoch 2; "
                       "learning rate x0.5 of its schedule from now on")
    rows.append(spike)
    jump = {"epoch": 6, "loss_meanrel": 0.4, "loss_semi_proj": 2.0, "val_mpjpe": 451.0}
    assert guard.judge(jump, rows)[0] == "rollback" and "validation MPJPE 451.0 mm > 1.5 x the best 300.0 mm" \
        in jump["divergence"]
    rows.append(jump)
    third = {"epoch": 7, "loss_meanrel": 9.0, "val_mpjpe": 300.0}
    decision, message = guard.judge(third, rows)
    assert decision == "stop" and guard.stopped and "stopped (divergence 3, max_rollbacks 2)" in message
    assert [e["epoch"] for e in events(pd.DataFrame(rows + [third]))] == [5, 6, 7]
    # a jump within the margin is a wobble, not a divergence: 30 -> 70 mm is under best + 50 mm
    small = DivergenceGuard(DivergenceSettings())
    first = {"epoch": 1, "val_mpjpe": 30.0}
    small.judge(first, [])
    assert small.judge({"epoch": 2, "val_mpjpe": 70.0}, [first])[0] == "accept"


def test_divergence_settings_are_checked():
    config = TrainConfig.from_dict({"divergence": {"val_factor": 2.0, "action": "stop"}})
    assert config.divergence.val_factor == 2.0 and config.to_dict()["divergence"]["action"] == "stop"
    for bad in ({"val_factor": 1.0}, {"action": "retry"}, {"lr_factor": 0}, {"max_rollbacks": -1},
                {"val_margin_mm": float("nan")}, {"bogus": 1}):
        with pytest.raises(ConfigError, match="divergence"):
            TrainConfig.from_dict({"divergence": bad})
    with pytest.raises(ConfigError, match="max_reprojection_error"):
        TrainConfig.from_dict({"semi_supervised": {"max_reprojection_error": 0}})


def test_robust_reprojection_is_the_identity_below_its_bound_and_logarithmic_beyond():
    err = torch.tensor([0.0, 0.05, 0.2, 0.4, 264.0], requires_grad=True)
    out = robust_error(err, 0.2)
    assert torch.equal(out[:3], err[:3].detach())
    assert out[3].item() == pytest.approx(0.2 * (1 + np.log(2)))
    out.sum().backward()
    assert err.grad[1].item() == 1.0 and err.grad[4].item() == pytest.approx(0.2 / 264)
    # below the bound: the reprojection term and its gradient equal the unbounded one, bit for bit
    points = torch.tensor([[[0.1, 0.2, 4.0], [-0.3, 0.1, 4.5]]], requires_grad=True)
    keypoints = torch.tensor([[[0.02, 0.05, 1.0], [-0.05, 0.03, 0.5]]])
    camera = (torch.tensor([[1000.0, 1000.0, 500.0, 500.0]]), torch.zeros(1, 5), torch.tensor([1000.0]),
              torch.tensor([1000.0]))
    grads = []
    for bound in (None, 0.2):
        points.grad = None
        value = reprojection_error(points, keypoints, *camera, max_error=bound)
        value.backward()
        grads.append((value.detach(), points.grad.clone()))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])
    # a pose next to the camera: the bounded term stays near the bound, the plain one explodes
    near = torch.tensor([[[0.5, 0.0, 0.11], [-0.5, 0.0, 0.11]]])
    assert reprojection_error(near, keypoints, *camera) > 4
    assert reprojection_error(near, keypoints, *camera, max_error=0.2) < 1


# ----------------------------------------------------------------------------- training runs


def test_a_healthy_run_is_bit_identical_with_the_guard_on(tmp_path):
    data, val = sets()
    off = {"loss_spike_factor": None, "val_factor": None}
    guarded, log = train(TrainConfig(**RUN), data, val, seed=0, progress=False, log=lambda m: None,
                         checkpoint=tmp_path / "a.pt")
    plain, plain_log = train(TrainConfig(**RUN, divergence=off), data, val, seed=0, progress=False,
                             log=lambda m: None)
    assert same(weights(guarded), weights(plain))
    assert (log["divergence"] == "").all() and (log["rolled_back_to"] == 0).all() and events(log) == []
    pd.testing.assert_frame_equal(log.drop(columns="seconds"), plain_log.drop(columns="seconds"))
    assert list(log["lr"]) == [TrainConfig(**RUN).lr_at(e) for e in range(6)]


def test_a_diverging_epoch_is_rolled_back_to_the_best_logged_and_recorded(tmp_path):
    data, val = sets()
    config = TrainConfig(**RUN)

    def run(mild, **kw):  # epoch 3 a little worse (accepted, not the best), epoch 4 thrown off
        messages = []
        lifter, log = train(config, data, val, seed=0, progress=False, log=messages.append,
                            objectives=[Sabotage({2: mild, 3: 10.0})], **kw)
        return lifter, log, messages

    lifter, log, messages = run(0.3, checkpoint=tmp_path / "a.pt")
    assert log["rolled_back_to"].tolist() == [0, 0, 0, 2, 0, 0]
    assert log["val_mpjpe"][2] > log["val_mpjpe"][1] and log["val_mpjpe"][3] > 2 * log["val_mpjpe"][1]
    line = [m for m in messages if m.startswith("diverged")]
    assert line == [f"diverged at epoch 4: {log['divergence'][3]}"]
    assert "validation MPJPE" in line[0] and line[0].endswith("rolled back to epoch 2; learning rate x0.5 of its "
                                                              "schedule from now on")
    assert log["lr"].tolist()[4:] == [config.lr_at(4) * 0.5, config.lr_at(5) * 0.5]
    assert log["val_mpjpe"].iloc[-1] < 1.5 * log["val_mpjpe"].min()
    # the rollback restores the best epoch exactly (weights and optimiser moments): a milder or
    # harsher epoch 3 leaves no trace once training went back to epoch 2
    other, other_log, _ = run(0.5)
    assert other_log["val_mpjpe"][2] != log["val_mpjpe"][2]
    assert same(weights(lifter), weights(other))

    # a run killed after the diverged epoch resumes from its checkpoint bit-identically
    kill = kill_at(4, 1)

    with pytest.raises(Killed):
        run(0.3, checkpoint=tmp_path / "b.pt", on_batch=kill)
    resumed, resumed_log, messages = run(0.3, checkpoint=tmp_path / "b.pt")
    assert any("after epoch 4" in m for m in messages) and same(weights(lifter), weights(resumed))
    pd.testing.assert_frame_equal(resumed_log.drop(columns="seconds"), log.drop(columns="seconds"))

    # and one killed in the diverging epoch, while the best (epoch 2) is not the last (epoch 3):
    # the checkpoint keeps the best epoch's weights for the rollback
    state = read_torch_file(tmp_path / "a.pt", "checkpoint")
    assert state["guard"]["best"] is None and state["guard"]["lr_scale"] == 0.5

    with pytest.raises(Killed):
        run(0.3, checkpoint=tmp_path / "c.pt", on_batch=kill_at(3, 1))
    assert read_torch_file(tmp_path / "c.pt", "checkpoint")["guard"]["best"] is not None
    again, _, _ = run(0.3, checkpoint=tmp_path / "c.pt")
    assert same(weights(lifter), weights(again))

    # the model directory says so
    write_model_dir(tmp_path / "m", lifter, log, {"seed": 0}, {})
    recorded = yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())["divergence_events"]
    assert recorded == [{"epoch": 4, "what": log["divergence"][3], "rolled_back_to": 2}]
    assert read_torch_file(tmp_path / "m" / "model.pt", "model")["training"]["divergence_events"] == recorded
    assert pd.read_parquet(tmp_path / "m" / "train_log.parquet")["rolled_back_to"].tolist() == [0, 0, 0, 2, 0, 0]


def test_stop_restores_the_best_epoch_and_trains_no_further():
    data, val = sets()
    seen = {}

    def run(divergence):
        sabotage = Sabotage({2: 10.0, 3: 10.0})

        def log(message):  # the weights after epoch 2 (the best), as the loop leaves them
            if message.startswith("epoch 2/"):
                seen.setdefault("epoch2", weights(sabotage.lifter))
        lifter, frame = train(TrainConfig(**RUN, divergence=divergence), data, val, seed=0, progress=False, log=log,
                              objectives=[sabotage])
        return weights(lifter), frame

    stopped, log = run({"action": "stop"})
    assert log["epoch"].tolist() == [1, 2, 3] and "rolled back to epoch 2 and stopped" in log["divergence"][2]
    assert same(stopped, seen["epoch2"])
    # rollback with no rollbacks to spare stops the same way
    exhausted, log = run({"max_rollbacks": 0})
    assert log["epoch"].tolist() == [1, 2, 3] and "max_rollbacks 0" in log["divergence"][2]
    assert same(exhausted, stopped)


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    data, val = sets()
    with pytest.raises(TrainingError) as caught:
        train(TrainConfig(**RUN), data, val, seed=0, progress=False, log=lambda m: None,
              objectives=[Sabotage({}, nan_epoch=2)], checkpoint=tmp_path / "ck.pt")
    message = str(caught.value)
    assert "\n" not in message and "non-finite in epoch 3" in message and "loss nan" in message
    assert f"the checkpoint {tmp_path / 'ck.pt'} keeps epoch 2" in message
    state = read_torch_file(tmp_path / "ck.pt", "checkpoint")
    assert state["epoch"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values()
                                       if v.is_floating_point())


def test_train_command_with_an_exploding_learning_rate_fails_in_one_line_without_a_model(tmp_path, capsys):
    from posebridge.cli import main

    dataset, detections = write_toy_dataset(tmp_path)
    out_dir = tmp_path / "models" / "m"
    argv = ["train", "--spec", json.dumps({**TINY, "epochs": 2, "samples_per_epoch": 128, "lr": 1e30}),
            "--dataset", str(dataset), "--detections", str(detections), "--out-dir", str(out_dir),
            "--checkpoint", str(tmp_path / "ck.pt"), "--device", "cpu", "--threads", "1", "--no-progress"]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "non-finite in epoch 1" in err and "no model written" in err
    assert not out_dir.exists() and not (tmp_path / "ck.pt").exists()
