"""Training data read on demand: the block cache stays within its size whatever the data, holds
the 3D targets at each dataset's own joint count, keeps a bounded number of files open, and a set
read on demand gives the same batches, digest and trained weights as the same set in memory."""

import numpy as np
import pytest
import torch

from posebridge.data import frame_reader
from posebridge.data.frame_reader import FrameReader, OpenFiles, RaggedField, row_segments
from posebridge.data.windows import ChunkSampler
from posebridge.training.data import BatchAssembler, load_labeled
from posebridge.training.loop import TrainConfig, build_lifter, train

from test_train import TINY, write_toy_dataset


def array_reader(array, cache_mb, block_frames):
    """A FrameReader over an in-memory (N, 3) array, recording the ranges it loads."""
    loads = []

    def load(start, stop, names):
        loads.append((start, stop))
        return {"x": array[start:stop]}

    reader = FrameReader(len(array), {"x": ((3,), np.float32, np.nan)}, load, cache_mb, block_frames)
    return reader, loads


def test_reader_returns_the_frames_asked_and_holds_at_most_its_cache():
    rng = np.random.default_rng(0)
    array = rng.normal(size=(1000, 3)).astype(np.float32)
    block_bytes = 16 * 3 * 4
    reader, loads = array_reader(array, cache_mb=5 * block_bytes / 2**20, block_frames=16)
    assert reader.capacity == 5 and reader.cached_bytes == 5 * block_bytes
    for _ in range(30):
        index = rng.integers(0, 1000, size=(8, 7))
        np.testing.assert_array_equal(reader.read(index)["x"], array[index])
        assert reader.cached_blocks <= 5
    assert all(b - a <= 16 and a % 16 == 0 for a, b in loads)  # whole blocks, never more
    # a read of more blocks than the cache holds goes in pieces
    index = np.arange(0, 1000, 9)
    np.testing.assert_array_equal(reader.read(index)["x"], array[index])
    assert reader.cached_blocks == 5
    # blocks already held are not read again
    reader.read(np.array([999]))
    before = reader.blocks_read
    reader.read(np.array([998, 999, 992]))
    assert reader.blocks_read == before


def test_reader_frees_the_least_recently_used_block():
    array = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
    reader, loads = array_reader(array, cache_mb=2 * 16 * 12 / 2**20, block_frames=16)
    reader.read(np.array([0]))    # block 0
    reader.read(np.array([16]))   # block 1
    reader.read(np.array([1]))    # block 0 used again
    reader.read(np.array([32]))   # block 2 replaces block 1, the least recently used
    assert sorted(reader.block_in_slot) == [0, 2]
    assert loads == [(0, 16), (16, 32), (32, 48)]


def ragged_reader(cache_mb, block_frames=8):
    """A FrameReader over a ragged (N, L, 2) field of 50 frames in runs of lengths 2, 0 (empty),
    3, 1 and 3 (padded to 3), plus a fixed field; returns it, the padded truth (N, 3, 2) and each frame's L."""
    starts, lengths = np.array([0, 10, 10, 30, 33]), np.array([2, 1, 3, 1, 3])
    num_frames = 50
    frame_length = np.repeat(lengths, np.diff(np.append(starts, num_frames)))
    rng = np.random.default_rng(1)
    truth = np.full((num_frames, 3, 2), np.nan, np.float32)
    for f, length in enumerate(frame_length):
        truth[f, :length] = rng.normal(size=(length, 2))
    fixed = rng.normal(size=(num_frames, 4)).astype(np.float32)

    def load(start, stop, names):  # the ragged field packed: each frame at its own length
        packed = np.concatenate([truth[f, :frame_length[f]].reshape(-1) for f in range(start, stop)])
        return {"x": fixed[start:stop], "y": packed}

    field = RaggedField(starts, lengths, (2,), np.float32, np.nan)
    reader = FrameReader(num_frames, {"x": ((4,), np.float32, 0.0), "y": field}, load, cache_mb, block_frames)
    return reader, truth, fixed, frame_length


def test_a_ragged_field_is_cached_at_each_frame_length_and_read_padded():
    packed_bytes = 4 * 2 * (10 * 2 + 20 * 3 + 3 * 1 + 17 * 3)
    fixed_bytes = 7 * 8 * 4 * 4  # 7 blocks of 8 frames (the last one part full)
    # data that fits: every block has its slot, the ragged values packed back to back
    reader, truth, fixed, length = ragged_reader(cache_mb=1.0)
    assert reader.direct and reader.capacity == 7 and reader.cached_bytes == fixed_bytes + packed_bytes
    rng = np.random.default_rng(0)
    for _ in range(10):
        index = rng.integers(0, 50, size=(4, 5))
        out = reader.read(index)
        np.testing.assert_array_equal(out["y"], truth[index])  # NaN padding compares equal
        np.testing.assert_array_equal(out["x"], fixed[index])
    for start, block in reader.blocks(["y"]):  # blocks give the packed values
        stop = min(start + 8, 50)
        expected = np.concatenate([truth[f, :length[f]].reshape(-1) for f in range(start, stop)])
        np.testing.assert_array_equal(block["y"], expected)
    # a cache of two slots, each sized for the largest block (8 frames x 3 x 2 values)
    slot_bytes = 8 * 4 * 4 + 8 * 3 * 2 * 4
    reader, truth, fixed, length = ragged_reader(cache_mb=2.5 * slot_bytes / 2**20)
    assert not reader.direct and reader.capacity == 2 and reader.cached_bytes == 2 * slot_bytes
    for _ in range(20):
        index = rng.integers(0, 50, size=7)
        np.testing.assert_array_equal(reader.read(index)["y"], truth[index])
    seen = [start for start, _ in reader.blocks()]
    assert seen == list(range(0, 50, 8))


def test_open_files_keeps_the_most_recently_used_open(tmp_path):
    from posebridge.data.detections import read_detections

    files = [read_detections(write_toy_dataset(tmp_path, f"toy{i}", seed=i)[1]) for i in range(3)]
    expected = [f.frames(0, 5).copy() for f in files]
    pool = OpenFiles(limit=2)
    for f, keypoints in zip(files, expected):
        np.testing.assert_array_equal(pool.use(f).frames(0, 5), keypoints)
    assert [f._file is not None for f in files] == [False, True, True]
    np.testing.assert_array_equal(pool.use(files[0]).frames(0, 5), expected[0])  # reopened
    assert [f._file is not None for f in files] == [True, False, True]
    for f in files:
        f.close()


def test_row_segments_split_a_flat_range_at_row_ends():
    starts, frames = np.array([0, 5, 7, 20]), np.array([5, 2, 13, 4])
    assert list(row_segments(starts, frames, 3, 21)) == [(0, 3, 5), (1, 0, 2), (2, 0, 13), (3, 0, 1)]
    assert list(row_segments(starts, frames, 8, 9)) == [(2, 1, 2)]


@pytest.fixture(params=["h36m_17", None])
def two_datasets(tmp_path, request):
    """Two labeled toy datasets opened with their detections, as ``load_labeled`` takes them:
    one stored as h36m_32 and trained as h36m_17 (the param) or as its own 32 joints (None: the
    two train formats of different joint counts), one h36m_17."""
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset

    a, a_det = write_toy_dataset(tmp_path, "toy_a", "h36m_32", seed=0)
    b, b_det = write_toy_dataset(tmp_path, "toy_b", "h36m_17", seed=1)
    opened = [open_dataset(a), read_detections(a_det), open_dataset(b), read_detections(b_det)]
    yield [(opened[0], opened[1], request.param), (opened[2], opened[3], None)]
    for f in opened:
        f.close()


def equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(torch.nan_to_num(a, nan=7.0), torch.nan_to_num(b, nan=7.0))


@pytest.mark.parametrize("cache_mb", [0.01, 64])
def test_batches_read_on_demand_equal_those_in_memory(two_datasets, cache_mb):
    codec = TrainConfig().input_codec()
    memory = load_labeled(two_datasets, "train", codec=codec)
    # 0.01: a cache of one block of 64 frames: every batch reads and evicts;
    # 64: every frame cached, the targets at each dataset's own joint count
    lazy = load_labeled(two_datasets, "train", codec=codec, cache_mb=cache_mb, block_frames=64)
    assert lazy.inputs is None and lazy.targets is None
    assert lazy.reader.capacity == (1 if cache_mb < 1 else lazy.reader.num_blocks)
    if cache_mb == 64:
        inputs = lazy.reader.num_blocks * lazy.reader.block_frames * memory.inputs[0].nbytes
        assert lazy.reader.cached_bytes == inputs + sum(t.nbytes for t in memory.targets)
    assert lazy.num_frames == memory.num_frames and lazy.digest() == memory.digest()
    means_memory, means_lazy = memory.mean_pose_mm(), lazy.mean_pose_mm()
    assert means_memory.keys() == means_lazy.keys()
    for fmt in means_memory:
        np.testing.assert_allclose(means_lazy[fmt], means_memory[fmt], rtol=1e-12, atol=1e-9)
    shapes_memory, shapes_lazy = memory.mean_poses_mm()[1], lazy.mean_poses_mm()[1]
    # every format has one, the stored h36m_32 too (its 15 joints no frame fills keep the average)
    assert shapes_memory.keys() == shapes_lazy.keys() == means_memory.keys()
    for fmt in shapes_memory:  # the same sampled frames however the blocks cut the groups
        np.testing.assert_allclose(shapes_lazy[fmt], shapes_memory[fmt], rtol=1e-9, atol=1e-6)

    config = TrainConfig(**TINY)
    lifter = build_lifter(config, list(dict.fromkeys(memory.formats)), 0, keypoint_format=memory.keypoint_format)
    assemblers = BatchAssembler(memory, lifter), BatchAssembler(lazy, lifter)
    sampler = ChunkSampler(memory.frames_per_group(), 32, seed=3)
    rng = np.random.default_rng(0)
    for batch in list(sampler.batches(0))[:4]:
        flip = rng.random(len(batch)) < 0.5
        keep = rng.random((len(batch), lifter.receptive_field(), memory.num_keypoints)) > 0.1
        a, b = (assembler.assemble(batch, flip, keep) for assembler in assemblers)
        for name in ("inputs", "target", "target_px", "valid", "intrinsics", "distortion", "up"):
            assert equal(getattr(a, name), getattr(b, name)), name
    assert lazy.reader.cached_blocks == lazy.reader.capacity


def test_training_on_demand_gives_the_weights_of_training_in_memory(two_datasets):
    codec = TrainConfig().input_codec()
    config = dict(TINY, epochs=2, samples_per_epoch=128)
    runs = []
    for cache_mb in (None, 0.01):
        train_set = load_labeled(two_datasets, "train", codec=codec, cache_mb=cache_mb, block_frames=64)
        val_set = load_labeled(two_datasets, "test", codec=codec, cache_mb=cache_mb, block_frames=64)
        lifter, log = train(TrainConfig(**config), train_set, val_set, seed=1, progress=False, log=lambda m: None)
        runs.append((lifter.state_dict(), log))
    (a, log_a), (b, log_b) = runs
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(log_a["val_mpjpe"], log_b["val_mpjpe"])


def test_memory_read_on_demand_stays_within_the_cache_as_datasets_are_added(tmp_path, monkeypatch):
    """1, 2 and 4 datasets through the same cache: the frames grow, the cache's slots and the
    files kept open do not, and every batch's windows still come out right."""
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset

    monkeypatch.setattr(frame_reader, "OPEN_FILES", 3)
    codec = TrainConfig().input_codec()
    files = [write_toy_dataset(tmp_path, f"toy{i}", seed=i) for i in range(4)]
    cache_mb = 0.05
    frames, held = [], []
    for count in (1, 2, 4):
        opened = [(open_dataset(a), read_detections(b), None) for a, b in files[:count]]
        memory = load_labeled(opened, "train", codec=codec)
        for dataset, detections, _ in opened:  # the load into memory read them all
            dataset.close(), detections.close()
        lazy = load_labeled(opened, "train", codec=codec, cache_mb=cache_mb, block_frames=64)
        sampler = ChunkSampler(lazy.frames_per_group(), 64, seed=count)
        for batch in sampler.batches(0):
            index = lazy.window_index(batch.row, batch.frame, 4, 4)
            np.testing.assert_array_equal(lazy.gather(index), memory.inputs[index])
            assert lazy.reader.cached_blocks <= lazy.reader.capacity
            assert sum(f._file is not None for opened_row in opened for f in opened_row[:2]) <= 3
        assert lazy.reader.cached_bytes <= cache_mb * 2**20
        frames.append(lazy.num_frames)
        held.append(lazy.reader.cached_bytes)
        for dataset, detections, _ in opened:
            dataset.close(), detections.close()
    assert frames[0] < frames[1] < frames[2]
    assert held[1] == held[2]  # capped by the cache, not by the data
