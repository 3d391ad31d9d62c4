"""Frames read from disk on demand, through a bounded cache of fixed-size blocks.

A frame table too large for memory (``data.frames.FrameTable`` with ``inputs`` None) keeps only
its index in memory (rows, cameras, offsets); a ``FrameReader`` fetches the per-frame arrays
(*fields*: the network input, a labeled set's 3D targets) of any flat frames when a batch asks
for them. The flat frames are cut into blocks of ``block_frames``; a block is loaded whole (one
contiguous read per row it overlaps, in the files' chunk order: ``data.store.CHUNK_FRAMES``) and
kept in a slot of preallocated arrays, so the reader never holds more than ``capacity`` blocks
however many datasets the table spans. Blocks are evicted least recently used.

A batch's windows then cost one fancy-indexing gather from the slots (as the in-memory table's),
plus the reads of the blocks it misses. The arrays a block holds are computed by the same
per-frame code as the in-memory table's, so both give identical batches.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from posebridge.errors import ConfigError

__all__ = ["BLOCK_FRAMES", "FrameReader", "Field", "block_frames_for", "row_segments"]

BLOCK_FRAMES = 1024  # frames per cached block by default: one HDF5 chunk of the store and detection files
MIB = 2**20


def block_frames_for(receptive_field: int) -> int:
    """Frames per block for windows of ``receptive_field`` frames: the power of two at or above
    it, at least 64. A random window then touches one or two blocks, and a cache the data
    outgrows reads (and encodes) a few frames per frame used, not a whole file chunk's 1024."""
    return max(64, 1 << (int(receptive_field) - 1).bit_length())

Field = tuple  # (per-frame shape, dtype, fill value of frames a block does not reach)


class FrameReader:
    """Per-frame arrays of ``num_frames`` flat frames, loaded by blocks on demand.

    Args:
        num_frames: N, the flat frames of the table.
        fields: name -> (per-frame shape, dtype, fill): the arrays ``load`` returns.
        load: ``load(start, stop, names)`` -> name -> (stop - start, *shape) array of flat
            frames [start, stop) (never more than one block) for each field in ``names``.
        cache_mb: the most memory the cached blocks may take (MiB); at least one block is kept.
        block_frames: frames per block.
    """

    def __init__(self, num_frames: int, fields: dict[str, Field], load: Callable[[int, int], dict],
                 cache_mb: float, block_frames: int = BLOCK_FRAMES):
        if block_frames < 1:
            raise ConfigError(f"block_frames must be positive, got {block_frames}")
        if not cache_mb > 0:
            raise ConfigError(f"the frame cache needs a positive size in MiB, got {cache_mb}")
        self.num_frames = int(num_frames)
        self.fields = {k: (tuple(shape), np.dtype(dtype), fill) for k, (shape, dtype, fill) in fields.items()}
        self.load = load
        self.block_frames = int(block_frames)
        self.num_blocks = -(-self.num_frames // self.block_frames)
        frame_bytes = sum(dtype.itemsize * int(np.prod(shape)) for shape, dtype, _ in self.fields.values())
        fit = int(cache_mb * MIB // max(1, frame_bytes * self.block_frames))
        self.capacity = max(1, min(fit, self.num_blocks))
        self.slabs = {k: np.empty((self.capacity, self.block_frames, *shape), dtype)
                      for k, (shape, dtype, _) in self.fields.items()}
        # each slab as one row per cached frame: a read is one np.take of whole rows
        self.frame_rows = {k: slab.reshape(self.capacity * self.block_frames, -1) for k, slab in self.slabs.items()}
        self.slot_of_block = np.full(self.num_blocks, -1, np.int64)
        self.block_in_slot = np.full(self.capacity, -1, np.int64)
        self.last_used = np.zeros(self.capacity, np.int64)
        self.clock = 0
        self.blocks_read = 0

    @property
    def cached_bytes(self) -> int:
        """Bytes of the cache's slots (the most this reader holds)."""
        return sum(slab.nbytes for slab in self.slabs.values())

    @property
    def cached_blocks(self) -> int:
        return int((self.block_in_slot >= 0).sum())

    def read(self, flat: np.ndarray, names=None) -> dict[str, np.ndarray]:
        """name -> (*flat.shape, *shape) arrays of the flat frames ``flat`` (any int array);
        ``names``: the fields to read (default all)."""
        names = list(self.fields) if names is None else list(names)
        flat = np.asarray(flat, np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= self.num_frames):
            raise IndexError(f"frame indices must lie in [0, {self.num_frames})")
        out = {k: np.empty((flat.size, self.frame_rows[k].shape[1]), self.fields[k][1]) for k in names}
        ravel = flat.reshape(-1)
        # a piece of `capacity` frames touches at most `capacity` blocks: every piece fits
        fits = self.capacity == self.num_blocks or self._blocks_needed(ravel) <= self.capacity
        piece = ravel.size if fits else self.capacity
        for s in range(0, ravel.size, max(1, piece)):
            block, offset = np.divmod(ravel[s:s + piece], self.block_frames)
            at = self._ensure(block) * self.block_frames + offset
            for k in names:
                np.take(self.frame_rows[k], at, axis=0, out=out[k][s:s + piece])
        return {k: v.reshape(*flat.shape, *self.fields[k][0]) for k, v in out.items()}

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
            for b, slot in zip(ids, self._free_slots(len(ids))):
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
        arrays = self.load(start, stop, list(self.fields))
        for k, (shape, dtype, fill) in self.fields.items():
            self.slabs[k][slot, :stop - start] = arrays[k]
            self.slabs[k][slot, stop - start:] = fill
        self.slot_of_block[block] = slot
        self.block_in_slot[slot] = block
        self.last_used[slot] = self.clock
        self.blocks_read += 1

    def blocks(self, names=None):
        """(first flat frame, name -> (n, *shape)) of every block in flat order: one pass over the
        data in bounded memory (digests, means). Blocks the cache holds come from it; the others
        are loaded whole and kept while the cache has empty slots (so a run's first pass, its
        digest, leaves data that fits the cache all cached), never evicting one."""
        names = list(names or self.fields)
        for block in range(self.num_blocks):
            start = block * self.block_frames
            n = min(self.block_frames, self.num_frames - start)
            if self.slot_of_block[block] < 0 and (self.block_in_slot >= 0).all():
                yield start, self.load(start, start + n, names)
                continue
            if self.slot_of_block[block] < 0:
                self._fill(block, int(np.flatnonzero(self.block_in_slot < 0)[0]))
            slot = self.slot_of_block[block]
            yield start, {k: self.slabs[k][slot, :n].copy() for k in names}


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
