"""Vectorised sampling of training windows (receptive-field chunks) from many sequences.

Training data is a set of *rows* (one sequence seen by one camera), their frames concatenated
into flat arrays: row ``r`` owns frames ``[starts[r], starts[r] + frames[r])``. Rows belong to
*groups* (datasets). A training sample is a (row, centre frame) pair; its input is the window of
frames ``[centre - before, centre + after]`` of that row, frames beyond either end replaced by
the first / last frame (VideoPose3D's edge padding).

VideoPose3D builds each batch with a per-sample Python loop. Here an epoch's samples are drawn
at once with numpy, and a batch's windows are one index array, ``window_index``, that gathers all
windows with a single fancy-indexing operation.

Sampling: each sample's group is drawn with probability proportional to (frames in the group) x
(the group's weight), so with equal weights every frame is equally likely; within a group, frames
are taken in a fresh random permutation (each frame once before any repeats). An epoch is a
fixed number of full batches covering ``samples_per_epoch`` samples (default: one pass over all
frames), rounded up to whole batches. Everything is derived from ``(seed, epoch)``, so any epoch
can be replayed exactly without the ones before it (resuming a killed run).

Data-parallel training (``training.distributed``): every process draws the same seeded epoch and
takes its ``Shard`` of each batch, a contiguous slice, so the processes together see exactly the
batches one process would (the global batch), each window once per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from posebridge.errors import ConfigError

__all__ = ["window_index", "gather_windows", "Batch", "Shard", "ChunkSampler"]


def window_index(starts: np.ndarray, frames: np.ndarray, rows: np.ndarray, centres: np.ndarray,
                 before: int, after: int) -> np.ndarray:
    """(B, before + 1 + after) int64 indices into the flat frame arrays.

    ``starts`` / ``frames`` (R,): every row's first flat frame and frame count; ``rows`` /
    ``centres`` (B,): each sample's row and centre frame (0-based within the row). Frames outside
    the row are clamped to its first / last frame (edge replication).
    """
    rows = np.asarray(rows, dtype=np.int64)
    offsets = np.arange(-before, after + 1, dtype=np.int64)
    local = np.asarray(centres, dtype=np.int64)[:, None] + offsets
    np.clip(local, 0, (np.asarray(frames, dtype=np.int64)[rows] - 1)[:, None], out=local)
    return local + np.asarray(starts, dtype=np.int64)[rows][:, None]


def gather_windows(array, index):
    """``array[index]``: (N, ...) flat frames and (B, W) indices -> (B, W, ...) windows (numpy or
    torch; a numpy index is converted for a torch array)."""
    if type(array).__module__.startswith("torch"):
        import torch

        index = torch.as_tensor(index, device=array.device)
        # index_select on rows of a 2D view copies whole frames (several times faster than
        # advanced indexing of an N-D tensor)
        rows = array.reshape(len(array), -1).index_select(0, index.reshape(-1))
        return rows.view(*index.shape, *array.shape[1:])
    return array[index]


@dataclass
class Batch:
    """One batch of samples: ``group`` (B,) group index, ``row`` (B,) global row index,
    ``frame`` (B,) centre frame within the row."""

    group: np.ndarray
    row: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    def part(self, where: slice) -> "Batch":
        """The samples ``where`` of this batch."""
        return Batch(self.group[where], self.row[where], self.frame[where])


@dataclass(frozen=True)
class Shard:
    """Process ``rank`` of ``processes`` in data-parallel training: which part of each global
    batch (and of an objective's extra windows) it takes. ``Shard()`` is the single process."""

    rank: int = 0
    processes: int = 1

    def __post_init__(self):
        if not 0 <= self.rank < self.processes:
            raise ConfigError(f"process rank {self.rank} is not in 0..{self.processes - 1}")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0

    def part(self, n: int) -> slice:
        """This process's contiguous slice of ``n`` items: items ``n * rank // processes`` up to
        ``n * (rank + 1) // processes`` (equal parts when ``processes`` divides ``n``)."""
        return slice(n * self.rank // self.processes, n * (self.rank + 1) // self.processes)


class ChunkSampler:
    """Draws an epoch of (row, centre frame) samples from groups of rows.

    Args:
        frames_per_group: for each group, the frame counts of its rows (R_g,). Rows are numbered
            globally in group order (group 0's rows first), matching the flat arrays.
        batch_size: samples per batch.
        weights: per-group sampling weight (default 1 each: proportional to the group's frames).
        samples_per_epoch: samples per epoch (None: the total number of frames).
        seed: base seed; epoch ``e`` uses ``numpy.random.default_rng([seed, e])``.
    """

    def __init__(self, frames_per_group: Sequence[Sequence[int]], batch_size: int,
                 weights: Sequence[float] | None = None, samples_per_epoch: int | None = None,
                 seed: int = 0):
        self.frames_per_group = [np.asarray(f, dtype=np.int64).reshape(-1) for f in frames_per_group]
        if not self.frames_per_group:
            raise ConfigError("no training data: no groups of rows")
        if any((f < 1).any() for f in self.frames_per_group):
            raise ConfigError("every row needs at least one frame")
        self.sizes = np.array([f.sum() for f in self.frames_per_group], dtype=np.int64)
        weights = np.ones(len(self.sizes)) if weights is None else np.asarray(weights, dtype=np.float64)
        if weights.shape != self.sizes.shape or (weights < 0).any() or not np.isfinite(weights).all():
            raise ConfigError(f"group weights must be {len(self.sizes)} non-negative numbers, got {weights}")
        mass = self.sizes * weights
        if mass.sum() <= 0:
            raise ConfigError("every group with frames has weight 0: nothing to sample")
        self.probabilities = mass / mass.sum()
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = int(batch_size)
        total = int(self.sizes.sum()) if samples_per_epoch is None else int(samples_per_epoch)
        if total < 1:
            raise ConfigError(f"samples_per_epoch must be positive, got {samples_per_epoch}")
        self.num_batches = -(-total // self.batch_size)
        self.seed = int(seed)
        # first global row of each group, and each group's rows' first frame within the group
        counts = [len(f) for f in self.frames_per_group]
        self.row_offset = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._cum = [np.concatenate([[0], np.cumsum(f)]) for f in self.frames_per_group]

    @property
    def samples_per_epoch(self) -> int:
        return self.num_batches * self.batch_size

    def epoch_samples(self, epoch: int) -> Batch:
        """All samples of one epoch, in batch order (``samples_per_epoch`` of them)."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        n = self.samples_per_epoch
        group = rng.choice(len(self.sizes), size=n, p=self.probabilities)
        row = np.empty(n, dtype=np.int64)
        frame = np.empty(n, dtype=np.int64)
        for g in range(len(self.sizes)):  # a loop over datasets, not samples
            where = np.flatnonzero(group == g)
            if len(where) == 0:
                continue
            size = int(self.sizes[g])
            repeats = -(-len(where) // size)
            flat = np.concatenate([rng.permutation(size) for _ in range(repeats)])[:len(where)]
            local_row = np.searchsorted(self._cum[g], flat, side="right") - 1
            row[where] = local_row + self.row_offset[g]
            frame[where] = flat - self._cum[g][local_row]
        return Batch(group.astype(np.int64), row, frame)

    def batches(self, epoch: int, start: int = 0, shard: Shard = Shard()) -> Iterator[Batch]:
        """The epoch's batches, from batch ``start`` on: ``shard``'s part of each (default: all)."""
        samples = self.epoch_samples(epoch)
        part = shard.part(self.batch_size)
        for b in range(int(start), self.num_batches):
            first = b * self.batch_size
            yield samples.part(slice(first + part.start, first + part.stop))
