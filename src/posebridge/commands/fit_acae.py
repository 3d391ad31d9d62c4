"""`posebridge fit-acae`: fit the affine-combining autoencoder on pseudo-GT."""

from __future__ import annotations

from posebridge.commands.options import add_device, add_no_progress

HELP = "fit the affine-combining autoencoder (ACAE) on pseudo-GT, with PCA and mean-pose baselines"
DESCRIPTION = """\
Fit posebridge.bridge.autoencoder.AffineCombiningAutoencoder over the union of the pseudo-GT's
joints (names <format>/<joint>, left/right paired by name, chiral weight sharing) with the paper's
recipe (Adam, projected L1 scaled by mean depth + 0.6 x the negative-weight regulariser, rate
dropping 10x at a third and two thirds of the steps) on the poses not held out, and score its
reconstruction MPJPE on the held-out poses beside PCA with 3 x L components and the mean pose.
Writes the model (.pt), that table and the per-epoch history (Parquet).
"""

DEFAULTS = {"n_latent_sided": 40, "n_latent_center": 8, "loss": "projected", "epochs": 30,
            "batch_size": 32, "learning_rates": [3e-2, 3e-3, 3e-4], "max_fit_poses": 8000}


def add_arguments(parser) -> None:
    parser.add_argument("--pseudo-gt", required=True, metavar="NPZ", help="pseudo-GT from `posebridge pseudo-gt`")
    parser.add_argument("--spec", default="{}", metavar="JSON",
                        help="fitting settings as JSON: n_latent_sided (40, both sides), n_latent_center (8), "
                             "loss (projected | 3d), epochs (30), batch_size (32), learning_rates "
                             "([0.03, 0.003, 0.0003]), max_fit_poses (8000: a random subset of the fitting "
                             "poses, to bound the time)")
    parser.add_argument("--output", required=True, metavar="PT", help="autoencoder file to write")
    parser.add_argument("--metrics", required=True, metavar="PARQUET",
                        help="held-out reconstruction table (ACAE, PCA 3L, mean pose) to write")
    parser.add_argument("--history", required=True, metavar="PARQUET", help="per-epoch fitting log to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset and the initial weights")
    add_device(parser, "cpu", "where to fit (the matrices are tiny: cpu is usually fastest)", threads=False)
    add_no_progress(parser)


def main(args) -> int:
    import time

    import numpy as np
    import pandas as pd

    from posebridge.bridge.autoencoder import (
        fit_acae,
        mean_pose_baseline,
        pca_baseline,
        reconstruction_error,
        save_acae,
    )
    from posebridge.atomic import write_parquet
    from posebridge.bridge.pseudo_gt import read_pseudo_gt
    from posebridge.specs import check_keys, load_spec
    from posebridge.device import resolve_device

    spec = load_spec(args.spec, "fit-acae: --spec")
    check_keys(spec, DEFAULTS, "fit-acae")
    spec = {**DEFAULTS, **spec}
    data = read_pseudo_gt(args.pseudo_gt)
    points, holdout, names = data["points"], data["holdout"].astype(bool), [str(n) for n in data["joint_names"]]
    fit_points, test_points = points[~holdout], points[holdout]
    rng = np.random.default_rng([args.seed, 15485863])
    if len(fit_points) > spec["max_fit_poses"]:
        fit_points = fit_points[np.sort(rng.choice(len(fit_points), spec["max_fit_poses"], replace=False))]
    device = str(resolve_device(args.device))
    started = time.perf_counter()
    model, history = fit_acae(fit_points, names, spec["n_latent_sided"], spec["n_latent_center"], chiral=True,
                              epochs=spec["epochs"], batch_size=spec["batch_size"],
                              learning_rates=spec["learning_rates"], loss=spec["loss"], seed=args.seed,
                              device=device, progress=not args.no_progress, val_points=test_points,
                              source=args.pseudo_gt)
    seconds = time.perf_counter() - started
    L = model.num_latents
    table = pd.DataFrame([
        {"method": f"ACAE ({spec['loss']} loss)", "coordinates": 3 * L,
         "holdout_mpjpe": reconstruction_error(model, test_points), "train_mpjpe": reconstruction_error(model, fit_points)},
        {"method": f"PCA ({3 * L} components)", "coordinates": 3 * L,
         "holdout_mpjpe": pca_baseline(fit_points, test_points, 3 * L),
         "train_mpjpe": pca_baseline(fit_points, fit_points, 3 * L)},
        {"method": "mean pose", "coordinates": 0, "holdout_mpjpe": mean_pose_baseline(fit_points, test_points),
         "train_mpjpe": mean_pose_baseline(fit_points, fit_points)},
    ])
    table["joints"] = len(names)
    table["fit_poses"], table["holdout_poses"] = len(fit_points), len(test_points)
    save_acae(args.output, model.cpu(), spec=spec, fit_poses=len(fit_points), seconds=seconds)
    write_parquet(args.metrics, table)
    write_parquet(args.history, history)
    print(table.to_string(index=False), flush=True)
    print(f"fitted {L} latents over {len(names)} joints on {len(fit_points)} poses in {seconds:.1f} s", flush=True)
    return 0
