"""Training of the separate-head lifter on several labeled datasets at once.

Recipe: VideoPose3D's (Pavllo et al., "3D human pose estimation in video with temporal
convolutions and semi-supervised training", CVPR 2019) with the losses Sárándi et al. train the
separate-head model of the ACAE paper with (WACV 2023; MeTRAbs' losses, ``training.losses``): the
strided temporal model on receptive-field windows sampled across all datasets (``windows.ChunkSampler``,
batch composition by dataset size x weight); Adam (AMSGrad), lr decayed by ``lr_decay`` every
epoch; BatchNorm momentum annealed from ``bn_momentum`` to ``bn_momentum_final`` as
``m0 * exp(-e / E * ln(m0 / m1))``; random horizontal flips (2D, 3D, camera) and keypoint
dropout. Loss = meanrel x L_meanrel + proj x L_proj + abs x L_abs, where the absolute pose is the
predicted pose plus the translation recovered from it and the target joints' 2D.

Resumable and reproducible: everything random in epoch ``e`` (samples, flips, keypoint dropout,
dropout masks) derives from ``(seed, e)``, and a checkpoint (model, optimizer, epoch, log, the
divergence guard's state, the weight average of ``average_last_epochs``) is written atomically
after every epoch. A run killed mid-epoch restarts that epoch from the last checkpoint and ends
with the same weights, bit for bit on CPU, as a run never interrupted.

Guarded (``training.divergence``): a NaN or inf loss stops training with a one-line
``TrainingError`` (the last good checkpoint stays, no model is written); an epoch that diverges
(a loss spike, validation error far above its best) is rolled back to the best epoch's weights,
kept in memory and in the checkpoint, and training continues at a reduced learning rate or stops.
A healthy run is unchanged by the guard, bit for bit.

Data-parallel (``training.distributed``): launched as ``TrainConfig.processes`` processes, each
trains on its share of every batch under ``DistributedDataParallel``; rank 0 validates, judges,
logs and writes, and a killed run resumes in every process from rank 0's checkpoint.
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from posebridge import atomic
from posebridge.training import losses
from posebridge.data.keypoints import KEYPOINT_FORMAT
from posebridge.data.windows import Batch, ChunkSampler, Shard
from posebridge.device import resolve_device
from posebridge.errors import ConfigError, DataError, TrainingError
from posebridge.models.files import read_torch_file, write_torch_file
from posebridge.models.lifter import MM_PER_UNIT, SeparateHeadLifter
from posebridge.models.temporal import recalibrate_batch_norm
from posebridge.training import distributed, divergence
from posebridge.training.averaging import WeightAverage
from posebridge.training.data import BatchAssembler, LabeledSet, TrainingBatch
from posebridge.training.settings import LOSS_NAMES, TrainConfig

__all__ = ["TrainConfig", "train", "Objective", "ObjectiveContext", "StepOutputs", "compute_losses", "validation_batch", "epoch_seed", 
           "write_model_dir", "train_step", "StepForward", "CHECKPOINT_VERSION"]

RECALIBRATED_COLUMN = "recalibrated_val_mpjpe"
"""The training log's column holding, on the last epoch's row, the validation MPJPE after the
BatchNorm recalibration: the model written is the recalibrated one (the epochs' rows are not)."""

CHECKPOINT_VERSION = 4  # 3: the divergence guard's state and best weights; 4: the weight average
# The projection loss skips joints whose absolute prediction lies nearer than this fraction of
# their true depth: early in training the recovered translation can put a pose next to the camera,
# where projections and their gradients explode (on the synthetic benchmark, keeping them made
# validation MPJPE twice as bad after a few epochs).
PROJ_MIN_DEPTH_FRACTION = 0.5


@dataclass
class StepOutputs:
    """What one training step's single forward pass produced, for the objectives' losses.

    labeled: the labeled ``TrainingBatch``; labeled_pred (B, J_union, 3) metres and
    labeled_features (B, C) its trunk features. extra_inputs / extra_pred / extra_features: the
    same for the windows this objective asked for in ``Objective.sample`` (None when it asked for
    none). lifter: the (strided) lifter being trained.
    """

    lifter: SeparateHeadLifter
    labeled: TrainingBatch
    labeled_pred: torch.Tensor
    labeled_features: torch.Tensor
    extra_inputs: torch.Tensor | None = None
    extra_pred: torch.Tensor | None = None
    extra_features: torch.Tensor | None = None


@dataclass
class ObjectiveContext:
    """What an objective is built from besides its own data: the run's ``config``, the labeled
    ``train_set``, the lifter's output ``formats``, the ``device`` and the ``seed``."""

    config: TrainConfig
    train_set: LabeledSet
    formats: list[str]
    device: torch.device
    seed: int


class Objective:
    """A training signal beside the labeled losses (semi-supervised video, multi-view metric
    learning, ACAE consistency). Subclasses override what they need.

    Every step, ``train_step`` asks each objective for extra input windows (``sample``), runs them
    through the lifter in the same forward pass as the labeled windows (shared batch-norm
    statistics, as VideoPose3D's semi-supervised training does) and passes the outputs to
    ``losses``, whose ``total`` joins the loss being minimised. Modules returned by ``modules`` (a
    trajectory model, an embedding head) are optimised with the lifter and checkpointed with it.
    """

    name: str = "objective"
    terms: tuple[str, ...] = ()
    """Names of the terms ``losses`` returns besides ``total`` (logged as ``loss_<name>_<term>``)."""
    shard: Shard = Shard()
    """The part of the extra windows this process takes (``Shard.part``): ``train`` sets it before
    ``attach``. ``sample`` draws the windows of all processes from its seeded stream, as one
    process would, and returns only this part."""

    def attach(self, lifter: SeparateHeadLifter) -> None:
        """Called by ``train`` once the lifter is built, before the optimiser: take what the
        objective needs of the model being trained (its input window, its keypoint format)."""

    def modules(self) -> dict[str, torch.nn.Module]:
        return {}

    def fingerprint(self) -> dict:
        """What a checkpoint must match to be resumed with this objective (settings, data digest)."""
        return {}

    def start_epoch(self, epoch: int, seed: int) -> None:
        """Called before every epoch (derive this epoch's random streams from ``epoch_seed``)."""

    def sample(self, epoch: int, step: int) -> torch.Tensor | None:
        """Extra network input windows (B2, RF, K, F) for this step, or None."""
        return None

    def losses(self, out: StepOutputs, epoch: int) -> dict[str, torch.Tensor]:
        """The named terms and their weighted ``total`` (a scalar tensor)."""
        raise NotImplementedError

    def file_entries(self) -> dict:
        """Extra entries for the trained model's ``model.pt`` (e.g. the trajectory model)."""
        return {}


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A 63-bit seed for random stream ``stream`` of epoch ``epoch`` (independent of other epochs)."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(2, np.uint64)[0] >> 1)


def compute_losses(pred: torch.Tensor, batch: TrainingBatch, config: TrainConfig) -> dict[str, torch.Tensor]:
    """The loss terms and their weighted ``total`` for predicted poses (B, J_union, 3) metres."""
    target, valid = batch.target, batch.valid
    absolute = losses.absolute_pose(pred, target, valid)
    target_px = batch.target_px
    terms = {
        "meanrel": losses.mean_relative_l1(pred, target, valid),
        "proj": losses.projection_l1(absolute, target_px, batch.intrinsics, batch.distortion, valid,
                                     min_depth=PROJ_MIN_DEPTH_FRACTION * torch.nan_to_num(target[..., 2]),
                                     distortion_model=batch.distortion_model),
        "abs": losses.absolute_l1(absolute, target, valid, config.abs_depth_weight),
    }
    terms["total"] = sum(config.loss_weights[k] * terms[k] for k in LOSS_NAMES)
    return terms


def validation_batch(data: LabeledSet, windows: int, seed: int) -> Batch | None:
    """A fixed sample of up to ``windows`` (row, frame) pairs per dataset (uniform over frames,
    without replacement), the same every epoch; None when ``data`` has no frames."""
    rng = np.random.default_rng([int(seed), 7919])
    groups, rows, frames = [], [], []
    for g in range(len(data.names)):
        row_ids = np.flatnonzero(data.row_group == g)
        counts = data.row_frames[row_ids]
        total = int(counts.sum())
        if total == 0 or windows == 0:
            continue
        flat = np.sort(rng.choice(total, size=min(windows, total), replace=False))
        cum = np.concatenate([[0], np.cumsum(counts)])
        local = np.searchsorted(cum, flat, side="right") - 1
        groups.append(np.full(len(flat), g))
        rows.append(row_ids[local])
        frames.append(flat - cum[local])
    if not groups:
        return None
    return Batch(np.concatenate(groups), np.concatenate(rows), np.concatenate(frames))


@torch.no_grad()
def validate(lifter: SeparateHeadLifter, assembler: BatchAssembler, batch: Batch, batch_size: int
             ) -> dict[str, float]:
    """Root-relative MPJPE (mm) on the validation windows: ``val_mpjpe`` over all poses and
    ``val_mpjpe_<dataset>`` per dataset."""
    from posebridge.geometry import skeletons

    was_training = lifter.training
    lifter.eval()
    data = assembler.data
    errors = np.zeros(len(batch))
    for s in range(0, len(batch), batch_size):
        part = Batch(batch.group[s:s + batch_size], batch.row[s:s + batch_size], batch.frame[s:s + batch_size])
        tb = assembler.assemble(part)
        pred = lifter(tb.inputs)[:, 0]
        for g in np.unique(part.group):
            sel = torch.from_numpy(np.flatnonzero(part.group == g)).to(pred.device)
            fmt = data.formats[g]
            sl = lifter.slices[fmt]
            root = skeletons.get(fmt).root
            p, t = pred[sel, sl], tb.target[sel, sl]
            p = p - p[:, root:root + 1]
            t = t - t[:, root:root + 1]
            ok = ~torch.isnan(t).any(-1)
            err = torch.where(ok, (p - torch.nan_to_num(t)).norm(dim=-1), 0.0).sum(-1) / ok.sum(-1).clamp_min(1)
            errors[s + sel.cpu().numpy()] = err.double().cpu().numpy() * MM_PER_UNIT
    lifter.train(was_training)
    out = {"val_mpjpe": float(errors.mean())}
    for g, name in enumerate(data.names):
        if (batch.group == g).any():
            out[f"val_mpjpe_{name}"] = float(errors[batch.group == g].mean())
    return out


def _fingerprint(config: TrainConfig, seed: int, data: LabeledSet) -> dict:
    """What a checkpoint must match to be resumed: the config, the seed and the training data's
    content (a regenerated dataset of the same size must not resume a stale run)."""
    return {"config": config.to_dict(), "seed": int(seed), "datasets": list(data.names),
            "formats": list(data.formats), "rows": int(data.num_rows),
            "frames": int(data.num_frames), "data_sha256": data.digest()}


def _state_digest(state: dict) -> str:
    import hashlib

    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()




def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Adam:
    """VideoPose3D's Adam (AMSGrad per ``config``; AdamW's decoupled decay when
    ``config.weight_decay`` > 0), with torch's fused kernel where the device has one (one pass
    over the 17M parameters of the full lifter instead of ~8 per-tensor ops)."""
    parameters = list(parameters)
    kind = torch.optim.AdamW if config.weight_decay > 0 else torch.optim.Adam
    options = {"lr": config.lr, "amsgrad": config.amsgrad, "weight_decay": config.weight_decay}
    try:
        return kind(parameters, **options, fused=True)
    except RuntimeError:  # no fused kernel for this device or dtype
        return kind(parameters, **options)


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of returning every large block to the
    kernel. The full lifter's activations (tens of MB each, above glibc's 32 MB mmap ceiling) are
    otherwise mapped afresh each step and page-faulted in on first touch (an elementwise pass over
    85 MB measured ~4x slower). Process-wide, glibc only; returns whether it took effect."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 2**30)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def build_lifter(config: TrainConfig, formats: list[str], seed: int, output_map=None,
                 keypoint_format: str | None = None) -> SeparateHeadLifter:
    """The strided training lifter, initialised from ``seed`` without touching global RNG state
    (``output_map``: a latent or merged-joints head, see ``models.lifter``). Its input format:
    ``keypoint_format`` (the training data's), else ``config.keypoint_format``, else the
    detectors' (``data.keypoints.KEYPOINT_FORMAT``)."""
    keypoint_format = keypoint_format or config.keypoint_format or KEYPOINT_FORMAT
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return SeparateHeadLifter(formats, keypoint_format=keypoint_format, codec=config.input_codec(),
                                  filter_widths=config.filter_widths, causal=config.causal,
                                  dropout=config.dropout, channels=config.channels, strided=True,
                                  output_map=output_map,
                                  placement=config.output_placement if config.placement_in_training else "free")


class StepForward(torch.nn.Module):
    """A training step's forward pass and loss terms as one module over the lifter and the
    objectives' ``modules`` (registered here, called by the objectives): what
    ``DistributedDataParallel`` wraps, so every parameter a step trains has its gradient averaged
    over the processes (``training.distributed.wrap``)."""

    def __init__(self, lifter: SeparateHeadLifter, config: TrainConfig, objectives=(), modules=None):
        super().__init__()
        self.lifter, self.config, self.objectives = lifter, config, list(objectives)
        self.objective_modules = torch.nn.ModuleList((modules or {}).values())

    def forward(self, tb: TrainingBatch, extras: list, epoch: int) -> dict[str, torch.Tensor]:
        """The loss terms (objective terms as ``<name>_<term>``) of the labeled batch ``tb`` and
        the objectives' extra windows ``extras`` (one (B2, RF, K, F) tensor or None each)."""
        lifter, config, B = self.lifter, self.config, len(tb.inputs)
        if not self.objectives:
            return compute_losses(lifter(tb.inputs)[:, 0], tb, config)
        inputs = torch.cat([tb.inputs, *(x for x in extras if x is not None)])
        features = lifter.temporal.features(inputs)[:, 0]
        raw = lifter.temporal.head(features).view(len(inputs), 1, lifter.num_joints_out, 3)
        pred = lifter.place(raw, inputs)[:, 0]
        terms = compute_losses(pred[:B], tb, config)
        start = B
        for objective, x in zip(self.objectives, extras):
            out = StepOutputs(lifter, tb, pred[:B], features[:B])
            if x is not None:
                stop = start + len(x)
                out.extra_inputs, out.extra_pred, out.extra_features = x, pred[start:stop], features[start:stop]
                start = stop
            extra = objective.losses(out, epoch)
            terms["total"] = terms["total"] + extra.pop("total")
            terms.update({f"{objective.name}_{k}": v for k, v in extra.items()})
        return terms


def camera_turns(config: TrainConfig, augment: np.random.Generator, n: int):
    """(roll, pitch) degrees (n,) each drawn uniformly within +-``config.roll_augment`` /
    ``pitch_augment``, None where that augmentation is off (nothing drawn for it)."""
    return tuple(augment.uniform(-limit, limit, n) if limit else None
                 for limit in (config.roll_augment, config.pitch_augment))


def train_step(lifter: SeparateHeadLifter, assembler: BatchAssembler, optimizer, batch: Batch,
               config: TrainConfig, augment: np.random.Generator, objectives=(), epoch: int = 0,
               step: int = 0, shard: Shard = Shard(), forward: torch.nn.Module | None = None
               ) -> dict[str, torch.Tensor]:
    """One optimiser step on ``batch``: random flips, keypoint drop-out and camera rolls and pitches drawn from ``augment``,
    one forward pass over the labeled windows and every objective's extra windows, the loss
    terms, backward, update. Returns the loss terms (objective terms as ``<name>_<term>``).

    Data-parallel: ``batch`` is ``shard``'s part of the global batch; the augmentation is drawn
    for the whole global batch (as one process would) and sliced alike; ``forward`` is the run's
    ``StepForward`` (wrapped by ``DistributedDataParallel``; default: one for ``lifter`` and
    ``objectives``)."""
    n = len(batch) * shard.processes  # the global batch (processes divide it: TrainConfig.validate)
    part = shard.part(n)
    flip = augment.random(n)[part] < 0.5 if config.flip_augment else None
    keep = (augment.random((n, lifter.receptive_field(), assembler.data.num_keypoints), dtype=np.float32)[part]
            >= config.keypoint_dropout if config.keypoint_dropout > 0 else None)
    roll, pitch = (None if a is None else a[part] for a in camera_turns(config, augment, n))
    tb = assembler.assemble(batch, flip, keep, roll, pitch)
    extras = [objective.sample(epoch, step) for objective in objectives]
    forward = StepForward(lifter, config, objectives) if forward is None else forward
    terms = forward(tb, extras, epoch)
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    optimizer.step()
    return terms


@dataclass
class _Run:
    """What a training run holds between its steps (``train``)."""

    config: TrainConfig
    seed: int
    device: torch.device
    lifter: SeparateHeadLifter
    objectives: list
    modules: dict  # "<objective>.<name>" -> the objectives' modules, optimised with the lifter
    optimizer: torch.optim.Optimizer
    sampler: ChunkSampler
    assembler: BatchAssembler
    term_names: list
    guard: divergence.DivergenceGuard
    shard: Shard  # this process's part of every batch (Shard(): the only process)
    forward: torch.nn.Module  # StepForward, wrapped by DistributedDataParallel under several processes
    val_batch: Batch | None = None
    val_assembler: BatchAssembler | None = None
    best: dict | None = None  # the best epoch's weights (``_snapshot``); None: the current ones
    average: WeightAverage | None = None  # the last epochs' weights (``average_last_epochs`` > 0)


def train(config: TrainConfig, train_set: LabeledSet, val_set: LabeledSet | None = None, *,
          seed: int = 0, device="cpu", checkpoint: str | Path | None = None, progress: bool = True,
          on_batch: Callable[[int, int], None] | None = None, log: Callable[[str], None] = print,
          objectives: list[Objective] = (), init_state: dict | None = None, output_map=None
          ) -> tuple[SeparateHeadLifter, pd.DataFrame]:
    """Train (or resume training) a lifter; returns it (dilated, eval mode, placing its output as
    ``config.output_placement`` says) and the epoch log.

    ``checkpoint``: path of the resumable checkpoint, written after every epoch and read at the
    start when it matches this run (config, seed, data, objectives); ``on_batch(epoch, batch)`` is
    called after every optimiser step (tests use it to interrupt a run). ``objectives``: extra
    training signals (``Objective``); ``init_state``: a temporal-model state dict to start from
    (fine-tuning) instead of a random initialisation; ``output_map``: (R, J_union) map from R
    predicted points to the output joints (ACAE latent head, merged joints), None for one output
    per joint. ``config.divergence`` says what a diverging epoch does (rolled back to the best
    epoch, then training continues at a reduced rate or stops; the log's ``divergence`` and
    ``rolled_back_to`` columns say so); a NaN or inf loss raises ``TrainingError``.

    In a process group of ``config.processes`` (``training.distributed.start``), every process
    calls ``train`` alike and gets the same model; only rank 0 logs, shows progress and writes
    the checkpoint.
    """
    device = resolve_device(device)
    if device.type == "cpu":
        keep_freed_memory()
    if train_set.num_frames == 0:
        raise ConfigError("no training frames: the labeled datasets have no rows with split 'train'")
    shard = distributed.current_shard()
    if shard.processes != config.processes:
        raise ConfigError(f"train: the spec's processes is {config.processes}, but this process group has "
                          f"{shard.processes}")
    if not shard.is_main:
        progress, log = False, (lambda message: None)
    run = _start(config, train_set, val_set, seed, device, list(objectives), init_state, output_map, shard)
    fingerprint = _fingerprint(config, seed, train_set)
    if run.objectives:
        fingerprint["objectives"] = {o.name: o.fingerprint() for o in run.objectives}
    if init_state is not None:
        fingerprint["init_sha256"] = _state_digest(init_state)
    if output_map is not None:
        fingerprint["output_map_sha256"] = _state_digest({"output_map": torch.as_tensor(output_map)})
    start_epoch, rows = _resume(run, checkpoint, fingerprint, log)
    _epochs(run, start_epoch, rows, checkpoint, fingerprint, progress, on_batch, log)
    if run.average is not None and run.average.count:
        run.average.load_into(run.lifter.temporal)
        log(f"weights averaged over the last {run.average.count} epochs")
    if config.bn_recalibration_batches:  # every process alike, on whole global batches
        recalibrate(run.lifter, run.assembler, run.sampler, config, seed, run.objectives)
        after = None
        if run.val_batch is not None and shard.is_main:
            after = validate(run.lifter, run.val_assembler, run.val_batch, config.batch_size)["val_mpjpe"]
            log(f"batch-norm statistics recalibrated on {config.bn_recalibration_batches} batches: "
                f"validation MPJPE {_final_val(run, rows):.4g} -> {after:.4g} mm")
        after = distributed.from_main(after, shard)  # every process's log alike
        if after is not None and rows:
            rows[-1] = {**rows[-1], RECALIBRATED_COLUMN: after}
    dilated = run.lifter.variant(strided=False, placement=config.output_placement).eval()
    return dilated, pd.DataFrame(rows)


def _epochs(run: _Run, start_epoch: int, rows: list, checkpoint, fingerprint: dict, progress: bool, on_batch,
            log) -> None:
    """Train epochs ``start_epoch`` onwards (their log rows appended to ``rows``), each judged by
    the divergence guard and followed by a checkpoint, until the last or the guard stops."""
    config = run.config
    for epoch in range(start_epoch, config.epochs):
        if run.guard.stopped:
            break
        before = _snapshot(run) if run.best is None else None  # the best weights, should this epoch fail
        row, decision, message = _judge(run, _train_epoch(run, epoch, progress, on_batch), rows)
        _refuse_non_finite(row, rows, checkpoint)
        rows.append(row)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("loss", "val_mpjpe")))
        log(f"epoch {epoch + 1}/{config.epochs}: {summary}")
        _apply(run, decision, before)
        if message:
            log(message)
        if run.average is not None and epoch >= config.epochs - config.average_last_epochs:
            run.average.add(run.lifter.temporal)  # the weights as they stand after any rollback
        if checkpoint is not None and run.shard.is_main:
            write_torch_file(checkpoint, {
                "version": CHECKPOINT_VERSION, "fingerprint": fingerprint, "epoch": epoch + 1,
                "model": run.lifter.temporal.state_dict(), "optimizer": run.optimizer.state_dict(), "log": rows,
                "modules": {k: m.state_dict() for k, m in run.modules.items()},
                "guard": {**run.guard.state(), "best": run.best},
                "average": None if run.average is None else run.average.state()})


def _judge(run: _Run, row: dict, rows: list) -> tuple[dict, str | None, str]:
    """(the epoch's log row, the guard's decision, its message) for the epoch of ``row`` after
    the earlier ``rows``: judged on rank 0 (``DivergenceGuard.judge``; decision None for a
    non-finite row, which ``_refuse_non_finite`` refuses), then the row, the decision and the
    guard's state broadcast, so every process acts alike on one verdict."""
    decision = message = None
    if run.shard.is_main and not divergence.non_finite_values(row):
        decision, message = run.guard.judge(row, rows)
    row, decision, message, state = distributed.from_main((row, decision, message, run.guard.state()), run.shard)
    run.guard.load(state)
    return row, decision, message


def _final_val(run: _Run, rows: list) -> float:
    """The validation MPJPE of the weights training ended with: the last epoch's, or the best
    epoch's when the last one was rolled back."""
    return run.guard.best_val if rows[-1].get(divergence.REASON_COLUMN) else rows[-1]["val_mpjpe"]


def _start(config: TrainConfig, train_set: LabeledSet, val_set: LabeledSet | None, seed: int, device,
           objectives: list, init_state: dict | None, output_map, shard: Shard = Shard()) -> _Run:
    """Build the run's lifter (on ``device``), hand it to the objectives, and build the
    optimiser, the sampler, the batch assemblers and the step's forward module (data-parallel
    over ``shard``'s processes)."""
    lifter = build_lifter(config, list(dict.fromkeys(train_set.formats)), seed, output_map, train_set.keypoint_format)
    if init_state is not None:
        lifter.temporal.load_state_dict(init_state)
    lifter = lifter.to(device)
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ConfigError(f"objective names repeat: {names}")
    for objective in objectives:
        objective.shard = shard
        objective.attach(lifter)
    modules = {f"{o.name}.{k}": m.to(device) for o in objectives for k, m in o.modules().items()}
    parameters = list(lifter.parameters()) + [p for m in modules.values() for p in m.parameters()]
    unknown = sorted(set(config.dataset_weights) - set(train_set.names))
    if unknown:
        raise ConfigError(f"train: dataset_weights names unknown dataset(s) {unknown}; "
                          f"training datasets: {', '.join(train_set.names)}")
    sampler = ChunkSampler(train_set.frames_per_group(), config.batch_size,
                           weights=[config.dataset_weights.get(n, 1.0) for n in train_set.names],
                           samples_per_epoch=config.samples_per_epoch, seed=seed)
    # an objective's term may be off in a step (warm-up): its parameters then get no gradient
    forward = distributed.wrap(StepForward(lifter, config, objectives, modules), shard, device,
                               find_unused=bool(objectives))
    run = _Run(config, seed, device, lifter, objectives, modules, make_optimizer(parameters, config), sampler,
               BatchAssembler(train_set, lifter, device),
               list(LOSS_NAMES) + [f"{o.name}_{t}" for o in objectives for t in o.terms],
               divergence.DivergenceGuard(config.divergence), shard, forward)
    if config.average_last_epochs:
        run.average = WeightAverage()
    if val_set is not None and config.val_windows > 0 and shard.is_main:  # rank 0 validates
        run.val_batch = validation_batch(val_set, config.val_windows, seed)
        if run.val_batch is not None:
            run.val_assembler = BatchAssembler(val_set, lifter, device)
    return run


def _resume(run: _Run, checkpoint, fingerprint: dict, log) -> tuple[int, list]:
    """(epochs done, their log rows) of a matching checkpoint, loaded into the run; (0, [])
    when there is none or it is from another run (config, seed, data)."""
    if checkpoint is None or not Path(checkpoint).is_file():
        return 0, []
    try:
        state = read_torch_file(checkpoint, "checkpoint", map_location=run.device)
    except DataError as err:  # unreadable: not ours, or from another torch version
        log(f"{err}; starting over")
        return 0, []
    if state.get("version") != CHECKPOINT_VERSION or state.get("fingerprint") != fingerprint:
        log(f"checkpoint {checkpoint} is from a different run (config, seed or data); starting over")
        return 0, []
    run.lifter.temporal.load_state_dict(state["model"])
    for key, module in run.modules.items():
        module.load_state_dict(state["modules"][key])
    run.optimizer.load_state_dict(state["optimizer"])
    run.guard.load(state["guard"])
    run.best = state["guard"]["best"]
    if run.average is not None:
        run.average = WeightAverage(**state["average"])
    log(f"resuming from {checkpoint} after epoch {int(state['epoch'])}")
    return int(state["epoch"]), list(state["log"])


def _snapshot(run: _Run) -> dict:
    """A copy, on the CPU, of the weights and optimiser state a rollback restores."""
    def copy(value):
        if isinstance(value, torch.Tensor):
            return value.detach().to("cpu", copy=True)
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(copy(v) for v in value)
        return value

    return copy({"model": run.lifter.temporal.state_dict(), "optimizer": run.optimizer.state_dict(),
                 "modules": {k: m.state_dict() for k, m in run.modules.items()}})


def _apply(run: _Run, decision: str, before: dict | None) -> None:
    """Act on the guard's decision for the epoch just trained (``DivergenceGuard.judge``).
    ``run.best`` holds the best epoch's weights, or None while they are the current ones;
    ``before``: the weights before the epoch (``_snapshot``, taken while ``run.best`` was None). A
    rollback restores the optimiser's moments too: those of the diverged steps are as wrong as
    its weights."""
    if decision == "keep":
        run.best = None
    elif decision == "accept":
        run.best = before if run.best is None else run.best
    else:
        best = before if run.best is None else run.best
        run.lifter.temporal.load_state_dict(best["model"])
        for key, module in run.modules.items():
            module.load_state_dict(best["modules"][key])
        run.optimizer.load_state_dict(best["optimizer"])
        run.best = None


def _refuse_non_finite(row: dict, rows: list, checkpoint) -> None:
    """TrainingError when the epoch's losses or validation error are NaN or inf: its weights are
    lost; the checkpoint of the epoch before (never overwritten with them) stays."""
    bad = divergence.non_finite_values(row)
    if not bad:
        return
    kept = (f"the checkpoint {checkpoint} keeps epoch {len(rows)}" if checkpoint is not None and rows
            else "no checkpoint kept")
    raise TrainingError(f"train: the loss became non-finite in epoch {int(row['epoch'])} ({', '.join(bad[:3])}); "
                        f"training stopped, no model written, {kept}; lower the learning rate or check the data")


def _train_epoch(run: _Run, epoch: int, progress: bool, on_batch) -> dict:
    """One epoch (its lr, BN momentum and random streams from ``(seed, epoch)``); its log row:
    mean loss terms (over the processes too), validation MPJPE (rank 0), lr, momentum, seconds."""
    from tqdm import tqdm

    config, lifter, seed = run.config, run.lifter, run.seed
    started = time.perf_counter()
    lr = config.lr_at(epoch) * run.guard.lr_scale  # x 1.0 (exact) until a rollback
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    momentum = config.bn_momentum_at(epoch)
    lifter.temporal.set_bn_momentum(momentum)
    lifter.temporal.dropout_generator = torch.Generator(run.device).manual_seed(
        distributed.process_seed(epoch_seed(seed, epoch, 1), run.shard))
    augment = np.random.default_rng(epoch_seed(seed, epoch, 2))
    lifter.train()
    for objective in run.objectives:
        objective.start_epoch(epoch, seed)
    for module in run.modules.values():
        module.train()
    sums = torch.zeros(len(run.term_names) + 1, dtype=torch.float64, device=run.device)
    bar = tqdm(run.sampler.batches(epoch, shard=run.shard), total=run.sampler.num_batches, desc=f"epoch {epoch + 1}/{config.epochs}",
               unit="batch", disable=not progress, leave=False,
               mininterval=0.1 if sys.stderr.isatty() else 30.0)  # a log file gets a line per 30 s
    for b, batch in enumerate(bar):
        terms = train_step(lifter, run.assembler, run.optimizer, batch, config, augment, run.objectives, epoch, b,
                           run.shard, run.forward)
        zero = terms["total"].new_zeros(())
        sums += torch.stack([terms["total"].detach(),
                             *(terms.get(k, zero).detach() for k in run.term_names)]).double()
        if on_batch is not None:
            on_batch(epoch, b)
    distributed.share_buffers(run.forward, run.shard)  # rank 0's BatchNorm statistics for validation, checkpoint
    means = (distributed.mean_across(sums, run.shard) / run.sampler.num_batches).tolist()
    row = {"epoch": epoch + 1, "loss": means[0], **{f"loss_{k}": v for k, v in zip(run.term_names, means[1:])}}
    if run.val_batch is not None:
        row.update(validate(lifter, run.val_assembler, run.val_batch, config.batch_size))
    row.update({"lr": lr, "bn_momentum": momentum, "seconds": time.perf_counter() - started})
    return row


def recalibrate(lifter: SeparateHeadLifter, assembler: BatchAssembler, sampler: ChunkSampler,
                config: TrainConfig, seed: int, objectives=()) -> None:
    """Recompute the lifter's BatchNorm statistics on ``bn_recalibration_batches`` batches
    composed as in training (``models.temporal.recalibrate_batch_norm``): labeled windows flipped
    half the time, without keypoint dropout as at test time, plus every objective's extra windows.
    The network learned under the statistics of that mix; labeled windows alone would shift them
    (measured: an MCSS run went from 86 to 206 mm validation MPJPE). Deterministic: the windows
    are those of the epoch after the last, whole global batches in every data-parallel process
    (so every process ends with the same statistics)."""
    augment = np.random.default_rng(epoch_seed(seed, config.epochs, 2))
    last = config.epochs - 1  # objectives sample as in the last epoch (after any warm-up)
    for objective in objectives:
        objective.shard = Shard()  # all of their windows, as one process
        objective.start_epoch(last, seed)

    def inputs():
        for step, b in enumerate(itertools.islice(sampler.batches(config.epochs), config.bn_recalibration_batches)):
            flip = augment.random(len(b)) < 0.5 if config.flip_augment else None
            roll, pitch = camera_turns(config, augment, len(b))
            x = assembler.assemble(b, flip, roll=roll, pitch=pitch).inputs
            extras = [o.sample(last, step) for o in objectives]
            yield torch.cat([x, *(e for e in extras if e is not None)])

    recalibrate_batch_norm(lifter.temporal, inputs())


def write_model_dir(out_dir: str | Path, lifter: SeparateHeadLifter, log: pd.DataFrame, resolved: dict,
                    mean_pose: dict[str, np.ndarray], extra: dict | None = None) -> None:
    """Write ``model.pt`` (with ``extra`` entries, e.g. an objective's trajectory model),
    ``config.yaml`` and ``train_log.parquet`` (each atomically). The resolved settings (``model.pt``'s
    ``training`` and ``config.yaml``) gain ``divergence_events``: the log's divergences and what
    was done about each (``training.divergence.events``; empty for a healthy run)."""
    import yaml

    out_dir = Path(out_dir)
    resolved = {**resolved, "divergence_events": divergence.events(log)}
    write_torch_file(out_dir / "model.pt", lifter.file_dict(mean_pose, training=resolved, **(extra or {})))
    atomic.write_text(out_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    atomic.write_parquet(out_dir / "train_log.parquet", log)
