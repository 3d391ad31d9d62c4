"""Labeled training data for the lifter: flat arrays of every row's frames, and batch assembly.

``load_labeled`` reads the rows of one split of several labeled datasets (each with its 2D
detections and the skeleton format it trains) into flat arrays: the network input of every frame
(VideoPose3D-normalised COCO keypoints + confidence), and per dataset the ground truth in camera
space (metres, NaN = missing) of its format. ``BatchAssembler`` turns a sampled ``chunks.Batch``
into tensors: input windows (one gather), the union-of-formats target with NaN outside the
example's own format, the per-example camera, and the training augmentations (horizontal flip of
2D, 3D and camera; keypoint dropout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from posebridge.geometry import skeletons
from posebridge.data.windows import Batch, window_index
from posebridge.errors import ConfigError, DataError
from posebridge.models.lifter import MM_PER_UNIT, SeparateHeadLifter, keypoints_to_input

__all__ = ["LabeledSet", "load_labeled", "load_labeled_files", "select_subjects", "BatchAssembler", "TrainingBatch", "flip_cameras"]


@dataclass
class LabeledSet:
    """Rows of one split of several datasets (groups), frames concatenated.

    Attributes:
        names: dataset names, one per group; formats: the skeleton format each group trains.
        inputs: (N, K, 3) float32 network input of every frame (all groups).
        targets: per group (N_g, J_g, 3) float32 camera-space ground truth, metres, NaN = missing.
        group_start: (G,) first flat frame of each group in ``inputs``.
        row_group, row_start, row_frames: (R,) per row: group, first flat frame, frame count.
        row_intrinsics (R, 4) px, row_distortion (R, 5), row_width (R,) px: each row's camera.
        row_sequence, row_camera: (R,) names, for messages.
        row_up: (R, 3) the world's up direction in each row's camera frame (``R @ (0, 0, 1)``),
            for targets in the MCSS canonical frame; None when unknown (hand-built sets).
    """

    names: list[str]
    formats: list[str]
    inputs: np.ndarray
    targets: list[np.ndarray]
    group_start: np.ndarray
    row_group: np.ndarray
    row_start: np.ndarray
    row_frames: np.ndarray
    row_intrinsics: np.ndarray
    row_distortion: np.ndarray
    row_width: np.ndarray
    row_sequence: np.ndarray
    row_camera: np.ndarray
    row_up: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return len(self.inputs)

    def frames_per_group(self) -> list[np.ndarray]:
        return [self.row_frames[self.row_group == g] for g in range(len(self.names))]

    def mean_pose_mm(self) -> dict[str, np.ndarray]:
        """Format -> (J, 3) mean root-relative camera-space pose (mm) over all frames of the
        groups that train it (NaN joints ignored)."""
        sums, counts = {}, {}
        for fmt, target in zip(self.formats, self.targets):
            root = skeletons.get(fmt).root
            rel = (target - target[:, root:root + 1]).astype(np.float64) * MM_PER_UNIT
            ok = np.isfinite(rel)
            sums[fmt] = sums.get(fmt, 0) + np.where(ok, rel, 0).sum(0)
            counts[fmt] = counts.get(fmt, 0) + ok.sum(0)
        return {f: np.where(counts[f] > 0, sums[f] / np.maximum(counts[f], 1), 0.0) for f in sums}


def check_detections(detections, dataset, keypoint_format: str) -> None:
    """Detections fit the lifter's input format and every row of ``dataset``; DataError otherwise."""
    if detections.keypoint_format != keypoint_format:
        raise DataError(detections.path, f"keypoints are {detections.keypoint_format}; the lifter "
                                         f"takes {keypoint_format}")
    detections.check_against(dataset)


def select_subjects(rows, subjects, where: str):
    """The rows of ``subjects``: None keeps all; an int n keeps the first n subjects (sorted by
    name); a list keeps those named (each must exist in ``rows``)."""
    if subjects is None:
        return rows
    present = sorted(rows["subject"].unique())
    if isinstance(subjects, (int, np.integer)) and not isinstance(subjects, bool):
        if not 1 <= subjects <= len(present):
            raise ConfigError(f"{where}: asks for {subjects} labeled subject(s); the split has "
                              f"{len(present)} ({', '.join(present)})")
        keep = present[:int(subjects)]
    else:
        keep = [str(s) for s in subjects]
        unknown = sorted(set(keep) - set(present))
        if unknown:
            raise ConfigError(f"{where}: unknown subject(s) {unknown}; the split has {', '.join(present)}")
    return rows[rows["subject"].isin(keep)]


def load_labeled(sources, split: str, keypoint_format: str | None = None, subjects: dict | None = None,
                 fraction: dict | None = None) -> LabeledSet:
    """Read the ``split`` rows of labeled datasets.

    keypoint_format: the lifter's input format every detection file must hold; None = that of the
    first source's detections (coco_17 when there are no sources).

    sources: list of (``store.Dataset``, ``detections.Detections``, format name or None for the
    dataset's own skeleton). The dataset's joints are converted to that format with the exact
    skeleton mapping (``skeletons.convert``), then to each row's camera frame. ``subjects``:
    dataset name -> which subjects' rows to keep (``select_subjects``); others keep all rows.
    ``fraction``: dataset name -> the share of each kept row's frames to keep (the first ones, at
    least one frame), e.g. VideoPose3D's "10 % of S1" label-scarce setting.
    """
    if keypoint_format is None:
        keypoint_format = sources[0][1].keypoint_format if sources else "coco_17"
    inputs, targets, group_start = [], [], []
    per_row = {k: [] for k in ("group", "start", "frames", "intrinsics", "distortion", "width",
                               "sequence", "camera", "up")}
    names, formats = [], []
    offset = 0
    for g, (dataset, detections, fmt) in enumerate(sources):
        if dataset.role != "labeled":
            raise DataError(dataset.path, f"dataset {dataset.name!r} has role {dataset.role!r}; only "
                                          f"labeled datasets supervise the lifter")
        check_detections(detections, dataset, keypoint_format)
        fmt = skeletons.get(fmt).name if fmt else dataset.skeleton.name
        if fmt != dataset.skeleton.name:
            try:
                skeletons.mapping(dataset.skeleton.name, fmt)
            except ConfigError as err:
                raise DataError(dataset.path, f"cannot train format {fmt}: {err}") from None
        names.append(dataset.name)
        formats.append(fmt)
        group_start.append(offset)
        rows = select_subjects(dataset.rows(split), (subjects or {}).get(dataset.name),
                               f"labeled_subjects.{dataset.name}")
        world = None
        group_targets = []
        for _, row in rows.iterrows():
            if world is None:  # read the dataset once, only when it has rows in this split
                world = skeletons.convert(dataset.joints_3d_all(), dataset.skeleton.name, fmt)
                detections.keypoints  # load the whole file once; get() then slices it
            camera = dataset.camera_for(row)
            start, frames = int(row["start"]), int(row["frames"])
            share = (fraction or {}).get(dataset.name, 1.0)
            frames = max(1, int(math.ceil(frames * share - 1e-9)))
            cam = camera.world_to_camera(world[start:start + frames].astype(np.float64))
            group_targets.append((cam / MM_PER_UNIT).astype(np.float32))
            keypoints = detections.get(row["sequence"], row["camera"])[:frames]
            width, height = camera.image_size
            inputs.append(keypoints_to_input(keypoints, width, height))
            per_row["group"].append(g)
            per_row["start"].append(offset)
            per_row["frames"].append(frames)
            per_row["intrinsics"].append(camera.intrinsics)
            per_row["distortion"].append(camera.distortion)
            per_row["width"].append(width)
            per_row["sequence"].append(str(row["sequence"]))
            per_row["camera"].append(str(row["camera"]))
            per_row["up"].append(camera.R @ np.array([0.0, 0.0, 1.0]))  # world is Z-up
            offset += frames
        J = skeletons.get(fmt).num_joints
        targets.append(np.concatenate(group_targets) if group_targets else np.zeros((0, J, 3), np.float32))
    K = skeletons.get(keypoint_format).num_joints
    return LabeledSet(
        names=names, formats=formats,
        inputs=np.concatenate(inputs) if inputs else np.zeros((0, K, 3), np.float32),
        targets=targets,
        group_start=np.asarray(group_start, dtype=np.int64),
        row_group=np.asarray(per_row["group"], dtype=np.int64),
        row_start=np.asarray(per_row["start"], dtype=np.int64),
        row_frames=np.asarray(per_row["frames"], dtype=np.int64),
        row_intrinsics=np.asarray(per_row["intrinsics"], dtype=np.float64).reshape(-1, 4),
        row_distortion=np.asarray(per_row["distortion"], dtype=np.float64).reshape(-1, 5),
        row_width=np.asarray(per_row["width"], dtype=np.float64),
        row_sequence=np.asarray(per_row["sequence"], dtype=object),
        row_camera=np.asarray(per_row["camera"], dtype=object),
        row_up=np.asarray(per_row["up"], dtype=np.float64).reshape(-1, 3),
    )


def load_labeled_files(dataset_paths, detection_paths, formats, split: str, subjects: dict | None = None
                       ) -> LabeledSet:
    """``load_labeled`` from file paths: one detections file and one format (None or ``native``:
    the stored skeleton) per dataset, as ``posebridge train`` takes them."""
    from posebridge.data.detections import read_detections
    from posebridge.data.store import open_dataset

    formats = list(formats or [None] * len(dataset_paths))
    if not len(dataset_paths) == len(detection_paths) == len(formats):
        raise ConfigError(f"{len(dataset_paths)} datasets, {len(detection_paths)} detection files and "
                          f"{len(formats)} formats; give one of each per dataset, in the same order")
    formats = [None if f in (None, "", "native") else f for f in formats]
    datasets = [open_dataset(p) for p in dataset_paths]
    detections = [read_detections(p) for p in detection_paths]
    try:
        return load_labeled(list(zip(datasets, detections, formats)), split, subjects=subjects)
    finally:
        for f in (*datasets, *detections):
            f.close()


def flip_cameras(intrinsics: torch.Tensor, distortion: torch.Tensor, width: torch.Tensor):
    """Intrinsics (B, 4) and distortion (B, 5) of the horizontally mirrored cameras, as
    ``Camera.flipped()``: cx -> width - cx, p2 -> -p2."""
    intrinsics = intrinsics.clone()
    distortion = distortion.clone()
    intrinsics[:, 2] = width - intrinsics[:, 2]
    distortion[:, 4] = -distortion[:, 4]
    return intrinsics, distortion


@dataclass
class TrainingBatch:
    """inputs (B, RF, K, 3); target (B, J_union, 3) metres camera space, NaN outside the example's
    format and where missing; target_px (B, J_union, 2) its projection through the camera (pixels,
    with distortion); valid (B, J_union) bool; intrinsics (B, 4); distortion (B, 5); up (B, 3) the
    world's up direction in each example's (possibly mirrored) camera frame, None when unknown."""

    inputs: torch.Tensor
    target: torch.Tensor
    target_px: torch.Tensor
    valid: torch.Tensor
    intrinsics: torch.Tensor
    distortion: torch.Tensor
    group: np.ndarray
    up: torch.Tensor | None = None


def _mirror_points(points: np.ndarray, mirror, width=None) -> np.ndarray:
    """Horizontal mirror of (N, J, C) points: swap left/right joints and negate channel 0 (or, with
    ``width`` (N,), replace pixel x by width - x)."""
    out = points[:, list(mirror)].copy()
    out[..., 0] = -out[..., 0] if width is None else width[:, None] - out[..., 0]
    return out


class BatchAssembler:
    """Builds training / validation tensors from sampled (row, frame) pairs of a ``LabeledSet``.

    Every table (inputs, targets, their projections, cameras) is kept twice, as is and mirrored,
    so a horizontal flip is a choice of table: a batch is one ``index_select`` per table, with no
    per-example work.
    """

    def __init__(self, data: LabeledSet, lifter: SeparateHeadLifter, device="cpu"):
        from posebridge.geometry.cameras import project_points

        self.data = data
        self.device = torch.device(device)
        self.before, self.after = lifter.window()
        self.num_joints = lifter.num_joints_out
        missing = [f for f in data.formats if f not in lifter.slices]
        if missing:
            raise ConfigError(f"the lifter has no output for format(s) {missing}")
        self.slices = [lifter.slices[f] for f in data.formats]
        dev = self.device
        keypoints = skeletons.get(lifter.keypoint_format)
        inputs = np.concatenate([data.inputs, _mirror_points(data.inputs, keypoints.mirror)])
        self.num_frames = data.num_frames
        self.inputs = torch.from_numpy(inputs.reshape(len(inputs), -1)).to(dev)  # (2N, K * F)
        self.input_shape = data.inputs.shape[1:]
        # per group: targets and their pixels, frames in group order, plain then mirrored
        frame_width = np.repeat(data.row_width, data.row_frames)
        frame_row = np.repeat(np.arange(len(data.row_frames)), data.row_frames)
        self.targets, self.targets_px = [], []
        for g, (fmt, target) in enumerate(zip(data.formats, data.targets)):
            start = data.group_start[g]
            rows = frame_row[start:start + len(target)]
            px = project_points(np.nan_to_num(target, nan=1.0), data.row_intrinsics[rows],
                                data.row_distortion[rows]).astype(np.float32)
            mirror = skeletons.get(fmt).mirror
            width = frame_width[start:start + len(target)]
            self.targets.append(torch.from_numpy(
                np.concatenate([target, _mirror_points(target, mirror)])).to(dev))
            self.targets_px.append(torch.from_numpy(
                np.concatenate([px, _mirror_points(px, mirror, width)])).to(dev))
        intr = data.row_intrinsics.astype(np.float32)
        dist = data.row_distortion.astype(np.float32)
        fi, fd = flip_cameras(torch.from_numpy(intr), torch.from_numpy(dist),
                              torch.from_numpy(data.row_width.astype(np.float32)))
        self.intrinsics = torch.cat([torch.from_numpy(intr), fi]).to(dev)
        self.distortion = torch.cat([torch.from_numpy(dist), fd]).to(dev)
        self.num_rows = len(data.row_frames)
        self.up = None
        if data.row_up is not None:  # a mirrored camera frame negates x, the up vector's too
            up = torch.from_numpy(data.row_up.astype(np.float32))
            self.up = torch.cat([up, up * torch.tensor([-1.0, 1.0, 1.0])]).to(dev)

    def assemble(self, batch: Batch, flip: np.ndarray | None = None, keypoint_keep: np.ndarray | None = None
                 ) -> TrainingBatch:
        """Tensors for ``batch``. ``flip`` (B,) bool mirrors those examples; ``keypoint_keep``
        (B, RF, K) bool zeroes the input keypoints (x, y and confidence) where False."""
        data, dev = self.data, self.device
        B = len(batch)
        flip = np.zeros(B, bool) if flip is None else np.asarray(flip, bool)
        index = window_index(data.row_start, data.row_frames, batch.row, batch.frame, self.before, self.after)
        index += self.num_frames * flip[:, None]
        x = self.inputs.index_select(0, torch.from_numpy(index.reshape(-1)).to(dev))
        x = x.view(B, index.shape[1], *self.input_shape)
        if keypoint_keep is not None:
            x.mul_(torch.from_numpy(keypoint_keep).to(dev, torch.float32)[..., None])
        target = torch.full((B, self.num_joints, 3), float("nan"), device=dev)
        target_px = torch.zeros((B, self.num_joints, 2), device=dev)
        for g in np.unique(batch.group):
            sel = np.flatnonzero(batch.group == g)
            frame = data.row_start[batch.row[sel]] + batch.frame[sel] - data.group_start[g]
            frame = torch.from_numpy(frame + len(data.targets[g]) * flip[sel]).to(dev)
            sel = torch.from_numpy(sel).to(dev)
            target[sel, self.slices[g]] = self.targets[g].index_select(0, frame)
            target_px[sel, self.slices[g]] = self.targets_px[g].index_select(0, frame)
        rows = torch.from_numpy(batch.row + self.num_rows * flip).to(dev)
        valid = ~torch.isnan(target).any(-1)
        return TrainingBatch(x, target, target_px, valid, self.intrinsics.index_select(0, rows),
                             self.distortion.index_select(0, rows), batch.group,
                             None if self.up is None else self.up.index_select(0, rows))
