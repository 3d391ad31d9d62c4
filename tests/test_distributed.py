"""Data-parallel training (training.distributed) on 2 CPU processes (gloo): the ranks' windows,
identical weights after every step, the match with one process at the same global batch, a
killed run resuming, and `posebridge train` under torchrun."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from posebridge.data.windows import ChunkSampler, Shard
from posebridge.errors import ConfigError
from posebridge.training.loop import Objective, TrainConfig, train
from test_train import TINY, make_set, write_toy_dataset

PROCESSES = 2
# a few steps: 3 epochs of 3 steps at a global batch of 64 windows (32 per process)
CONFIG = {**TINY, "epochs": 3, "samples_per_epoch": 192}


class _Recorder(Objective):
    """Records, at every step, what this process trains on (the assembled labeled windows and
    targets) and a digest of the weights the step starts from; adds a zero loss."""

    name = "recorder"

    def __init__(self):
        self.steps = []

    def losses(self, out, epoch):
        digest = hashlib.sha256()
        for value in out.lifter.temporal.parameters():  # (the buffers: this process's BatchNorm statistics)
            digest.update(value.detach().cpu().numpy().tobytes())
        self.steps.append({"inputs": out.labeled.inputs.detach().cpu().clone(),
                           "target": out.labeled.target.detach().cpu().clone(),
                           "weights": digest.hexdigest()})
        return {"total": 0.0 * out.labeled_pred.sum()}


class _Killed(Exception):
    pass


def _kill(epoch, batch):
    if epoch == 1 and batch == 1:  # mid-epoch, after a checkpoint exists
        raise _Killed


def _run(config, checkpoint, on_batch=None, record=False, seed=7):
    """A training run on the toy set; its model's state, log, recorded steps and predictions on
    the validation set's first 200 frames."""
    data, val = make_set(rows=4, frames=60), make_set(rows=1, frames=60, seed=3)
    objectives = [_Recorder()] if record else []
    model, log = train(config, data, val, seed=seed, checkpoint=checkpoint, progress=False, on_batch=on_batch,
                       log=lambda m: None, objectives=objectives)
    with torch.no_grad():
        pred = model(torch.from_numpy(val.inputs[None, :200]))[0]
    return {"state": {k: v.clone() for k, v in model.state_dict().items()}, "log": log, "pred": pred,
            "steps": objectives[0].steps if record else None}


def _objectives(config):
    """The semi-supervised and the multi-view objectives on toy data (both with modules of their
    own, trained with the lifter)."""
    from posebridge.training.loop import build_lifter
    from posebridge.training.objectives import multiview
    from posebridge.training.objectives.semi_supervised import SemiSupervised
    from posebridge.training.settings import SemiSupervisedSettings
    from test_multiview import toy_multiview
    from test_semi_supervised import unlabeled_from

    semi = SemiSupervised(unlabeled_from(), config, ["h36m_17"], seed=7,
                          settings=SemiSupervisedSettings(warmup_epochs=1, batch_size=32))
    mv = multiview.MultiviewObjective(toy_multiview(), multiview.MultiviewSettings(pairs=16, embedding_dim=16),
                                      formats=["h36m_17"], group_formats=["h36m_17"], channels=config.channels,
                                      keypoint_dropout=0.1, seed=7)
    mv.attach(build_lifter(config, ["h36m_17"], 7))  # its window (train attaches it again)
    return [semi, mv]


def _run_with_objectives(config):
    """A run with both objectives: the lifter's and the objectives' modules' final weights."""
    data, val = make_set(rows=4, frames=60), make_set(rows=1, frames=60, seed=3)
    objectives = _objectives(config)
    model, log = train(config, data, val, seed=7, progress=False, log=lambda m: None, objectives=objectives)
    modules = {f"{o.name}.{k}": m for o in objectives for k, m in o.modules().items()}
    return {"state": {k: v.clone() for k, v in model.state_dict().items()},
            "modules": {f"{k}.{n}": p.detach().clone() for k, m in modules.items() for n, p in m.named_parameters()},
            "log": log}


def _run_diverging():
    """A run whose third epoch is thrown off (test_divergence's Sabotage): the guard rolls it back."""
    from test_divergence import RUN, Sabotage, sets

    data, val = sets()
    config = TrainConfig(**{**RUN, "epochs": 4}, processes=PROCESSES)
    model, log = train(config, data, val, seed=0, progress=False, log=lambda m: None,
                       objectives=[Sabotage({2: 10.0})])
    return {"state": {k: v.clone() for k, v in model.state_dict().items()}, "log": log}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    """One of the processes: a recorded run, then an uninterrupted run, a killed one and its
    resumption (each process's results saved for the test to compare)."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=PROCESSES)
    config = TrainConfig(**CONFIG, processes=PROCESSES)
    out = Path(out_dir)
    results = {"recorded": _run(config, None, record=True), "whole": _run(config, out / f"a{rank}.pt")}
    try:
        _run(config, out / "b.pt", on_batch=_kill)
        results["killed"] = False
    except _Killed:
        results["killed"] = True
    results["checkpoint_written"] = (out / "b.pt").is_file()
    results["resumed"] = _run(config, out / "b.pt")
    results["objectives"] = _run_with_objectives(config)
    results["diverged"] = _run_diverging()
    torch.save(results, out / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """The results of the 2-process runs, per rank (``_worker``)."""
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(_worker, args=(str(out / "init"), str(out)), nprocs=PROCESSES, start_method="spawn")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(PROCESSES)]


@pytest.fixture(scope="module")
def single():
    """The same run in one process (the same global batch of 64 windows)."""
    return _run(TrainConfig(**CONFIG), None, record=True)


def test_the_ranks_split_every_global_batch_into_their_own_windows(ranks, single):
    steps = [r["recorded"]["steps"] for r in ranks]
    assert len(steps[0]) == len(steps[1]) == len(single["steps"]) == 9
    for a, b, one in zip(*steps, single["steps"]):
        assert len(a["target"]) == len(b["target"]) == 32
        assert not torch.equal(a["target"], b["target"])  # different windows
        # together exactly the windows, flips and keypoint drop-out of the one-process batch
        assert torch.equal(torch.cat([a["target"], b["target"]]).nan_to_num(), one["target"].nan_to_num())
        assert torch.equal(torch.cat([a["inputs"], b["inputs"]]), one["inputs"])


def test_the_sampler_shards_are_disjoint_slices_of_the_global_batch():
    sampler = ChunkSampler([[40, 60], [30]], 8, samples_per_epoch=32, seed=3)
    whole = list(sampler.batches(1))
    parts = [list(sampler.batches(1, shard=Shard(r, 2))) for r in range(2)]
    for b, batch in enumerate(whole):
        assert np.array_equal(np.concatenate([parts[0][b].row, parts[1][b].row]), batch.row)
        assert np.array_equal(np.concatenate([parts[0][b].frame, parts[1][b].frame]), batch.frame)
    assert Shard(1, 3).part(10) == slice(3, 6) and Shard(2, 3).part(10) == slice(6, 10)
    with pytest.raises(ConfigError):
        Shard(2, 2)


def test_weights_are_identical_across_ranks_after_every_step(ranks):
    digests = [[s["weights"] for s in r["recorded"]["steps"]] for r in ranks]
    assert digests[0] == digests[1] and len(set(digests[0])) == len(digests[0])  # the same, and changing
    # the models (weights and the recalibrated BatchNorm statistics) too
    for name in ("recorded", "whole", "resumed"):
        a, b = ranks[0][name]["state"], ranks[1][name]["state"]
        assert all(torch.equal(a[k], b[k]) for k in a), name
    pd.testing.assert_frame_equal(ranks[0]["whole"]["log"].drop(columns="seconds"),
                                  ranks[1]["whole"]["log"].drop(columns="seconds"))


def test_two_processes_match_one_at_the_same_global_batch(ranks, single):
    """Tolerance: BatchNorm is per process (training.distributed), so each process normalises with
    the statistics of its 32 windows instead of all 64, and rank 1 draws its own dropout masks;
    the windows, augmentation, initial weights and gradient averaging are those of the one-process
    run. After 9 Adam steps the weights differ nearly as much as they moved (Adam's first steps
    are close to sign(gradient): small gradients flip with any noise), so the two runs are
    compared by what they predict, against the gap that another seed makes. Measured here: the
    2-process predictions are 0.25 of that gap away (0.18 without dropout), the epochs' mean
    losses and validation MPJPE within 3 %."""
    ddp, one = ranks[0]["recorded"], single
    other = _run(TrainConfig(**CONFIG), None, seed=8)
    gap = (ddp["pred"] - one["pred"]).norm(dim=-1).mean()
    seed_gap = (other["pred"] - one["pred"]).norm(dim=-1).mean()
    assert gap < 0.4 * seed_gap, (float(gap), float(seed_gap))
    assert np.allclose(ddp["log"]["loss"], one["log"]["loss"], rtol=0.05)
    assert np.allclose(ddp["log"]["val_mpjpe"], one["log"]["val_mpjpe"], rtol=0.05)


def test_a_killed_run_resumes_in_every_process_to_the_uninterrupted_weights(ranks):
    assert all(r["killed"] and r["checkpoint_written"] for r in ranks)
    for r in ranks:
        a, b = r["whole"]["state"], r["resumed"]["state"]
        assert all(torch.equal(a[k], b[k]) for k in a)
        pd.testing.assert_frame_equal(r["whole"]["log"].drop(columns="seconds"),
                                      r["resumed"]["log"].drop(columns="seconds"))


def test_objectives_train_data_parallel_with_identical_weights_in_every_process(ranks):
    a, b = ranks[0]["objectives"], ranks[1]["objectives"]
    assert {k.split(".")[0] for k in a["modules"]} == {"semi", "multiview"}
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
    assert all(torch.equal(a["modules"][k], b["modules"][k]) for k in a["modules"])
    assert (a["log"]["loss_semi_proj"].iloc[1:] > 0).all() and (a["log"]["loss_multiview_triplet"] > 0).any()


def test_the_divergence_guard_rolls_every_process_back_alike(ranks):
    a, b = ranks[0]["diverged"], ranks[1]["diverged"]
    assert a["log"]["rolled_back_to"].tolist() == [0, 0, 2, 0]
    pd.testing.assert_frame_equal(a["log"].drop(columns="seconds"), b["log"].drop(columns="seconds"))
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


def test_objectives_share_out_their_extra_windows_like_the_labeled_ones():
    config = TrainConfig(**CONFIG, processes=PROCESSES)
    semi, mv = _objectives(config)

    def windows(objective, shard, epoch=2):
        objective.shard = shard
        objective.start_epoch(epoch, seed=5)
        return objective.sample(epoch, 0)

    parts = [windows(semi, Shard(r, PROCESSES)) for r in range(PROCESSES)]
    assert torch.equal(torch.cat(parts), windows(semi, Shard())) and not torch.equal(*parts)
    whole = windows(mv, Shard())  # anchors, then their positives
    parts = [windows(mv, Shard(r, PROCESSES)) for r in range(PROCESSES)]
    n = len(whole) // 2
    assert torch.equal(torch.cat([p[:len(p) // 2] for p in parts]), whole[:n])
    assert torch.equal(torch.cat([p[len(p) // 2:] for p in parts]), whole[n:])


def test_processes_must_match_the_launch_and_divide_the_batch():
    with pytest.raises(ConfigError, match="processes is 2, but this process group has 1"):
        train(TrainConfig(**CONFIG, processes=2), make_set(rows=2, frames=40), None, progress=False,
              log=lambda m: None)
    with pytest.raises(ConfigError, match="multiple of processes"):
        TrainConfig(**{**CONFIG, "batch_size": 63}, processes=2).validate()
    from posebridge.training import distributed

    with pytest.raises(ConfigError, match="launch with torchrun --nproc-per-node 2"):
        distributed.start("cpu", 2)


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun is not installed beside this Python")
def test_train_command_under_torchrun_writes_one_model_from_rank_0(tmp_path):
    a, a_det = write_toy_dataset(tmp_path, "toy_a")
    spec = json.dumps({**TINY, "epochs": 2, "samples_per_epoch": 128, "processes": PROCESSES})
    out_dir, checkpoint = tmp_path / "models" / "m", tmp_path / "ck" / "m.pt"
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [torchrun, "--standalone", "--nproc-per-node", str(PROCESSES), "--no-python", "posebridge", "train",
               "--spec", spec, "--dataset", str(a), "--detections", str(a_det), "--out-dir", str(out_dir),
               "--checkpoint", str(checkpoint), "--seed", "1", "--device", "cpu", "--threads", "1", "--no-progress"]
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("training on ") == 1 and "in 2 processes" in result.stdout  # rank 0 logs
    log = pd.read_parquet(out_dir / "train_log.parquet")
    assert list(log["epoch"]) == [1, 2] and np.isfinite(log["val_mpjpe"]).all()
    assert checkpoint.is_file()
    from posebridge.inference.lift import load_model

    assert load_model(out_dir).formats == ["h36m_17"]
    # a rerun resumes from rank 0's checkpoint in both processes and trains no further epoch
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "resuming" in result.stdout
