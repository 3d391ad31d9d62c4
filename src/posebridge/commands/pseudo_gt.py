"""`posebridge pseudo-gt`: the initial model's predictions of every format on clean training frames."""

from __future__ import annotations

from posebridge.commands.options import add_datasets_with_detections, add_device, add_model, load_model_from

HELP = "predict every joint of every format on a clean subset of the labeled training data (pseudo-GT)"
DESCRIPTION = """\
Run a trained separate-head model, with test-time flip averaging, on the training split of the given
labeled datasets; keep frames whose 2D detections are confident, every k-th, up to a cap; and write
all joints of all the model's formats (camera space, mm, placed at the ground-truth root) with the
dataset, sequence, camera and frame each came from, a fraction of the takes marked as held out
(posebridge.bridge.pseudo_gt). The affine-combining autoencoder is fitted on it.
"""


def add_arguments(parser) -> None:
    add_model(parser)
    add_datasets_with_detections(parser, "a labeled converted dataset; repeat for several")
    parser.add_argument("--train-format", action="append", default=None, metavar="FORMAT",
                        help="the format the dataset trains ('native': its stored one); none or one per --dataset")
    parser.add_argument("--spec", default="{}", metavar="JSON",
                        help="subset settings (posebridge.bridge.pseudo_gt.PseudoGTConfig) as JSON: min_confidence, "
                             "stride, max_poses, holdout, flip")
    parser.add_argument("--output", required=True, metavar="NPZ", help="pseudo-GT file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset draw and the held-out takes")
    add_device(parser)


def main(args) -> int:
    import numpy as np

    from posebridge.errors import DataError
    from posebridge.models.lifter import union_joint_names
    from posebridge.bridge.pseudo_gt import (
        PseudoGTConfig,
        MIN_DEPTH_MM,
        in_front,
        predict_frames,
        select_frames,
        write_pseudo_gt,
    )
    from posebridge.inference.ensemble import require_single_lifter
    from posebridge.specs import load_spec
    from posebridge.training.data import load_labeled_files

    config = PseudoGTConfig.from_dict(load_spec(args.spec, "pseudo-gt: --spec"))
    model = require_single_lifter(load_model_from(args), "posebridge pseudo-gt")
    data = load_labeled_files(args.dataset, args.detections, args.train_format, "train", codec=model.codec)
    missing = sorted(set(data.formats) - set(model.formats))
    if missing:
        raise DataError(model.path, f"the model has no output for format(s) {missing}")
    chosen, holdout = select_frames(data, config, args.seed)
    if len(chosen) < 2:
        raise DataError(args.dataset[0], f"only {len(chosen)} training frame(s) pass min_confidence "
                                         f"{config.min_confidence}; lower it")
    points = predict_frames(model, data, chosen, flip=config.flip)
    front = in_front(points)
    if not front.all():
        print(f"pseudo-GT: {int((~front).sum())} of {len(points)} poses reach within {MIN_DEPTH_MM:g} mm of the "
              "camera plane and are left out (the projected loss divides by depth)", flush=True)
        chosen, holdout, points = chosen[front], holdout[front], points[front]
    frame_row = np.repeat(np.arange(len(data.row_frames)), data.row_frames)[chosen]
    slices = model.lifter.slices
    write_pseudo_gt(args.output, {
        "points": points, "joint_names": np.array(union_joint_names(model.formats), dtype=str),
        "formats": np.array(model.formats, dtype=str),
        "format_start": np.array([slices[f].start for f in model.formats], dtype=np.int64),
        "format_stop": np.array([slices[f].stop for f in model.formats], dtype=np.int64),
        "dataset": np.array([data.names[g] for g in data.row_group[frame_row]], dtype=str),
        "sequence": data.row_sequence[frame_row].astype(str), "camera": data.row_camera[frame_row].astype(str),
        "frame": (chosen - data.row_start[frame_row]).astype(np.int64), "holdout": holdout,
        "model": np.array(model.name)})
    print(f"pseudo-GT: {len(points)} poses x {points.shape[1]} joints ({int(holdout.sum())} held out) "
          f"of {data.num_frames} training frames -> {args.output}", flush=True)
    return 0
