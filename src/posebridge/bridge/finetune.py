"""Consistency fine-tuning with a frozen affine-combining autoencoder (Sárándi et al., WACV 2023),
and the heads of the models compared with it.

Variants (the table of ``bridge.variants``), each a separate model started from the initial
model's weights:

- ``continued``: the same fine-tuning schedule with no ACAE term (the control: "more epochs").
- ``output_reg``: separate heads; adds ``weight x mean |P - D(E(P))|`` over all predicted joints.
- ``latent``: the network predicts L latent points; the frozen decoder D, folded into the last
  layer (``models.lifter.MappedTemporalModel``), gives every joint of every format.
- ``hybrid``: both heads (all joints P and L latents Z). The full head is supervised like the
  separate-head model; the output (used for inference) is D(Z), supervised too; from
  ``warmup_epochs`` on, a teacher term ``weight x mean |Z - E(P)|`` (P detached) pulls the latent
  head to the encoded full head.

A latent head starts as the encoder applied to the initial full head (its first prediction is
D(E(P)) of the initial model) rather than at random: the shape differs, but the composition is
exact because the encoder is linear. ``merged`` (not a fine-tuning variant) is the merged-joints
baseline's head, trained from scratch: one output per distinct joint name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from posebridge.bridge.variants import ACAE_TERMS, variant as variant_entry
from posebridge.errors import ConfigError
from posebridge.models.lifter import expand_point_map
from posebridge.training.loop import Objective, StepOutputs, compute_losses

__all__ = ["output_map", "init_state", "AcaeObjective", "FinetuneRun", "prepare_run"]


def output_map(variant: str, formats, acae=None) -> torch.Tensor | None:
    """The (R, J_union) output map of a variant's lifter (None: one output per joint)."""
    from posebridge.models.lifter import merged_output_map

    variant_entry(variant)  # ConfigError when unknown
    if variant == "merged":
        return merged_output_map(formats)[0]
    if variant in ("continued", "output_reg"):
        return None
    decoder = acae.decoder_matrix().detach().float().cpu()  # (L, J)
    if variant == "latent":
        return decoder
    J = decoder.shape[1]
    return torch.cat([torch.zeros(J, J), decoder])  # hybrid: raw = [P; Z], output = D(Z)


def init_state(variant: str, state: dict, acae=None, output_map_: torch.Tensor | None = None) -> dict:
    """The initial separate-head model's state dict adapted to ``variant``'s head: the latent
    head is the encoder composed with the full head (W_Z = E^T W_P, coordinate-wise)."""
    state = {k: v.clone() for k, v in state.items()}
    if variant in ("latent", "hybrid"):
        encode = expand_point_map(acae.encoder_matrix().detach().double().cpu())  # (L*3, J*3)
        weight, bias = state["shrink.weight"], state["shrink.bias"]
        if weight.shape[0] != encode.shape[1]:
            raise ConfigError(f"the initial model has {weight.shape[0] // 3} outputs, the autoencoder "
                              f"{encode.shape[1] // 3} joints")
        latent_w = (encode @ weight[:, :, 0].double()).float()[:, :, None]
        latent_b = (encode @ bias.double()).float()
        if variant == "latent":
            state["shrink.weight"], state["shrink.bias"] = latent_w, latent_b
        else:
            state["shrink.weight"] = torch.cat([weight, latent_w])
            state["shrink.bias"] = torch.cat([bias, latent_b])
    if output_map_ is not None:
        state["output_map"] = output_map_.clone().float()
    return state


class AcaeObjective(Objective):
    """The ACAE terms of ``output_reg`` and ``hybrid`` (see the module docstring). Adds no input
    windows: the terms are on the labeled windows' predictions."""

    name = "acae"

    def __init__(self, variant: str, acae, config, weight: float = 1.0, warmup_epochs: int = 0,
                 acae_sha256: str = ""):
        if variant not in ACAE_TERMS:
            raise ConfigError(f"variant {variant!r} has no ACAE objective")
        self.variant, self.config = variant, config
        self.weight, self.warmup_epochs = float(weight), int(warmup_epochs)
        self.acae_sha256 = acae_sha256
        self.encoder = acae.encoder_matrix().detach().float()  # (J, L), frozen
        self.decoder = acae.decoder_matrix().detach().float()  # (L, J)
        self.terms = ("consistency",) if variant == "output_reg" else ("full", "teacher")

    def fingerprint(self) -> dict:
        return {"variant": self.variant, "weight": self.weight, "warmup_epochs": self.warmup_epochs,
                "acae_sha256": self.acae_sha256}

    def losses(self, out: StepOutputs, epoch: int) -> dict[str, torch.Tensor]:
        enc = self.encoder.to(out.labeled_pred.device)
        dec = self.decoder.to(out.labeled_pred.device)
        if self.variant == "output_reg":
            pred = out.labeled_pred  # (B, J, 3) metres; the map is affine, so units do not matter
            recon = torch.einsum("bjc,jl,lk->bkc", pred, enc, dec)
            consistency = (pred - recon).abs().mean()
            return {"consistency": consistency, "total": self.weight * consistency}
        temporal = out.lifter.temporal
        raw = temporal.raw_head(out.labeled_features)  # (B, J + L, 3)
        J = enc.shape[0]
        full, latent = raw[:, :J], raw[:, J:]
        full_terms = compute_losses(full, out.labeled, self.config)
        teacher = (latent - torch.einsum("bjc,jl->blc", full.detach(), enc)).abs().mean()
        on = 1.0 if epoch >= self.warmup_epochs else 0.0
        return {"full": full_terms["total"], "teacher": teacher,
                "total": full_terms["total"] + on * self.weight * teacher}


@dataclass
class FinetuneRun:
    """What a variant adds to a training run: ``objectives`` (the ACAE term), the keyword
    arguments of ``training.loop.train`` (``init_state``, ``output_map``) and the ``model.pt``
    entries (``head``: the variant and where it started)."""

    objectives: list = field(default_factory=list)
    train_kwargs: dict = field(default_factory=dict)
    file_entries: dict = field(default_factory=dict)


def prepare_run(config, formats, init=None, acae_path=None) -> FinetuneRun:
    """Set up the fine-tuning run of ``config.finetune.variant`` (a ``TrainConfig``) for a lifter
    over ``formats``: read the initial model directory ``init`` and the fitted autoencoder
    ``acae_path`` (each given exactly when the variant needs it, ``bridge.variants``), check
    they fit the formats, and build the head's output map, initial weights and ACAE objective."""
    import hashlib
    from pathlib import Path

    from posebridge.bridge.autoencoder import load_acae
    from posebridge.errors import DataError
    from posebridge.models.lifter import union_joint_names

    settings = config.finetune
    entry = variant_entry(settings.variant)
    for needed, given, flag in ((entry.needs_init, init, "--init"), (entry.needs_acae, acae_path, "--acae")):
        if needed != (given is not None):
            raise ConfigError(f"finetune: variant {entry.name} {'needs' if needed else 'takes no'} {flag}")
    acae, digest = None, ""
    if entry.needs_acae:
        acae, _ = load_acae(acae_path)
        digest = hashlib.sha256(Path(acae_path).read_bytes()).hexdigest()
        expected = union_joint_names(formats)
        if list(acae.joint_names) != expected:
            raise DataError(acae_path, f"the autoencoder's {acae.num_joints} joints are not the union of the "
                                       f"training formats {formats} ({len(expected)} joints)")
    mapping = output_map(entry.name, formats, acae)
    run = FinetuneRun(train_kwargs={"output_map": mapping})
    if init is not None:
        run.train_kwargs["init_state"] = _initial_state(init, entry.name, formats, acae, mapping,
                                                        config.input_codec(), config.output_placement)
    if entry.acae_term:
        run.objectives.append(AcaeObjective(entry.name, acae, config, settings.acae_weight(),
                                            settings.warmup_epochs, digest))
    head = {"variant": entry.name, "init": str(init or ""), "acae": str(acae_path or ""),
            "raw_points": int(mapping.shape[0]) if mapping is not None else 0}
    if acae is not None:
        head["latent_names"] = list(acae.latent_names)
    run.file_entries["head"] = head
    return run


def _initial_state(init, variant: str, formats, acae, mapping, codec, placement: str) -> dict:
    """The state dict the variant starts from: the separate-head model in directory ``init``,
    adapted to the head (``init_state``); the model must read input encoded by ``codec`` and
    place its output as ``placement`` says (``models.rays``)."""
    from posebridge.data.keypoints import InputCodec
    from posebridge.errors import DataError
    from posebridge.models.files import read_model_file

    path, payload = read_model_file(init)
    trained = [f["name"] for f in payload.get("formats", [])]
    if trained != list(formats):
        raise DataError(path, f"the model predicts {trained}; fine-tuning trains {list(formats)}")
    if "output_joints" in payload["architecture"]:
        raise DataError(path, "fine-tuning starts from a separate-head model")
    trained_codec = InputCodec.from_file_entry(payload["input"], path)
    if trained_codec != codec:
        raise DataError(path, f"the model reads input encoded by {trained_codec}; the fine-tuning run "
                              f"encodes {codec} (train.input_normalisation / input_confidence)")
    trained_placement = payload.get("output_placement", "free")
    if trained_placement != placement:
        raise DataError(path, f"the model places its output {trained_placement!r}; the fine-tuning run "
                              f"{placement!r} (train.output_placement)")
    return init_state(variant, payload["state_dict"], acae, mapping)
