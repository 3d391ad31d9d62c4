"""`posebridge detect-2d`: 2D keypoints for every sequence x camera of a dataset."""

from __future__ import annotations

from posebridge.commands.options import add_no_progress

HELP = "2D keypoint detection for every sequence x camera of a dataset"
DESCRIPTION = """\
Run a 2D detector over every index row (sequence x camera) of a converted dataset and write the
keypoints (pixels + confidence) in the detector's keypoint format. Detector 'simulated' projects the
synthetic benchmark's COCO-17 landmarks through each camera and adds the errors of a real detector
(jitter, drift, misses, left/right swaps, outliers, confidence); its error_scale (1.0 = a good
detector on Human3.6M) scales them. 'mediapipe' runs MediaPipe Pose on the dataset's videos or image
folders, 'imported' reads existing detection files (VideoPose3D 2D npz, Detectron-style npz), 'gt2d'
projects the dataset's own 3D joints through its cameras (ground-truth 2D), 'builtin' takes the 2D
keypoints the dataset's own files carry (MPI-INF-3DHP and MuPoTS ground truth, 3DPW OpenPose; spec:
source, path, convert).
"""

DETECTORS = ("simulated", "mediapipe", "imported", "gt2d", "builtin")


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", required=True, metavar="H5",
                        help="converted dataset (.h5; its Parquet index beside it)")
    parser.add_argument("--detector", required=True,
                        help=f"detector name: {', '.join(DETECTORS)}, or a config entry whose spec names "
                             "its kind ('kind' setting; posebridge.sources.detectors)")
    parser.add_argument("--spec", default="{}", metavar="JSON",
                        help="detector settings as a JSON object or the path of a JSON file; "
                             "kind (which detector, when the name is not one); simulated: error_scale "
                             "(1.0; 0 = exact projections); gt2d: keypoint_format (coco_17); mediapipe: "
                             "others (further people per frame to record, for triangulation); mediapipe / "
                             "imported: see `python -c 'help(\"posebridge.sources.detectors\")'`")
    parser.add_argument("--seed", type=int, default=0, help="random seed (runs with one seed are identical)")
    parser.add_argument("--output", required=True, metavar="H5",
                        help="detection file to write (results/detections/<dataset>/<detector>.h5)")
    add_no_progress(parser)


def main(args) -> int:
    import time

    import numpy as np

    from posebridge.data.detections import write_detections
    from posebridge.errors import ConfigError
    from posebridge.data.store import open_dataset
    from posebridge.specs import load_spec

    from posebridge.sources.detectors import KIND_KEY, detect_dataset, detect_others, handles, kind_of

    spec_dict = load_spec(args.spec, "--spec")
    real = handles(args.detector, spec_dict)
    if not real and kind_of(args.detector, spec_dict) != "simulated":
        raise ConfigError(f"unknown 2D detector {args.detector!r} (kind {kind_of(args.detector, spec_dict)!r}); "
                          f"known kinds: {', '.join(DETECTORS)}")
    t0 = time.perf_counter()
    others = None
    with open_dataset(args.dataset) as dataset:
        if real:
            keypoints, keypoint_format = detect_dataset(args.detector, dataset, spec_dict, args.seed,
                                                        progress=not args.no_progress)
            others = detect_others(args.detector, dataset, spec_dict, keypoints, progress=not args.no_progress)
        else:
            from posebridge.sources.detectors.simulated import (
                KEYPOINT_FORMAT,
                DetectorSpec,
                simulate_detections,
            )

            spec = DetectorSpec.from_dict({k: v for k, v in spec_dict.items() if k != KIND_KEY})
            keypoints = simulate_detections(dataset, spec, args.seed, progress=not args.no_progress)
            keypoint_format = KEYPOINT_FORMAT
        write_detections(args.output, dataset=dataset.name, detector=args.detector,
                         keypoint_format=keypoint_format,
                         rows=dataset.index[["sequence", "camera", "frames"]], keypoints=keypoints,
                         others=others)
    found = keypoints[..., 2] > 0
    print(f"{dataset.name}: {len(dataset.index)} rows, {len(keypoints)} frames, "
          f"{100 * (1 - found.mean()):.1f}% joints missed, mean confidence "
          f"{float(np.mean(keypoints[..., 2][found])) if found.any() else 0:.2f}, "
          f"{time.perf_counter() - t0:.1f} s -> {args.output}")
    return 0
