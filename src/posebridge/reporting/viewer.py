"""An interactive 3D viewer of predictions against ground truth: one self-contained HTML page.

``viewer_sequence`` lifts one test row (a sequence seen by one camera) with every given model
and reads its ground truth; ``viewer_figure`` draws them as a plotly figure with a frame slider
and play / pause buttons (ground truth black, one colour per model, the same colours as the
report's figures); ``write_viewer`` writes the page with plotly.js embedded
(``include_plotlyjs=True``): it opens offline, from a file, with no CDN.

Coordinates: root-relative camera space in millimetres shown as (x right, z forward, up), as
``reporting.viz`` draws its matplotlib figures; every frame shares one cube of axes so motion is
not rescaled. Each model's legend entry gives its MPJPE over the frames shown; the note at the
top left gives each model's MPJPE in the current frame, one line per model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from posebridge.errors import DataError

DEFAULT_MAX_FRAMES = 150
DEFAULT_STRIDE = 2


@dataclass
class ViewerData:
    """What the viewer shows: (F, J, 3) mm root-relative camera-space poses of F frames."""

    title: str
    skeleton: str  # format name
    frames: np.ndarray  # (F,) frame indices within the row
    ground_truth: np.ndarray  # (F, J, 3)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # model name -> (F, J, 3)


def _pick_row(dataset, sequence: str | None, camera: str | None, dataset_path):
    """The test row to show: the first one, or the one named by ``sequence`` / ``camera``."""
    from posebridge.evaluation.evaluate import test_rows

    rows = test_rows(dataset)
    if sequence is not None:
        rows = rows[rows["sequence"] == sequence]
    if camera is not None:
        rows = rows[rows["camera"] == camera]
    if rows.empty:
        wanted = " ".join(f"{k} {v!r}" for k, v in (("sequence", sequence), ("camera", camera)) if v is not None)
        raise DataError(dataset_path, f"no test row{' with ' + wanted if wanted else ''}")
    return rows.iloc[0]


def _format_to_show(models, sources, requested: str | None, dataset_path) -> str:
    """The skeleton format every model predicts and the dataset has ground truth for: the
    requested one, else the first native one."""
    shared = [s.format for s in sources if all(s.format in m.formats for m in models)]
    if requested is not None:
        if requested not in shared:
            raise DataError(dataset_path, f"format {requested!r} is not one every model predicts with ground "
                                          f"truth here (these are: {', '.join(shared) or 'none'})")
        return requested
    if not shared:
        raise DataError(dataset_path, "no skeleton format that every model predicts has ground truth here")
    return shared[0]


def viewer_sequence(models, dataset, detections, *, sequence: str | None = None, camera: str | None = None,
                    fmt: str | None = None, max_frames: int = DEFAULT_MAX_FRAMES, stride: int = DEFAULT_STRIDE,
                    flip: bool = True, dataset_path="dataset") -> ViewerData:
    """Lift one test row of ``dataset`` (a ``store.Dataset``; ``detections`` its
    ``detections.Detections``) with each of ``models`` (``inference.lift.LiftingModel``); keep
    every ``stride``-th frame, at most ``max_frames`` of them. The models see the whole row."""
    from posebridge.evaluation.evaluate import evaluated_formats, ground_truth, root_relative
    from posebridge.geometry import skeletons
    from posebridge.inference.lift import lift
    from posebridge.reporting.viz import camera_label

    row = _pick_row(dataset, sequence, camera, dataset_path)
    fmt = _format_to_show(models, evaluated_formats(dataset, models[0].formats), fmt, dataset_path)
    keypoints = np.asarray(detections.get(row["sequence"], row["camera"]))
    cam = dataset.camera_for(row)
    source = next(s for s in evaluated_formats(dataset, [fmt]))
    truth = ground_truth(dataset, row, [source], len(keypoints))[fmt]
    shown = np.arange(0, len(keypoints), stride)[:max_frames]
    root = skeletons.get(fmt).root
    label = f"{dataset.name}, {row['sequence']}, camera {camera_label(row['sequence'], row['camera'])}, {fmt}"
    data = ViewerData(label, fmt, shown, truth[shown])
    width, height = (int(v) for v in cam.image_size)
    for model in models:
        predicted = lift(model, keypoints, width, height, flip=flip,
                         intrinsics=np.asarray(cam.intrinsics, np.float64),
                         distortion=np.asarray(cam.distortion, np.float64))
        data.predictions[model.name] = root_relative(np.asarray(predicted[fmt], np.float64), root)[shown]
    return data


def _bone_lines(poses: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(F, J, 3) camera-space poses -> (F, 3E, 3) plot coordinates (x, z, up): each bone's two
    ends followed by a NaN point, so one line trace draws every bone apart."""
    from posebridge.reporting.viz import camera_to_plot

    points = camera_to_plot(poses)[:, edges]  # (F, E, 2, 3)
    gap = np.full(points.shape[:2] + (1, 3), np.nan)
    return np.concatenate([points, gap], axis=2).reshape(len(poses), -1, 3)


def _frame_errors(data: ViewerData) -> dict[str, np.ndarray]:
    """model -> (F,) MPJPE per frame (mm), NaN ground-truth joints skipped."""
    errors = {}
    for name, pred in data.predictions.items():
        distance = np.linalg.norm(pred - data.ground_truth, axis=-1)
        with np.errstate(invalid="ignore"):
            errors[name] = np.nanmean(np.where(np.isfinite(distance), distance, np.nan), axis=-1)
    return errors


def _traces(lines: dict[str, np.ndarray], f: int, colors: dict[str, str], names: dict[str, str]):
    import plotly.graph_objects as go

    return [go.Scatter3d(x=xyz[f, :, 0], y=xyz[f, :, 1], z=xyz[f, :, 2], mode="lines+markers", name=names[key],
                         line={"color": colors[key], "width": 7 if key == "" else 5},
                         marker={"size": 2.5, "color": colors[key]}, connectgaps=False, hoverinfo="name")
            for key, xyz in lines.items()]


def _note(data: ViewerData, errors: dict[str, np.ndarray], f: int) -> dict:
    """The top-left note of frame ``f``: its index and each model's error, one line per model."""
    lines = [f"frame {int(data.frames[f])}"]
    lines += [f"{name}: {errors[name][f]:.0f} mm" for name in data.predictions]
    return {"text": "<br>".join(lines), "xref": "paper", "yref": "paper", "x": 0.0, "y": 1.0,
            "xanchor": "left", "yanchor": "top", "align": "left", "showarrow": False, "font": {"size": 12}}


def viewer_figure(data: ViewerData):
    """The plotly figure: one trace for the ground truth and one per model, a frame per shown
    frame (slider + play / pause), fixed cubic axes around every pose shown."""
    import plotly.graph_objects as go

    from posebridge.geometry import skeletons
    from posebridge.reporting.viz import GT_COLOR, PRED_COLORS

    edges = np.asarray(skeletons.get(data.skeleton).edges).reshape(-1, 2)
    lines = {"": _bone_lines(data.ground_truth, edges)}  # key "": the ground truth; the others: model names
    lines.update({name: _bone_lines(pred, edges) for name, pred in data.predictions.items()})
    errors = _frame_errors(data)
    colors = {"": GT_COLOR, **{n: PRED_COLORS[k % len(PRED_COLORS)] for k, n in enumerate(data.predictions)}}
    names = {"": "ground truth", **{n: f"{n} (MPJPE {np.nanmean(errors[n]):.0f} mm)" for n in data.predictions}}
    frames = [go.Frame(data=_traces(lines, f, colors, names), name=str(f),
                       layout={"annotations": [_note(data, errors, f)]}) for f in range(len(data.frames))]
    fig = go.Figure(data=_traces(lines, 0, colors, names), frames=frames)
    fig.update_layout(**_layout(data, lines, _note(data, errors, 0)))
    return fig


def _layout(data: ViewerData, lines: dict[str, np.ndarray], note: dict) -> dict:
    """Title, the cubic scene, the legend, the slider and the play / pause buttons."""
    points = np.concatenate([xyz.reshape(-1, 3) for xyz in lines.values()])
    points = points[np.isfinite(points).all(axis=1)]
    centre = (points.min(axis=0) + points.max(axis=0)) / 2 if len(points) else np.zeros(3)
    half = max(float((points.max(axis=0) - points.min(axis=0)).max()) / 2 * 1.1, 100.0) if len(points) else 1000.0
    axes = {name: {"title": {"text": title}, "range": [centre[k] - half, centre[k] + half]}
            for k, (name, title) in enumerate((("xaxis", "x (mm, right)"), ("yaxis", "z (mm, forward)"),
                                               ("zaxis", "up (mm)")))}
    play = {"frame": {"duration": 80, "redraw": True}, "fromcurrent": True, "transition": {"duration": 0}}
    still = {"frame": {"duration": 0, "redraw": True}, "mode": "immediate", "transition": {"duration": 0}}
    steps = [{"label": str(int(t)), "method": "animate", "args": [[str(f)], still]}
             for f, t in enumerate(data.frames)]
    return {
        # left-aligned on two lines: clear of the mode bar's buttons at the top right
        "title": {"text": f"Prediction vs ground truth (root-relative, camera space, mm)<br><sub>{data.title}</sub>",
                  "x": 0.01, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 15}},
        "scene": {**axes, "aspectmode": "cube", "camera": {"eye": {"x": 1.3, "y": -1.6, "z": 0.5}}},
        "legend": {"x": 1.0, "xanchor": "right", "y": 1.0, "bgcolor": "rgba(255,255,255,0.7)"},
        "margin": {"l": 10, "r": 10, "t": 80, "b": 110},  # the slider and the buttons sit below the scene
        "annotations": [note],
        "updatemenus": [{"type": "buttons", "direction": "left", "x": 0.0, "y": 0.0, "xanchor": "left",
                         "yanchor": "top", "pad": {"t": 30, "r": 10},
                         "buttons": [{"label": "play", "method": "animate", "args": [None, play]},
                                     {"label": "pause", "method": "animate", "args": [[None], still]}]}],
        "sliders": [{"active": 0, "steps": steps, "x": 0.12, "len": 0.88, "y": 0.0, "yanchor": "top",
                     "pad": {"t": 30}, "currentvalue": {"prefix": "frame "}}],
        "height": 760,
    }


def write_viewer(path: str | os.PathLike, fig) -> None:
    """The figure as one HTML page with plotly.js embedded (no network needed), written atomically."""
    from posebridge.atomic import write_text

    write_text(path, fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False,
                                 config={"responsive": True, "displaylogo": False}))
