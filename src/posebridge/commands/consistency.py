"""`posebridge consistency`: how consistent a model's skeleton formats are on the test sets."""

from __future__ import annotations

from posebridge.commands.options import add_datasets_with_detections, add_device, add_model, load_model_from

HELP = "measure how well each predicted format is explained by the others (skeleton consistency)"
DESCRIPTION = """\
Lift the test rows of every given dataset with a model and measure, per skeleton format, the
held-out MPJPE (mm) of its joints as the best affine combination of the other formats' predicted
joints (fitted on the first half of the frames, scored on the second;
posebridge.bridge.consistency), and, with --acae, the autoencoder's reconstruction MPJPE of the
predictions. Writes one Parquet row per format plus an 'all' row (the mean over formats).
"""


def add_arguments(parser) -> None:
    add_model(parser)
    add_datasets_with_detections(parser, "a dataset with test rows; repeat for several")
    parser.add_argument("--acae", metavar="PT", default=None, help="fitted autoencoder (also score its reconstruction)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N",
                        help="use at most N frames of each test row (default: all)")
    parser.add_argument("--output", required=True, metavar="PARQUET", help="table to write")
    add_device(parser)


def main(args) -> int:
    import numpy as np
    import pandas as pd

    from posebridge.atomic import write_parquet
    from posebridge.bridge.consistency import (
        acae_consistency,
        affine_consistency,
        predict_test_frames,
    )
    from posebridge.data.detections import read_detections
    from posebridge.errors import ConfigError
    from posebridge.data.store import open_dataset

    if len(args.dataset) != len(args.detections):
        raise ConfigError("consistency: give one --detections per --dataset, in the same order")
    model = load_model_from(args)
    parts = []
    for h5, det in zip(args.dataset, args.detections):
        with open_dataset(h5) as dataset, read_detections(det) as detections:
            parts.append(predict_test_frames(model, dataset, detections, args.max_frames, dataset_path=h5))
    # fit on the first half of each test set's frames, score on the second half
    points = np.concatenate(parts)
    scored = np.concatenate([np.arange(len(p)) >= len(p) // 2 for p in parts])
    per_format = affine_consistency(points, model.slices, scored)
    rows = [{"model": model.name, "format": f, "affine_mm": v} for f, v in per_format.items()]
    overall = {"model": model.name, "format": "all",
               "affine_mm": float(np.mean(list(per_format.values()))) if per_format else float("nan")}
    if args.acae:
        from posebridge.bridge.autoencoder import load_acae

        acae, _ = load_acae(args.acae)
        if acae.num_joints != points.shape[1]:
            raise ConfigError(f"consistency: the autoencoder has {acae.num_joints} joints, the model "
                              f"{points.shape[1]} outputs")
        overall["acae_mm"] = acae_consistency(acae, points)
    table = pd.DataFrame(rows + [overall])
    if "acae_mm" not in table:
        table["acae_mm"] = np.nan
    table["frames"] = len(points)
    write_parquet(args.output, table)
    print(table.to_string(index=False), flush=True)
    return 0
