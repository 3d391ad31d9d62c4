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
    "`posebridge train`; the spec's section finetune holds the variant and its weights."
)

# Flags kept as aliases of the spec's finetune keys (a flag given wins over the spec's key).
# --acae-weight is the weight of the variant's ACAE term: finetune.<term>_weight, the term named
# by posebridge.bridge.variants (output_reg_weight for output_reg, teacher_weight for hybrid).
FINETUNE_ALIASES = {"--variant": "variant", "--warmup-epochs": "warmup_epochs"}


def add_arguments(parser) -> None:
    train_command.add_arguments(parser)
    group = parser.add_argument_group("head and fine-tuning")
    group.add_argument("--variant", default=None, choices=VARIANTS,
                       help="the head and loss (see the description); the spec's finetune.variant")
    group.add_argument("--init", metavar="DIR", default=None,
                       help="model directory whose weights to start from (every variant but merged)")
    group.add_argument("--acae", metavar="PT", default=None,
                       help="the fitted autoencoder (`posebridge fit-acae`), for output_reg, latent and hybrid")
    group.add_argument("--acae-weight", type=float, default=None,
                       help="weight of the variant's ACAE term: the spec's finetune.output_reg_weight "
                            "(output_reg) or finetune.teacher_weight (hybrid)")
    group.add_argument("--warmup-epochs", type=int, default=None,
                       help="hybrid: epochs before the teacher term starts; the spec's finetune.warmup_epochs")


def spec_from_args(args) -> dict:
    """`posebridge train`'s spec with the fine-tuning flags given written into finetune's keys."""
    from posebridge.bridge.variants import ACAE_TERMS
    from posebridge.errors import ConfigError

    spec = train_command.spec_from_args(args)
    finetune = spec.get("finetune", {})
    if not isinstance(finetune, dict):
        raise ConfigError("finetune: --spec's finetune must be a mapping of its keys")
    finetune = dict(finetune)
    for flag, key in FINETUNE_ALIASES.items():
        if getattr(args, train_command.flag_dest(flag)) is not None:
            finetune[key] = getattr(args, train_command.flag_dest(flag))
    if args.acae_weight is not None:
        term = ACAE_TERMS.get(finetune.get("variant"))
        if term is None:
            raise ConfigError(f"finetune: --acae-weight given, but variant {finetune.get('variant')} has no ACAE term")
        finetune[f"{term}_weight"] = args.acae_weight
    spec["finetune"] = finetune
    return spec


def main(args) -> int:
    from posebridge.bridge.finetune import prepare_run
    from posebridge.errors import ConfigError
    from posebridge.training.settings import TrainConfig

    config = TrainConfig.from_dict(spec_from_args(args))
    if config.finetune.variant is None:
        raise ConfigError(f"finetune: name the variant (--variant or the spec's finetune.variant: "
                          f"{', '.join(VARIANTS)})")
    train_set, val_set, context, objectives = train_command.prepare(args, config)
    head = prepare_run(config, context.formats, init=args.init, acae_path=args.acae)
    return train_command.run(args, config, train_set, val_set, context, objectives + head.objectives,
                             head.train_kwargs, head.file_entries)
