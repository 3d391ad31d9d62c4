"""Data-parallel training on several processes: PyTorch's ``torch.distributed`` process group and
``DistributedDataParallel`` (Li et al., "PyTorch Distributed: Experiences on Accelerating Data
Parallel Training", VLDB 2020), the processes started by ``torchrun``, not by posebridge.

A run of ``TrainConfig.processes`` = N > 1 is launched as N copies of the same command
(``torchrun --standalone --nproc-per-node N --no-python posebridge train ...``: the workflow's
training rules do this, locally and in a SLURM job asking for N GPUs). Each process joins the
group from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, the
rendezvous address): NCCL on GPUs (process r on GPU ``LOCAL_RANK``), gloo on the CPU.

What each process does (``training.loop``):

- data: every process draws the same seeded epoch and takes its ``data.windows.Shard`` of each
  batch (``ChunkSampler.batches``) and of each objective's extra windows; the random flips and
  keypoint drop-out are drawn for the whole batch and sliced the same way, so together the
  processes train on exactly the windows and augmentations of one process at the same batch size;
- gradients: ``DistributedDataParallel`` averages them over the processes after every backward
  pass, so the weights stay identical in every process (it also broadcasts rank 0's buffers
  before every forward pass);
- BatchNorm is per process (not ``SyncBatchNorm``): each process normalises with the statistics
  of its own ``batch_size / N`` windows (the fused BatchNorm of ``models.temporal`` has no
  synchronised variant, and torch's ``SyncBatchNorm`` runs on GPUs only); the running statistics
  are rank 0's (shared after every epoch, ``share_buffers``) and, with
  ``bn_recalibration_batches`` > 0 (the default), recomputed after training over whole global
  batches (``training.loop.recalibrate``) identically in every process. The weights therefore
  differ slightly from those of a one-process run (tests/test_distributed.py measures by how much);
- dropout: each process draws its own masks (rank 0 those of a one-process run);
- the epoch's logged losses are averaged over the processes; validation, the divergence guard's
  judgement, logging and the progress bar run on rank 0, which broadcasts the epoch's log row and
  the guard's decision and state, so every process rolls back or stops together;
- files: rank 0 writes the checkpoint and the model directory (atomically); a rerun resumes
  every process from that checkpoint (its fingerprint includes ``processes``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist

from posebridge.data.windows import Shard
from posebridge.device import resolve_device
from posebridge.errors import ConfigError

__all__ = ["launched_shard", "start", "stop", "current_shard", "wrap", "mean_across", "share_buffers",
           "from_main", "process_seed"]


def launched_shard() -> Shard:
    """This process's rank and the number of processes launched, from torchrun's environment
    (``RANK``, ``WORLD_SIZE``); ``Shard()`` outside torchrun."""
    try:
        return Shard(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))
    except ValueError:
        raise ConfigError(f"RANK={os.environ.get('RANK')!r} and WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
                          f"must be integers (torchrun sets them)") from None


def start(device, processes: int) -> tuple[Shard, torch.device]:
    """Join the process group of a run launched as ``processes`` processes; returns this
    process's shard and torch device (``device`` resolved as ``device.resolve_device``; GPU
    ``LOCAL_RANK`` under torchrun). ConfigError when the launch and ``processes`` disagree."""
    shard = launched_shard()
    if shard.processes != processes:
        launch = f"torchrun --nproc-per-node {processes}" if processes > 1 else "a plain command (no torchrun)"
        raise ConfigError(f"train: the spec's processes is {processes} but {shard.processes} process(es) were "
                          f"launched; launch with {launch}, or set processes to {shard.processes}")
    device = resolve_device(device)
    if processes == 1:
        return shard, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=shard.rank,
                                world_size=shard.processes)
    return shard, device


def stop() -> None:
    """Leave the process group (when this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current_shard() -> Shard:
    """The shard of this process in the joined process group; ``Shard()`` when there is none."""
    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size())
    return Shard()


def wrap(module: torch.nn.Module, shard: Shard, device: torch.device, find_unused: bool) -> torch.nn.Module:
    """``module`` as ``DistributedDataParallel`` (gradients averaged over the processes) when
    ``shard`` has several, else itself. ``find_unused``: some parameters may get no gradient in a
    step (an objective's term switched off during its warm-up)."""
    if shard.processes == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=find_unused)


def mean_across(values: torch.Tensor, shard: Shard) -> torch.Tensor:
    """``values`` averaged element-wise over the processes (in place; every process gets the mean)."""
    if shard.processes > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= shard.processes
    return values


def share_buffers(module: torch.nn.Module, shard: Shard) -> None:
    """Rank 0's buffers (BatchNorm running statistics) in every process: each process's last
    forward pass updated its own, and DistributedDataParallel shares them only before the next."""
    if shard.processes > 1:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def from_main(value, shard: Shard):
    """Rank 0's ``value`` (any picklable object) in every process."""
    if shard.processes == 1:
        return value
    box = [value if shard.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def process_seed(seed: int, shard: Shard) -> int:
    """The seed of this process's own random stream (dropout masks) derived from ``seed``: ``seed``
    itself on rank 0 (a one-process run's stream), an independent 63-bit seed on the others."""
    if shard.rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), shard.rank]).generate_state(2, np.uint64)[0] >> 1)
