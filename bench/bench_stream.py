"""Frame-by-frame (streaming) lifting speed: frames/s of ``inference.stream.StreamingLifter`` for
a causal lifter, beside the offline ``inference.lift`` of the same model over the whole sequence
(the ratio tells what the per-frame overhead costs), and the largest difference between the two.

Sizes: the default small lifter (RF 27: widths 3, 3, 3, 256 channels) and the full one (RF 243:
3, 3, 3, 3, 3, 1024 channels), random weights with BatchNorm statistics set, random COCO-17 input,
flip averaging on (as ``lift``'s default). One thread by default (a live caller's budget).

    python -m bench.bench_stream                 # ~1 minute on 2 cores
    python -m bench.bench_stream --frames 2000 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

SIZES = {"small (RF 27, 256 ch)": ((3, 3, 3), 256), "full (RF 243, 1024 ch)": ((3, 3, 3, 3, 3), 1024)}


def _model(widths, channels):
    from posebridge.inference.lift import LiftingModel
    from posebridge.models.lifter import SeparateHeadLifter

    generator = torch.Generator().manual_seed(0)
    lifter = SeparateHeadLifter(["h36m_17"], filter_widths=widths, channels=channels, causal=True)
    with torch.no_grad():
        for bn in [lifter.temporal.expand_bn, *lifter.temporal.layers_bn]:
            bn.running_mean.normal_(0, 0.1, generator=generator)
            bn.running_var.uniform_(0.5, 2.0, generator=generator)
    return LiftingModel.from_lifter(lifter.eval())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_stream", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500, help="frames streamed per size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    from posebridge.inference.lift import lift_network_input
    from posebridge.inference.stream import StreamingLifter

    torch.set_num_threads(args.threads)
    inputs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (args.frames, 17, 3)), dtype=torch.float32)
    for name, (widths, channels) in SIZES.items():
        model = _model(widths, channels)
        streamer = StreamingLifter(model)
        streamer.push(inputs[0])  # warm-up (buffers, allocator)
        streamer.reset()
        start = time.perf_counter()
        streamed = torch.stack([streamer.push(frame) for frame in inputs])
        stream_s = time.perf_counter() - start
        start = time.perf_counter()
        offline = lift_network_input(model, inputs)
        offline_s = time.perf_counter() - start
        difference = float((streamed - offline).abs().max())
        print(f"{name}: streaming {args.frames / stream_s:.0f} frames/s ({1000 * stream_s / args.frames:.2f} ms/frame), "
              f"offline {args.frames / offline_s:.0f} frames/s; max |streamed - offline| {difference:.1e} m "
              f"({args.threads} thread(s), flip averaging)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
