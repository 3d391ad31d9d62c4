"""Vectorised training-window sampling: windows equal a naive per-sample gather (with edge
padding), and the sampler is deterministic, complete and weighted as documented."""

import numpy as np
import pytest
import torch

from posebridge.data.windows import ChunkSampler, gather_windows, window_index
from posebridge.errors import ConfigError


def naive_window(flat, starts, frames, row, centre, before, after):
    """VideoPose3D-style: one sample at a time, pad by repeating the first / last frame."""
    sequence = flat[starts[row]:starts[row] + frames[row]]
    out = []
    for t in range(centre - before, centre + after + 1):
        if t < 0:
            out.append(sequence[0])
        elif t >= len(sequence):
            out.append(sequence[-1])
        else:
            out.append(sequence[t])
    return np.stack(out)


@pytest.mark.parametrize("before,after", [(13, 13), (26, 0), (0, 0), (40, 40)])
def test_windows_equal_naive_gather_with_edge_padding(before, after):
    rng = np.random.default_rng(0)
    frames = np.array([5, 30, 1, 60, 17])
    starts = np.concatenate([[0], np.cumsum(frames)[:-1]])
    flat = rng.normal(size=(frames.sum(), 4, 3)).astype(np.float32)
    rows = rng.integers(0, len(frames), 200)
    centres = np.array([rng.integers(0, frames[r]) for r in rows])
    index = window_index(starts, frames, rows, centres, before, after)
    got = gather_windows(flat, index)
    assert got.shape == (200, before + after + 1, 4, 3)
    for i, (r, c) in enumerate(zip(rows, centres)):
        np.testing.assert_array_equal(got[i], naive_window(flat, starts, frames, r, c, before, after))
    # torch arrays: same windows
    torch_got = gather_windows(torch.from_numpy(flat), index)
    np.testing.assert_array_equal(torch_got.numpy(), got)


def test_epoch_is_deterministic_and_epochs_differ():
    sampler = ChunkSampler([[50, 70], [30]], batch_size=16, seed=3)
    a, b = sampler.epoch_samples(2), sampler.epoch_samples(2)
    assert np.array_equal(a.row, b.row) and np.array_equal(a.frame, b.frame)
    c = sampler.epoch_samples(3)
    assert not np.array_equal(a.frame, c.frame)
    other_seed = ChunkSampler([[50, 70], [30]], batch_size=16, seed=4).epoch_samples(2)
    assert not np.array_equal(a.frame, other_seed.frame)
    # resuming mid-epoch: batches from `start` equal the tail of the full epoch
    full = list(sampler.batches(2))
    tail = list(sampler.batches(2, start=5))
    assert all(np.array_equal(x.row, y.row) and np.array_equal(x.frame, y.frame)
               for x, y in zip(full[5:], tail))


def test_one_pass_visits_every_frame_once():
    sampler = ChunkSampler([[7, 3, 11, 9]], batch_size=30)  # 30 frames = one batch exactly
    assert sampler.num_batches == 1
    s = sampler.epoch_samples(0)
    pairs = set(zip(s.row.tolist(), s.frame.tolist()))
    assert pairs == {(r, f) for r, n in enumerate([7, 3, 11, 9]) for f in range(n)}
    # several groups: rows are numbered globally, and no frame repeats before its group is used up
    s = ChunkSampler([[7, 3, 11], [9]], batch_size=10, samples_per_epoch=30).epoch_samples(0)
    assert set(s.group[s.row == 3]) <= {1} and set(s.group[s.row < 3]) <= {0}
    for g, size in ((0, 21), (1, 9)):
        picked = list(zip(s.row[s.group == g].tolist(), s.frame[s.group == g].tolist()))
        assert len(set(picked[:size])) == min(size, len(picked))


def test_samples_per_epoch_rounds_up_to_whole_batches():
    sampler = ChunkSampler([[100]], batch_size=32, samples_per_epoch=70)
    assert sampler.num_batches == 3 and sampler.samples_per_epoch == 96
    batches = list(sampler.batches(0))
    assert len(batches) == 3 and all(len(b) == 32 for b in batches)
    assert all((b.frame >= 0).all() and (b.frame < 100).all() for b in batches)


def test_group_shares_follow_size_times_weight():
    sampler = ChunkSampler([[1000], [3000]], batch_size=1000, samples_per_epoch=40000, weights=[3, 1])
    group = sampler.epoch_samples(0).group
    share = (group == 0).mean()  # 1000 * 3 vs 3000 * 1 -> one half
    assert abs(share - 0.5) < 5 * (0.25 / 40000) ** 0.5
    unweighted = ChunkSampler([[1000], [3000]], batch_size=1000, samples_per_epoch=40000).epoch_samples(0).group
    assert abs((unweighted == 0).mean() - 0.25) < 5 * (0.1875 / 40000) ** 0.5
    zero = ChunkSampler([[1000], [3000]], batch_size=100, weights=[0, 1]).epoch_samples(0).group
    assert (zero == 1).all()


def test_invalid_sampler_settings():
    with pytest.raises(ConfigError):
        ChunkSampler([[10]], batch_size=0)
    with pytest.raises(ConfigError):
        ChunkSampler([[10], [5]], batch_size=4, weights=[0, 0])
    with pytest.raises(ConfigError):
        ChunkSampler([[10, 0]], batch_size=4)
