"""Training data in memory against read on demand (A/B): `python -m bench.bench_data`.

Generates the default's labeled synthetic datasets (config.yaml's ``datasets``, simulated 2D)
once into ``--data``, loads their training and validation sets
twice, in memory (``train.data_cache_mb: 0``) and read on demand through the default cache, and
times training steps of the default lifter (config.yaml's ``train``) on each, in turns
(``bench_lifter.interleaved``: a change of machine load hits both alike), data reading included.
Prints each path's samples/s and their ratio, the seconds each takes to get ready (load; on
demand: the index, then the digest's pass over every frame) and, on demand, the blocks read.
A third row reads through a cache of a quarter of the data (``--small-cache-mb``: every batch
misses some blocks), the cost of data that does not fit.

    python -m bench.bench_data              # ~3 minutes on 2 cores (the first time ~3 more)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_scale import ROOT, default_synthetic, write_datasets


def default_labeled() -> dict[str, dict]:
    """The default's labeled synthetic datasets (name -> entry with ``synth`` and ``role``)."""
    return {name: entry for name, entry in default_synthetic().items() if entry["role"] == "labeled"}


def load_sets(files, formats, spec: dict, small_cache_mb: float | None) -> dict:
    """label -> (training and validation sets, load s, digest s, TrainConfig), for the sets in
    memory, read on demand through the default cache, and through ``small_cache_mb`` (None: a
    quarter of the training set's arrays)."""
    from bench.bench_scale import arrays_in_use
    from posebridge.data.frames import open_sources
    from posebridge.training.data import load_training_sets
    from posebridge.training.loop import TrainConfig

    loaded = {}
    caches = {"in memory": 0, "on demand": TrainConfig().data_cache_mb, "small cache": small_cache_mb}
    for label, cache_mb in caches.items():
        if cache_mb is None:  # a quarter of the training set, known once it is loaded
            cache_mb = arrays_in_use(loaded["in memory"][0][0]) / 2**20 / 4
        config = TrainConfig.from_dict({**spec, "data_cache_mb": cache_mb})
        started = time.perf_counter()
        with open_sources(*zip(*files)) as sources:
            sets = load_training_sets(config, [(d, det, f) for (d, det), f in zip(sources, formats)])
        load = time.perf_counter() - started
        sets[0].digest()
        loaded[label] = (sets, load, time.perf_counter() - started - load, config)
    return loaded


def endless(sampler):
    """The sampler's batches, epoch after epoch."""
    epoch = 0
    while True:
        yield from sampler.batches(epoch)
        epoch += 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_data", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "posebridge-bench-data",
                        help="where the generated datasets are kept")
    parser.add_argument("--iterations", type=int, default=40, help="timed steps per row")
    parser.add_argument("--small-cache-mb", type=float, default=None,
                        help="the third row's cache (default: a quarter of the data)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    import yaml

    from bench.bench_lifter import interleaved
    from bench.bench_scale import arrays_in_use
    from posebridge.data.windows import ChunkSampler
    from posebridge.training.data import BatchAssembler
    from posebridge.training.loop import build_lifter, keep_freed_memory, make_optimizer, train_step

    torch.set_num_threads(args.threads)
    keep_freed_memory()
    entries = default_labeled()
    files = write_datasets(entries, args.data)
    spec = yaml.safe_load((ROOT / "config.yaml").read_text())["train"]
    loaded = load_sets(files, [entries[name].get("train_format") for name in entries], spec, args.small_cache_mb)
    (train_set, val_set), _, _, config = loaded["in memory"]
    lifter = build_lifter(config, list(dict.fromkeys(train_set.formats)), 0, keypoint_format=train_set.keypoint_format)
    lifter.train()
    optimizer = make_optimizer(lifter.parameters(), config)
    steps = {}
    for label, ((data, _), *_) in loaded.items():
        batches = endless(ChunkSampler(data.frames_per_group(), config.batch_size, seed=0))
        steps[label] = (lambda a=BatchAssembler(data, lifter), b=batches, r=np.random.default_rng(0):
                        train_step(lifter, a, optimizer, next(b), config, r))
    print(f"{len(files)} datasets, {train_set.num_frames} training frames, "
          f"{arrays_in_use(train_set, val_set) / 2**20:.0f} MiB of arrays; batch {config.batch_size}, "
          f"receptive field {lifter.receptive_field()}, {config.channels} channels, {args.threads} threads")
    times = interleaved(steps, args.iterations, warmup=3, rounds=4)
    base = statistics.median(times["in memory"])
    print(f"{'data':12s} {'cache MiB':>9s} {'load s':>7s} {'digest s':>8s} {'samples/s':>9s} {'best':>7s} "
          f"{'vs memory':>9s} {'blocks read':>11s}")
    for label, seconds in times.items():
        (data, _), load, digest, config_row = loaded[label]
        median = statistics.median(seconds)
        print(f"{label:12s} {config_row.data_cache_mb:9.0f} {load:7.2f} {digest:8.2f} "
              f"{config.batch_size / median:9.0f} {config.batch_size / min(seconds):7.0f} {base / median:9.3f} "
              f"{'-' if data.reader is None else data.reader.blocks_read:>11}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
