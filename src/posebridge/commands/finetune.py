"""`posebridge finetune`: fine-tune the initial model with a frozen ACAE (or train another head)."""

from __future__ import annotations

from posebridge.bridge.variants import VARIANTS
from posebridge.commands import train as train_command

HELP = "fine-tune a model for consistent skeletons with a frozen ACAE, or train the merged-joints baseline"
DESCRIPTION = (
    "`posebridge train` with another head (posebridge.bridge.finetune): starting from --init's weights, "
    "continue training with no ACAE term (continued, the control), with the output regulariser "
    "|P - D(E(P))| (output_reg), predicting L latent points decoded to every joint by the frozen "
    "decoder (latent), or both heads with a teacher term pulling the latents to E(full head) after "
    "a warm-up (hybrid; inference decodes the latents); or train the merged-joints head (one output "
    "per joint name) from scratch (merged, no --init). The decoder is folded into the model, so "
    "its model.pt loads and predicts the union of formats like any other. Takes every option of "
    "`posebridge train` (--spec sets the fine-tuning schedule)."
)


def add_arguments(parser) -> None:
    train_command.add_arguments(parser)
    group = parser.add_argument_group("head and fine-tuning")
    group.add_argument("--variant", required=True, choices=VARIANTS,
                       help="the head and loss (see the description)")
    group.add_argument("--init", metavar="DIR", default=None,
                       help="model directory whose weights to start from (every variant but merged)")
    group.add_argument("--acae", metavar="PT", default=None,
                       help="the fitted autoencoder (`posebridge fit-acae`), for output_reg, latent and hybrid")
    group.add_argument("--acae-weight", type=float, default=1.0,
                       help="weight of the output regulariser (output_reg) or of the teacher term (hybrid)")
    group.add_argument("--warmup-epochs", type=int, default=1,
                       help="hybrid: epochs before the teacher term starts")


def main(args) -> int:
    args.extend_training = lambda context: _extend(args, context)
    return train_command.main(args)


def _extend(args, context):
    import hashlib
    from pathlib import Path

    import torch

    from posebridge.bridge.autoencoder import load_acae
    from posebridge.bridge.variants import variant as variant_entry
    from posebridge.errors import ConfigError, DataError
    from posebridge.bridge.finetune import AcaeObjective, init_state, output_map
    from posebridge.models.files import read_model_file
    from posebridge.models.lifter import union_joint_names

    variant = args.variant
    entry = variant_entry(variant)
    if entry.needs_init != (args.init is not None):
        raise ConfigError(f"finetune: variant {variant} {'needs' if entry.needs_init else 'takes no'} --init")
    if entry.needs_acae != (args.acae is not None):
        raise ConfigError(f"finetune: variant {variant} {'needs' if entry.needs_acae else 'takes no'} --acae")
    acae, digest = None, ""
    if entry.needs_acae:
        acae, _ = load_acae(args.acae)
        digest = hashlib.sha256(Path(args.acae).read_bytes()).hexdigest()
        expected = union_joint_names(context.formats)
        if list(acae.joint_names) != expected:
            raise DataError(args.acae, f"the autoencoder's {acae.num_joints} joints are not the union of the "
                                       f"training formats {context.formats} ({len(expected)} joints)")
    mapping = output_map(variant, context.formats, acae)
    kwargs = {"output_map": mapping}
    if args.init is not None:
        path, payload = read_model_file(args.init)
        formats = [f["name"] for f in payload.get("formats", [])]
        if formats != list(context.formats):
            raise DataError(path, f"the model predicts {formats}; fine-tuning trains {context.formats}")
        if "output_joints" in payload["architecture"]:
            raise DataError(path, "fine-tuning starts from a separate-head model")
        kwargs["init_state"] = init_state(variant, payload["state_dict"], acae, mapping)
    objectives = []
    if entry.acae_term:
        objectives.append(AcaeObjective(variant, acae, context.config, args.acae_weight,
                                        args.warmup_epochs, digest))
    head = {"variant": variant, "init": str(args.init or ""), "acae": str(args.acae or ""),
            "raw_points": int(mapping.shape[0]) if mapping is not None else 0}
    if acae is not None:
        head["latent_names"] = list(acae.latent_names)
    return objectives, kwargs, {"head": head}
