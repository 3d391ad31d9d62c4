"""Frames read from disk on demand, through a bounded cache of fixed-size blocks.

A frame table too large for memory (``data.frames.FrameTable`` with ``inputs`` None) keeps only
its index in memory (rows, cameras, offsets); a ``FrameReader`` fetches the per-frame arrays
(*fields*: the network input, a labeled set's 3D targets) of any flat frames when a batch asks
for them. The flat frames are cut into blocks of ``block_frames``; a block is loaded whole (one
contiguous read per row it overlaps, in the files' chunk order: ``data.store.CHUNK_FRAMES``) and
kept in a slot of preallocated arrays, so the reader never holds more than ``capacity`` blocks
however many datasets the table spans. Blocks are evicted least recently used.

A field's frames all have one shape (the network input), or, for a ``RaggedField``, a leading
length that changes by runs of frames (the 3D targets: each dataset trains its own format's
joints). A ragged field is cached packed, every frame at its own length, and padded to the
longest only for the frames a read returns, so the cache's bytes follow the arrays in use
rather than the widest format. Data that fits the cache is laid out block after block (slot b
holds block b, nothing evicted); data that does not gets slots sized for the largest block.

A batch's windows then cost one fancy-indexing gather from the slots (as the in-memory table's),
plus the reads of the blocks it misses. The arrays a block holds are computed by the same
per-frame code as the in-memory table's, so both give identical batches.

``OpenFiles`` bounds the HDF5 files the loaders keep open: HDF5 holds ~0.5 MiB per open file
(the index of its metadata cache), which would otherwise grow with the datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from posebridge.errors import ConfigError

__all__ = ["BLOCK_FRAMES", "OPEN_FILES", "FrameReader", "Field", "OpenFiles", "RaggedField", "block_frames_for",
           "row_segments"]

BLOCK_FRAMES = 1024  # frames per cached block by default: one HDF5 chunk of the store and detection files
# HDF5 files a table's loaders keep open: reopening costs ~0.15 ms against a block's read and
# encoding of ~5 ms, and 1, 8 or all 60 files of 30 datasets open read a small cache alike
OPEN_FILES = 8
MIB = 2**20


def block_frames_for(receptive_field: int) -> int:
    """Frames per block for windows of ``receptive_field`` frames: the power of two at or above
    it, at least 64. A random window then touches one or two blocks, and a cache the data
    outgrows reads (and encodes) a few frames per frame used, not a whole file chunk's 1024."""
    return max(64, 1 << (int(receptive_field) - 1).bit_length())

Field = tuple  # (per-frame shape, dtype, fill value of frames a block does not reach)


@dataclass(frozen=True, eq=False)
class RaggedField:
    """A per-frame array of shape (L, *shape) whose length L changes by runs of frames: run s
    covers flat frames [starts[s], starts[s + 1]) (the last one up to the table's end), each of
    its frames ``lengths[s]`` long. Loaded and cached packed (every frame at its own length, in
    flat order), read padded to the longest with ``fill``.

    starts, lengths: (S,) int; starts increasing from 0 (empty runs allowed).
    """

    starts: np.ndarray
    lengths: np.ndarray
    shape: tuple
    dtype: np.dtype
    fill: float

    @property
    def width(self) -> int:
        """The largest of ``lengths``: a read pads its frames to it."""
        return int(max(self.lengths, default=0))

    def frame_values(self) -> int:
        """Values per unit of length (prod(shape))."""
        return int(np.prod(self.shape, dtype=np.int64))

    def run_values(self, num_frames: int) -> np.ndarray:
        """(S,) values before each run's first frame in the packed order."""
        ends = np.append(np.asarray(self.starts[1:], np.int64), num_frames)
        sizes = (ends - self.starts) * np.asarray(self.lengths, np.int64) * self.frame_values()
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


class FrameReader:
    """Per-frame arrays of ``num_frames`` flat frames, loaded by blocks on demand.

    Args:
        num_frames: N, the flat frames of the table.
        fields: name -> (per-frame shape, dtype, fill) or ``RaggedField``: the arrays ``read``
            returns.
        load: ``load(start, stop, names)`` -> name -> the field's values of flat frames [start,
            stop) (never more than one block) for each field in ``names``: (stop - start, *shape),
            a ragged field's packed (values,) in flat order.
        cache_mb: the most memory the cached blocks may take (MiB); at least one block is kept.
        block_frames: frames per block.
    """

    def __init__(self, num_frames: int, fields: dict, load: Callable[[int, int, list], dict],
                 cache_mb: float, block_frames: int = BLOCK_FRAMES):
        if block_frames < 1:
            raise ConfigError(f"block_frames must be positive, got {block_frames}")
        if not cache_mb > 0:
            raise ConfigError(f"the frame cache needs a positive size in MiB, got {cache_mb}")
        self.num_frames = int(num_frames)
        self.load = load
        self.block_frames = int(block_frames)
        self.num_blocks = -(-self.num_frames // self.block_frames)
        self.ragged = {k: v for k, v in fields.items() if isinstance(v, RaggedField)}
        self.fields = {k: (tuple(v[0]), np.dtype(v[1]), v[2]) for k, v in fields.items() if k not in self.ragged}
        self.run_values = {k: v.run_values(self.num_frames) for k, v in self.ragged.items()}
        self.capacity = self._capacity(cache_mb)
        self.slabs = {k: np.empty((self.capacity, self.block_frames, *shape), dtype)
                      for k, (shape, dtype, _) in self.fields.items()}
        # each slab as one row per cached frame: a read is one np.take of whole rows
        self.frame_rows = {k: slab.reshape(self.capacity * self.block_frames, -1) for k, slab in self.slabs.items()}
        self.pools, self.slot_start = {}, {}  # ragged: packed values, first value of each slot
        for k, field in self.ragged.items():
            self.slot_start[k], size = self._ragged_layout(k)
            self.pools[k] = np.empty(size, field.dtype)
        self.slot_of_block = np.full(self.num_blocks, -1, np.int64)
        self.block_in_slot = np.full(self.capacity, -1, np.int64)
        self.last_used = np.zeros(self.capacity, np.int64)
        self.clock = 0
        self.blocks_read = 0

    def _block_values(self, name: str) -> np.ndarray:
        """(num_blocks,) packed values of each block of ragged field ``name``."""
        bounds = np.minimum(np.arange(self.num_blocks + 1) * self.block_frames, self.num_frames)
        return np.diff(self.values_before(name, bounds))

    def _ragged_layout(self, name: str) -> tuple[np.ndarray, int]:
        """(first value of each slot (capacity,), values of all slots) of ragged field ``name``:
        the blocks packed back to back when each has its slot (block b in slot b), else every slot
        sized for the largest block."""
        values = self._block_values(name)
        if self.direct:
            return np.concatenate([[0], np.cumsum(values)[:-1]]).astype(np.int64), int(values.sum())
        return np.arange(self.capacity, dtype=np.int64) * int(values.max()), self.capacity * int(values.max())

    def _capacity(self, cache_mb: float) -> int:
        """Blocks the cache holds: all of them when they fit packed, else as many slots (each
        sized for the largest block) as ``cache_mb`` takes, at least one."""
        fixed = sum(dtype.itemsize * int(np.prod(shape)) for shape, dtype, _ in self.fields.values())
        fixed *= self.block_frames
        ragged = [self._block_values(k) * np.dtype(f.dtype).itemsize for k, f in self.ragged.items()]
        budget = cache_mb * MIB
        if fixed * self.num_blocks + sum(int(b.sum()) for b in ragged) <= budget:
            return self.num_blocks
        slot = fixed + sum(int(b.max()) for b in ragged)
        return max(1, min(int(budget // max(1, slot)), self.num_blocks))

    @property
    def direct(self) -> bool:
        """Whether every block has its own slot (block b in slot b: nothing is ever evicted)."""
        return self.capacity == self.num_blocks

    @property
    def cached_bytes(self) -> int:
        """Bytes of the cache's slots (the most this reader holds)."""
        return sum(a.nbytes for a in (*self.slabs.values(), *self.pools.values()))

    @property
    def cached_blocks(self) -> int:
        return int((self.block_in_slot >= 0).sum())

    def values_before(self, name: str, flat: np.ndarray, run: np.ndarray | None = None) -> np.ndarray:
        """Packed values of ragged field ``name`` before each of the flat frames ``flat``; ``run``:
        each frame's run of the field when the caller has it (``np.searchsorted`` of its starts)."""
        field, flat = self.ragged[name], np.asarray(flat, np.int64)
        if not len(field.starts):
            return np.zeros_like(flat)
        if run is None:
            run = np.searchsorted(field.starts, flat, side="right") - 1
        return self.run_values[name][run] + (flat - field.starts[run]) * field.lengths[run] * field.frame_values()

    def read(self, flat: np.ndarray, names=None) -> dict[str, np.ndarray]:
        """name -> (*flat.shape, *shape) arrays of the flat frames ``flat`` (any int array), a
        ragged field's padded to its longest frames; ``names``: the fields to read (default all)."""
        names = list(self.fields) + list(self.ragged) if names is None else list(names)
        flat = np.asarray(flat, np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= self.num_frames):
            raise IndexError(f"frame indices must lie in [0, {self.num_frames})")
        out = {k: self._empty(k, flat.size) for k in names}
        ravel = flat.reshape(-1)
        # a piece of `capacity` frames touches at most `capacity` blocks: every piece fits
        fits = self.direct or self._blocks_needed(ravel) <= self.capacity
        piece = ravel.size if fits else self.capacity
        for s in range(0, ravel.size, max(1, piece)):
            frames = ravel[s:s + piece]
            block, offset = np.divmod(frames, self.block_frames)
            slots = self._ensure(block)
            for k in names:
                if k in self.ragged:
                    self._gather_ragged(k, frames, block, slots, out[k][s:s + piece])
                else:
                    np.take(self.frame_rows[k], slots * self.block_frames + offset, axis=0, out=out[k][s:s + piece])
        return {k: v.reshape(*flat.shape, *self._frame_shape(k)) for k, v in out.items()}

    def _frame_shape(self, name: str) -> tuple:
        if name in self.ragged:
            return (self.ragged[name].width, *self.ragged[name].shape)
        return self.fields[name][0]

    def _empty(self, name: str, count: int) -> np.ndarray:
        """(count, values per frame) output rows of field ``name``."""
        dtype = self.ragged[name].dtype if name in self.ragged else self.fields[name][1]
        return np.empty((count, int(np.prod(self._frame_shape(name), dtype=np.int64))), dtype)

    def _gather_ragged(self, name: str, frames, block, slots, out: np.ndarray) -> None:
        """Fill ``out`` (n, width * values) with the cached values of ``frames`` (n,) (in
        ``block`` (n,), cached in ``slots`` (n,)), ``fill`` beyond each frame's length."""
        field = self.ragged[name]
        run = np.searchsorted(field.starts, frames, side="right") - 1
        size = np.asarray(field.lengths, np.int64)[run] * field.frame_values()
        first = (self.slot_start[name][slots] + self.values_before(name, frames, run)
                 - self.values_before(name, block * self.block_frames))
        column = np.arange(out.shape[1])
        inside = column < size[:, None]
        out.fill(field.fill)
        pool = self.pools[name]
        np.copyto(out, pool[np.minimum(first[:, None] + column, max(0, pool.size - 1))], where=inside)

    def _blocks_needed(self, flat: np.ndarray) -> int:
        return len(np.unique(flat // self.block_frames))

    def _ensure(self, block: np.ndarray) -> np.ndarray:
        """Slots of ``block`` (B,) block ids, loading the missing ones (at most ``capacity``
        distinct ids)."""
        self.clock += 1
        slots = self.slot_of_block[block]
        missing = slots < 0
        if missing.any():  # (when every block is held, a read is this lookup and the gather)
            self.last_used[slots[~missing]] = self.clock  # keeps them from eviction below
            ids = np.unique(block[missing])
            for b, slot in zip(ids, ids if self.direct else self._free_slots(len(ids))):
                self._fill(int(b), int(slot))
            slots = self.slot_of_block[block]
        self.last_used[slots] = self.clock
        return slots

    def _free_slots(self, count: int) -> np.ndarray:
        """``count`` slots to load into: empty ones first, then the least recently used among
        those the current read does not hold."""
        order = np.argsort(np.where(self.block_in_slot < 0, -1, self.last_used), kind="stable")[:count]
        if (self.last_used[order] == self.clock).any():
            raise AssertionError("frame cache: a read needs more blocks than the cache holds")
        return order

    def _fill(self, block: int, slot: int) -> None:
        old = self.block_in_slot[slot]
        if old >= 0:
            self.slot_of_block[old] = -1
        start = block * self.block_frames
        stop = min(start + self.block_frames, self.num_frames)
        arrays = self.load(start, stop, [*self.fields, *self.ragged])
        for k, (shape, dtype, fill) in self.fields.items():
            self.slabs[k][slot, :stop - start] = arrays[k]
            self.slabs[k][slot, stop - start:] = fill
        for k in self.ragged:
            first = self.slot_start[k][slot]
            self.pools[k][first:first + arrays[k].size] = arrays[k].reshape(-1)
        self.slot_of_block[block] = slot
        self.block_in_slot[slot] = block
        self.last_used[slot] = self.clock
        self.blocks_read += 1

    def blocks(self, names=None):
        """(first flat frame, name -> values) of every block in flat order, as ``load`` gives
        them (a ragged field packed): one pass over the data in bounded memory (digests, means).
        Blocks the cache holds come from it; the others are loaded whole and kept while the cache
        has empty slots (so a run's first pass, its digest, leaves data that fits the cache all
        cached), never evicting one."""
        names = list(names or [*self.fields, *self.ragged])
        for block in range(self.num_blocks):
            start = block * self.block_frames
            stop = min(start + self.block_frames, self.num_frames)
            if self.slot_of_block[block] < 0 and (self.block_in_slot >= 0).all():
                yield start, self.load(start, stop, names)
                continue
            if self.slot_of_block[block] < 0:
                self._fill(block, block if self.direct else int(np.flatnonzero(self.block_in_slot < 0)[0]))
            slot = self.slot_of_block[block]
            yield start, {k: self._cached(k, slot, start, stop) for k in names}

    def _cached(self, name: str, slot: int, start: int, stop: int) -> np.ndarray:
        """A copy of the cached values of flat frames [start, stop), a whole block in ``slot``."""
        if name not in self.ragged:
            return self.slabs[name][slot, :stop - start].copy()
        first = self.slot_start[name][slot]
        size = int(np.diff(self.values_before(name, np.array([start, stop])))[0])
        return self.pools[name][first:first + size].copy()


class OpenFiles:
    """At most ``limit`` (default ``OPEN_FILES``) of the HDF5 files a table's loaders read kept
    open, the least recently used closed first. The files are ``store.LazyHDF5`` objects
    (``Dataset``, ``Detections``), which reopen on their next read (~0.15 ms)."""

    def __init__(self, limit: int | None = None):
        self.limit = max(1, int(OPEN_FILES if limit is None else limit))
        self.recent: dict[int, object] = {}  # id -> file, least recently used first

    def use(self, file):
        """``file``, marked as just used; closes the least recently used beyond ``limit``."""
        self.recent.pop(id(file), None)
        self.recent[id(file)] = file
        while len(self.recent) > self.limit:
            self.recent.pop(next(iter(self.recent))).close()
        return file


def row_segments(row_start: np.ndarray, row_frames: np.ndarray, start: int, stop: int):
    """The rows flat frames [start, stop) overlap: (row, first, end) frames within the row, in
    flat order (rows contiguous in row order, as ``FrameTableBuilder`` makes them)."""
    row = int(np.searchsorted(row_start, start, side="right")) - 1
    while start < stop:
        first = start - int(row_start[row])
        end = min(int(row_frames[row]), first + stop - start)
        yield row, first, end
        start += end - first
        row += 1
