"""`posebridge triangulate`: 3D joints of a calibrated multi-view dataset from a detector's 2D."""

from __future__ import annotations

HELP = "triangulate a multi-view dataset's 2D detections into 3D joints (robust DLT)"
DESCRIPTION = (
    "Read a converted multi-view dataset (calibrated cameras, one index row per take x camera) and "
    "a detection file of it, triangulate every take robustly -- undistortion, the person chosen "
    "consistently across views, left/right swaps repaired, confidence-weighted DLT with views "
    "rejected by reprojection error, a temporal outlier filter -- and write the dataset again with "
    "these 3D joints (world mm, in the detections' keypoint format) and each view's reprojection "
    "error in its index (posebridge.sources.triangulated)."
)


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", required=True, metavar="H5", help="converted multi-view dataset (.h5)")
    parser.add_argument("--detections", required=True, metavar="H5", help="its 2D detections (.h5)")
    parser.add_argument("--spec", default="{}", metavar="JSON",
                        help="triangulation settings (JSON object or file): min_confidence, max_error_px, "
                             "person_error_px, swap_ratio, max_step_mm, filter_window, filter_sigmas, "
                             "filter_min_mm, max_gap (posebridge.geometry.triangulation)")
    parser.add_argument("--output", required=True, metavar="H5",
                        help="dataset with the triangulated joints (its Parquet index beside it)")
    parser.add_argument("--output-keypoints", metavar="H5",
                        help="also write the triangulated person's 2D in every view as a detection file: "
                             "the detections, with a view's main person replaced where another person its "
                             "detector found (the detections' 'others') is the one triangulated; what "
                             "`posebridge evaluate-real` lifts")


def main(args) -> int:
    import time

    import numpy as np

    from posebridge.data.detections import read_detections, write_detections
    from posebridge.data.store import open_dataset, write_dataset
    from posebridge.geometry.triangulation import TriangulationConfig
    from posebridge.sources.triangulated import person_keypoints, triangulate_dataset
    from posebridge.specs import load_spec

    config = TriangulationConfig.from_dict(load_spec(args.spec, "triangulate: --spec"))
    t0 = time.perf_counter()
    with open_dataset(args.dataset) as dataset, read_detections(args.detections) as detections:
        joints, index, results = triangulate_dataset(dataset, detections, config)
        write_dataset(args.output, name=dataset.name, skeleton=detections.keypoint_format,
                      role=dataset.role, joints_3d=joints, cameras=dataset.cameras, index=index)
        if args.output_keypoints:
            write_detections(args.output_keypoints, dataset=dataset.name, detector=detections.detector,
                             keypoint_format=detections.keypoint_format,
                             rows=dataset.index[["sequence", "camera", "frames"]],
                             keypoints=person_keypoints(dataset, detections, results))
    for _, row in index.iterrows():
        print(f"  {row['sequence']} {row['camera']}: reprojection median {row['reprojection_median_px']:.1f} px, "
              f"p90 {row['reprojection_p90_px']:.1f} px, own detection the person in "
              f"{100 * row['person_share']:.0f}% of frames, another detection in {100 * row['others_share']:.0f}%, "
              f"{row['swapped_pairs']} left/right pairs swapped back")
    missing = np.isnan(joints).any(axis=-1).mean()
    print(f"{dataset.name}: {index['sequence'].nunique()} takes, {len(joints)} frames, "
          f"{100 * missing:.1f}% joints missing, {time.perf_counter() - t0:.1f} s -> {args.output}")
    return 0
