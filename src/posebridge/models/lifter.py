"""The separate-head lifter: one temporal model whose output covers every skeleton format.

Input: 2D keypoints in one keypoint format (COCO-17 detections by default), encoded by the
lifter's ``codec`` (``data.keypoints.InputCodec``: VideoPose3D's screen coordinates or camera rays,
with the detector's confidence, a visibility flag or nothing as a third feature). A missed
keypoint has x = y = 0 (and confidence 0), so the network cannot read anything from where a
detector put a joint it did not see; training zeroes random keypoints the same way (keypoint
dropout) so the model learns to do without them.

Output: the union of the joints of all formats in the training mix, format after format
(``slices``), each a camera-space pose in metres (the network's internal scale; VideoPose3D's
too). Each training example supervises only its own format's slice. ``to_mm`` converts.

Output maps (the ACAE bridge: Sárándi et al., "Learning 3D human pose estimation from dozens of
datasets using a geometry-aware autoencoder to bridge between skeleton formats", WACV 2023): a
lifter may predict R "raw" points that a fixed matrix ``output_map`` (R x J_union) turns into the
union of formats, e.g. L latent points and the frozen ACAE decoder, or one point per joint name
shared by every format that has the name (merged joints). The map is folded into the last layer (``MappedTemporalModel``), so the model
still outputs the union of formats and inference, evaluation and ``posebridge infer`` need nothing
new; the map is a buffer of the state dict, so ``model.pt`` carries it.

The model file (``model.pt``, docs/internals.md) stores the underlying ``TemporalModel``'s state
dict under VideoPose3D's keys plus this metadata; see :meth:`SeparateHeadLifter.file_dict`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from posebridge.geometry import skeletons
from posebridge.data.keypoints import KEYPOINT_FORMAT, InputCodec, check_placement, keypoints_to_input
from posebridge.errors import ConfigError, DataError
from posebridge.models.rays import RayPlacement, centre_inputs
from posebridge.models.temporal import TemporalModel, TemporalModelOptimized

# keypoints_to_input is the codec of data.keypoints, re-exported for the modules that lift
__all__ = ["SeparateHeadLifter", "MM_PER_UNIT", "keypoints_to_input", "MappedTemporalModel",
           "MappedTemporalModelOptimized", "union_joint_names", "merged_output_map", "expand_point_map"]

MM_PER_UNIT = 1000.0
"""Millimetres per unit of the network's output (it predicts metres)."""

def union_joint_names(formats) -> list[str]:
    """``<format>/<joint>`` for every output joint of a lifter over ``formats``, in output order
    (unique across formats; the ACAE pairs left/right on the part after the ``/``)."""
    return [f"{skeletons.get(f).name}/{j}" for f in formats for j in skeletons.get(f).joint_names]


def merged_output_map(formats) -> tuple[torch.Tensor, list[str]]:
    """The merged-joints head: one raw output per distinct joint name, read by every format with
    that name. Returns the (U, J_union) 0/1 map and the U names (first-seen order)."""
    names = [n.rpartition("/")[2] for n in union_joint_names(formats)]
    merged = list(dict.fromkeys(names))
    index = {n: i for i, n in enumerate(merged)}
    output_map = torch.zeros(len(merged), len(names))
    output_map[[index[n] for n in names], torch.arange(len(names))] = 1.0
    return output_map, merged


def expand_point_map(matrix: torch.Tensor) -> torch.Tensor:
    """(A, B) point map (out_b = sum_a M[a, b] in_a) -> (B * 3, A * 3): the same map acting on
    flattened (point, coordinate) vectors, coordinate-wise."""
    eye = torch.eye(3, dtype=matrix.dtype, device=matrix.device)
    return torch.kron(matrix.T.contiguous(), eye)


class _OutputMap:
    """Mixin for a temporal model whose ``shrink`` layer predicts R raw points that the fixed
    ``output_map`` (R, J) buffer maps to the J output joints: out_j = sum_r map[r, j] raw_r,
    coordinate-wise. Everything downstream sees J outputs (``num_joints_out``); ``raw_head`` gives
    the R raw points (latents) and ``num_raw_out`` their count."""

    def __init__(self, *, output_joints: int, **architecture):
        super().__init__(**architecture)
        self.num_raw_out = self.num_joints_out
        self.num_joints_out = int(output_joints)
        self.register_buffer("output_map", torch.zeros(self.num_raw_out, self.num_joints_out))

    @property
    def architecture(self) -> dict:
        arch = dict(super().architecture)
        return {**arch, "num_joints_out": self.num_raw_out, "output_joints": self.num_joints_out}

    def mapped_shrink(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (J * 3, C) weight and (J * 3,) bias of shrink followed by the map."""
        expanded = expand_point_map(self.output_map)
        return expanded @ self.shrink.weight[:, :, 0], expanded @ self.shrink.bias

    def raw_head(self, features: torch.Tensor) -> torch.Tensor:
        """(..., C) trunk features -> (..., R, 3) raw points (before the map)."""
        return super().head(features).unflatten(-1, (self.num_raw_out, 3))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(features, *self.mapped_shrink())

    def folded_weights(self):
        folded = super().folded_weights()
        weight, bias = self.mapped_shrink()
        return folded[:-1] + [(weight[:, :, None], bias)]

    @classmethod
    def sharing(cls, other):
        model = super().sharing(other)
        model.output_map = other.output_map
        return model


class MappedTemporalModel(_OutputMap, TemporalModel):
    """The dilated ``TemporalModel`` with an output map (see ``_OutputMap``)."""


class MappedTemporalModelOptimized(_OutputMap, TemporalModelOptimized):
    """The strided training model with an output map (see ``_OutputMap``)."""


def _codec(codec: InputCodec | None, in_features: int | None) -> InputCodec:
    """The lifter's codec from its ``codec`` / ``in_features`` arguments (class docstring)."""
    if in_features is not None and int(in_features) not in (2, 3):
        raise ConfigError(f"in_features must be 2 or 3, got {in_features}")
    if codec is None:
        return InputCodec(confidence="none" if in_features is not None and int(in_features) == 2 else "raw")
    if in_features is not None and int(in_features) != codec.in_features:
        raise ConfigError(f"in_features {in_features} does not match the input codec {codec} "
                          f"({codec.in_features} features)")
    return codec


def _temporal_class(strided: bool, mapped: bool):
    if mapped:
        return MappedTemporalModelOptimized if strided else MappedTemporalModel
    return TemporalModelOptimized if strided else TemporalModel


class SeparateHeadLifter(nn.Module):
    """A temporal lifter with one output slice per skeleton format.

    Args:
        formats: skeleton format names; the output holds their joints in this order.
        keypoint_format: the input keypoint format (``data.keypoints.KEYPOINT_FORMAT``).
        codec: how keypoints become its input (``data.keypoints.InputCodec``; default screen +
            raw confidence, or screen + none with ``in_features`` 2).
        in_features: 3 or 2 (x, y only; VideoPose3D's checkpoints): a shorthand for the screen
            codecs when ``codec`` is None; must match ``codec`` when both are given.
        filter_widths, causal, dropout, channels: the ``TemporalModel``'s.
        strided: build the training-time strided model instead of the dilated one.
        temporal: use this existing temporal model (its shape must fit) instead of a new one.
        output_map: optional (R, J_union) map from R raw predicted points to the output joints
            (a latent head with the ACAE decoder, merged joints); None: one output per joint.
        placement: ``free`` (the network's coordinates) or ``rays``: joints with an input
            keypoint placed on its camera ray at their predicted depth (``models.rays``; needs the
            camera codec).
    """

    def __init__(self, formats, *, keypoint_format: str = KEYPOINT_FORMAT, codec: InputCodec | None = None,
                 in_features: int | None = None, filter_widths=(3, 3, 3), causal: bool = False, dropout: float = 0.25,
                 channels: int = 1024, strided: bool = False, temporal=None, output_map=None,
                 placement: str = "free"):
        super().__init__()
        names = [skeletons.get(f).name for f in formats]
        if not names:
            raise ConfigError("a lifter needs at least one output skeleton format")
        if len(set(names)) != len(names):
            raise ConfigError(f"output formats repeat: {names}")
        self.formats = names
        self.keypoint_format = skeletons.get(keypoint_format).name
        self.codec = _codec(codec, in_features)
        self.in_features = self.codec.in_features
        self.slices: dict[str, slice] = {}
        start = 0
        for name in names:
            n = skeletons.get(name).num_joints
            self.slices[name] = slice(start, start + n)
            start += n
        self.num_joints_out = start
        if temporal is None:
            arch = dict(num_joints_in=skeletons.get(self.keypoint_format).num_joints,
                        in_features=self.in_features, num_joints_out=self.num_joints_out,
                        filter_widths=filter_widths, causal=causal, dropout=dropout, channels=channels)
            if output_map is None:
                temporal = _temporal_class(strided, False)(**arch)
            else:
                output_map = torch.as_tensor(output_map, dtype=torch.float32)
                if output_map.ndim != 2 or output_map.shape[1] != self.num_joints_out:
                    raise ConfigError(f"output_map must be (R, {self.num_joints_out}), got {tuple(output_map.shape)}")
                arch["num_joints_out"] = output_map.shape[0]
                temporal = _temporal_class(strided, True)(output_joints=self.num_joints_out, **arch)
                temporal.output_map.copy_(output_map)
        elif (temporal.num_joints_out != self.num_joints_out or temporal.in_features != self.in_features
              or temporal.num_joints_in != skeletons.get(self.keypoint_format).num_joints):
            raise ConfigError(f"temporal model {temporal.architecture} does not fit formats {names} "
                              f"with {self.in_features} features of {self.keypoint_format}")
        self.temporal = temporal
        self.placement = check_placement(placement, self.codec)
        self.rays = (RayPlacement(names, self.slices, self.keypoint_format, self.codec)
                     if self.placement == "rays" else None)
        # left/right permutations for test-time and training flips
        self.register_buffer("input_mirror", torch.as_tensor(
            skeletons.get(self.keypoint_format).mirror, dtype=torch.long), persistent=False)
        output_mirror = np.concatenate([np.asarray(skeletons.get(f).mirror) + self.slices[f].start
                                        for f in names])
        self.register_buffer("output_mirror", torch.as_tensor(output_mirror, dtype=torch.long),
                             persistent=False)

    # ------------------------------------------------------------------ shape and variants

    @property
    def strided(self) -> bool:
        return isinstance(self.temporal, TemporalModelOptimized)

    @property
    def mapped(self) -> bool:
        """Whether the outputs come through an ``output_map`` (latent or merged head)."""
        return isinstance(self.temporal, _OutputMap)

    def receptive_field(self) -> int:
        return self.temporal.receptive_field()

    def window(self) -> tuple[int, int]:
        """(frames before, frames after) the predicted frame that its input window covers."""
        return self.temporal.window()

    def variant(self, strided: bool, placement: str | None = None) -> "SeparateHeadLifter":
        """This lifter as the strided (training) or dilated (inference) model, sharing weights;
        ``placement``: its output placement (``models.rays``; None: this lifter's)."""
        placement = placement or self.placement
        if strided == self.strided and placement == self.placement:
            return self
        temporal = (self.temporal if strided == self.strided
                    else _temporal_class(strided, self.mapped).sharing(self.temporal))
        return SeparateHeadLifter(self.formats, keypoint_format=self.keypoint_format, codec=self.codec,
                                  temporal=temporal, placement=placement).to(self.input_mirror.device)

    # ------------------------------------------------------------------ forward and outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, K, F) network input -> (B, T', J_union, 3) metres (T' = 1 per window)."""
        return self.place(self.temporal(x), x)

    def place(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The temporal model's output (B, T', J_union, 3) for input windows x (B, T, K, F) ->
        the lifter's output: unchanged with ``free`` placement, joints on their input keypoints'
        rays with ``rays`` (``models.rays``). Whoever runs ``temporal`` itself (its folded or
        feature path) calls this on its output."""
        if self.rays is None:
            return output
        centre = centre_inputs(x, output.shape[1], self.window()[0], self.receptive_field(), self.strided)
        return self.rays(output, centre)

    def split(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """(..., J_union, 3) -> {format: (..., J_format, 3)} (views)."""
        return {f: output[..., s, :] for f, s in self.slices.items()}

    def union_index(self, formats) -> torch.Tensor:
        """(J,) long: the union-output rows of ``formats``' joints, format after format (another
        lifter's layout of the same formats: ``output[..., index, :]`` re-lays this one's as it)."""
        return torch.cat([torch.arange(self.slices[f].start, self.slices[f].stop) for f in formats])

    @staticmethod
    def to_mm(output):
        return output * MM_PER_UNIT

    def flip_input(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror network input (..., K, F): negate x, swap left/right keypoints."""
        x = x[..., self.input_mirror, :].clone()
        x[..., 0] = -x[..., 0]
        return x

    def flip_output(self, y: torch.Tensor) -> torch.Tensor:
        """Mirror camera-space output (..., J_union, 3): negate x, swap left/right per format."""
        y = y[..., self.output_mirror, :].clone()
        y[..., 0] = -y[..., 0]
        return y

    # ------------------------------------------------------------------ model file

    def file_dict(self, mean_pose: dict | None = None, **extra) -> dict:
        """The ``model.pt`` payload: ``state_dict`` (the TemporalModel's, VideoPose3D keys),
        ``architecture`` (its constructor kwargs), ``formats`` (name, start, stop of each slice),
        ``input`` (keypoint format and the codec: ``InputCodec.file_entry``), ``output_unit_mm``,
        ``output_placement`` (``models.rays``), ``mean_pose`` (format -> (J, 3) float64 tensor, mm)
        and any ``extra`` entries."""
        state = {k: v.detach().cpu().clone() for k, v in self.temporal.state_dict().items()}
        return {
            "state_dict": state,
            "architecture": self.temporal.architecture,
            "formats": [{"name": f, "start": s.start, "stop": s.stop} for f, s in self.slices.items()],
            "input": {"keypoint_format": self.keypoint_format, **self.codec.file_entry()},
            "output_unit_mm": MM_PER_UNIT,
            "output_placement": self.placement,
            "mean_pose": {f: torch.as_tensor(np.asarray(p, dtype=np.float64))
                          for f, p in (mean_pose or {}).items()},
            **extra,
        }

    @classmethod
    def from_file_dict(cls, payload: dict, strided: bool = False, path="model.pt") -> "SeparateHeadLifter":
        """Rebuild a lifter from :meth:`file_dict`'s payload (weights loaded, train mode); ``path``
        names the file in errors."""
        arch = dict(payload["architecture"])
        temporal = _temporal_class(strided, "output_joints" in arch)(**arch)
        temporal.load_state_dict(payload["state_dict"])
        formats = [f["name"] for f in payload["formats"]]
        codec = InputCodec.from_file_entry(payload["input"], path)
        placement = payload.get("output_placement", "free")  # files before the choice: free
        try:
            check_placement(placement, codec)
        except ConfigError as err:
            raise DataError(path, f"model file's output_placement: {err}") from None
        lifter = cls(formats, keypoint_format=payload["input"]["keypoint_format"], codec=codec,
                     temporal=temporal, placement=placement)
        stored = {f["name"]: (f["start"], f["stop"]) for f in payload["formats"]}
        if any(stored[f] != (s.start, s.stop) for f, s in lifter.slices.items()):
            raise ConfigError(f"model file format slices {stored} do not match the formats' joint counts")
        return lifter
