"""`posebridge train`: train the separate-head lifter on labeled datasets."""

from __future__ import annotations

HELP = "train the separate-head temporal lifter on one or more labeled datasets"
DESCRIPTION = (
    "Train VideoPose3D's temporal convolutional lifter on the 2D detections of every "
    "given labeled dataset at once, with one output slice (head) per skeleton format. Only rows with "
    "split 'train' supervise; rows with split 'test' give a per-epoch validation MPJPE. Writes "
    "OUT_DIR/model.pt, OUT_DIR/config.yaml and OUT_DIR/train_log.parquet. A checkpoint is saved after "
    "every epoch at --checkpoint; a rerun with the same settings resumes from it and ends with the "
    "same weights as an uninterrupted run. The lifter's input keypoint format is the spec's "
    "keypoint_format, by default the detections' own (coco_17 from the simulated and MediaPipe "
    "detectors, h36m_17 from VideoPose3D's CPN files); every dataset's detections must share it."
)


# Training objectives beside the labeled losses, each in its own library module
# (posebridge.<name>) that defines ``add_train_arguments(parser)`` (its options, in an argument
# group) and ``objective_from_args(args, context) -> posebridge.training.loop.Objective | None`` (None
# when its options are not given). ``context`` is a TrainContext.
OBJECTIVE_MODULES: list[str] = ["multiview", "semi_supervised"]


class TrainContext:
    """What an objective may need to build itself: the resolved ``config`` (TrainConfig), the
    labeled ``train_set``, the lifter's ``formats``, the ``device`` and the ``seed``."""

    def __init__(self, config, train_set, formats, device, seed):
        self.config, self.train_set, self.formats, self.device, self.seed = config, train_set, formats, device, seed


def _objective_modules():
    import importlib

    return [importlib.import_module(f"posebridge.training.objectives.{name}") for name in OBJECTIVE_MODULES]


def _input_format(configured, detections) -> str:
    """The lifter's input keypoint format: ``configured`` (TrainConfig.keypoint_format), or the
    one format all detection files share; a mismatch is a one-line error naming the file."""
    from posebridge.errors import DataError

    wanted = configured or detections[0].keypoint_format
    for d in detections:
        if d.keypoint_format != wanted:
            raise DataError(d.path, f"keypoints are {d.keypoint_format}, the lifter takes {wanted} "
                                    f"(train.keypoint_format {configured or 'unset: from the first detections'}); "
                                    f"give every dataset a detector in that format")
    return wanted


def add_arguments(parser) -> None:
    parser.add_argument("--spec", default="{}", metavar="JSON",
                        help="training settings (posebridge.training.loop.TrainConfig) as a JSON object or the "
                             "path of a JSON file; unknown keys are an error that lists the valid ones")
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
    for module in _objective_modules():
        module.add_train_arguments(parser)


def main(args) -> int:
    from pathlib import Path

    import torch

    from posebridge.data.detections import read_detections
    from posebridge.errors import ConfigError
    from posebridge.data.store import open_dataset
    from posebridge.device import resolve_device
    from posebridge.training.loop import TrainConfig, train, write_model_dir
    from posebridge.training.data import load_labeled

    config = TrainConfig.parse(args.spec)
    if len(args.detections) != len(args.dataset):
        raise ConfigError(f"train: {len(args.dataset)} --dataset but {len(args.detections)} --detections; "
                          f"give one detection file per dataset, in the same order")
    formats = args.train_format or [None] * len(args.dataset)
    if len(formats) != len(args.dataset):
        raise ConfigError(f"train: {len(args.dataset)} --dataset but {len(formats)} --train-format; "
                          f"give none or one per dataset")
    formats = [None if f in (None, "", "native") else f for f in formats]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    datasets = [open_dataset(p) for p in args.dataset]
    detections = [read_detections(p) for p in args.detections]
    try:
        names = [d.name for d in datasets]
        if len(set(names)) != len(names):
            raise ConfigError(f"train: the same dataset is given twice ({names})")
        sources = list(zip(datasets, detections, formats))
        for key in ("labeled_subjects", "labeled_fraction"):
            unknown = sorted(set(getattr(config, key)) - set(names))
            if unknown:
                raise ConfigError(f"train: {key} names unknown dataset(s) {unknown}; "
                                  f"training datasets: {', '.join(names)}")
        config.keypoint_format = _input_format(config.keypoint_format, detections)
        train_set = load_labeled(sources, "train", config.keypoint_format, subjects=config.labeled_subjects,
                                 fraction=config.labeled_fraction)
        val_set = load_labeled(sources, "test", config.keypoint_format)
    finally:
        for f in (*datasets, *detections):
            f.close()

    print(f"training on {train_set.num_frames} frames of {', '.join(train_set.names)} "
          f"(formats {', '.join(dict.fromkeys(train_set.formats))}) on {device}", flush=True)
    context = TrainContext(config, train_set, list(dict.fromkeys(train_set.formats)), device, args.seed)
    objectives = [o for o in (m.objective_from_args(args, context) for m in _objective_modules()) if o is not None]
    # `posebridge finetune` reuses this command: its hook adds objectives, train() keyword
    # arguments (init_state, output_map) and model.pt entries
    hook = getattr(args, "extend_training", None)
    more, train_kwargs, hook_entries = hook(context) if hook else ([], {}, {})
    objectives += more
    for objective in objectives:
        print(f"objective {objective.name}: {objective.fingerprint()}", flush=True)
    lifter, log = train(config, train_set, val_set, seed=args.seed, device=device,
                        checkpoint=args.checkpoint, progress=not args.no_progress,
                        log=lambda m: print(m, flush=True), objectives=objectives, **train_kwargs)
    resolved = {
        **config.to_dict(),
        "seed": args.seed,
        "datasets": [{"name": n, "dataset": str(p), "detections": str(d), "train_format": f}
                     for n, p, d, f in zip(train_set.names, args.dataset, args.detections, train_set.formats)],
        "train_frames": int(train_set.num_frames),
        "objectives": {o.name: o.fingerprint() for o in objectives},
    }
    extra = dict(hook_entries)
    for objective in objectives:
        extra.update(objective.file_entries())
    write_model_dir(Path(args.out_dir), lifter, log, resolved, train_set.mean_pose_mm(), extra)
    print(f"wrote {args.out_dir}", flush=True)
    return 0
