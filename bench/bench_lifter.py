"""Lifter speed: training samples/s (data loading included) and long-sequence inference frames/s.

Measures posebridge's training loop and ``inference.lift`` for the default small lifter (RF 27,
256 channels) and the full one (RF 243, 1024 channels), beside a baseline run in the same
process: a VideoPose3D-style loop, i.e. a per-sample Python chunk generator (slice, edge-pad and
flip one window at a time) feeding a plain implementation of the strided model (``nn.Conv1d``
with stride, ``BatchNorm1d``, ``ReLU``, ``nn.Dropout``), and for inference the plain dilated model
over the whole padded sequence with the mirrored copy in the same batch. A third training row,
"per-sample chunks + posebridge model", separates what the data pipeline and the model each
contribute. Data is H36M-shaped and random (17 COCO keypoints x (x, y, confidence) in, 17 joints
out, 900k frames in 600 sequences); each figure is the median over timed iterations after warm-up,
and ratios compare rows of the same run because the machines this runs on are shared and noisy.
``best`` (the fastest step) is the better estimate of a quiet machine: a full-size step is ~94%
matrix products at the machine's peak, and another busy process on the same cores slows the
2-thread step by up to half (it waits for its slower thread). The full size is also timed at the
batch of the VideoPose3D reference figures, 1024 (``--batch-full-reference``), its steps in a row.

The reference figures (``REFERENCE``) are VideoPose3D's own training loop and evaluation
(github.com/facebookresearch/VideoPose3D; Pavllo et al., CVPR 2019) measured on the same kind of
H36M-shaped random data (900k frames, flip averaging on, batch 1024, median of 3 runs) on a 2-core
machine whose float32 peak was ~383 GFLOP/s; compare them through the peak this bench prints.

    python -m bench.bench_lifter            # default run, ~3 minutes on 2 cores
    python -m bench.bench_lifter --help     # sizes, iterations, ablations

``--ablations`` adds one training row per speed-up with that speed-up taken away (glibc's default
allocator, per-tensor Adam, BatchNorm module + separate ReLU/dropout node, torch's Bernoulli
dropout, autograd's select for the residual, 16-bit or 8-bit masks from torch's generator as
boolean tensors, ``[:, :, 0]`` width-1 weights, the weight re-laid out again in the backward), one
with the three dropout-mask and weight-layout speed-ups taken away together (``MASKS_AND_LAYOUT``)
and one with all of them taken away (``NO_SPEED_UPS``), each as a ratio to the posebridge row of
the same run; the ablation rows share one lifter (~0.7 GB each otherwise).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
import torch.nn as nn

SIZES = {
    "small": {"filter_widths": [3, 3, 3], "channels": 256},
    "full": {"filter_widths": [3, 3, 3, 3, 3], "channels": 1024},
}
J_IN, F_IN, J_OUT = 17, 3, 17
# VideoPose3D's own figures on a 2-core machine with a ~383 GFLOP/s float32 peak (see the module
# docstring): training samples/s and long-sequence inference frames/s (flip averaging on)
REFERENCE = {"small": {"train": 5_400, "infer": 66_000}, "full": {"train": 64, "infer": 2_500}}
REFERENCE_PEAK = 383.0


# ------------------------------------------------------------------------------ the baseline


class PlainStridedModel(nn.Module):
    """The strided training model written the plain way (VideoPose3D's layout of layers)."""

    def __init__(self, filter_widths, channels, dropout=0.25):
        super().__init__()
        self.widths = list(filter_widths)
        self.expand_conv = nn.Conv1d(J_IN * F_IN, channels, self.widths[0], stride=self.widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.layers_conv = nn.ModuleList()
        self.layers_bn = nn.ModuleList()
        for w in self.widths[1:]:
            self.layers_conv.append(nn.Conv1d(channels, channels, w, stride=w, bias=False))
            self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.layers_conv.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
        self.shrink = nn.Conv1d(channels, J_OUT * 3, 1)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        B, T = x.shape[:2]
        x = x.view(B, T, -1).permute(0, 2, 1)
        x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
        for i, w in enumerate(self.widths[1:]):
            res = x[:, :, w // 2::w]
            x = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](x))))
            x = res + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
        return self.shrink(x).permute(0, 2, 1).reshape(B, -1, J_OUT, 3)


class PlainDilatedModel(PlainStridedModel):
    """The dilated model written the plain way, for the inference baseline (eval mode)."""

    def __init__(self, filter_widths, channels, dropout=0.25):
        super().__init__(filter_widths, channels, dropout)
        self.expand_conv.stride = (1,)
        self.pads, dilation = [], self.widths[0]
        for i, w in enumerate(self.widths[1:]):
            self.layers_conv[2 * i].stride = (1,)
            self.layers_conv[2 * i].dilation = (dilation,)
            self.pads.append((w - 1) * dilation // 2)
            dilation *= w

    def forward(self, x):
        B, T = x.shape[:2]
        x = x.view(B, T, -1).permute(0, 2, 1)
        x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
        for i, pad in enumerate(self.pads):
            res = x[:, :, pad:x.shape[2] - pad]
            x = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](x))))
            x = res + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
        return self.shrink(x).permute(0, 2, 1).reshape(B, -1, J_OUT, 3)


def per_sample_batches(inputs, targets, starts, frames, pad, batch_size, in_mirror, out_mirror, seed):
    """VideoPose3D-style chunk generator: every (sequence, frame) pair, shuffled, each window
    sliced, edge-padded and flipped on its own in a Python loop; each pair appears flipped and not."""
    rng = np.random.default_rng(seed)
    pairs = np.array([(s, t) for s in range(len(starts)) for t in range(frames[s])], dtype=np.int64)
    flips = np.concatenate([np.zeros(len(pairs), bool), np.ones(len(pairs), bool)])
    pairs = np.concatenate([pairs, pairs])
    order = rng.permutation(len(pairs))
    batch_2d = np.empty((batch_size, 2 * pad + 1, J_IN, F_IN), np.float32)
    batch_3d = np.empty((batch_size, 1, J_OUT, 3), np.float32)
    for b in range(len(order) // batch_size):
        for i, k in enumerate(order[b * batch_size:(b + 1) * batch_size]):
            s, t = pairs[k]
            seq = inputs[starts[s]:starts[s] + frames[s]]
            low, high = t - pad, t + pad + 1
            low_c, high_c = max(low, 0), min(high, len(seq))
            if low_c != low or high_c != high:
                batch_2d[i] = np.pad(seq[low_c:high_c], ((low_c - low, high - high_c), (0, 0), (0, 0)), "edge")
            else:
                batch_2d[i] = seq[low_c:high_c]
            batch_3d[i, 0] = targets[starts[s] + t]
            if flips[k]:
                batch_2d[i] = batch_2d[i][:, in_mirror]
                batch_2d[i, :, :, 0] *= -1
                batch_3d[i, 0] = batch_3d[i, 0][out_mirror]
                batch_3d[i, 0, :, 0] *= -1
        yield batch_2d, batch_3d


# ------------------------------------------------------------------------------ data


def make_data(frames: int, sequences: int, seed: int = 0):
    """Random H36M-shaped training data as a posebridge LabeledSet (one dataset, h36m_17)."""
    from posebridge.training.data import LabeledSet

    rng = np.random.default_rng(seed)
    length = frames // sequences
    inputs = rng.uniform(-1, 1, (sequences * length, J_IN, F_IN)).astype(np.float32)
    inputs[..., 2] = rng.uniform(0, 1, inputs.shape[:2])
    targets = rng.normal(0, 0.3, (sequences * length, J_OUT, 3)).astype(np.float32)
    targets[..., 2] += 5.0
    starts = np.arange(sequences, dtype=np.int64) * length
    return LabeledSet(
        names=["bench"], keypoint_format="coco_17", formats=["h36m_17"], inputs=inputs, targets=[targets],
        group_start=np.array([0]), row_group=np.zeros(sequences, np.int64), row_start=starts,
        row_frames=np.full(sequences, length),
        row_intrinsics=np.tile([1145.0, 1144.0, 512.0, 515.0], (sequences, 1)),
        row_distortion=np.tile([-0.2, 0.24, -0.003, -0.001, -0.0014], (sequences, 1)),
        row_size=np.tile([1000.0, 1000.0], (sequences, 1)),
        row_sequence=np.array([f"s{i}" for i in range(sequences)], object),
        row_camera=np.array(["c"] * sequences, object))


# ------------------------------------------------------------------------------ measurements


def timed(step, iterations: int, warmup: int) -> float:
    """Median seconds per call of ``step`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def training_flops_per_sample(widths, channels) -> float:
    """Multiply-adds x 2 x 3 (forward + two backward products) of the strided model per window."""
    rf = math.prod(widths)
    frames = rf // widths[0]
    macs = frames * J_IN * F_IN * widths[0] * channels
    for w in widths[1:]:
        frames //= w
        macs += frames * (channels * channels * w + channels * channels)
    macs += channels * 3 * J_OUT
    return 6.0 * macs


def inference_flops_per_frame(widths, channels) -> float:
    """Multiply-adds x 2 of the dilated model per output frame, x 2 for flip averaging."""
    macs = J_IN * F_IN * widths[0] * channels
    macs += sum(channels * channels * w + channels * channels for w in widths[1:])
    macs += channels * 3 * J_OUT
    return 2.0 * 2.0 * macs


def machine_peak_gflops() -> float:
    """Best float32 rate of a large Conv1d (1024 -> 1024, k 3) or matrix product, GFLOP/s (the
    fastest of several calls: a peak, not a typical rate)."""
    x, w = torch.randn(1, 1024, 2002), torch.randn(1024, 1024, 3)
    a, b = torch.randn(2000, 3072), torch.randn(3072, 1024)
    flops = 2 * 2000 * 3072 * 1024
    best = float("inf")
    with torch.inference_mode():
        for fn in (lambda: torch.nn.functional.conv1d(x, w), lambda: a @ b):
            fn()
            for _ in range(6):
                started = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - started)
    return flops / best / 1e9


def train_baseline_step(data, size, batch_size, seed, model=None):
    """A VideoPose3D-style training step closure: per-sample chunks, MPJPE, Adam (AMSGrad)."""
    from posebridge.geometry import skeletons

    widths, channels = SIZES[size]["filter_widths"], SIZES[size]["channels"]
    torch.manual_seed(seed)
    model = model if model is not None else PlainStridedModel(widths, channels)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    pad = (math.prod(widths) - 1) // 2
    batches = per_sample_batches(data.inputs, data.targets[0], data.row_start, data.row_frames, pad, batch_size,
                                 list(skeletons.get("coco_17").mirror), list(skeletons.get("h36m_17").mirror), seed)

    def step():
        batch_2d, batch_3d = next(batches)
        x, y = torch.from_numpy(batch_2d), torch.from_numpy(batch_3d)
        optimizer.zero_grad(set_to_none=True)
        pred = model(x)
        loss = torch.mean(torch.norm(pred - y, dim=-1))
        loss.backward()
        optimizer.step()

    return step


def train_posebridge_step(data, size, batch_size, seed, fused_adam=True, share=None):
    """posebridge's training step: ChunkSampler + BatchAssembler (flip, keypoint dropout),
    the strided lifter, the three losses, Adam (AMSGrad): ``training.loop.train_step`` itself.
    ``share``: another such step's lifter, whose weights and batch assembler this one trains and
    uses too (ablation rows: the cost of a step does not depend on the weights' values, and each
    full-size lifter with its assembler holds ~0.7 GB)."""
    from posebridge.data.windows import ChunkSampler
    from posebridge.training.loop import TrainConfig, build_lifter, make_optimizer, train_step
    from posebridge.training.data import BatchAssembler

    config = TrainConfig(**SIZES[size], batch_size=batch_size)
    lifter = share if share is not None else build_lifter(config, ["h36m_17"], seed)
    lifter.temporal.dropout_generator = torch.Generator().manual_seed(seed)
    lifter.train()
    optimizer = (make_optimizer(lifter.parameters(), config) if fused_adam
                 else torch.optim.Adam(lifter.parameters(), lr=config.lr, amsgrad=config.amsgrad))
    sampler = ChunkSampler(data.frames_per_group(), batch_size, seed=seed)
    if share is None:
        lifter.assembler = BatchAssembler(data, lifter)
    assembler = lifter.assembler
    augment = np.random.default_rng(seed)
    batches = iter(sampler.batches(0))

    def step():
        train_step(lifter, assembler, optimizer, next(batches), config, augment)

    return step, lifter


def inference_baseline(model, keypoints_norm, in_mirror, out_mirror):
    """VideoPose3D-style evaluation of one sequence: pad, batch with its mirror, one pass."""
    pad = (model_rf(model) - 1) // 2
    x = np.pad(keypoints_norm, ((pad, pad), (0, 0), (0, 0)), "edge")
    flipped = x[:, in_mirror].copy()
    flipped[..., 0] *= -1
    with torch.no_grad():
        out = model(torch.from_numpy(np.stack([x, flipped])))
    back = out[1][:, out_mirror].clone()
    back[..., 0] *= -1
    return ((out[0] + back) / 2).numpy()


def model_rf(model) -> int:
    return math.prod(model.widths)


# ------------------------------------------------------------------------------ main


def interleaved(steps: dict, iterations: int, warmup: int, rounds: int) -> dict:
    """Seconds of every timed call of each step (a list per step); the steps take turns in
    ``rounds`` rounds, so a change of machine load during the run hits all of them alike."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in steps}
    per_round = max(1, -(-iterations // rounds))
    for _ in range(rounds):
        for k, fn in steps.items():
            for _ in range(per_round):
                started = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - started)
    return times


def set_malloc(keep: bool) -> None:
    """posebridge's allocator setting (``training.loop.keep_freed_memory``) or, approximately, glibc's
    default: blocks over 32 MB (the ceiling of its dynamic mmap threshold) mapped afresh and
    unmapped on free. The heap is never trimmed in either: a trimmed heap must be faulted in
    again by the next row taking its turn (measured: the batch-1024 row 80 instead of ~110
    samples/s after the baseline's steps), a cost of the baseline's setting that other rows would
    pay. So the baseline keeps the heap its small blocks grew, which can only flatter it."""
    import ctypes

    from posebridge.training.loop import keep_freed_memory

    if keep:
        keep_freed_memory()
    else:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD: never trim (see above)


class _PlainTap:
    """Ablation stand-in for ``temporal._StridedConvTap``: plain autograd (linear + select)."""

    @staticmethod
    def apply(h, weight, width, offset):
        from posebridge.models.temporal import _time_major

        z = torch.nn.functional.linear(h.view(-1, width * h.shape[1]), _time_major(weight))
        return z, h.view(-1, width, h.shape[1])[:, offset]


def _unfused_bn(z, bn, p, training, generator=None):
    """Ablation: BatchNorm1d module, then the ReLU + dropout node (integer masks)."""
    from posebridge.models.temporal import relu_dropout

    return relu_dropout(bn(z), p, training, generator)


def _torch_dropout_bn(z, bn, p, training, generator=None):
    """Ablation: BatchNorm1d module, ReLU and torch's dropout (a float Bernoulli draw per unit)."""
    return torch.nn.functional.dropout(torch.relu(bn(z)), p, training)


def _keep_mask_16bit(shape, p, generator, device, dtype=None):
    """Ablation: dropout masks from torch's generator as 16-bit integers for every p (four per
    random word), compared into a boolean tensor."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), None, generator=generator)
    return words.view(torch.int16)[:n].view(shape) >= round(p * 65536) - 32768


def _keep_mask_torch_bool(shape, p, generator, device, dtype=None):
    """Ablation: dropout masks from torch's generator as 8-bit integers, compared into a boolean
    tensor that the multiply converts to a float copy."""
    n = math.prod(shape)
    words = torch.empty((n + 7) // 8, dtype=torch.int64, device=device)
    words.random_(-(2**63), None, generator=generator)
    return words.view(torch.int8)[:n].view(shape) >= round(p * 256) - 128


def _pointwise_select(weight):
    """Ablation: a kernel-width-1 weight as ``[:, :, 0]`` (its gradient a zero-filled copy)."""
    return weight[:, :, 0]


class _TapRelayout(torch.autograd.Function):
    """Ablation stand-in for ``temporal._StridedConvTap`` that re-lays the weight out (O, C, w) ->
    (O, w * C) again in the backward instead of keeping the forward's copy."""

    @staticmethod
    def forward(ctx, h, weight, width, offset):
        from posebridge.models.temporal import _time_major

        z = h.view(-1, width * h.shape[1]) @ _time_major(weight).t()
        ctx.save_for_backward(h, weight)
        ctx.width, ctx.offset = width, offset
        return z, h.view(-1, width, h.shape[1])[:, offset].clone()

    @staticmethod
    def backward(ctx, grad_z, grad_tap):
        from posebridge.models.temporal import _time_major

        h, weight = ctx.saved_tensors
        width, C = ctx.width, h.shape[1]
        grad_h = (grad_z @ _time_major(weight)).view(-1, width, C)
        grad_h[:, ctx.offset] += grad_tap
        grad_w = (grad_z.t() @ h.view(-1, width * C)).view(-1, width, C).permute(0, 2, 1).contiguous()
        return grad_h.view_as(h), grad_w, None, None


# every model speed-up taken away at once (with the glibc allocator and per-tensor Adam in its row)
NO_SPEED_UPS = {"batch_norm_relu_dropout": _unfused_bn, "_StridedConvTap": _PlainTap, "_keep_factor": _keep_mask_16bit,
             "_pointwise": _pointwise_select}
# the dropout masks as 0/1 floats, width-1 weights as views and the weight layout kept for the
# backward, taken away together
MASKS_AND_LAYOUT = {"_keep_factor": _keep_mask_torch_bool, "_pointwise": _pointwise_select, "_StridedConvTap": _TapRelayout}


def ablated(step, keep_memory=True, patches=None):
    """``step`` run with the allocator setting ``keep_memory`` and ``temporal`` module attributes
    replaced by ``patches`` for the duration of each call (rows take turns in one process)."""
    from posebridge.models import temporal

    patches = patches or {}

    def run_step():
        set_malloc(keep_memory)
        saved = {k: getattr(temporal, k) for k in patches}
        for k, v in patches.items():
            setattr(temporal, k, v)
        try:
            step()
        finally:
            for k, v in saved.items():
                setattr(temporal, k, v)

    return run_step


def _train_row(size: str, label: str, rate: float, flops: float, mine: float, best: float, note: str = "") -> None:
    """One training row: samples/s (median step), GFLOP/s, ratio to posebridge's row, best step."""
    print(f"  {size:5s} train  {label:44s} {rate:9.0f} samples/s  {rate * flops / 1e9:6.1f} GFLOP/s"
          f"  {rate / mine:5.2f}x posebridge   best {best:7.0f}{note}", flush=True)


def run(args) -> None:
    from posebridge.geometry import skeletons

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; data: {args.frames} frames in "
          f"{args.sequences} sequences; inference: {args.sequence_frames}-frame sequences, flip averaging on",
          flush=True)
    peak = machine_peak_gflops()
    print(f"machine float32 peak (best of a 1024->1024 k3 Conv1d and a 2000x3072x1024 matmul): {peak:.0f} GFLOP/s",
          flush=True)
    data = make_data(args.frames, args.sequences)
    mirrors = (list(skeletons.get("coco_17").mirror), list(skeletons.get("h36m_17").mirror))
    inference_rates = []
    for size in args.sizes:
        widths, channels = SIZES[size]["filter_widths"], SIZES[size]["channels"]
        small = size == "small"
        batch = args.batch_small if small else args.batch_full
        iters = args.iters_small if small else args.iters_full
        warmup = args.warmup_small if small else args.warmup_full
        print(f"\n{size}: RF {math.prod(widths)}, {channels} channels; training batch {batch}, "
              f"{iters} timed steps each (after {warmup} warm-up), taking turns", flush=True)
        lifter, mine = _training_rows(args, data, size, batch, iters, warmup)
        reference_batch = 0 if small else args.batch_full_reference
        if reference_batch and reference_batch != batch:
            _reference_batch_row(data, size, reference_batch, iters, warmup, mine)
        set_malloc(True)
        inference_rates += _inference_rows(args, lifter, size, mirrors)
    end_peak = machine_peak_gflops()
    print(f"\nmachine float32 peak measured again at the end: {end_peak:.0f} GFLOP/s (a large change means "
          f"the machine's load changed during the run); the VideoPose3D reference figures come from a machine "
          f"with a {REFERENCE_PEAK:.0f} GFLOP/s peak", flush=True)
    peak = max(peak, end_peak)
    for size, label, gflops in inference_rates:
        print(f"  {size:5s} infer  {label:44s} {100 * gflops / peak:4.0f}% of the machine's peak "
              f"({peak:.0f} GFLOP/s, the higher of the two measurements)", flush=True)


def _ablation_steps(data, size: str, batch: int, other) -> dict:
    """One training step per speed-up taken away from the posebridge loop (sharing ``other``'s
    lifter and batch assembler), and the two steps with several taken away at once."""
    def variant(fused_adam=True):
        return train_posebridge_step(data, size, batch, 0, fused_adam, share=other)[0]

    rows = {
        "glibc default allocator": ablated(variant(), False),
        "per-tensor Adam, not fused": ablated(variant(False)),
        "BN module + ReLU/dropout node": ablated(variant(), patches={"batch_norm_relu_dropout": _unfused_bn}),
        "BN + ReLU + torch dropout": ablated(variant(), patches={"batch_norm_relu_dropout": _torch_dropout_bn}),
        "autograd select for the residual": ablated(variant(), patches={"_StridedConvTap": _PlainTap}),
        "16-bit torch boolean dropout masks": ablated(variant(), patches={"_keep_factor": _keep_mask_16bit}),
        "8-bit torch boolean dropout masks": ablated(variant(), patches={"_keep_factor": _keep_mask_torch_bool}),
        "[:, :, 0] width-1 weights": ablated(variant(), patches={"_pointwise": _pointwise_select}),
        "weight re-laid out in backward": ablated(variant(), patches={"_StridedConvTap": _TapRelayout}),
        "masks + width-1 + layout together": ablated(variant(), patches=MASKS_AND_LAYOUT),
        "all of the above together": ablated(variant(False), False, NO_SPEED_UPS),
    }
    return {f"ablation: {k}": v for k, v in rows.items()}


def _training_rows(args, data, size: str, batch: int, iters: int, warmup: int):
    """Time and print the training rows of one model size, taking turns; returns the posebridge
    row's lifter (for the inference rows) and its samples/s (the ratios' denominator)."""
    flops = training_flops_per_sample(SIZES[size]["filter_widths"], SIZES[size]["channels"])
    ours, lifter = train_posebridge_step(data, size, batch, 0)
    _, other = train_posebridge_step(data, size, batch, 0)
    # the baseline runs with glibc's default allocator behaviour, as the reference did
    steps = {
        "baseline: per-sample chunks + plain model": ablated(train_baseline_step(data, size, batch, 0), False),
        "per-sample chunks + posebridge model": ablated(train_baseline_step(data, size, batch, 0,
                                                                            _strided_as_plain(other))),
        "posebridge training loop": ablated(ours),
    }
    if args.ablations:
        steps.update(_ablation_steps(data, size, batch, other))
    times = interleaved(steps, iters, warmup, args.rounds)
    rate = {k: batch / statistics.median(v) for k, v in times.items()}
    best = {k: batch / min(v) for k, v in times.items()}
    base, mixed, mine = (rate[k] for k in list(steps)[:3])
    print(f"  {'':5s} train  {'(samples/s: median step; best: fastest step)':44s}", flush=True)
    for k, r in rate.items():
        _train_row(size, k, r, flops, mine, best[k])
    print(f"  {size:5s} train  posebridge / baseline: {mine / base:.2f}x (the model alone {mixed / base:.2f}x, "
          f"then the data pipeline {mine / mixed:.2f}x); posebridge / VideoPose3D reference "
          f"{REFERENCE[size]['train']}: {mine / REFERENCE[size]['train']:.2f}x", flush=True)
    return lifter, mine


def _reference_batch_row(data, size: str, reference_batch: int, iters: int, warmup: int, mine: float) -> None:
    """Time and print the posebridge loop at the reference figure's batch, its steps in a row as in
    training (taking turns with batch-256 steps, glibc's heap fragments and every 1024 step faults
    fresh pages in: measured ~80 instead of ~110 samples/s)."""
    flops = training_flops_per_sample(SIZES[size]["filter_widths"], SIZES[size]["channels"])
    label = f"posebridge training loop, batch {reference_batch}"
    times = interleaved({label: ablated(train_posebridge_step(data, size, reference_batch, 0)[0])},
                        iters, warmup, 1)[label]
    r, b = reference_batch / statistics.median(times), reference_batch / min(times)
    _train_row(size, label, r, flops, mine, b, "   (its steps in a row, after the others)")
    print(f"  {size:5s} train  at batch {reference_batch}, the reference's: posebridge / VideoPose3D reference "
          f"{REFERENCE[size]['train']}: {r / REFERENCE[size]['train']:.2f}x (best step "
          f"{b / REFERENCE[size]['train']:.2f}x)", flush=True)


def _inference_rows(args, lifter, size: str, mirrors) -> list[tuple[str, str, float]]:
    """Time and print the inference rows of one model size on one long random sequence; returns
    (size, row label, GFLOP/s) per row."""
    from posebridge.inference.lift import LiftingModel, lift
    from posebridge.models.lifter import keypoints_to_input

    widths, channels = SIZES[size]["filter_widths"], SIZES[size]["channels"]
    rng = np.random.default_rng(1)
    T = args.sequence_frames
    keypoints = np.concatenate([rng.uniform(100, 900, (T, J_IN, 2)), rng.uniform(0, 1, (T, J_IN, 1))],
                               -1).astype(np.float32)
    norm = keypoints_to_input(keypoints, 1000, 1000)
    model = LiftingModel.from_lifter(lifter)
    plain = PlainDilatedModel(widths, channels).eval()
    plain.load_state_dict(lifter.temporal.state_dict())
    frame_flops = inference_flops_per_frame(widths, channels)
    runs = {
        "baseline: plain dilated model, one pass": lambda: inference_baseline(plain, norm, *mirrors),
        "posebridge inference.lift": lambda: lift(model, keypoints, 1000, 1000, flip=True),
    }
    if args.ablations:
        runs["ablation: lift in 1024-frame pieces"] = lambda: lift(model, keypoints, 1000, 1000, chunk_frames=1024)
        runs["ablation: lift in one piece"] = lambda: lift(model, keypoints, 1000, 1000, chunk_frames=T)
    n = args.infer_small if size == "small" else args.infer_full
    rate = {k: T / statistics.median(v) for k, v in interleaved(runs, n, 1, args.rounds).items()}
    rows = []
    for k, r in rate.items():
        gflops = r * frame_flops / 1e9
        rows.append((size, k, gflops))
        print(f"  {size:5s} infer  {k:44s} {r:9.0f} frames/s   {gflops:6.1f} GFLOP/s", flush=True)
    base, mine = (rate[k] for k in list(runs)[:2])
    print(f"  {size:5s} infer  posebridge / baseline: {mine / base:.2f}x; posebridge / VideoPose3D reference "
          f"{REFERENCE[size]['infer']}: {mine / REFERENCE[size]['infer']:.2f}x", flush=True)
    return rows


def _strided_as_plain(lifter):
    """posebridge's strided model behind the baseline's (B, RF, J, F) -> (B, 1, J, 3) interface."""
    temporal = lifter.temporal

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.temporal = temporal

        def forward(self, x):
            return self.temporal(x)

    return Wrapped()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_lifter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["small", "full"], choices=list(SIZES),
                        help="model sizes to measure")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--frames", type=int, default=900_000, help="training frames (random data)")
    parser.add_argument("--sequences", type=int, default=600, help="sequences the frames are split into")
    parser.add_argument("--batch-small", type=int, default=1024, help="training batch of the small model")
    parser.add_argument("--batch-full", type=int, default=256,
                        help="training batch of the full model (1024 in the paper; smaller keeps the run short, "
                             "samples/s barely depends on it at this size)")
    parser.add_argument("--batch-full-reference", type=int, default=1024,
                        help="also time the posebridge loop at this batch, the one of the VideoPose3D reference "
                             "figures (full size; 0: skip)")
    parser.add_argument("--iters-small", type=int, default=9, help="timed training steps, small model")
    parser.add_argument("--iters-full", type=int, default=3, help="timed training steps, full model")
    parser.add_argument("--warmup-small", type=int, default=2, help="untimed training steps first, small model")
    parser.add_argument("--warmup-full", type=int, default=1, help="untimed training steps first, full model")
    parser.add_argument("--sequence-frames", type=int, default=5000, help="frames of the inference sequence")
    parser.add_argument("--infer-small", type=int, default=6, help="timed inference runs, small model")
    parser.add_argument("--infer-full", type=int, default=3, help="timed inference runs, full model")
    parser.add_argument("--rounds", type=int, default=3,
                        help="the measured variants take turns this many times (load changes hit all alike)")
    parser.add_argument("--ablations", action="store_true",
                        help="also time the posebridge loop with each speed-up taken away (and all of them), "
                             "and lift in other piece sizes")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
