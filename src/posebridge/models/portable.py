"""The lifter as a self-contained graph for other runtimes: ONNX (onnxruntime, TensorRT, ...) and
TorchScript (libtorch, C++), written by ``posebridge export``.

``PortableLifter`` is what ``inference.lift.lift`` computes after encoding the keypoints, as one
module without Python control flow on data or shapes:

- input ``network_input`` (B, T, K, F) float32: T frames of K keypoints (the model's keypoint
  format, COCO-17) encoded by the model's input codec (``data.keypoints.InputCodec``; the export's
  JSON sidecar records which: VideoPose3D's screen coordinates ``x / w * 2 - 1``,
  ``y / w * 2 - h / w`` or camera rays, and the confidence feature), any T >= 1;
- the sequence padded by the receptive field, replicating its first and last frames (as ``lift``);
- the dilated temporal model with BatchNorm folded into the convolutions (eval mode);
- test-time flip averaging (optional, on by default): the mirrored input (x negated, left and
  right keypoints swapped) lifted too, its output mirrored back and averaged;
- output ``poses_mm`` (B, T, J_union, 3) float32: one pose per input frame, every skeleton format
  of the model one after the other (the sidecar's ``formats`` give each one's joint range and
  names), each format root-relative, camera space (x right, y down, z forward), millimetres.

An ensemble (``inference.ensemble``) exports as ``PortableEnsemble``: every member's
``PortableLifter`` on the same input, their outputs laid out as the first member's and averaged,
in one graph with the same input and output.
"""

from __future__ import annotations

import copy

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from posebridge.atomic import atomic_path, write_text
from posebridge.geometry import skeletons
from posebridge.models.lifter import MM_PER_UNIT, SeparateHeadLifter

__all__ = ["PortableLifter", "PortableEnsemble", "INPUT_NAME", "OUTPUT_NAME", "EXPORT_FORMATS", "export_lifter",
           "describe"]

INPUT_NAME = "network_input"
OUTPUT_NAME = "poses_mm"
EXPORT_FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
ONNX_OPSET = 18


class PortableLifter(nn.Module):
    """(B, T, K, F) encoded keypoints -> (B, T, J_union, 3) mm root-relative poses (module
    docstring), from an eval-mode ``lifter`` (its folded weights are copied as buffers)."""

    def __init__(self, lifter: SeparateHeadLifter, flip: bool = True):
        super().__init__()
        temporal = lifter.variant(strided=False).temporal
        # the layer structure only (its weights are the folded copies below): not a submodule, so
        # an export holds one set of weights
        object.__setattr__(self, "temporal", temporal)
        self.flip = bool(flip)
        self.before, self.after = temporal.window()
        with torch.no_grad():
            folded = temporal.folded_weights()
        self.weights = nn.ParameterList([nn.Parameter(w.detach().clone(), requires_grad=False) for w, _ in folded])
        self.biases = nn.ParameterList([nn.Parameter(b.detach().clone(), requires_grad=False) for _, b in folded])
        # sign of each input feature / output coordinate under the mirror: only x flips
        in_sign = torch.ones(temporal.in_features)
        in_sign[0] = -1
        self.register_buffer("in_sign", in_sign)
        self.register_buffer("out_sign", torch.tensor([-1.0, 1.0, 1.0]))
        self.register_buffer("input_mirror", lifter.input_mirror.detach().clone().cpu())
        self.register_buffer("output_mirror", lifter.output_mirror.detach().clone().cpu())
        roots = np.concatenate([np.full(s.stop - s.start, s.start + skeletons.get(f).root)
                                for f, s in lifter.slices.items()])
        self.register_buffer("roots", torch.as_tensor(roots, dtype=torch.long))
        # the lifter's output placement (models.rays): a parameter-free layer, inside the graph
        self.rays = copy.deepcopy(lifter.rays).cpu() if lifter.rays is not None else None

    def _place(self, out: torch.Tensor, network_input: torch.Tensor) -> torch.Tensor:
        """Ray placement of the (B, T, J, 3) output on its own (unpadded) input frames."""
        return out if self.rays is None else self.rays(out, network_input)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x]
        if self.before:
            parts.insert(0, x[:, :1].expand(-1, self.before, -1, -1))
        if self.after:
            parts.append(x[:, -1:].expand(-1, self.after, -1, -1))
        return torch.cat(parts, dim=1)

    def forward(self, network_input: torch.Tensor) -> torch.Tensor:
        x = self._pad(network_input)
        folded = list(zip(self.weights, self.biases))
        out = self._place(self.temporal.folded_layers(x, folded), network_input)  # (B, T, J, 3) metres
        if self.flip:
            # the mirrored pass on its own, not stacked in the batch: splitting a batch again would
            # tie the exported graph to one batch size
            mirror_input = network_input[:, :, self.input_mirror] * self.in_sign
            mirrored = self._place(self.temporal.folded_layers(self._pad(mirror_input), folded), mirror_input)
            out = (out + mirrored[:, :, self.output_mirror] * self.out_sign) / 2
        return (out - out[:, :, self.roots]) * MM_PER_UNIT


class PortableEnsemble(nn.Module):
    """(B, T, K, F) -> (B, T, J_union, 3) mm: the mean of ``PortableLifter`` s of ``lifters`` (same
    input and formats, ``inference.ensemble``), each one's output re-laid as the first one's."""

    def __init__(self, lifters: Sequence[SeparateHeadLifter], flip: bool = True):
        super().__init__()
        self.members = nn.ModuleList(PortableLifter(lifter, flip=flip) for lifter in lifters)
        for i, lifter in enumerate(lifters):
            self.register_buffer(f"layout_{i}", lifter.union_index(lifters[0].formats).cpu())

    def forward(self, network_input: torch.Tensor) -> torch.Tensor:
        total = None
        for i, member in enumerate(self.members):
            out = member(network_input)[:, :, getattr(self, f"layout_{i}")]
            total = out if total is None else total + out
        return total / len(self.members)


def describe(lifter: SeparateHeadLifter | Sequence[SeparateHeadLifter], flip: bool, fmt: str,
             names: Sequence[str] | None = None) -> dict:
    """The JSON sidecar of an export: input / output names and shapes, codec, formats; for an
    ensemble (several lifters) the first one's layout, the largest window and ``ensemble`` (the
    members' ``names``)."""
    lifters = [lifter] if isinstance(lifter, SeparateHeadLifter) else list(lifter)
    lifter = lifters[0]
    windows = [m.window() for m in lifters]
    before, after = max(w[0] for w in windows), max(w[1] for w in windows)
    extra = {"ensemble": list(names or [f"member{i}" for i in range(len(lifters))])} if len(lifters) > 1 else {}
    return {
        "format": fmt,
        "input": {"name": INPUT_NAME, "shape": ["batch", "frames", skeletons.get(lifter.keypoint_format).num_joints,
                                                lifter.in_features],
                  "dtype": "float32", "keypoint_format": lifter.keypoint_format, **lifter.codec.file_entry()},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", "frames", lifter.num_joints_out, 3], "dtype": "float32",
                   "unit": "mm", "frame": "camera (x right, y down, z forward), each format root-relative"},
        "formats": [{"name": f, "start": s.start, "stop": s.stop, "joint_names": list(skeletons.get(f).joint_names)}
                    for f, s in lifter.slices.items()],
        "receptive_field": max(m.receptive_field() for m in lifters),
        "causal": all(bool(m.temporal.causal) for m in lifters),
        "frames_before_after": [before, after],
        "flip_averaging": bool(flip),
        **extra,
    }


def export_lifter(lifter: SeparateHeadLifter | Sequence[SeparateHeadLifter], path: str | os.PathLike, fmt: str, *,
                  flip: bool = True, example_frames: int = 16, names: Sequence[str] | None = None) -> dict:
    """Write ``lifter`` (or an ensemble's lifters, ``names`` theirs) as ``fmt`` ('onnx' or
    'torchscript') to ``path`` (atomically) with its sidecar ``path + '.json'`` (``describe``);
    returns the sidecar."""
    lifters = [m.cpu().eval() for m in ([lifter] if isinstance(lifter, SeparateHeadLifter) else lifter)]
    module = (PortableLifter(lifters[0], flip=flip) if len(lifters) == 1 else PortableEnsemble(lifters, flip=flip)).eval()
    lifter = lifters[0]
    K = skeletons.get(lifter.keypoint_format).num_joints
    example = torch.zeros(2, example_frames, K, lifter.in_features)  # a size of 1 would be specialised
    with atomic_path(path) as tmp, torch.no_grad():
        if fmt == "onnx":
            frames = torch.export.Dim("frames", min=1)
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(module, (example,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_shapes={"network_input": {0: batch, 1: frames}}, opset_version=ONNX_OPSET,
                              external_data=False, dynamo=True, verbose=False)
        elif fmt == "torchscript":
            traced = torch.jit.trace(module, (example,), check_trace=False)
            traced.save(str(tmp))
        else:
            raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    sidecar = describe(lifters, flip, fmt, names)
    write_text(Path(str(path) + ".json"), json.dumps(sidecar, indent=2) + "\n")
    return sidecar
