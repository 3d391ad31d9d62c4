"""An ensemble: several trained lifters run on the same 2D, their poses averaged.

Independently trained lifters make partly independent errors, so the mean of their predictions
is better than either (Dietterich, "Ensemble methods in machine learning", MCS 2000). The
workflow's final model is the ensemble of the ACAE-bridged lifter and the merged-joints baseline,
which the workflow trains anyway from their own initialisations (config ``ensemble``; README
"Ensemble").

Averaging happens on the network output (camera-space points, after each member's ray placement
and test-time flip): a point every member places on the same input ray stays on that ray, since
the mean of points of one ray lies on it, so the ensemble reprojects onto its 2D as its members
do. Members must read the same input (keypoint format and codec) and predict the same skeleton
formats; their receptive fields may differ (each pads its own window).

An ensemble is stored as one self-contained ``model.pt`` (``write_ensemble``): the members' model
files side by side under ``"ensemble"``, so the directory can be copied alone. ``load_model``
returns an ``EnsembleModel`` for it, which ``lift``, ``evaluate``, ``infer``, ``predict``, the
real-footage measures and ``posebridge export`` (one graph averaging the members,
``models.portable.PortableEnsemble``) take like a single model; steps that need one network
(streaming, pseudo-GT, fine-tuning from it) name its members instead (``require_single_lifter``).

>>> import numpy as np
>>> from posebridge.models.lifter import SeparateHeadLifter
>>> from posebridge.inference.lift import LiftingModel, lift
>>> a, b = (LiftingModel.from_lifter(SeparateHeadLifter(["h36m_17"], channels=16), name=n) for n in "ab")
>>> pair = EnsembleModel("pair", [a, b])
>>> keypoints = np.random.default_rng(0).uniform(0, 500, (30, 17, 3)).astype(np.float32)
>>> poses = lift(pair, keypoints, 1000, 1000)["h36m_17"]  # (30, 17, 3) mm
>>> mean = (lift(a, keypoints, 1000, 1000)["h36m_17"] + lift(b, keypoints, 1000, 1000)["h36m_17"]) / 2
>>> bool(np.allclose(poses, mean, rtol=1e-5, atol=1e-2))
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from posebridge.errors import ConfigError, DataError
from posebridge.models.files import ENSEMBLE_KEY  # {"members": [model file dicts], "names": [their names]}

__all__ = ["EnsembleModel", "ensemble_payload", "write_ensemble", "ensemble_from_payload",
           "require_single_lifter", "ENSEMBLE_KEY"]


@dataclass
class EnsembleModel:
    """Lifters whose predictions are averaged (module docstring); the same interface as
    ``inference.lift.LiftingModel`` where a step runs a model as a black box.

    ``members``: loaded ``LiftingModel`` s (the first one's formats order the output, and its
    training poses' means are the ensemble's ``mean_pose`` / ``mean_shape``: the members were
    trained on the same data).
    """

    name: str
    members: list
    path: Path | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.members) < 2:
            raise ConfigError(f"an ensemble needs at least two models, got {len(self.members)}")
        first = self.members[0]
        for m in self.members[1:]:
            if m.keypoint_format != first.keypoint_format or m.codec != first.codec:
                raise ConfigError(f"ensemble {self.name}: {m.name} reads {m.keypoint_format} {m.codec}, "
                                  f"{first.name} {first.keypoint_format} {first.codec}; members must read the same input")
            if sorted(m.formats) != sorted(first.formats):
                raise ConfigError(f"ensemble {self.name}: {m.name} predicts {', '.join(m.formats)}, {first.name} "
                                  f"{', '.join(first.formats)}; members must predict the same formats")
        # each member's union output re-laid as the first member's (None: already is)
        self._layouts = [None if m.slices == first.slices else m.lifter.union_index(first.formats).to(m.device)
                         for m in self.members]

    @property
    def member_names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def formats(self) -> list[str]:
        return self.members[0].formats

    @property
    def slices(self) -> dict[str, slice]:
        """format -> its joints in the union output (the first member's layout)."""
        return self.members[0].slices

    @property
    def keypoint_format(self) -> str:
        return self.members[0].keypoint_format

    @property
    def codec(self):
        return self.members[0].codec

    @property
    def in_features(self) -> int:
        return self.members[0].in_features

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    @property
    def mean_pose(self) -> dict[str, np.ndarray]:
        return self.members[0].mean_pose

    @property
    def mean_shape(self) -> dict[str, np.ndarray]:
        return self.members[0].mean_shape

    def encode(self, keypoints, width, height, intrinsics=None, distortion=None, distortion_model=None) -> np.ndarray:
        """Pixels + confidence (T, K, 3) -> the members' (shared) network input."""
        return self.members[0].encode(keypoints, width, height, intrinsics, distortion, distortion_model)

    def receptive_field(self) -> int:
        return max(m.receptive_field() for m in self.members)

    def split(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """(..., J_union, 3) -> {format: (..., J_format, 3)} in the first member's layout."""
        return {f: output[..., s, :] for f, s in self.slices.items()}

    def network_output(self, inputs, flip: bool = True, chunk_frames: int | None = None) -> torch.Tensor:
        """Network input (T, K, F) -> (T, J_union, 3): the mean of the members' outputs (each run as
        ``lift_network_input`` runs it), laid out as the first member's."""
        from posebridge.inference.lift import lift_network_input

        total = None
        for member, layout in zip(self.members, self._layouts):
            out = lift_network_input(member, inputs, flip=flip, chunk_frames=chunk_frames)
            out = out if layout is None else out[..., layout, :]
            total = out if total is None else total + out
        return total / len(self.members)


def require_single_lifter(model, step: str):
    """``model`` itself when it is one lifter; a one-line ConfigError naming ``step`` and the
    ensemble's members otherwise (streaming and pseudo-GT need one network)."""
    if isinstance(model, EnsembleModel):
        where = f" ({model.path})" if model.path else ""
        raise ConfigError(f"{step} needs one lifter; {model.name}{where} is an ensemble of "
                          f"{', '.join(model.member_names)}: give one of its members")
    return model


def ensemble_payload(model_dirs) -> dict:
    """The ``model.pt`` dict of the ensemble of ``model_dirs`` (each a model directory or its
    ``model.pt``; at least two, each one lifter): their model files side by side, checked to
    load together (same input, same formats)."""
    from posebridge.inference.lift import model_from_payload
    from posebridge.models.files import read_model_file

    if len(model_dirs) < 2:
        raise ConfigError(f"an ensemble needs at least two models, got {len(model_dirs)}")
    members, names, loaded = [], [], []
    for d in model_dirs:
        path, payload = read_model_file(d)  # one lifter each: an ensemble inside one is refused
        members.append(payload)
        names.append(path.parent.name)
        loaded.append(model_from_payload(path, payload, path.parent.name))
    if len(set(names)) != len(names):
        raise ConfigError(f"ensemble members must be different model directories, got {', '.join(names)}")
    EnsembleModel("ensemble", loaded)  # the members must fit together
    return {ENSEMBLE_KEY: {"members": members, "names": names}}


def write_ensemble(model_dirs, out_dir: str | os.PathLike) -> Path:
    """Write the ensemble of ``model_dirs`` to ``out_dir/model.pt`` (atomically) and a
    ``config.yaml`` naming its members; returns the model file's path."""
    import yaml

    from posebridge import atomic
    from posebridge.models.files import model_file_path, write_torch_file

    payload = ensemble_payload(model_dirs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.pt"
    write_torch_file(path, payload)
    config = {"ensemble": [{"name": n, "source": str(model_file_path(d))}
                           for n, d in zip(payload[ENSEMBLE_KEY]["names"], model_dirs)]}
    atomic.write_text(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    return path


def ensemble_from_payload(path: Path, payload: dict, device) -> EnsembleModel:
    """The ``EnsembleModel`` of an ensemble model file's dict (``read_model_file`` checked it)."""
    from posebridge.inference.lift import model_from_payload

    entry = payload[ENSEMBLE_KEY]
    members = [model_from_payload(path, member, name, device)
               for member, name in zip(entry["members"], entry["names"])]
    try:
        return EnsembleModel(path.parent.name, members, path, {"members": list(entry["names"])})
    except ConfigError as err:
        raise DataError(path, str(err)) from None
