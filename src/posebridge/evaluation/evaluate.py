"""Evaluate a lifting model on a test set: every metric per sequence x camera x skeleton format.

For each test row (one sequence seen by one camera) the model lifts the row's 2D detections;
the ground truth is the row's world joints moved into that camera and made root-relative.
A model is scored on every format it predicts that the dataset can supply ground truth for:

- the dataset's own skeleton (``native``), directly or through an exact ``skeletons.mapping``
  (data stored as h36m_32 scores an h36m_17 head),
- every ``extra/<format>`` array of a synthetic dataset (the benchmark knows all formats of its body).

Each row is also scored for the trivial baseline, model ``mean_pose``: the model's mean training
pose (per format) predicted for every frame. The table therefore says by how much the lifter beats
doing nothing.

Output table (one row per model x dataset x format x sequence x camera), see ``COLUMNS``:
``model`` (the lifter's name, or ``mean_pose``), ``source_model`` (the lifter whose predictions or
mean pose these are; equals ``model`` for lifter rows), ``dataset``, ``format``, ``native``,
``sequence``, ``camera``, ``subject``, ``action``, ``frames`` (frames scored), the metrics
``mpjpe, pa_mpjpe, n_mpjpe, mpjve`` (mm) and ``pck, auc, cps`` (%), and their thresholds in
``pck_threshold, auc_threshold, cps_threshold`` (mm). Threshold-free column names keep tables from
runs with different thresholds concatenable; the report prints e.g. "PCK@150" from the threshold
columns.

Datasets whose frames carry labels also get a breakdown table (``evaluation.breakdown``): 3DHP's
test set per activity, MuPoTS's occluded vs visible joints.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

import numpy as np
import pandas as pd

from posebridge.errors import ConfigError, DataError
from posebridge.specs import check_keys, load_spec

BASELINE_MODEL = "mean_pose"
METRICS = ("mpjpe", "pa_mpjpe", "n_mpjpe", "mpjve", "pck", "auc", "cps")
KEY_COLUMNS = ("model", "source_model", "dataset", "format", "native", "sequence", "camera",
               "subject", "action", "frames")
THRESHOLD_COLUMNS = ("pck_threshold", "auc_threshold", "cps_threshold")
COLUMNS = KEY_COLUMNS + METRICS + THRESHOLD_COLUMNS


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings (the workflow's ``evaluate:`` config block, passed as JSON)."""

    flip_test: bool = True  # average with the prediction for the mirrored input
    pck_threshold: float = 150.0  # mm; PCK counts joints with error strictly below it
    auc_threshold: float = 150.0  # mm; continuous AUC = mean of max(0, 1 - d / t)
    cps_threshold: float = 200.0  # mm; CPS counts poses whose worst joint is below it
    max_frames_per_sequence: int | None = None  # score only the first N frames of each row
    example_frames: int = 4  # frames saved for the report's skeleton renderings

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "EvalConfig":
        values = dict(values or {})
        check_keys(values, [f.name for f in dataclasses.fields(cls)], "evaluate")
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def parse(cls, spec: str | None) -> "EvalConfig":
        """From a JSON string or the path of a JSON file (empty/None -> defaults)."""
        return cls.from_dict(load_spec(spec, "evaluate: --spec"))

    def validate(self) -> None:
        if not isinstance(self.flip_test, bool):
            raise ConfigError(f"evaluate: flip_test must be true or false, got {self.flip_test!r}")
        for key in ("pck_threshold", "auc_threshold", "cps_threshold"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"evaluate: {key} must be a positive number of millimetres, got {value!r}")
        n = self.max_frames_per_sequence
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"evaluate: max_frames_per_sequence must be null or a positive integer, got {n!r}")
        e = self.example_frames
        if isinstance(e, bool) or not isinstance(e, int) or e < 0:
            raise ConfigError(f"evaluate: example_frames must be a non-negative integer, got {e!r}")


class Lifter(Protocol):
    """What evaluation needs of a model (``inference.lift.LiftingModel`` has it; tests inject stubs)."""

    name: str
    formats: list[str]
    mean_pose: dict[str, np.ndarray]  # format -> (J, 3) mm, root-relative camera space


# lift(model, keypoints (T,17,3) px+conf, width, height, flip=..., intrinsics=(4,), distortion=(5,),
#      distortion_model=name)
#   -> {format: (T,J,3) mm}
LiftFn = Callable[..., dict]


def root_relative(joints: np.ndarray, root: int) -> np.ndarray:
    """(..., J, 3) -> the same joints minus the root joint of each pose."""
    return joints - joints[..., root:root + 1, :]


@dataclass(frozen=True)
class FormatSource:
    """Where the ground truth of one evaluated format comes from."""

    format: str
    native: bool  # the dataset's own skeleton (directly or through an exact mapping)
    extra: bool  # read from the dataset's extra/<format> array instead of joints_3d


def evaluated_formats(dataset, model_formats: Iterable[str]) -> list[FormatSource]:
    """The formats the model predicts that the dataset has ground truth for, native first."""
    from posebridge.geometry import skeletons

    model_formats = list(model_formats)
    native = dataset.skeleton.name
    sources = []
    for fmt in model_formats:
        if fmt == native:
            sources.append(FormatSource(fmt, native=True, extra=False))
            continue
        try:
            skeletons.mapping(native, fmt)
        except ConfigError:
            continue  # no exact mapping from the stored skeleton to this one
        sources.append(FormatSource(fmt, native=True, extra=False))
    have = {s.format for s in sources}
    extras = set(dataset.extra_formats)
    sources += [FormatSource(fmt, native=False, extra=True) for fmt in model_formats
                if fmt in extras and fmt not in have]
    return sources


def ground_truth(dataset, row, sources: list[FormatSource], frames: int) -> dict[str, np.ndarray]:
    """Root-relative camera-space ground truth (frames, J, 3) mm per evaluated format."""
    from posebridge.geometry import skeletons

    camera = dataset.camera_for(row)
    native = dataset.skeleton.name
    world_native = None
    result = {}
    for source in sources:
        if source.extra:
            world = np.asarray(dataset.sequence_extra(source.format, row["sequence"]))[:frames]
        else:
            if world_native is None:
                world_native = np.asarray(dataset.sequence_3d(row["sequence"]))[:frames]
            world = world_native if source.format == native else skeletons.convert(world_native, native, source.format)
        cam = np.asarray(camera.world_to_camera(world.astype(np.float64)))
        result[source.format] = root_relative(cam, skeletons.get(source.format).root)
    return result


def score(pred: np.ndarray, gt: np.ndarray, config: EvalConfig) -> dict[str, float]:
    """Every metric of root-relative (T, J, 3) mm poses; NaN ground-truth joints are ignored."""
    from posebridge.evaluation import metrics

    return {
        "mpjpe": metrics.mpjpe(pred, gt),
        "pa_mpjpe": metrics.pa_mpjpe(pred, gt),
        "n_mpjpe": metrics.n_mpjpe(pred, gt),
        # a velocity needs two frames
        "mpjve": metrics.mpjve(pred, gt) if len(gt) > 1 else float("nan"),
        "pck": metrics.pck(pred, gt, threshold=config.pck_threshold),
        "auc": metrics.auc(pred, gt, threshold=config.auc_threshold),
        "cps": metrics.cps(pred, gt, threshold=config.cps_threshold),
    }


def test_rows(dataset) -> pd.DataFrame:
    """The rows to evaluate: every row of a ``test`` dataset, else the ``test`` split."""
    rows = dataset.index if dataset.role == "test" else dataset.rows("test")
    return rows.reset_index(drop=True)


def example_positions(frames_per_row: list[int], count: int) -> list[tuple[int, int]]:
    """``count`` (row, frame) pairs evenly spaced over all rows' frames laid end to end."""
    total = int(sum(frames_per_row))
    if count <= 0 or total == 0:
        return []
    flat = np.unique(np.round(np.linspace(0, total - 1, min(count, total))).astype(int))
    starts = np.cumsum([0] + list(frames_per_row))[:-1]
    rows = np.searchsorted(starts, flat, side="right") - 1
    return [(int(r), int(f - starts[r])) for r, f in zip(rows, flat)]


@dataclass
class Evaluation:
    """The result of evaluating one model on one dataset."""

    table: pd.DataFrame  # columns COLUMNS
    examples: dict[str, np.ndarray]  # arrays for the report's renderings (see ``evaluate``)
    breakdown: pd.DataFrame | None = None  # columns breakdown.BREAKDOWN_COLUMNS; empty without labels


def evaluate(model: Lifter, dataset, detections, config: EvalConfig, *, lift: LiftFn | None = None,
             dataset_path: str | os.PathLike = "dataset", detections_path: str | os.PathLike = "detections",
             progress: bool = True) -> Evaluation:
    """Score ``model`` and its mean-pose baseline on every test row of ``dataset``.

    ``dataset`` is a ``store.Dataset``; ``detections`` a ``detections.Detections`` holding coco_17
    keypoints (T, 17, 3) (px, px, confidence) for each of the dataset's rows. ``lift`` defaults to
    ``inference.lift.lift`` (injectable for tests). The paths only name files in error messages.

    Returns the metric table (``COLUMNS``) and the examples: ``formats``, ``native_formats``
    (names), ``pred_<format>`` / ``gt_<format>`` (E, J, 3) mm root-relative camera space,
    ``keypoints`` (E, 17, 3) px + confidence, ``image_size`` (E, 2) width/height px,
    ``sequence`` / ``camera`` (E,) str, ``frame`` (E,) index within the row, ``model``, ``dataset``,
    ``keypoint_format``; E = ``config.example_frames`` frames evenly spaced over the test rows.
    """
    from tqdm import tqdm

    if lift is None:
        from posebridge.inference.lift import lift
    rows, sources = _checked_inputs(model, dataset, detections, dataset_path, detections_path)
    limit = config.max_frames_per_sequence
    frames_per_row = [int(n) if limit is None else min(int(n), limit) for n in rows["frames"]]
    wanted = {}
    for r, f in example_positions(frames_per_row, config.example_frames):
        wanted.setdefault(r, []).append(f)
    picked: list[dict] = []

    records, breakdown = [], []
    for r, row in tqdm(rows.iterrows(), total=len(rows), desc=f"evaluate {model.name} on {dataset.name}",
                       unit="row", disable=not progress):
        frames = frames_per_row[r]
        keypoints = np.asarray(detections.get(row["sequence"], row["camera"]))
        if len(keypoints) != int(row["frames"]):
            raise DataError(detections_path, f"sequence {row['sequence']!r} camera {row['camera']!r} has "
                                             f"{len(keypoints)} detected frames, the dataset {row['frames']}")
        keypoints = keypoints[:frames]
        camera = dataset.camera_for(row)
        width, height = (int(v) for v in camera.image_size)
        predicted = lift(model, keypoints, width, height, flip=config.flip_test,
                         intrinsics=np.asarray(camera.intrinsics, dtype=np.float64),
                         distortion=np.asarray(camera.distortion, dtype=np.float64),
                         distortion_model=camera.distortion_model)
        truth = ground_truth(dataset, row, sources, frames)
        predicted = {s.format: root_relative(np.asarray(predicted[s.format], dtype=np.float64),
                                             _root(s.format)) for s in sources}
        records += _row_records(model, dataset.name, row, frames, sources, predicted, truth, config)
        breakdown += _row_breakdown(model, dataset, row, frames, predicted, truth, config)
        for f in wanted.get(r, []):
            picked.append({"sequence": str(row["sequence"]), "camera": str(row["camera"]), "frame": f,
                           "keypoints": keypoints[f], "image_size": (width, height),
                           "pred": {k: v[f] for k, v in predicted.items()},
                           "gt": {k: v[f] for k, v in truth.items()}})

    table = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    table["frames"] = table["frames"].astype("int64")
    table["native"] = table["native"].astype(bool)
    examples = _examples(picked, sources, model.name, dataset.name,
                         getattr(detections, "keypoint_format", "coco_17"))
    from posebridge.evaluation.breakdown import breakdown_table
    return Evaluation(table, examples, breakdown_table(breakdown))


def _row_breakdown(model: Lifter, dataset, row, frames: int, predicted: dict, truth: dict,
                   config: EvalConfig) -> list[dict]:
    """The per-activity / occlusion records of one test row, model and mean-pose baseline."""
    from posebridge.evaluation.breakdown import breakdown_records, row_labels

    labels = row_labels(dataset, row["sequence"], frames)
    if not labels:
        return []
    base = {"dataset": dataset.name, "sequence": str(row["sequence"]), "camera": str(row["camera"]),
            "source_model": model.name}
    mean = {f: np.broadcast_to(root_relative(np.asarray(model.mean_pose[f], np.float64), _root(f)), gt.shape)
            for f, gt in truth.items()}
    return [*breakdown_records({**base, "model": model.name}, dataset.skeleton.name, predicted, truth, labels, config),
            *breakdown_records({**base, "model": BASELINE_MODEL}, dataset.skeleton.name, mean, truth, labels, config)]


def _checked_inputs(model: Lifter, dataset, detections, dataset_path, detections_path):
    """The test rows of ``dataset`` and the formats to score; DataError when the model, the
    dataset and the detections do not fit together."""
    given, taken = getattr(detections, "keypoint_format", None), getattr(model, "keypoint_format", None)
    if given is not None and taken is not None and given != taken:  # same joint count, other points
        raise DataError(detections_path, f"keypoints are {given}; model {model.name!r} takes {taken}")
    rows = test_rows(dataset)
    if rows.empty:
        raise DataError(dataset_path, f"dataset {dataset.name!r} has no test rows (role {dataset.role!r}, "
                                      "no row with split == 'test')")
    sources = evaluated_formats(dataset, model.formats)
    if not sources:
        raise DataError(dataset_path, f"model {model.name!r} predicts {', '.join(model.formats)}, none of "
                                      f"which this dataset has ground truth for (skeleton "
                                      f"{dataset.skeleton.name}, extra formats: "
                                      f"{', '.join(dataset.extra_formats) or 'none'})")
    missing_mean = [s.format for s in sources if s.format not in model.mean_pose]
    if missing_mean:
        raise DataError(dataset_path, f"model {model.name!r} has no mean pose for {', '.join(missing_mean)}")
    return rows, sources


def _row_records(model: Lifter, dataset_name: str, row, frames: int, sources: list[FormatSource],
                 predicted: dict, truth: dict, config: EvalConfig) -> list[dict]:
    """The table rows of one test row: the model and the mean-pose baseline in every format."""
    base = {"dataset": dataset_name, "sequence": str(row["sequence"]), "camera": str(row["camera"]),
            "subject": str(row["subject"]), "action": str(row["action"]), "frames": frames,
            "source_model": model.name, "pck_threshold": float(config.pck_threshold),
            "auc_threshold": float(config.auc_threshold), "cps_threshold": float(config.cps_threshold)}
    records = []
    for s in sources:
        gt = truth[s.format]
        mean = root_relative(np.asarray(model.mean_pose[s.format], dtype=np.float64), _root(s.format))
        mean = np.broadcast_to(mean, gt.shape)
        for name, pred in ((model.name, predicted[s.format]), (BASELINE_MODEL, mean)):
            records.append({**base, "model": name, "format": s.format, "native": s.native,
                            **score(pred, gt, config)})
    return records


def _root(fmt: str) -> int:
    from posebridge.geometry import skeletons

    return skeletons.get(fmt).root


def _examples(picked: list[dict], sources: list[FormatSource], model_name: str, dataset_name: str,
              keypoint_format: str) -> dict[str, np.ndarray]:
    formats = [s.format for s in sources]
    out = {
        "model": np.array(model_name), "dataset": np.array(dataset_name),
        "keypoint_format": np.array(keypoint_format),
        "formats": np.array(formats, dtype=str),
        "native_formats": np.array([s.format for s in sources if s.native], dtype=str),
        "sequence": np.array([p["sequence"] for p in picked], dtype=str),
        "camera": np.array([p["camera"] for p in picked], dtype=str),
        "frame": np.array([p["frame"] for p in picked], dtype=np.int64),
        "keypoints": np.stack([p["keypoints"] for p in picked]).astype(np.float32)
        if picked else np.zeros((0, 17, 3), np.float32),
        "image_size": np.array([p["image_size"] for p in picked], dtype=np.int64).reshape(-1, 2),
    }
    from posebridge.geometry import skeletons

    for fmt in formats:
        j = skeletons.get(fmt).num_joints
        for kind in ("pred", "gt"):
            out[f"{kind}_{fmt}"] = np.array([p[kind][fmt] for p in picked], dtype=np.float32).reshape(-1, j, 3)
    return out


def write_examples(path: str | os.PathLike, examples: dict[str, np.ndarray]) -> None:
    """Write the examples npz atomically (plain arrays only: loadable without pickle)."""
    from posebridge.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **examples)


def read_examples(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an examples npz written by ``write_examples``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, ValueError) as err:
        raise DataError(path, f"not a readable examples .npz file ({err})") from None
