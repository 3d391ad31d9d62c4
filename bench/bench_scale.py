"""Training and the workflow as datasets are added: `python -m bench.bench_scale`.

For the first 1, 5, 10 and 30 datasets of the scale preset (``workflow/presets/scale30.yaml``:
small synthetic labeled datasets of six templates and six skeleton formats) it prints

- the peak memory of training (``ru_maxrss`` of a child process that loads the labeled sets,
  digests them and runs training steps of the preset's lifter) beside the bytes of the arrays in
  use (network input and 3D targets of the training and validation frames, as a set in memory
  holds them once), for the sets in memory (``data_cache_mb: 0``) and read on demand (the
  default cache, and a small one, ``--small-cache-mb``, that the data outgrows); the constant is
  the child's memory before it reads any data (interpreter, torch, the lifter);
- per data path, the slope from the fewest to the most datasets: the added peak over the added
  arrays, the issue's criterion "peak at most 1.5 x the arrays in use plus a constant, at 1 and
  at 30 datasets" with the constant set by the fewest (so it holds at the most iff the slope is
  at most 1.5);
- training samples/s of those steps (data reading included);
- the wall-clock and CPU seconds of ``snakemake -n`` on the preset cut to those datasets (the
  DAG of a fresh directory: every job). CPU seconds are the figure to compare on a shared
  machine.

The datasets are generated once (synthetic generator + simulated detector) into ``--data``
(default: a folder under the system's temporary directory, kept between runs).

    python -m bench.bench_scale                 # ~10 minutes on 2 cores, the first time ~5 more
    python -m bench.bench_scale --counts 1 30   # only these dataset counts
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "workflow" / "presets" / "scale30.yaml"
COUNTS = (1, 5, 10, 30)
SLOPE_LIMIT = 1.5  # issue #17: peak training memory at most 1.5 x the arrays in use plus a constant
MIB = 2**20


def preset_datasets(path: Path = PRESET) -> dict[str, dict]:
    """The preset's enabled datasets, in order: name -> config entry."""
    import yaml

    entries = yaml.safe_load(path.read_text())["datasets"]
    return {name: entry for name, entry in entries.items() if entry.get("enabled", True)}


def default_synthetic() -> dict[str, dict]:
    """The workflow default's synthetic datasets (config.yaml): name -> entry with ``role``,
    ``synth`` and, where set, ``train_format``."""
    import yaml

    from posebridge.sources.synth.generate import synthetic_specs

    return synthetic_specs(yaml.safe_load((ROOT / "config.yaml").read_text())["datasets"])


def write_datasets(entries: dict[str, dict], root: Path, seed: int = 0) -> list[tuple[Path, Path]]:
    """(dataset, detections) files of the synthetic ``entries`` under ``root``, generated (with
    the simulated detector) unless already there."""
    from posebridge.data.detections import write_detections
    from posebridge.data.store import open_dataset
    from posebridge.sources.detectors.simulated import KEYPOINT_FORMAT, simulate_detections
    from posebridge.sources.synth.generate import generate_dataset

    root.mkdir(parents=True, exist_ok=True)
    files = []
    for name, entry in entries.items():
        h5, det = root / f"{name}.h5", root / f"{name}_simulated.h5"
        if not det.exists():
            generate_dataset(name, entry["synth"], entry["role"], seed, h5)
            with open_dataset(h5) as dataset:
                keypoints = simulate_detections(dataset, {"error_scale": 1.0}, seed)
                write_detections(det, dataset=dataset, detector="simulated", keypoint_format=KEYPOINT_FORMAT,
                                 rows=dataset.index[["sequence", "camera", "frames"]], keypoints=keypoints)
        files.append((h5, det))
    return files


def _rss_mb() -> float:
    """The resident memory of this process now (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def arrays_in_use(*sets) -> int:
    """Bytes of the network input and 3D targets of every frame of labeled ``sets``, as a set in
    memory holds them once."""
    from posebridge.geometry import skeletons

    total = 0
    for data in sets:
        frames = [data.row_frames[data.row_group == g].sum() for g in range(len(data.names))]
        total += data.num_frames * data.num_keypoints * data.codec.in_features * 4
        total += sum(int(n) * skeletons.get(f).num_joints * 3 * 4 for n, f in zip(frames, data.formats))
    return total


def measure_training(files, train_spec: dict, cache_mb: float, steps: int, seed: int = 0) -> dict:
    """In this process: load the labeled sets of ``files`` with ``data_cache_mb`` = ``cache_mb``,
    digest them and time ``steps`` training steps; memory figures in MiB."""
    import numpy as np
    import torch

    from posebridge.data.frames import open_sources
    from posebridge.data.windows import ChunkSampler
    from posebridge.training.data import BatchAssembler, load_training_sets
    from posebridge.training.loop import (TrainConfig, build_lifter, keep_freed_memory, make_optimizer,
                                          train_step)

    torch.set_num_threads(1)
    keep_freed_memory()  # as training does
    config = TrainConfig.from_dict({**train_spec, "data_cache_mb": cache_mb})
    with open_sources(*zip(*files)) as sources:
        first = sources[0][0]
        lifter = build_lifter(config, [first.skeleton.name], seed, keypoint_format="coco_17")
        base = _rss_mb()  # the constant: interpreter, torch, a lifter (rebuilt below with every head)
        train_set, val_set = load_training_sets(config, [(d, det, None) for d, det in sources])
    lifter = build_lifter(config, list(dict.fromkeys(train_set.formats)), seed, keypoint_format="coco_17")
    train_set.digest(), val_set.digest()  # a full pass over the data, as a run's start makes
    assembler = BatchAssembler(train_set, lifter)
    optimizer = make_optimizer(lifter.parameters(), config)
    sampler = ChunkSampler(train_set.frames_per_group(), config.batch_size, seed=seed,
                           samples_per_epoch=config.batch_size * (steps + 3))
    batches, augment = sampler.batches(0), np.random.default_rng(seed)
    lifter.train()
    for batch in [next(batches) for _ in range(3)]:  # warm-up
        train_step(lifter, assembler, optimizer, batch, config, augment)
    started = time.perf_counter()
    for batch in batches:
        train_step(lifter, assembler, optimizer, batch, config, augment)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"datasets": len(files), "cache_mb": cache_mb, "frames": int(train_set.num_frames + val_set.num_frames),
            "arrays_mb": arrays_in_use(train_set, val_set) / MIB, "base_mb": base, "peak_mb": peak,
            "samples_per_s": steps * config.batch_size / seconds}


def _child(argv: list[str]) -> int:
    """``--child JSON``: one ``measure_training`` in a fresh process, its result printed as JSON."""
    args = json.loads(argv[0])
    files = [(Path(a), Path(b)) for a, b in args["files"]]
    print(json.dumps(measure_training(files, args["train"], args["cache_mb"], args["steps"])))
    return 0


def training_in_child(files, train_spec: dict, cache_mb: float, steps: int) -> dict:
    """``measure_training`` in a child process (its peak memory is its own)."""
    payload = json.dumps({"files": [[str(a), str(b)] for a, b in files], "train": train_spec,
                          "cache_mb": cache_mb, "steps": steps})
    out = subprocess.run([sys.executable, "-m", "bench.bench_scale", "--child", payload], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_dry_run(names: list[str], preset: Path = PRESET) -> tuple[float, float, int]:
    """(wall s, CPU s, jobs) of ``snakemake -n`` on the preset cut to ``names``, in a fresh
    directory."""
    import yaml

    entries = yaml.safe_load(preset.read_text())["datasets"]
    cut = {name: {"enabled": False} for name in entries if name not in names}
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "cut.yaml"
        extra.write_text(yaml.safe_dump({"datasets": cut}))
        snakemake = Path(sys.executable).with_name("snakemake")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run([str(snakemake), "-n", "-s", str(ROOT / "Snakefile"), "--directory", tmp,
                              "--configfile", str(preset), str(extra)], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    jobs = [line.split()[-1] for line in out.stdout.splitlines() if line.startswith("total")]
    return wall, cpu, int(jobs[0]) if jobs else -1


def slope(rows: list[dict]) -> float:
    """Added peak memory over added arrays from the first to the last of ``rows`` (as
    ``measure_training`` returns them, by dataset count; each peak less its own constant)."""
    first, last = rows[0], rows[-1]
    added = (last["peak_mb"] - last["base_mb"]) - (first["peak_mb"] - first["base_mb"])
    return added / (last["arrays_mb"] - first["arrays_mb"])


def print_slopes(results: dict[str, list[dict]], limit: float = SLOPE_LIMIT) -> None:
    """Per data path, the ``slope`` from the fewest to the most datasets and whether it is at
    most ``limit``."""
    print()
    for label, rows in results.items():
        if len(rows) < 2 or rows[-1]["arrays_mb"] <= rows[0]["arrays_mb"]:
            continue
        value = slope(rows)
        verdict = "holds" if value <= limit else "does not hold"
        print(f"{label:11s}: from {rows[0]['datasets']} to {rows[-1]['datasets']} datasets peak grows "
              f"{value:.2f} x the added arrays; peak <= {limit} x arrays + constant {verdict}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=list(COUNTS), help="dataset counts")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "posebridge-bench-scale",
                        help="where the generated datasets are kept")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per measurement")
    parser.add_argument("--small-cache-mb", type=float, default=8.0, help="the cache the data outgrows")
    args = parser.parse_args(argv)

    import yaml

    from posebridge.training.settings import TrainConfig

    entries = preset_datasets()
    train_spec = yaml.safe_load(PRESET.read_text())["train"]
    print(f"writing {max(args.counts)} datasets to {args.data} (once)", flush=True)
    files = write_datasets(dict(list(entries.items())[:max(args.counts)]), args.data)
    caches = {"in memory": 0, "on demand": TrainConfig().data_cache_mb, "small cache": args.small_cache_mb}
    print(f"{'datasets':>8s} {'frames':>8s} {'arrays MiB':>10s} | {'data':11s} {'constant':>8s} {'peak':>7s} "
          f"{'peak-const':>10s} {'/ arrays':>8s} {'samples/s':>9s}", flush=True)
    dry_runs, results = [], {label: [] for label in caches}
    for count in args.counts:
        for label, cache_mb in caches.items():
            r = training_in_child(files[:count], train_spec, cache_mb, args.steps)
            results[label].append(r)
            extra = r["peak_mb"] - r["base_mb"]
            print(f"{count:8d} {r['frames']:8d} {r['arrays_mb']:10.1f} | {label:11s} {r['base_mb']:8.0f} "
                  f"{r['peak_mb']:7.0f} {extra:10.1f} {extra / r['arrays_mb']:8.2f} {r['samples_per_s']:9.0f}",
                  flush=True)
        dry_runs.append((count, *time_dry_run(list(entries)[:count])))
    print_slopes(results)
    print(f"\n{'datasets':>8s} {'jobs':>5s} {'snakemake -n wall s':>20s} {'CPU s':>6s}")
    for count, wall, cpu, jobs in dry_runs:
        print(f"{count:8d} {jobs:5d} {wall:20.2f} {cpu:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
