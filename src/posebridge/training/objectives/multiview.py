"""MCSS as a training objective of the lifter: metric learning on unlabeled multi-view video.

Mitra et al. ("Multiview-consistent semi-supervised learning for 3D human pose estimation",
CVPR 2020) learn from synchronised cameras without 3D:
the same instant seen by two cameras must embed close together, other instants far apart. Here
the embedding reads the lifter's own trunk features, so the metric loss shapes the trunk that
the labeled losses train too (one forward pass, shared batch-norm statistics).

Each step, ``MultiviewObjective``:

- samples ``pairs`` instants of the ``unlabeled_multiview`` takes (a take: the index rows of one
  multi-view ``group``, one row per camera; frame f of every row is the same instant) and two
  different cameras of each: anchor and positive windows (``sample_pairs``);
- embeds both with an embedding head on the trunk features (``models.embedding.EmbeddingHead``,
  L2-normalised) and applies the triplet loss with the hardest in-batch negatives, excluding
  frames of the same take within ``time_window`` frames (``metric_learning``);
- regresses the pose in the canonical frame (``canonical.canonicalize``) from the embedding of
  the step's LABELED windows (``models.embedding.EmbeddingToPose``), the MCSS pose regressor
  trained jointly with the metric loss.

Only which rows are the same instant is needed: no 3D and no calibration of the multi-view data
(the image size, stored with every dataset, normalises the keypoints as for the lifter). The
takes' frames are read from the files on demand, as the labeled sets' (``train.data_cache_mb``,
``data.frame_reader``). The head and regressor are saved in ``model.pt`` under
``"multiview"`` (``load_embedding`` reads them back; ``embed`` and ``canonical_pose`` run them
on a sequence).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from posebridge.geometry import canonical, skeletons
from posebridge.training import metric_learning as ml
from posebridge.data.frame_reader import BLOCK_FRAMES
from posebridge.data.frames import FrameTable, FrameTableBuilder
from posebridge.errors import DataError
from posebridge.models.embedding import EmbeddingHead, EmbeddingToPose
from posebridge.models.lifter import MM_PER_UNIT
from posebridge.training.data import MirroredFrames, on_demand_options
from posebridge.training.loop import Objective, ObjectiveContext, StepOutputs, epoch_seed
from posebridge.training.settings import MultiviewSettings

__all__ = ["MultiviewSet", "load_multiview", "PairBatch", "sample_pairs", "MultiviewSettings",
           "MultiviewObjective", "objective_from_sources", "load_embedding",
           "embed", "canonical_pose", "FILE_KEY"]

FILE_KEY = "multiview"
"""The ``model.pt`` entry holding the embedding head and the pose regressor."""
RANDOM_STREAM = 11
"""This objective's random stream of ``training.loop.epoch_seed`` (the loop itself uses 1 and 2)."""
INIT_STREAM = 12
"""The stream (of "epoch" 0) that initialises the head and the regressor."""


@dataclass(kw_only=True)
class MultiviewSet(FrameTable):
    """Rows (sequence x camera) of unlabeled multi-view datasets (a ``FrameTable``) and their takes.

    takes: per take, the rows of its cameras (int arrays, >= 2 each); take_frames (T,) the frames
    all its rows share; take_names (T,) "<dataset>/<group>".
    """

    takes: list[np.ndarray]
    take_frames: np.ndarray
    take_names: np.ndarray

    def digest(self, *extra: np.ndarray) -> str:
        """sha256 of the frames and the take structure (the resume fingerprint's data part)."""
        return super().digest(self.take_frames, *self.takes, *extra)


def load_multiview(sources, keypoint_format: str, codec=None, cache_mb: float | None = None,
                   block_frames: int = BLOCK_FRAMES) -> MultiviewSet:
    """Read the train-split rows of ``unlabeled_multiview`` datasets, the 2D encoded by ``codec``
    (``data.keypoints.InputCodec``; default screen + raw confidence); with ``cache_mb`` (MiB) only
    their index, the frames read on demand through a cache of that size (blocks of
    ``block_frames``), as ``training.data.load_labeled``.

    sources: list of (``store.Dataset``, ``detections.Detections``). Rows of one ``group`` are the
    cameras of one take; a take seen by one camera only gives no pair and is left out. Frame
    counts of a take's rows should agree; the shortest one bounds the frames sampled.
    """
    table = FrameTableBuilder(keypoint_format, codec, cache_mb, block_frames)
    takes, take_names = [], []
    for dataset, detections in sources:
        if dataset.role != "unlabeled_multiview":
            raise DataError(dataset.path, f"dataset {dataset.name!r} has role {dataset.role!r}; "
                                          f"multi-view metric learning reads unlabeled_multiview datasets")
        table.add_source(dataset, detections)
        for group, take in dataset.rows("train").groupby("group", sort=False):
            take = take.drop_duplicates("camera")
            if len(take) < 2:
                continue
            takes.append(np.arange(len(take), dtype=np.int64) + table.num_rows)
            for _, row in take.iterrows():
                table.add_row(dataset, row)
            take_names.append(f"{dataset.name}/{group}")
    if not takes:
        names = ", ".join(str(d.path) for d, _ in sources) or "none given"
        raise DataError(names, "no multi-view take (a group seen by two or more cameras) in the train split")
    columns = table.columns()
    take_frames = np.asarray([columns["row_frames"][t].min() for t in takes], dtype=np.int64)
    return MultiviewSet(**columns, takes=takes, take_frames=take_frames,
                        take_names=np.asarray(take_names, dtype=object))


@dataclass
class PairBatch:
    """``n`` sampled instants: take (n,), frame (n,) within the take, and the rows of the two
    cameras that see it, row_a (n,) (anchor) and row_b (n,) (positive), always different."""

    take: np.ndarray
    frame: np.ndarray
    row_a: np.ndarray
    row_b: np.ndarray


def sample_pairs(data: MultiviewSet, n: int, rng: np.random.Generator) -> PairBatch:
    """Draw ``n`` instants (take with probability proportional to its frames, frame uniform) and
    two distinct cameras of each (uniform over ordered pairs)."""
    p = data.take_frames / data.take_frames.sum()
    take = rng.choice(len(p), size=n, p=p)
    frame = (rng.random(n) * data.take_frames[take]).astype(np.int64)
    cams = np.array([len(t) for t in data.takes])[take]
    a = (rng.random(n) * cams).astype(np.int64)
    b = (a + 1 + (rng.random(n) * (cams - 1)).astype(np.int64)) % cams  # never a itself
    rows_a = np.array([data.takes[t][i] for t, i in zip(take, a)], dtype=np.int64)
    rows_b = np.array([data.takes[t][i] for t, i in zip(take, b)], dtype=np.int64)
    return PairBatch(take, frame, rows_a, rows_b)


class MultiviewObjective(Objective):
    """MCSS: triplet loss on two views of the same instants + canonical pose from the embedding.

    data: the multi-view rows; settings: the objective's options; formats: the lifter's output
    formats (in order; the regressor predicts their union); group_formats: the format of each
    labeled group (``LabeledSet.formats``); channels: the trunk's feature size; flip: mirror both
    views of a random half of the pairs (the same mirrored instant); keypoint_dropout: as for the
    labeled windows; seed: initialises the head and the regressor (without touching global random
    state, so a rerun starts from the same weights). The input window is the lifter's
    (``attach``).
    """

    name = "multiview"
    terms = ("triplet", "pose", "d_pos", "d_neg", "active")

    def __init__(self, data: MultiviewSet, settings: MultiviewSettings, *, formats, group_formats,
                 channels: int, flip: bool = True, keypoint_dropout: float = 0.0, device="cpu", seed: int = 0):
        settings.validate()
        self.data, self.settings, self.flip = data, settings, bool(flip)
        self.formats = [skeletons.get(f).name for f in formats]
        self.group_formats = list(group_formats)
        self.slices, start = {}, 0
        for fmt in self.formats:
            n = skeletons.get(fmt).num_joints
            self.slices[fmt] = slice(start, start + n)
            start += n
        self.before = self.after = None  # the lifter's window (attach)
        self.keypoint_dropout = float(keypoint_dropout)
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(epoch_seed(seed, 0, INIT_STREAM))
            self.head = EmbeddingHead(channels, settings.embedding_dim)
            # no dropout in the regressor: nn.Dropout draws from torch's global generator, which
            # would make runs irreproducible (the trunk below it has its own seeded dropout)
            self.regressor = EmbeddingToPose(settings.embedding_dim, start, dropout=0.0)
        self.frames = MirroredFrames(data, device)
        self.rng = np.random.default_rng(0)
        self.last: PairBatch | None = None

    def attach(self, lifter) -> None:
        self.before, self.after = lifter.window()

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"head": self.head, "regressor": self.regressor}

    def fingerprint(self) -> dict:
        s = self.settings
        return {"weight": float(s.weight), "pose_weight": float(s.pose_weight), "margin": float(s.margin),
                "time_window": int(s.time_window), "pairs": int(s.pairs),
                "embedding_dim": int(s.embedding_dim), "flip": self.flip,
                "datasets": list(self.data.names), "takes": int(len(self.data.takes)),
                "data_sha256": self.data.digest()}

    def start_epoch(self, epoch: int, seed: int) -> None:
        self.rng = np.random.default_rng(epoch_seed(seed, epoch, RANDOM_STREAM))

    def sample(self, epoch: int, step: int) -> torch.Tensor:
        """(2 * pairs, RF, K, 3): the anchors' windows, then the positives' (same order)."""
        data, n = self.data, int(self.settings.pairs)
        # every process draws all processes' pairs (the stream of one process) and keeps its part
        part = self.shard.part(n)
        pairs = sample_pairs(data, n, self.rng)
        pairs = PairBatch(*(getattr(pairs, f.name)[part] for f in fields(PairBatch)))
        rows = np.concatenate([pairs.row_a, pairs.row_b])
        # both views of an instant mirrored together: still a positive pair
        flip = np.tile((self.rng.random(n) < 0.5)[part], 2) if self.flip else None
        x = self.frames.gather(data.window_index(rows, np.concatenate([pairs.frame, pairs.frame]),
                                                 self.before, self.after, flip))
        if self.keypoint_dropout > 0:
            keep = self.rng.random((2, n, *x.shape[1:3]), dtype=np.float32)[:, part].reshape(x.shape[:3])
            x = x * torch.from_numpy(keep >= self.keypoint_dropout).to(self.device)[..., None]
        self.last = pairs
        return x

    def losses(self, out: StepOutputs, epoch: int) -> dict[str, torch.Tensor]:
        s, pairs = self.settings, self.last
        n = len(pairs.take)
        emb = self.head(out.extra_features)
        triplet, stats = ml.multiview_triplet_loss(
            emb[:n], emb[n:], pairs.frame, pairs.take, s.margin, s.time_window, return_stats=True)
        pose = self.pose_loss(out)
        zero = triplet.new_zeros(())
        return {"total": s.weight * triplet + s.pose_weight * pose, "triplet": triplet, "pose": pose,
                "d_pos": zero + stats.d_pos, "d_neg": zero + stats.d_neg, "active": zero + stats.active}

    def pose_loss(self, out: StepOutputs) -> torch.Tensor:
        """Mean per-joint error (metres) of the regressed canonical pose of the labeled windows."""
        batch = out.labeled
        pred = self.regressor(self.head(out.labeled_features))  # (B, J_union, 3) mm
        total, count = pred.new_zeros(()), 0
        for g in np.unique(batch.group):
            fmt = self.group_formats[g]
            sl = self.slices[fmt]
            sel = torch.from_numpy(np.flatnonzero(batch.group == g)).to(pred.device)
            up = "-y" if batch.up is None else batch.up.index_select(0, sel)  # -y: level cameras
            target = canonical.canonicalize(batch.target.index_select(0, sel)[:, sl] * MM_PER_UNIT, fmt, up)
            ok = ~torch.isnan(target).any(-1)
            error = (pred.index_select(0, sel)[:, sl] - torch.nan_to_num(target)).norm(dim=-1)
            total = total + torch.where(ok, error, 0.0).sum()
            count += int(ok.sum())
        return total / max(count, 1) / MM_PER_UNIT

    def file_entries(self) -> dict:
        def cpu(module):
            return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

        return {FILE_KEY: {
            "head": {"architecture": {"in_channels": int(self.head.hidden.in_features),
                                      "embedding_dim": int(self.settings.embedding_dim),
                                      "hidden": int(self.head.hidden.out_features)},
                     "state_dict": cpu(self.head)},
            "regressor": {"architecture": dict(self.regressor.architecture), "state_dict": cpu(self.regressor)},
            "formats": [{"name": f, "start": sl.start, "stop": sl.stop} for f, sl in self.slices.items()],
            "settings": self.fingerprint()}}


def objective_from_sources(sources, context: ObjectiveContext) -> MultiviewObjective:
    """The objective of a training run (``context``) on ``unlabeled_multiview`` ``sources``
    ((``store.Dataset``, ``detections.Detections``) pairs), with ``context.config``'s
    ``multiview`` settings."""
    config = context.config
    data = load_multiview(sources, config.keypoint_format, config.input_codec(), **on_demand_options(config))
    return MultiviewObjective(data, config.multiview, formats=context.formats,
                              group_formats=context.train_set.formats, channels=config.channels,
                              flip=config.flip_augment, keypoint_dropout=config.keypoint_dropout,
                              device=context.device, seed=context.seed)


# ------------------------------------------------------------------ using a trained embedding

def load_embedding(payload: dict, path="model.pt", device="cpu"):
    """The (head, regressor, slices) stored in a ``model.pt`` payload (eval mode); DataError when
    the model was trained without the multi-view objective."""
    entry = payload.get(FILE_KEY)
    if entry is None:
        raise DataError(path, "the model has no multi-view embedding (train it with --multiview)")
    try:
        head = EmbeddingHead(**entry["head"]["architecture"])
        head.load_state_dict(entry["head"]["state_dict"])
        regressor = EmbeddingToPose(**entry["regressor"]["architecture"])
        regressor.load_state_dict(entry["regressor"]["state_dict"])
    except (KeyError, TypeError, RuntimeError) as err:  # another version's layout
        raise DataError(path, f"unreadable multi-view embedding ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:200]})") from None
    slices = {f["name"]: slice(f["start"], f["stop"]) for f in entry["formats"]}
    return head.to(device).eval(), regressor.to(device).eval(), slices


@torch.inference_mode()
def embed(lifter, head, inputs) -> torch.Tensor:
    """Network input of one sequence (T, K, F) -> (T, D) unit embeddings, one per frame: the
    dilated lifter's trunk over the edge-padded sequence (as ``inference.lift``), then the head."""
    x = torch.as_tensor(inputs, dtype=torch.float32, device=next(head.parameters()).device)
    before, after = lifter.window()
    padded = torch.cat([x[:1].expand(before, *x.shape[1:]), x, x[-1:].expand(after, *x.shape[1:])])
    temporal = lifter.temporal
    was_training = temporal.training
    temporal.eval()
    try:
        features = temporal.features(padded[None])[0]
    finally:
        temporal.train(was_training)
    return head(features)


@torch.inference_mode()
def canonical_pose(regressor, embeddings, slices, fmt: str) -> np.ndarray:
    """(T, D) embeddings -> (T, J, 3) float64 canonical poses (mm) of format ``fmt``."""
    return regressor(embeddings)[:, slices[fmt]].double().cpu().numpy()
