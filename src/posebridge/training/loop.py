"""Training of the separate-head lifter on several labeled datasets at once.

Recipe (VideoPose3D's, REFERENCES.md section 1, with the losses of section 6): the strided
temporal model on receptive-field windows sampled across all datasets (``chunks.ChunkSampler``,
batch composition by dataset size x weight); Adam (AMSGrad), lr decayed by ``lr_decay`` every
epoch; BatchNorm momentum annealed from ``bn_momentum`` to ``bn_momentum_final`` as
``m0 * exp(-e / E * ln(m0 / m1))``; random horizontal flips (2D, 3D, camera) and keypoint
dropout. Loss = meanrel x L_meanrel + proj x L_proj + abs x L_abs, where the absolute pose is the
predicted pose plus the translation recovered from it and the target joints' 2D.

Resumable and reproducible: everything random in epoch ``e`` (samples, flips, keypoint dropout,
dropout masks) derives from ``(seed, e)``, and a checkpoint (model, optimizer, epoch, log) is
written atomically after every epoch. A run killed mid-epoch restarts that epoch from the last
checkpoint and ends with the same weights, bit for bit on CPU, as a run never interrupted.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from posebridge import atomic
from posebridge.training import losses
from posebridge.data.windows import Batch, ChunkSampler
from posebridge.device import resolve_device
from posebridge.errors import ConfigError, DataError
from posebridge.models.files import read_torch_file, write_torch_file
from posebridge.models.lifter import MM_PER_UNIT, SeparateHeadLifter
from posebridge.models.temporal import recalibrate_batch_norm
from posebridge.training.data import BatchAssembler, LabeledSet, TrainingBatch

__all__ = ["TrainConfig", "train", "Objective", "StepOutputs", "compute_losses", "validation_batch", "epoch_seed", 
           "write_model_dir", "train_step", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 2
LOSS_NAMES = ("meanrel", "proj", "abs")
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


@dataclass
class TrainConfig:
    """Training settings (the ``train`` section of the workflow config)."""

    filter_widths: list = field(default_factory=lambda: [3, 3, 3])
    channels: int = 256
    dropout: float = 0.25
    causal: bool = False
    epochs: int = 12
    batch_size: int = 1024
    lr: float = 1e-3
    lr_decay: float = 0.95
    amsgrad: bool = True
    bn_momentum: float = 0.1
    bn_momentum_final: float = 0.001
    loss_weights: dict = field(default_factory=lambda: {"meanrel": 1.0, "proj": 1.0, "abs": 0.1})
    abs_depth_weight: float = 0.2
    keypoint_dropout: float = 0.1
    flip_augment: bool = True
    dataset_weights: dict = field(default_factory=dict)
    samples_per_epoch: int | None = None
    val_windows: int = 2048
    bn_recalibration_batches: int = 20
    """After the last epoch, recompute BatchNorm statistics over this many training batches
    (0: keep the running averages; see ``models.temporal.recalibrate_batch_norm``)."""
    labeled_subjects: dict = field(default_factory=dict)
    """dataset name -> the training subjects whose 3D labels supervise: a count n (the first n
    subjects by name) or a list of names; datasets not named use all their training subjects.
    Limits 3D supervision, as the semi-supervised experiments of VideoPose3D and MCSS do."""
    labeled_fraction: dict = field(default_factory=dict)
    """dataset name -> the share in (0, 1] of each labeled take's frames (its first ones) whose 3D
    labels supervise; VideoPose3D's label-scarce setting is 10 % of one subject."""
    keypoint_format: str | None = None
    """The lifter's input keypoint format (x, y, confidence): that of every dataset's detections
    (coco_17 from the simulated / MediaPipe detectors, h36m_17 from VideoPose3D's CPN files);
    None = the detections' own (``posebridge train`` resolves it; they must agree)."""

    @classmethod
    def from_dict(cls, spec: dict | None) -> "TrainConfig":
        """Build and validate; an unknown key raises ConfigError listing the valid ones."""
        from posebridge.specs import check_keys

        spec = dict(spec or {})
        valid = [f.name for f in fields(cls)]
        check_keys(spec, valid, "train")
        weights = spec.get("loss_weights")
        if weights is not None:
            if not isinstance(weights, dict) or set(weights) - set(LOSS_NAMES):
                raise ConfigError(f"train: loss_weights takes the keys {', '.join(LOSS_NAMES)}, got {weights!r}")
            spec["loss_weights"] = {**cls().loss_weights, **weights}
        config = cls(**spec)
        config.validate()
        return config

    @classmethod
    def parse(cls, spec: str | None) -> "TrainConfig":
        """From a JSON object string or the path of a JSON file (empty/None -> defaults)."""
        from posebridge.specs import load_spec

        return cls.from_dict(load_spec(spec, "train: --spec"))

    def validate(self) -> None:
        def fail(key, what):
            raise ConfigError(f"train: {key} must be {what}, got {getattr(self, key)!r}")

        def is_int(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v):
            return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)

        if (not isinstance(self.filter_widths, (list, tuple)) or not self.filter_widths
                or not all(is_int(w) and w > 0 and w % 2 for w in self.filter_widths)):
            fail("filter_widths", "a non-empty list of odd positive integers")
        for key in ("channels", "epochs", "batch_size"):
            if not is_int(getattr(self, key)) or getattr(self, key) < 1:
                fail(key, "a positive integer")
        for key in ("val_windows", "bn_recalibration_batches"):
            if not is_int(getattr(self, key)) or getattr(self, key) < 0:
                fail(key, "a non-negative integer")
        if self.samples_per_epoch is not None and (not is_int(self.samples_per_epoch) or self.samples_per_epoch < 1):
            fail("samples_per_epoch", "null or a positive integer")
        for key in ("causal", "amsgrad", "flip_augment"):
            if not isinstance(getattr(self, key), bool):
                fail(key, "true or false")
        if not is_num(self.dropout) or not 0 <= self.dropout < 1:
            fail("dropout", "a number in [0, 1)")
        if not is_num(self.keypoint_dropout) or not 0 <= self.keypoint_dropout < 1:
            fail("keypoint_dropout", "a number in [0, 1)")
        if not is_num(self.lr) or self.lr <= 0:
            fail("lr", "a positive number")
        if not is_num(self.lr_decay) or not 0 < self.lr_decay <= 1:
            fail("lr_decay", "a number in (0, 1]")
        for key in ("bn_momentum", "bn_momentum_final"):
            if not is_num(getattr(self, key)) or not 0 < getattr(self, key) <= 1:
                fail(key, "a number in (0, 1]")
        if not is_num(self.abs_depth_weight) or self.abs_depth_weight < 0:
            fail("abs_depth_weight", "a non-negative number")
        if not all(is_num(v) and v >= 0 for v in self.loss_weights.values()):
            fail("loss_weights", "non-negative numbers")
        if not isinstance(self.labeled_subjects, dict) or not all(
                (is_int(v) and v >= 1) or (isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v))
                for v in self.labeled_subjects.values()):
            fail("labeled_subjects", "a mapping of dataset name -> a positive count or a list of subject names")
        if not isinstance(self.labeled_fraction, dict) or not all(
                is_num(v) and 0 < v <= 1 for v in self.labeled_fraction.values()):
            fail("labeled_fraction", "a mapping of dataset name -> a number in (0, 1]")
        if not isinstance(self.dataset_weights, dict) or not all(
                is_num(v) and v >= 0 for v in self.dataset_weights.values()):
            fail("dataset_weights", "a mapping of dataset name -> non-negative number")
        if self.keypoint_format is not None:
            from posebridge.geometry import skeletons

            if not isinstance(self.keypoint_format, str):
                fail("keypoint_format", "null or a skeleton format name")
            skeletons.get(self.keypoint_format)  # ConfigError naming the known formats

    def to_dict(self) -> dict:
        d = asdict(self)
        d["filter_widths"] = [int(w) for w in self.filter_widths]
        d["loss_weights"] = {k: float(v) for k, v in self.loss_weights.items()}
        d["dataset_weights"] = {str(k): float(v) for k, v in self.dataset_weights.items()}
        d["labeled_subjects"] = {str(k): (int(v) if not isinstance(v, (list, tuple)) else [str(x) for x in v])
                                 for k, v in self.labeled_subjects.items()}
        d["labeled_fraction"] = {str(k): float(v) for k, v in self.labeled_fraction.items()}
        return d

    def bn_momentum_at(self, epoch: int) -> float:
        m0, m1 = self.bn_momentum, self.bn_momentum_final
        return m0 * math.exp(-epoch / self.epochs * math.log(m0 / m1))

    def lr_at(self, epoch: int) -> float:
        return self.lr * self.lr_decay ** epoch


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
                                     min_depth=PROJ_MIN_DEPTH_FRACTION * torch.nan_to_num(target[..., 2])),
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
    """VideoPose3D's Adam (AMSGrad per ``config``), with torch's fused kernel where the device has
    one (one pass over the 17M parameters of the full lifter instead of ~8 per-tensor ops)."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=config.lr, amsgrad=config.amsgrad, fused=True)
    except RuntimeError:  # no fused kernel for this device or dtype
        return torch.optim.Adam(parameters, lr=config.lr, amsgrad=config.amsgrad)


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


def build_lifter(config: TrainConfig, formats: list[str], seed: int, output_map=None) -> SeparateHeadLifter:
    """The strided training lifter, initialised from ``seed`` without touching global RNG state
    (``output_map``: a latent or merged-joints head, see ``models.lifter``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return SeparateHeadLifter(formats, keypoint_format=config.keypoint_format or "coco_17",
                                  filter_widths=config.filter_widths, causal=config.causal,
                                  dropout=config.dropout, channels=config.channels, strided=True,
                                  output_map=output_map)


def train_step(lifter: SeparateHeadLifter, assembler: BatchAssembler, optimizer, batch: Batch,
               config: TrainConfig, augment: np.random.Generator, objectives=(), epoch: int = 0,
               step: int = 0) -> dict[str, torch.Tensor]:
    """One optimiser step on ``batch``: random flips and keypoint drop-out drawn from ``augment``,
    one forward pass over the labeled windows and every objective's extra windows, the loss
    terms, backward, update. Returns the loss terms (objective terms as ``<name>_<term>``)."""
    B = len(batch)
    flip = augment.random(B) < 0.5 if config.flip_augment else None
    keep = (augment.random((B, lifter.receptive_field(), assembler.data.inputs.shape[1]), dtype=np.float32)
            >= config.keypoint_dropout if config.keypoint_dropout > 0 else None)
    tb = assembler.assemble(batch, flip, keep)
    if not objectives:
        terms = compute_losses(lifter(tb.inputs)[:, 0], tb, config)
    else:
        extras = [objective.sample(epoch, step) for objective in objectives]
        inputs = torch.cat([tb.inputs, *(x for x in extras if x is not None)])
        features = lifter.temporal.features(inputs)[:, 0]
        pred = lifter.temporal.head(features).view(len(inputs), lifter.num_joints_out, 3)
        terms = compute_losses(pred[:B], tb, config)
        start = B
        for objective, x in zip(objectives, extras):
            out = StepOutputs(lifter, tb, pred[:B], features[:B])
            if x is not None:
                stop = start + len(x)
                out.extra_inputs, out.extra_pred, out.extra_features = x, pred[start:stop], features[start:stop]
                start = stop
            extra = objective.losses(out, epoch)
            terms["total"] = terms["total"] + extra.pop("total")
            terms.update({f"{objective.name}_{k}": v for k, v in extra.items()})
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    optimizer.step()
    return terms


def train(config: TrainConfig, train_set: LabeledSet, val_set: LabeledSet | None = None, *,
          seed: int = 0, device="cpu", checkpoint: str | Path | None = None, progress: bool = True,
          on_batch: Callable[[int, int], None] | None = None, log: Callable[[str], None] = print,
          objectives: list[Objective] = (), init_state: dict | None = None, output_map=None
          ) -> tuple[SeparateHeadLifter, pd.DataFrame]:
    """Train (or resume training) a lifter; returns it (dilated, eval mode) and the epoch log.

    ``checkpoint``: path of the resumable checkpoint, written after every epoch and read at the
    start when it matches this run (config, seed, data, objectives); ``on_batch(epoch, batch)`` is
    called after every optimiser step (tests use it to interrupt a run). ``objectives``: extra
    training signals (``Objective``); ``init_state``: a temporal-model state dict to start from
    (fine-tuning) instead of a random initialisation; ``output_map``: (R, J_union) map from R
    predicted points to the output joints (ACAE latent head, merged joints), None for one output
    per joint.
    """
    from tqdm import tqdm

    device = resolve_device(device)
    if device.type == "cpu":
        keep_freed_memory()
    if train_set.num_frames == 0:
        raise ConfigError("no training frames: the labeled datasets have no rows with split 'train'")
    formats = list(dict.fromkeys(train_set.formats))
    lifter = build_lifter(config, formats, seed, output_map)
    if init_state is not None:
        lifter.temporal.load_state_dict(init_state)
    lifter = lifter.to(device)
    objectives = list(objectives)
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ConfigError(f"objective names repeat: {names}")
    extra_modules = {f"{o.name}.{k}": m.to(device) for o in objectives for k, m in o.modules().items()}
    parameters = list(lifter.parameters()) + [p for m in extra_modules.values() for p in m.parameters()]
    optimizer = make_optimizer(parameters, config)
    term_names = list(LOSS_NAMES) + [f"{o.name}_{t}" for o in objectives for t in o.terms]
    unknown = sorted(set(config.dataset_weights) - set(train_set.names))
    if unknown:
        raise ConfigError(f"train: dataset_weights names unknown dataset(s) {unknown}; "
                          f"training datasets: {', '.join(train_set.names)}")
    sampler = ChunkSampler(train_set.frames_per_group(), config.batch_size,
                           weights=[config.dataset_weights.get(n, 1.0) for n in train_set.names],
                           samples_per_epoch=config.samples_per_epoch, seed=seed)
    assembler = BatchAssembler(train_set, lifter, device)
    val_batch = val_assembler = None
    if val_set is not None and config.val_windows > 0:
        val_batch = validation_batch(val_set, config.val_windows, seed)
        if val_batch is not None:
            val_assembler = BatchAssembler(val_set, lifter, device)

    fingerprint = _fingerprint(config, seed, train_set)
    if objectives:
        fingerprint["objectives"] = {o.name: o.fingerprint() for o in objectives}
    if init_state is not None:
        fingerprint["init_sha256"] = _state_digest(init_state)
    if output_map is not None:
        fingerprint["output_map_sha256"] = _state_digest({"output_map": torch.as_tensor(output_map)})
    start_epoch, rows = 0, []
    if checkpoint is not None and Path(checkpoint).is_file():
        try:
            state = read_torch_file(checkpoint, "checkpoint", map_location=device)
        except DataError as err:  # unreadable: not ours, or from another torch version
            state = {}
            log(f"{err}; starting over")
        if state.get("version") == CHECKPOINT_VERSION and state.get("fingerprint") == fingerprint:
            lifter.temporal.load_state_dict(state["model"])
            for key, module in extra_modules.items():
                module.load_state_dict(state["modules"][key])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, rows = int(state["epoch"]), list(state["log"])
            log(f"resuming from {checkpoint} after epoch {start_epoch}")
        elif state:
            log(f"checkpoint {checkpoint} is from a different run (config, seed or data); starting over")

    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        lr = config.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        momentum = config.bn_momentum_at(epoch)
        lifter.temporal.set_bn_momentum(momentum)
        lifter.temporal.dropout_generator = torch.Generator(device).manual_seed(epoch_seed(seed, epoch, 1))
        augment = np.random.default_rng(epoch_seed(seed, epoch, 2))
        lifter.train()
        for objective in objectives:
            objective.start_epoch(epoch, seed)
        for module in extra_modules.values():
            module.train()
        sums = torch.zeros(len(term_names) + 1, dtype=torch.float64, device=device)
        bar = tqdm(sampler.batches(epoch), total=sampler.num_batches, desc=f"epoch {epoch + 1}/{config.epochs}",
                   unit="batch", disable=not progress, leave=False,
                   mininterval=0.1 if sys.stderr.isatty() else 30.0)  # a log file gets a line per 30 s
        for b, batch in enumerate(bar):
            terms = train_step(lifter, assembler, optimizer, batch, config, augment, objectives, epoch, b)
            zero = terms["total"].new_zeros(())
            sums += torch.stack([terms["total"].detach(),
                                 *(terms.get(k, zero).detach() for k in term_names)]).double()
            if on_batch is not None:
                on_batch(epoch, b)
        means = (sums / sampler.num_batches).tolist()
        row = {"epoch": epoch + 1, "loss": means[0],
               **{f"loss_{k}": v for k, v in zip(term_names, means[1:])}}
        if val_batch is not None:
            row.update(validate(lifter, val_assembler, val_batch, config.batch_size))
        row.update({"lr": lr, "bn_momentum": momentum, "seconds": time.perf_counter() - started})
        rows.append(row)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("loss", "val_mpjpe")))
        log(f"epoch {epoch + 1}/{config.epochs}: {summary}")
        if checkpoint is not None:
            write_torch_file(checkpoint, {
                "version": CHECKPOINT_VERSION, "fingerprint": fingerprint, "epoch": epoch + 1,
                "model": lifter.temporal.state_dict(), "optimizer": optimizer.state_dict(), "log": rows,
                "modules": {k: m.state_dict() for k, m in extra_modules.items()}})
    if config.bn_recalibration_batches:
        recalibrate(lifter, assembler, sampler, config, seed, objectives)
        if val_batch is not None:
            after = validate(lifter, val_assembler, val_batch, config.batch_size)["val_mpjpe"]
            log(f"batch-norm statistics recalibrated on {config.bn_recalibration_batches} batches: "
                f"validation MPJPE {rows[-1]['val_mpjpe']:.4g} -> {after:.4g} mm")
    dilated = lifter.variant(strided=False).eval()
    return dilated, pd.DataFrame(rows)


def recalibrate(lifter: SeparateHeadLifter, assembler: BatchAssembler, sampler: ChunkSampler,
                config: TrainConfig, seed: int, objectives=()) -> None:
    """Recompute the lifter's BatchNorm statistics on ``bn_recalibration_batches`` batches
    composed as in training (``models.temporal.recalibrate_batch_norm``): labeled windows flipped
    half the time, without keypoint dropout as at test time, plus every objective's extra windows.
    The network learned under the statistics of that mix; labeled windows alone would shift them
    (measured: an MCSS run went from 86 to 206 mm validation MPJPE). Deterministic: the windows
    are those of the epoch after the last."""
    augment = np.random.default_rng(epoch_seed(seed, config.epochs, 2))
    last = config.epochs - 1  # objectives sample as in the last epoch (after any warm-up)
    for objective in objectives:
        objective.start_epoch(last, seed)

    def inputs():
        for step, b in enumerate(itertools.islice(sampler.batches(config.epochs), config.bn_recalibration_batches)):
            x = assembler.assemble(b, augment.random(len(b)) < 0.5 if config.flip_augment else None).inputs
            extras = [o.sample(last, step) for o in objectives]
            yield torch.cat([x, *(e for e in extras if e is not None)])

    recalibrate_batch_norm(lifter.temporal, inputs())


def write_model_dir(out_dir: str | Path, lifter: SeparateHeadLifter, log: pd.DataFrame, resolved: dict,
                    mean_pose: dict[str, np.ndarray], extra: dict | None = None) -> None:
    """Write ``model.pt`` (with ``extra`` entries, e.g. an objective's trajectory model),
    ``config.yaml`` and ``train_log.parquet`` (each atomically)."""
    import yaml

    out_dir = Path(out_dir)
    write_torch_file(out_dir / "model.pt", lifter.file_dict(mean_pose, training=resolved, **(extra or {})))
    atomic.write_text(out_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    atomic.write_parquet(out_dir / "train_log.parquet", log)
