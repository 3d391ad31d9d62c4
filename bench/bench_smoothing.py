"""Temporal smoothing's effect on jitter and accuracy: `python -m bench.bench_smoothing [RESULTS]`.

For every test row of the synthetic test sets (``RESULTS/datasets/synth_*.h5`` with their
simulated detections) and every view of the triangulated Pose2Sim takes
(``RESULTS/triangulated/pose2sim/mediapipe.h5`` with ``RESULTS/detections/pose2sim/mediapipe.h5``),
lift the 2D with the model as it is, with the 2D smoothed before lifting, the 3D smoothed after,
and both (``posebridge.inference.smoothing``, Savitzky-Golay, each ``--windows`` size), and print:

- MPJPE (mm): synthetic, the native format root-relative against the ground truth; real, the 12
  limb joints hip-centred against the triangulation (``evaluation.label_free``), no alignment;
- PA-MPJPE (mm): the same after a per-pose similarity alignment;
- MPJVE (mm/frame): the same joints' first differences against the reference's;
- accel. error (mm/frame^2): second differences against the reference's (as HMMR/VIBE report it);
- accel. (mm/frame^2): the mean magnitude of the prediction's own second differences, the jitter
  seen without any reference (the reference's own is printed beside it).

Means are frame-weighted over rows. Nothing is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

SYNTHETIC = ("synth_heldout_camera", "synth_heldout_motion", "synth_h36m", "synth_3dhp", "synth_3dpw",
             "synth_panoptic", "synth_humaneva", "synth_wild")


def acceleration(poses: np.ndarray) -> np.ndarray:
    """(T, J, 3) -> (T - 2, J, 3) second differences along time."""
    return poses[2:] - 2 * poses[1:-1] + poses[:-2]


def measures(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """MPJPE, PA-MPJPE, MPJVE, acceleration error and mean acceleration of (T, J, 3) poses against a
    reference of the same shape (NaN reference joints skipped)."""
    from posebridge.evaluation import metrics

    acc_ref, acc_pred = acceleration(ref), acceleration(pred)
    return {"mpjpe": metrics.mpjpe(pred, ref), "pa_mpjpe": metrics.pa_mpjpe(pred, ref),
            "mpjve": metrics.mpjve(pred, ref),
            "accel_error": metrics.mpjpe(acc_pred, acc_ref),
            "accel": float(np.linalg.norm(acc_pred, axis=-1).mean()),
            "reference_accel": float(np.nanmean(np.linalg.norm(acc_ref, axis=-1)))}


def variants(model, keypoints: np.ndarray, camera, windows: list[int]) -> dict[str, dict[str, np.ndarray]]:
    """name -> format -> (T, J, 3) root-relative predictions of one row: 'none', and per window
    '2d w', '3d w', 'both w'."""
    from posebridge.inference.lift import lift
    from posebridge.inference.smoothing import Smoothing, smooth_keypoints, smooth_poses

    def lifted(points):
        return lift(model, points, camera.width, camera.height, intrinsics=camera.intrinsics,
                    distortion=camera.distortion)

    seen = (keypoints[..., 2] > 0).any(axis=1)
    out = {"none": lifted(keypoints)}
    for w in windows:
        smoothing = Smoothing("both", w)
        smoothed_2d = lifted(smooth_keypoints(keypoints, smoothing))
        out[f"2d {w}"] = smoothed_2d
        out[f"3d {w}"] = {f: smooth_poses(p, seen, smoothing) for f, p in out["none"].items()}
        out[f"both {w}"] = {f: smooth_poses(p, seen, smoothing) for f, p in smoothed_2d.items()}
    return out


def synthetic_rows(model, results: Path, windows: list[int], max_rows: int | None):
    """(dataset, variant, frames, measures) per row of the synthetic test sets."""
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation.evaluate import evaluated_formats, ground_truth, root_relative, test_rows
    from posebridge.geometry import skeletons

    for name in SYNTHETIC:
        path = results / "datasets" / f"{name}.h5"
        if not path.exists():
            continue
        with open_dataset(path) as dataset, read_detections(results / "detections" / name / "simulated.h5") as det:
            native = [s for s in evaluated_formats(dataset, model.formats) if s.native][:1]
            rows = test_rows(dataset)
            for _, row in rows.head(max_rows).iterrows() if max_rows else rows.iterrows():
                keypoints = np.asarray(det.get(row["sequence"], row["camera"]))
                truth = ground_truth(dataset, row, native, len(keypoints))[native[0].format]
                fmt = native[0].format
                for variant, poses in variants(model, keypoints, dataset.camera_for(row), windows).items():
                    pred = root_relative(np.asarray(poses[fmt], np.float64), skeletons.get(fmt).root)
                    yield name, variant, len(keypoints), measures(pred, truth)


def real_rows(model, results: Path, windows: list[int]):
    """(take, variant, frames, measures) per view of the triangulated Pose2Sim takes, on the hip-
    centred limb joints of the frames the view shows the triangulated person in."""
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation import label_free
    from posebridge.evaluation.real_footage import sees_person

    fmt = "h36m_17"
    with open_dataset(results / "triangulated" / "pose2sim" / "mediapipe.h5") as dataset, \
            read_detections(results / "detections" / "pose2sim" / "mediapipe.h5") as det:
        for _, row in dataset.index.iterrows():
            camera = dataset.camera_for(row)
            joints = dataset.sequence_3d(row["sequence"]).astype(np.float64)
            keypoints = np.asarray(det.get(row["sequence"], row["camera"]))
            shown = sees_person(joints, keypoints, camera)
            reference = label_free.hip_centred(label_free.limb_joints(camera.world_to_camera(joints), "coco_17"))
            reference = np.where(shown[:, None, None], reference, np.nan)
            for variant, poses in variants(model, keypoints, camera, windows).items():
                pred = label_free.hip_centred(label_free.limb_joints(np.asarray(poses[fmt], np.float64), fmt))
                yield row["sequence"], variant, int(shown.sum()), measures(pred, reference)


def summarise(records: list[tuple], label: str) -> None:
    import pandas as pd

    table = pd.DataFrame([{"set": s, "variant": v, "frames": n, **m} for s, v, n, m in records])
    columns = ["mpjpe", "pa_mpjpe", "mpjve", "accel_error", "accel", "reference_accel"]
    weighted = table[columns].mul(table["frames"], axis=0).assign(set=table["set"], variant=table["variant"],
                                                                    frames=table["frames"])
    for by, title in ((["variant"], "all sets"), (["set", "variant"], "per set")):
        grouped = weighted.groupby(by, sort=False)
        mean = grouped[columns].sum().div(grouped["frames"].sum(), axis=0)
        print(f"\n{label}, {title} (frame-weighted means; mm, mm/frame, mm/frame^2)")
        print(mean.round(2).to_string())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_smoothing", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", help="a results directory of `make run`")
    parser.add_argument("--model", default=None, help="model directory (default: RESULTS/models/initial)")
    parser.add_argument("--windows", default="5,9,15", help="smoothing windows in frames, comma-separated")
    parser.add_argument("--max-rows", type=int, default=None, help="test rows per synthetic set (default: all)")
    args = parser.parse_args(argv)
    from posebridge.inference.lift import load_model

    results = Path(args.results)
    model = load_model(args.model or results / "models" / "initial", device="cpu")
    windows = [int(w) for w in args.windows.split(",")]
    t0 = time.perf_counter()
    summarise(list(synthetic_rows(model, results, windows, args.max_rows)), "synthetic test sets")
    if (results / "triangulated" / "pose2sim" / "mediapipe.h5").exists():
        summarise(list(real_rows(model, results, windows)), "Pose2Sim takes vs triangulation (limb joints)")
    print(f"\n{model.name}: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
