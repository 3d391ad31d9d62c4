"""Generation speed of the synthetic benchmark: `python -m bench.bench_synth [--size tiny]`.

Generates every synthetic dataset of the workflow's default (config.yaml's ``datasets``)
into a temporary folder, then runs the simulated 2D detector on each, and prints wall-clock and
CPU seconds and the 3D frames (and frame x camera samples) per wall-clock second of each step.
CPU seconds are the figure to compare on a shared machine (wall time grows with other load).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_synth", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["default", "tiny"], default="default",
                        help="config.yaml's sizes (the workflow's default) or the tests' tiny ones")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--keep", metavar="DIR", default=None, help="write the datasets here and keep them")
    args = parser.parse_args(argv)

    from posebridge.data.store import open_dataset
    from posebridge.sources.detectors.simulated import simulate_detections
    from bench.bench_scale import default_synthetic
    from posebridge.sources.synth.generate import generate_dataset, tiny_specs

    specs = default_synthetic() if args.size == "default" else tiny_specs(default_synthetic())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        print(f"{'dataset':18s} {'frames':>7s} {'samples':>8s} {'generate s':>10s} {'cpu s':>6s} "
              f"{'frames/s':>9s} {'detect s':>9s} {'cpu s':>6s} {'samples/s':>10s}")
        totals = np.zeros(6)
        for name, entry in specs.items():
            path = root / f"{name}.h5"
            t0, c0 = time.perf_counter(), time.process_time()
            data = generate_dataset(name, entry["synth"], entry["role"], args.seed, path)
            t_gen, c_gen = time.perf_counter() - t0, time.process_time() - c0
            frames = len(next(iter(data.joints.values())))
            samples = int(data.index["frames"].sum())
            t0, c0 = time.perf_counter(), time.process_time()
            with open_dataset(path) as ds:
                simulate_detections(ds, {"error_scale": 1.0}, args.seed)
            t_det, c_det = time.perf_counter() - t0, time.process_time() - c0
            row = np.array([frames, samples, t_gen, c_gen, t_det, c_det])
            totals += row
            _print(name, row)
        _print("total", totals)
    return 0


def _print(name, row) -> None:
    frames, samples, t_gen, c_gen, t_det, c_det = row
    print(f"{name:18s} {int(frames):7d} {int(samples):8d} {t_gen:10.2f} {c_gen:6.2f} {frames / t_gen:9.0f} "
          f"{t_det:9.2f} {c_det:6.2f} {samples / t_det:10.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
