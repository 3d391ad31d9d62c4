"""`posebridge train`: train the separate-head lifter on labeled datasets."""

from __future__ import annotations

HELP = "train the separate-head temporal lifter on one or more labeled datasets"
DESCRIPTION = (
    "Train VideoPose3D's temporal convolutional lifter on the 2D detections of every "
    "given labeled dataset at once, with one output slice (head) per skeleton format. Only rows with "
    "split 'train' supervise; rows with split 'test' give a per-epoch validation MPJPE. Writes "
    "OUT_DIR/model.pt, OUT_DIR/config.yaml and OUT_DIR/train_log.parquet. A checkpoint is saved after "
    "every epoch at --checkpoint; a rerun with the same settings resumes from it and ends with the "
    "same weights as an uninterrupted run. Every training option is a key of --spec "
    "(posebridge.training.settings.TrainConfig), the objectives' options in its sections "
    "semi_supervised and multiview; an objective joins the training when its data is given "
    "(--unlabeled-video, --multiview). The lifter's input keypoint format is the spec's "
    "keypoint_format, by default the detections' own (coco_17 from the simulated and MediaPipe "
    "detectors, h36m_17 from VideoPose3D's CPN files); every dataset's detections must share it. "
    "Data-parallel on N processes (one per GPU): set the spec's processes to N and launch with "
    "`torchrun --standalone --nproc-per-node N --no-python posebridge train ...`; each process "
    "trains on its part of every batch, rank 0 logs and writes the files."
)

# The objectives that join the labeled losses: spec section -> (the flag of its datasets, the flag
# of their detections, the module whose ``objective_from_sources(sources, context)`` builds it).
OBJECTIVES = {
    "multiview": ("--multiview", "--multiview-detections", "posebridge.training.objectives.multiview"),
    "semi_supervised": ("--unlabeled-video", "--unlabeled-detections",
                        "posebridge.training.objectives.semi_supervised"),
}
OBJECTIVE_DATA_HELP = {
    "multiview": ("an unlabeled_multiview dataset (MCSS multi-view metric learning; .h5, its Parquet "
                  "index beside it); repeat for several"),
    "semi_supervised": ("a dataset whose 2D trains without 3D labels (VideoPose3D's semi-supervised "
                        "training): role unlabeled_video, or a labeled dataset (its subjects outside "
                        "labeled_subjects); repeat for several"),
}

# Flags kept as aliases of spec keys: flag -> (section, key, type, metavar). A flag given wins over
# the spec's key; JSON flags take a JSON object.
SPEC_ALIASES = {
    "--semi-weights": ("semi_supervised", "weights", "json", "JSON"),
    "--semi-warmup-epochs": ("semi_supervised", "warmup_epochs", int, "N"),
    "--semi-batch-size": ("semi_supervised", "batch_size", int, "N"),
    "--semi-placement": ("semi_supervised", "placement", str, "PLACEMENT"),
    "--semi-format": ("semi_supervised", "reference_format", str, "FORMAT"),
    "--multiview-weight": ("multiview", "weight", float, "W"),
    "--multiview-pose-weight": ("multiview", "pose_weight", float, "W"),
    "--multiview-margin": ("multiview", "margin", float, "M"),
    "--multiview-time-window": ("multiview", "time_window", int, "FRAMES"),
    "--multiview-pairs": ("multiview", "pairs", int, "N"),
    "--multiview-embedding-dim": ("multiview", "embedding_dim", int, "D"),
}


def flag_dest(flag: str) -> str:
    """The argparse attribute of ``flag``."""
    return flag.lstrip("-").replace("-", "_")


def add_arguments(parser) -> None:
    parser.add_argument("--spec", default="{}", metavar="JSON",
                        help="training settings (posebridge.training.settings.TrainConfig) as a JSON object or "
                             "the path of a JSON file; unknown keys are an error that lists the valid ones")
    parser.add_argument("--dataset", action="append", required=True, metavar="H5",
                        help="a labeled converted dataset (.h5, its Parquet index beside it); repeat "
                             "for several datasets")
    parser.add_argument("--detections", action="append", required=True, metavar="H5",
                        help="the 2D detections of the dataset given at the same position; one per --dataset")
    parser.add_argument("--train-format", action="append", default=None, metavar="FORMAT",
                        help="skeleton format to train for the dataset at the same position ('native': "
                             "the stored one); give none or one per --dataset")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="model directory to write")
    parser.add_argument("--checkpoint", required=True, metavar="PT",
                        help="resumable checkpoint path (keep it outside the output directory)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice in training")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to train (auto: CUDA when available, else CPU)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = parser.add_argument_group("objectives", "unlabeled data that joins the training")
    for section, (data_flag, detections_flag, _) in OBJECTIVES.items():
        group.add_argument(data_flag, action="append", default=None, metavar="H5", help=OBJECTIVE_DATA_HELP[section])
        group.add_argument(detections_flag, action="append", default=None, metavar="H5",
                           help=f"the 2D detections of the {data_flag} dataset at the same position")
    group = parser.add_argument_group("spec aliases", "each sets one key of --spec (and wins over it)")
    for flag, (section, key, kind, metavar) in SPEC_ALIASES.items():
        group.add_argument(flag, type=str if kind == "json" else kind, default=None, metavar=metavar,
                           help=f"the spec's {section}.{key}")


def _alias_value(flag: str, kind, value):
    """A JSON flag's object; other flags' values as parsed."""
    import json

    from posebridge.errors import ConfigError

    if kind != "json":
        return value
    try:
        value = json.loads(value)
    except json.JSONDecodeError as err:
        raise ConfigError(f"train: {flag} is not JSON ({err})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"train: {flag} must be a JSON object, got {value!r}")
    return value


def spec_from_args(args) -> dict:
    """The spec of ``--spec`` with the alias flags given written into their keys."""
    from posebridge.errors import ConfigError
    from posebridge.specs import load_spec

    spec = load_spec(args.spec, "train: --spec")
    for flag, (section, key, kind, _) in SPEC_ALIASES.items():
        value = getattr(args, flag_dest(flag), None)
        if value is None:
            continue
        if not isinstance(spec.setdefault(section, {}), dict):
            raise ConfigError(f"train: --spec's {section} must be a mapping of its keys")
        spec[section] = {**spec[section], key: _alias_value(flag, kind, value)}
    return spec


def _paired(args, data_flag: str, detections_flag: str) -> tuple[list, list]:
    """The paths of a data flag and of its detections flag, one detection file per dataset."""
    from posebridge.errors import ConfigError

    paths, detections = getattr(args, flag_dest(data_flag)) or [], getattr(args, flag_dest(detections_flag)) or []
    if len(paths) != len(detections):
        raise ConfigError(f"train: {len(paths)} {data_flag} but {len(detections)} {detections_flag}; "
                          f"give one detection file per dataset, in the same order")
    return paths, detections


def prepare(args, config):
    """The run's labeled sets and objectives: (train_set, val_set, context, objectives)."""
    import importlib

    import torch

    from posebridge.data.frames import open_sources
    from posebridge.errors import ConfigError
    from posebridge.training import distributed
    from posebridge.training.data import load_training_sets
    from posebridge.training.loop import ObjectiveContext

    dataset_paths, detection_paths = _paired(args, "--dataset", "--detections")
    formats = args.train_format or [None] * len(dataset_paths)
    if len(formats) != len(dataset_paths):
        raise ConfigError(f"train: {len(dataset_paths)} --dataset but {len(formats)} --train-format; "
                          f"give none or one per dataset")
    formats = [None if f in (None, "", "native") else f for f in formats]
    if args.threads:
        torch.set_num_threads(args.threads)
    shard, device = distributed.start(args.device, config.processes)  # the process group of a torchrun launch
    with open_sources(dataset_paths, detection_paths) as sources:
        train_set, val_set = load_training_sets(config, [(d, det, f) for (d, det), f in zip(sources, formats)])
    if shard.is_main:
        processes = f" in {shard.processes} processes" if shard.processes > 1 else ""
        print(f"training on {train_set.num_frames} frames of {', '.join(train_set.names)} "
              f"(formats {', '.join(dict.fromkeys(train_set.formats))}) on {device}{processes}", flush=True)
    context = ObjectiveContext(config, train_set, list(dict.fromkeys(train_set.formats)), device, args.seed)
    objectives = []
    for data_flag, detections_flag, module in OBJECTIVES.values():
        paths, detections = _paired(args, data_flag, detections_flag)
        if paths:
            with open_sources(paths, detections) as sources:
                objectives.append(importlib.import_module(module).objective_from_sources(sources, context))
    return train_set, val_set, context, objectives


def run(args, config, train_set, val_set, context, objectives, train_kwargs=None, file_entries=None) -> int:
    """Train with ``objectives`` and write the model directory (``file_entries``: extra
    ``model.pt`` entries besides the objectives'). Data-parallel: every process trains, rank 0
    writes."""
    from pathlib import Path

    from posebridge.training import distributed
    from posebridge.training.loop import train, write_model_dir

    main = distributed.current_shard().is_main
    for objective in objectives if main else ():
        print(f"objective {objective.name}: {objective.fingerprint()}", flush=True)
    lifter, log = train(config, train_set, val_set, seed=args.seed, device=context.device,
                        checkpoint=args.checkpoint, progress=not args.no_progress,
                        log=lambda m: print(m, flush=True), objectives=objectives, **(train_kwargs or {}))
    distributed.stop()
    if not main:
        return 0
    resolved = {
        **config.to_dict(),
        "seed": args.seed,
        "datasets": [{"name": n, "dataset": str(p), "detections": str(d), "train_format": f}
                     for n, p, d, f in zip(train_set.names, args.dataset, args.detections, train_set.formats)],
        "train_frames": int(train_set.num_frames),
        "objectives": {o.name: o.fingerprint() for o in objectives},
    }
    extra = dict(file_entries or {})
    for objective in objectives:
        extra.update(objective.file_entries())
    import torch

    mean_pose, shapes = train_set.mean_poses_mm()
    extra["mean_shape"] = {f: torch.as_tensor(p) for f, p in shapes.items()}
    write_model_dir(Path(args.out_dir), lifter, log, resolved, mean_pose, extra)
    print(f"wrote {args.out_dir}", flush=True)
    return 0


def main(args) -> int:
    from posebridge.errors import ConfigError
    from posebridge.training.settings import TrainConfig

    config = TrainConfig.from_dict(spec_from_args(args))
    if config.finetune.variant is not None:
        raise ConfigError("train: the spec names finetune.variant; fine-tuning runs with `posebridge finetune`")
    return run(args, config, *prepare(args, config))
