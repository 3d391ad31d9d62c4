"""Import a published VideoPose3D checkpoint as a posebridge model directory.

A VideoPose3D checkpoint (``pretrained_h36m_cpn.bin``, ``epoch_80.bin``...) is a ``torch.save``
dict with ``model_pos`` (the temporal model's state dict, keys as in VideoPose3D's
``common/model.py``: ``expand_conv``, ``expand_bn``, ``layers_conv.<i>``, ``layers_bn.<i>``,
``shrink``; github.com/facebookresearch/VideoPose3D), optional
``model_traj`` (the trajectory model, J_out = 1; None when it was not trained), ``epoch``, ``lr``,
``optimizer`` and ``random_state`` (a numpy RandomState tuple). The architecture is not stored;
everything but causality follows from the weights' shapes:

- ``expand_conv.weight`` (C, J_in * F, w0): channels C and the first filter width;
- ``layers_conv.{2i}.weight`` (C, C, w_i): the remaining widths (the 1x1 convolutions between);
- ``shrink.weight`` (3 * J_out, C, 1): output joints.

The input skeleton (and so F = J_in * F / J_in) and the output skeleton are chosen by joint count
(17: ``h36m_17``, 15: ``humaneva_15``) unless given: VideoPose3D's Detectron-COCO models take
``coco_17`` keypoints, which only an option can tell. Causal models cannot be told from the
weights either (``causal=True``).

The result is what ``training.loop.write_model_dir`` writes (``model.pt``, ``config.yaml``,
``train_log.parquet``), so ``inference.lift.load_model``, ``posebridge evaluate`` / ``predict`` read
it; the trajectory model, when present, is the ``trajectory`` entry of ``model.pt`` (where the
semi-supervised training objective stores its trajectory model).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from posebridge.geometry import skeletons
from posebridge.errors import ConfigError, DataError
from posebridge.models.files import check_finite_weights, read_torch_file
from posebridge.models.lifter import SeparateHeadLifter
from posebridge.models.temporal import TemporalModel

__all__ = ["read_checkpoint", "infer_architecture", "import_checkpoint", "DEFAULT_FORMATS"]

DEFAULT_FORMATS = {17: "h36m_17", 15: "humaneva_15"}
"""Skeleton format by joint count: VideoPose3D's H36M and HumanEva layouts."""


def _numpy_safe_globals() -> list:
    """What unpickling ``random_state`` (a numpy RandomState state tuple) needs beyond tensors:
    arrays and dtypes only, so the file still loads with ``weights_only=True`` (no code runs)."""
    reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    allowed = [np.ndarray, np.dtype, reconstruct, (reconstruct, "numpy.core.multiarray._reconstruct"),
               (reconstruct, "numpy._core.multiarray._reconstruct")]
    allowed += [type(np.dtype(t)) for t in ("uint32", "float64", "int64")]
    return allowed


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict, loaded without executing pickled code; DataError when unreadable or
    when ``model_pos`` is missing or not a state dict."""
    path = Path(path)
    payload = read_torch_file(path, "VideoPose3D checkpoint", safe_globals=_numpy_safe_globals())
    if "model_pos" not in payload:
        found = ", ".join(sorted(map(str, payload)))
        raise DataError(path, f"no 'model_pos' entry (found: {found or 'nothing'}); not a VideoPose3D checkpoint")
    for key in ("model_pos", "model_traj"):
        state = payload.get(key)
        if state is None:
            continue
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise DataError(path, f"'{key}' is not a state dict of tensors")
        # a model trained under nn.DataParallel saves its keys under "module."
        if state and all(k.startswith("module.") for k in state):
            payload[key] = {k[len("module."):]: v for k, v in state.items()}
    return payload


def infer_architecture(state: dict, path, in_features: int) -> dict:
    """TemporalModel keyword arguments (without ``causal``/``dropout``) from a state dict's shapes."""

    def shape(key, ndim):
        if key not in state:
            raise DataError(path, f"state dict lacks {key!r}")
        s = tuple(state[key].shape)
        if len(s) != ndim:
            raise DataError(path, f"{key!r} has shape {s}, expected {ndim} dimensions")
        return s

    channels, in_channels, w0 = shape("expand_conv.weight", 3)
    widths = [w0]
    i = 0
    while f"layers_conv.{2 * i}.weight" in state:
        out_c, in_c, w = shape(f"layers_conv.{2 * i}.weight", 3)
        if (out_c, in_c) != (channels, channels):
            raise DataError(path, f"'layers_conv.{2 * i}.weight' has shape {(out_c, in_c, w)}; "
                                  f"expected ({channels}, {channels}, width)")
        widths.append(w)
        i += 1
    out3, c, _ = shape("shrink.weight", 3)
    if c != channels or out3 % 3:
        raise DataError(path, f"'shrink.weight' has shape {tuple(state['shrink.weight'].shape)}; expected "
                              f"(3 * joints, {channels}, 1)")
    if in_channels % in_features:
        raise DataError(path, f"'expand_conv.weight' has {in_channels} input channels, not a multiple of "
                              f"{in_features} features per joint (--in-features)")
    if any(w % 2 == 0 for w in widths):
        raise DataError(path, f"filter widths {widths} are not all odd")
    return {"num_joints_in": in_channels // in_features, "in_features": in_features,
            "num_joints_out": out3 // 3, "filter_widths": widths, "channels": channels}


def _build(state: dict, path, key: str, in_features: int, causal: bool) -> TemporalModel:
    """A dilated TemporalModel holding ``state`` exactly (every key present, none extra, finite)."""
    check_finite_weights(path, state, repr(key))
    arch = infer_architecture(state, path, in_features)
    model = TemporalModel(**arch, causal=causal)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise DataError(path, f"'{key}' does not fit a VideoPose3D TemporalModel {arch}: {detail[:300]}") from None
    return model.eval()


def _format_for(joints: int, given: str | None, what: str, path) -> str:
    name = given or DEFAULT_FORMATS.get(joints)
    if name is None:
        raise ConfigError(f"{path}: the {what} has {joints} joints; name its skeleton format "
                          f"(--{what.split()[0]}-format)")
    if skeletons.get(name).num_joints != joints:
        raise DataError(path, f"the {what} has {joints} joints but {name} has {skeletons.get(name).num_joints}")
    return skeletons.get(name).name


def import_checkpoint(path: str | os.PathLike, out_dir: str | os.PathLike, *, causal: bool = False,
                      in_features: int = 2, keypoint_format: str | None = None,
                      output_format: str | None = None) -> SeparateHeadLifter:
    """Read a VideoPose3D checkpoint and write the posebridge model directory ``out_dir``.

    Returns the (dilated, eval-mode) lifter written. ``keypoint_format`` / ``output_format``
    default by joint count (``DEFAULT_FORMATS``); ``in_features`` 2 (x, y) for every published
    model. The mean-pose baseline is unknown (no training data): ``mean_pose`` is empty.
    """
    from posebridge.training.loop import write_model_dir

    path = Path(path)
    payload = read_checkpoint(path)
    if int(in_features) not in (2, 3):
        raise ConfigError(f"in_features must be 2 or 3, got {in_features}")
    temporal = _build(payload["model_pos"], path, "model_pos", int(in_features), causal)
    keypoint_format = _format_for(temporal.num_joints_in, keypoint_format, "keypoint input", path)
    output_format = _format_for(temporal.num_joints_out, output_format, "output pose", path)
    lifter = SeparateHeadLifter([output_format], keypoint_format=keypoint_format,
                                in_features=int(in_features), temporal=temporal).eval()
    extra = {}
    if payload.get("model_traj") is not None:
        traj = _build(payload["model_traj"], path, "model_traj", int(in_features), causal)
        if traj.num_joints_out != 1 or traj.num_joints_in != temporal.num_joints_in:
            raise DataError(path, f"'model_traj' maps {traj.num_joints_in} joints to {traj.num_joints_out}; "
                                  f"a trajectory model maps {temporal.num_joints_in} to 1")
        extra["trajectory"] = {
            "state_dict": {k: v.detach().clone() for k, v in traj.state_dict().items()},
            "architecture": traj.architecture, "format": output_format,
            "joint": skeletons.get(output_format).joint_names[skeletons.get(output_format).root],
            "unit_mm": 1000.0}
    epoch = payload.get("epoch")
    lr = payload.get("lr")
    resolved = {"source": "videopose3d", "checkpoint": str(path),
                "epoch": None if epoch is None else int(epoch), "lr": None if lr is None else float(lr),
                "architecture": temporal.architecture, "keypoint_format": keypoint_format,
                "output_format": output_format, "trajectory": "trajectory" in extra}
    log = pd.DataFrame([{"epoch": resolved["epoch"] if resolved["epoch"] is not None else 0,
                         "lr": resolved["lr"] if resolved["lr"] is not None else float("nan")}])
    write_model_dir(out_dir, lifter, log, resolved, mean_pose={}, extra=extra)
    return lifter
