"""The heads a model of the skeleton bridge is trained with, in one table (torch-free, so the
workflow can read it while it builds its job graph).

Sárándi et al. ("Learning 3D human pose estimation from dozens of datasets using a geometry-aware
autoencoder to bridge between skeleton formats", WACV 2023) make the formats of one model agree
through an affine-combining autoencoder (ACAE). Each variant below is a separate model; all but
``merged`` start from the initial separate-head model's weights (``--init``) and continue its
training (``bridge.finetune`` builds their heads and terms):

- ``continued``: the same fine-tuning schedule with no ACAE term (the control: "more epochs");
- ``output_reg``: separate heads plus the output regulariser weight x mean |P - D(E(P))|;
- ``latent``: the network predicts the ACAE's latent points, the frozen decoder gives every joint;
- ``hybrid``: both heads, the latent one decoded for inference, with a teacher term pulling the
  latents towards the encoded full head after a warm-up;
- ``merged``: the merged-joints baseline, one output per joint name, trained from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Variant", "VARIANT_TABLE", "VARIANTS", "FINETUNE_VARIANTS", "ACAE_TERMS", "variant"]


@dataclass(frozen=True)
class Variant:
    """One head: its ``name``; whether it needs the fitted autoencoder (``needs_acae``) and an
    initial model to start from (``needs_init``); ``acae_term``: the ACAE term it adds to the
    training loss, None for none (named after its weight in the ``finetune`` spec section,
    ``<acae_term>_weight``)."""

    name: str
    needs_acae: bool
    needs_init: bool
    acae_term: str | None


VARIANT_TABLE = (
    Variant("continued", needs_acae=False, needs_init=True, acae_term=None),
    Variant("output_reg", needs_acae=True, needs_init=True, acae_term="output_reg"),
    Variant("latent", needs_acae=True, needs_init=True, acae_term=None),
    Variant("hybrid", needs_acae=True, needs_init=True, acae_term="teacher"),
    Variant("merged", needs_acae=False, needs_init=False, acae_term=None),
)
VARIANTS = tuple(v.name for v in VARIANT_TABLE)
"""Every head `posebridge finetune --variant` trains."""
FINETUNE_VARIANTS = tuple(v.name for v in VARIANT_TABLE if v.needs_init)
"""The variants fine-tuned from the initial model (the ACAE comparison's models)."""
ACAE_TERMS = {v.name: v.acae_term for v in VARIANT_TABLE if v.acae_term}
"""Variant -> the ACAE term it trains with."""


def variant(name: str) -> Variant:
    """The table's entry for ``name``; ConfigError naming the variants when unknown."""
    from posebridge.errors import ConfigError

    for entry in VARIANT_TABLE:
        if entry.name == name:
            return entry
    raise ConfigError(f"unknown head variant {name!r}; choose one of {', '.join(VARIANTS)}")
