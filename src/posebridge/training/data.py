"""Labeled training data for the lifter, and the tensors of a training batch.

``load_labeled`` reads the rows of one split of several labeled datasets (each with its 2D
detections and the skeleton format it trains) into a ``data.frames.FrameTable`` (the network
input of every frame and each row's camera) plus, per dataset, the ground truth in camera space
(metres, NaN = missing) of its format. ``MirroredFrames`` puts any frame table on the device for
sampling (every training source uses it). ``BatchAssembler`` turns a sampled ``windows.Batch``
into tensors: input windows (one gather), the union-of-formats target with NaN outside the
example's own format, the per-example camera, and the training augmentations (horizontal flip of
2D, 3D and camera; keypoint dropout).

With ``cache_mb`` the sets are read on demand (``data.frame_reader``): only their index stays in
memory, and a batch's input windows and 3D targets are read from the detection and store files
by blocks, through a cache of that size, so memory stays bounded however many datasets train.
The batches are the same as those of sets in memory (the same per-frame code computes them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from posebridge.data.frame_reader import BLOCK_FRAMES, OpenFiles, RaggedField, block_frames_for, row_segments
from posebridge.data.frames import FrameTable, FrameTableBuilder, mirror_points, open_sources
from posebridge.data.keypoints import KEYPOINT_FORMAT
from posebridge.data.windows import Batch
from posebridge.errors import ConfigError, DataError
from posebridge.geometry import skeletons
from posebridge.models.lifter import MM_PER_UNIT, SeparateHeadLifter

MEAN_POSE_STRIDE = 10  # every 10th training pose shapes the mean shape (neighbours are near-duplicates)

__all__ = ["LabeledSet", "load_labeled", "load_labeled_files", "load_training_sets", "on_demand_options",
           "select_subjects", "mean_shape", "MirroredFrames", "BatchAssembler", "TrainingBatch", "flip_cameras", "roll_examples", "pitch_examples"]


@dataclass(kw_only=True)
class LabeledSet(FrameTable):
    """Rows of one split of several labeled datasets (the table's sources, here called groups),
    with 3D ground truth.

    Attributes (besides ``FrameTable``'s):
        formats: the skeleton format each group trains.
        targets: per group (N_g, J_g, 3) float32 camera-space ground truth, metres, NaN = missing;
            None in a set read on demand (its reader's ``RaggedField`` ``target``: cached at
            (J_g, 3) per frame of group g, read padded to (J_max, 3) with NaN).
    """

    formats: list[str]
    targets: list[np.ndarray] | None

    def digest(self, *extra: np.ndarray) -> str:
        return super().digest((target for _, target in self.group_targets()), *extra)

    def group_targets(self):
        """(group, (n, J_g, 3) targets) of every frame in flat order: each group's whole array
        in memory, else streamed block by block (bounded memory)."""
        if self.in_memory:
            yield from enumerate(self.targets)
            return
        bounds = np.append(self.group_start, self.num_frames)
        joints = [skeletons.get(f).num_joints for f in self.formats]
        for start, block in self.reader.blocks(["target"]):
            stop, at = min(start + self.reader.block_frames, self.num_frames), 0
            for g in range(len(self.formats)):  # the block's values packed, each group's at J_g
                first, end = max(start, bounds[g]), min(stop, bounds[g + 1])
                if first < end:
                    size = (end - first) * joints[g] * 3
                    yield g, block["target"][at:at + size].reshape(end - first, joints[g], 3)
                    at += size

    def mean_pose_mm(self) -> dict[str, np.ndarray]:
        """Format -> (J, 3) mean root-relative camera-space pose (mm) over all frames of the
        groups that train it (NaN joints ignored): the constant that minimises the error without
        alignment, and nearly flat in depth (the "2D + mean-pose depth" baseline's offsets)."""
        return self.mean_poses_mm(shape=False)[0]

    def mean_poses_mm(self, shape: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(``mean_pose_mm``, mean shape), format -> (J, 3) root-relative mm, from one pass over
        the targets. The mean shape is the Procrustes mean of every ``MEAN_POSE_STRIDE``-th
        training pose (``mean_shape``); ``shape=False`` leaves it out (empty)."""
        sums, counts, samples, seen = {}, {}, {}, {}
        for g, target in self.group_targets():  # whole groups in memory, blocks on demand
            fmt = self.formats[g]
            root = skeletons.get(fmt).root
            rel = (target - target[:, root:root + 1]).astype(np.float64) * MM_PER_UNIT
            ok = np.isfinite(rel)
            sums[fmt] = sums.get(fmt, 0) + np.where(ok, rel, 0).sum(0)
            counts[fmt] = counts.get(fmt, 0) + ok.sum(0)
            if shape:
                first = -seen.get(g, 0) % MEAN_POSE_STRIDE  # the same frames however the group is cut
                seen[g] = seen.get(g, 0) + len(rel)
                samples.setdefault(fmt, []).append(rel[first::MEAN_POSE_STRIDE])
        means = {f: np.where(counts[f] > 0, sums[f] / np.maximum(counts[f], 1), 0.0) for f in sums}
        shapes = {f: mean_shape(np.concatenate(parts), means[f], skeletons.get(f).root)
                  for f, parts in samples.items()}
        return means, {f: s for f, s in shapes.items() if s is not None}


def mean_shape(poses: np.ndarray, facing: np.ndarray, root: int) -> np.ndarray | None:
    """(J, 3) root-relative mm: the Procrustes mean of root-relative poses (N, J, 3) (their shape
    without their orientation, ``evaluation.metrics.procrustes_mean``), turned onto ``facing``
    (J, 3), the camera-space average. The average of a mix that holds lying, upside-down and
    upright people is a shrunken blob: under PA-MPJPE, which removes the orientation, this is the
    constant pose to compare a lifter with. Joints that no pose has keep ``facing``'s position;
    None when no pose has all the other joints."""
    from posebridge.evaluation.metrics import procrustes_mean, rotation_onto

    joints = np.isfinite(poses).all(axis=-1).any(axis=0)  # e.g. not the 15 of h36m_32 data never fills
    full = poses[:, joints][np.isfinite(poses[:, joints]).all(axis=(1, 2))]
    if not len(full):
        return None
    part = procrustes_mean(full)
    part = part @ rotation_onto(part, facing[joints])
    out = facing.copy()
    out[joints] = part - part.mean(0) + facing[joints].mean(0)
    return out - out[root]


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


def _trained_format(dataset, fmt: str | None) -> str:
    """The format a labeled dataset trains: ``fmt`` (one its skeleton maps to exactly) or its own."""
    fmt = skeletons.get(fmt).name if fmt else dataset.skeleton.name
    if fmt != dataset.skeleton.name:
        try:
            skeletons.mapping(dataset.skeleton.name, fmt)
        except ConfigError as err:
            raise DataError(dataset.path, f"cannot train format {fmt}: {err}") from None
    return fmt


def load_labeled(sources, split: str, keypoint_format: str | None = None, subjects: dict | None = None,
                 fraction: dict | None = None, codec=None, cache_mb: float | None = None,
                 block_frames: int = BLOCK_FRAMES) -> LabeledSet:
    """Read the ``split`` rows of labeled datasets, the 2D encoded by ``codec``
    (``data.keypoints.InputCodec``; default screen + raw confidence); with ``cache_mb`` (MiB)
    only their index, the set read on demand through a cache of that size (blocks of
    ``block_frames``).

    keypoint_format: the lifter's input format every detection file must hold; None = that of the
    first source's detections (``KEYPOINT_FORMAT`` when there are no sources).

    sources: list of (``store.Dataset``, ``detections.Detections``, format name or None for the
    dataset's own skeleton). The dataset's joints are converted to that format with the exact
    skeleton mapping (``skeletons.convert``), then to each row's camera frame. ``subjects``:
    dataset name -> which subjects' rows to keep (``select_subjects``); others keep all rows.
    ``fraction``: dataset name -> the share of each kept row's frames to keep (the first ones, at
    least one frame), e.g. VideoPose3D's "10 % of S1" label-scarce setting.
    """
    if keypoint_format is None:
        keypoint_format = sources[0][1].keypoint_format if sources else KEYPOINT_FORMAT
    table = FrameTableBuilder(keypoint_format, codec, cache_mb, block_frames)
    formats, targets, on_disk = [], [], []
    for dataset, detections, fmt in sources:
        if dataset.role != "labeled":
            raise DataError(dataset.path, f"dataset {dataset.name!r} has role {dataset.role!r}; only "
                                          f"labeled datasets supervise the lifter")
        table.add_source(dataset, detections)
        formats.append(_trained_format(dataset, fmt))
        rows = select_subjects(dataset.rows(split), (subjects or {}).get(dataset.name),
                               f"labeled_subjects.{dataset.name}")
        share = (fraction or {}).get(dataset.name, 1.0)
        if cache_mb is None:
            targets.append(_read_targets(table, dataset, rows, formats[-1], share))
        else:
            on_disk += [(dataset, int(row["start"]), camera, formats[-1])
                        for row, camera in _add_rows(table, dataset, rows, share)]
    if cache_mb is None:
        return LabeledSet(**table.columns(), formats=formats, targets=targets)
    for dataset in {id(d): d for d, _, _, _ in on_disk}.values():  # as a load into memory checks
        table.files.use(dataset).check_3d_present()
    row_targets = RowTargets(on_disk, np.asarray(table.rows["start"], np.int64),
                             np.asarray(table.rows["frames"], np.int64), table.files)
    target = RaggedField(np.asarray(table.group_start, np.int64),
                         np.array([skeletons.get(f).num_joints for f in formats], np.int64), (3,), np.float32, np.nan)
    columns = table.columns({"target": target},
                            lambda start, stop, names: {"target": row_targets(start, stop)} if names else {})
    return LabeledSet(**columns, formats=formats, targets=None)


def _add_rows(table: FrameTableBuilder, dataset, rows, share: float):
    """Add ``rows`` (their first ``share`` of frames, at least one) to ``table``; yields each
    (index row, ``Camera``)."""
    for _, row in rows.iterrows():
        frames = max(1, int(math.ceil(int(row["frames"]) * share - 1e-9)))
        yield row, table.add_row(dataset, row, frames)


def camera_targets(world: np.ndarray, camera) -> np.ndarray:
    """(T, J, 3) float32 camera-space targets, metres, of (T, J, 3) world joints (mm)."""
    return (camera.world_to_camera(world.astype(np.float64)) / MM_PER_UNIT).astype(np.float32)


def _read_targets(table: FrameTableBuilder, dataset, rows, fmt: str, share: float) -> np.ndarray:
    """Add ``rows`` (their first ``share`` of frames) to ``table``; their (N_g, J, 3) float32
    camera-space ground truth in ``fmt``, metres."""
    world = None
    targets = []
    for row, camera in _add_rows(table, dataset, rows, share):
        if world is None:  # read the dataset once, only when it has rows in this split
            world = skeletons.convert(dataset.joints_3d_all(), dataset.skeleton.name, fmt)
        start = int(row["start"])
        targets.append(camera_targets(world[start:start + table.rows["frames"][-1]], camera))
    J = skeletons.get(fmt).num_joints
    return np.concatenate(targets) if targets else np.zeros((0, J, 3), np.float32)


class RowTargets:
    """The 3D targets of a labeled set read on demand: flat frames [start, stop) read from each
    row's store file and put in its camera frame, by the same code as a set in memory.

    rows: per row (``store.Dataset``, first frame of its take in ``joints_3d``, ``Camera``,
    format trained); row_start, row_frames: the table's (R,) columns; files: the ``OpenFiles``
    that bounds the store files kept open.
    """

    def __init__(self, rows: list, row_start: np.ndarray, row_frames: np.ndarray, files: OpenFiles):
        self.rows = rows
        self.row_start = row_start
        self.row_frames = row_frames
        self.files = files

    def __call__(self, start: int, stop: int) -> np.ndarray:
        """float32 metres packed (``frame_reader.RaggedField``): each frame's (J, 3) of its row's
        format, in flat order."""
        parts = []
        for row, first, end in row_segments(self.row_start, self.row_frames, start, stop):
            dataset, take_start, camera, fmt = self.rows[row]
            world = skeletons.convert(self.files.use(dataset).frames_3d(take_start + first, take_start + end),
                                      dataset.skeleton.name, fmt)
            parts.append(camera_targets(world, camera).reshape(-1))
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def load_labeled_files(dataset_paths, detection_paths, formats, split: str, subjects: dict | None = None,
                       codec=None) -> LabeledSet:
    """``load_labeled`` from file paths: one detections file and one format (None or ``native``:
    the stored skeleton) per dataset, as ``posebridge train`` takes them; ``codec`` encodes the 2D."""
    formats = list(formats or [None] * len(dataset_paths))
    if not len(dataset_paths) == len(detection_paths) == len(formats):
        raise ConfigError(f"{len(dataset_paths)} datasets, {len(detection_paths)} detection files and "
                          f"{len(formats)} formats; give one of each per dataset, in the same order")
    formats = [None if f in (None, "", "native") else f for f in formats]
    with open_sources(dataset_paths, detection_paths) as sources:
        return load_labeled([(d, det, f) for (d, det), f in zip(sources, formats)], split, subjects=subjects,
                            codec=codec)


def on_demand_options(config) -> dict:
    """``cache_mb`` and ``block_frames`` of a run's frame tables (``FrameTableBuilder``) under
    ``config`` (a ``TrainConfig``): ``train.data_cache_mb`` (0: every array in memory) and blocks
    sized to the lifter's receptive field."""
    return {"cache_mb": config.data_cache_mb or None,
            "block_frames": block_frames_for(math.prod(config.filter_widths))}


def load_training_sets(config, sources) -> tuple[LabeledSet, LabeledSet]:
    """The training and validation (``test`` split) sets of a run with ``config`` (a
    ``TrainConfig``) on ``sources`` (as ``load_labeled``'s), encoded by the config's input codec.
    Resolves ``config.keypoint_format``
    when unset: the one format every detection file shares (DataError naming the file that
    differs)."""
    names = [dataset.name for dataset, _, _ in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"train: the same dataset is given twice ({names})")
    for key in ("labeled_subjects", "labeled_fraction"):
        unknown = sorted(set(getattr(config, key)) - set(names))
        if unknown:
            raise ConfigError(f"train: {key} names unknown dataset(s) {unknown}; "
                              f"training datasets: {', '.join(names)}")
    configured = config.keypoint_format
    wanted = configured or sources[0][1].keypoint_format
    for _, detections, _ in sources:
        if detections.keypoint_format != wanted:
            raise DataError(detections.path, f"keypoints are {detections.keypoint_format}, the lifter takes "
                                             f"{wanted} (train.keypoint_format "
                                             f"{configured or 'unset: from the first detections'}); "
                                             f"give every dataset a detector in that format")
    config.keypoint_format = wanted
    codec = config.input_codec()
    on_demand = on_demand_options(config)
    train_set = load_labeled(sources, "train", wanted, subjects=config.labeled_subjects,
                             fraction=config.labeled_fraction, codec=codec, **on_demand)
    return train_set, load_labeled(sources, "test", wanted, codec=codec, **on_demand)


def flip_cameras(intrinsics: torch.Tensor, distortion: torch.Tensor, width: torch.Tensor, model=None):
    """Intrinsics (B, 4) and distortion (B, 5) of the horizontally mirrored cameras, as
    ``Camera.flipped()``: cx -> width - cx, and the tangential coefficient of each lens' distortion
    ``model`` ((B,) codes or a name; None = opencv: p2) negated (``cameras.flip_distortion``)."""
    from posebridge.geometry.cameras import flip_distortion

    intrinsics = intrinsics.clone()
    intrinsics[:, 2] = width - intrinsics[:, 2]
    return intrinsics, flip_distortion(distortion, model)


@dataclass
class TrainingBatch:
    """inputs (B, RF, K, F); target (B, J_union, 3) metres camera space, NaN outside the example's
    format and where missing; target_px (B, J_union, 2) its projection through the camera (pixels,
    with distortion); valid (B, J_union) bool; intrinsics (B, 4); distortion (B, 5); up (B, 3) the
    world's up direction in each example's (possibly mirrored) camera frame, None when unknown;
    distortion_model (B,) int64 codes of the lenses' distortion models (None: all opencv)."""

    inputs: torch.Tensor
    target: torch.Tensor
    target_px: torch.Tensor
    valid: torch.Tensor
    intrinsics: torch.Tensor
    distortion: torch.Tensor
    group: np.ndarray
    up: torch.Tensor | None = None
    distortion_model: torch.Tensor | None = None


class MirroredFrames:
    """A ``FrameTable`` on a device for sampling windows: every frame and every camera kept twice,
    as is and horizontally mirrored, so a flip is a choice of row and a batch's windows are one
    ``index_select``, with no per-example work. A table read on demand keeps only its cameras
    twice; its windows are read, mirrored where flipped (``FrameTable.gather``) and moved to the
    device per batch.

    inputs: (2N, K * F) float32, frame n + N mirrored frame n (``FrameTable.mirrored_inputs``),
    None for a table read on demand; intrinsics (2R, 4), distortion (2R, 5), size (2R, 2) float32,
    distortion_model (2R,) int64 codes: row r + R is row r's mirrored camera (``flip_cameras``).
    """

    def __init__(self, table: FrameTable, device="cpu"):
        self.table = table
        self.device = dev = torch.device(device)
        self.inputs = None
        if table.in_memory:
            inputs = table.mirrored_inputs()
            self.inputs = torch.from_numpy(inputs.reshape(len(inputs), -1)).to(dev)
        intrinsics = torch.from_numpy(table.row_intrinsics.astype(np.float32))
        distortion = torch.from_numpy(table.row_distortion.astype(np.float32))
        size = torch.from_numpy(table.row_size.astype(np.float32))
        model = torch.from_numpy(table.distortion_codes())
        flipped_intrinsics, flipped_distortion = flip_cameras(intrinsics, distortion, size[:, 0], model)
        self.distortion_model = torch.cat([model, model]).to(dev)
        self.intrinsics = torch.cat([intrinsics, flipped_intrinsics]).to(dev)
        self.distortion = torch.cat([distortion, flipped_distortion]).to(dev)
        self.size = torch.cat([size, size]).to(dev)

    def gather(self, index: np.ndarray) -> torch.Tensor:
        """(B, W) indices of ``FrameTable.window_index`` (with flips) -> (B, W, K, F) windows."""
        if self.inputs is None:
            return self._read(index)
        x = self.inputs.index_select(0, torch.from_numpy(index.reshape(-1)).to(self.device))
        return x.view(*index.shape, self.table.num_keypoints, -1)

    def _read(self, index: np.ndarray) -> torch.Tensor:
        """``gather`` of a table read on demand: the frames read as they are, then the mirrored
        ones permuted and negated in place (``frames.mirror_points``, in torch: exact, and
        cheaper than numpy's fancy indexing)."""
        table = self.table
        flip = index >= table.num_frames
        x = torch.from_numpy(table.gather(index - table.num_frames * flip))
        if flip.any():
            frames = x.view(-1, *x.shape[-2:])
            where = torch.from_numpy(np.flatnonzero(flip))
            mirror = torch.as_tensor(skeletons.get(table.keypoint_format).mirror)
            mirrored = frames.index_select(0, where).index_select(1, mirror)
            mirrored[..., 0].neg_()
            frames.index_copy_(0, where, mirrored)
        return x.to(self.device)

    def camera_row_index(self, rows: np.ndarray, flip: np.ndarray) -> np.ndarray:
        """(B,) indices into the cameras of ``rows`` (B,), mirrored where ``flip`` (B,) is True."""
        return rows + self.table.num_rows * flip

    def camera_rows(self, rows: np.ndarray, flip: np.ndarray) -> torch.Tensor:
        """``camera_row_index`` on the device."""
        return torch.from_numpy(self.camera_row_index(rows, flip)).to(self.device)


class BatchAssembler:
    """Builds training / validation tensors from sampled (row, frame) pairs of a ``LabeledSet``.

    Inputs and cameras come from ``MirroredFrames``; the targets and their projections are kept
    twice the same way, as is and mirrored, so a batch is one ``index_select`` per table. A set
    read on demand has its batch's targets read, projected and mirrored per batch instead, by the
    same per-frame code.
    """

    def __init__(self, data: LabeledSet, lifter: SeparateHeadLifter, device="cpu"):
        self.data = data
        self.device = torch.device(device)
        self.before, self.after = lifter.window()
        self.num_joints = lifter.num_joints_out
        missing = [f for f in data.formats if f not in lifter.slices]
        if missing:
            raise ConfigError(f"the lifter has no output for format(s) {missing}")
        if data.keypoint_format != lifter.keypoint_format:
            raise ConfigError(f"the lifter reads {lifter.keypoint_format} keypoints, the training data "
                              f"holds {data.keypoint_format}")
        if data.codec != lifter.codec:
            raise ConfigError(f"the lifter reads input encoded by {lifter.codec}, the training data "
                              f"is encoded by {data.codec}")
        self.slices = [lifter.slices[f] for f in data.formats]
        self.frames = MirroredFrames(data, device)
        self.targets, self.targets_px = self._targets() if data.in_memory else (None, None)
        self.up = None
        if data.row_up is not None:  # a mirrored camera frame negates x, the up vector's too
            up = torch.from_numpy(data.row_up.astype(np.float32))
            self.up = torch.cat([up, up * torch.tensor([-1.0, 1.0, 1.0])]).to(self.device)

    def _targets(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per group: targets (2N_g, J_g, 3) and their pixels (2N_g, J_g, 2), frames in group
        order, plain then mirrored."""
        data = self.data
        frame_row = data.frame_rows()
        targets, targets_px = [], []
        for g, (fmt, target) in enumerate(zip(data.formats, data.targets)):
            start = data.group_start[g]
            rows = frame_row[start:start + len(target)]
            mirror = skeletons.get(fmt).mirror
            px = self._pixels(target, rows)
            targets.append(torch.from_numpy(np.concatenate([target, mirror_points(target, mirror)])).to(self.device))
            targets_px.append(torch.from_numpy(
                np.concatenate([px, mirror_points(px, mirror, data.row_size[rows, 0])])).to(self.device))
        return targets, targets_px

    def _pixels(self, target: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(n, J, 2) float32 pixels of (n, J, 3) targets seen by the cameras of ``rows`` (n,)."""
        from posebridge.geometry.cameras import project_points

        data = self.data
        return project_points(np.nan_to_num(target, nan=1.0), data.row_intrinsics[rows],
                              data.row_distortion[rows], data.distortion_codes()[rows]).astype(np.float32)

    def _group_targets(self, g: int, rows: np.ndarray, frames: np.ndarray, flip: np.ndarray, read=None):
        """Targets (n, J_g, 3) and their pixels (n, J_g, 2) on the device of the centre
        ``frames`` (n,) of ``rows`` (n,) of group ``g``, mirrored where ``flip`` (n,); a set read
        on demand passes their targets ``read`` (n, J_max, 3)."""
        data, dev = self.data, self.device
        if self.targets is not None:
            flat = data.row_start[rows] + frames - data.group_start[g]
            index = torch.from_numpy(flat + len(data.targets[g]) * flip).to(dev)
            return self.targets[g].index_select(0, index), self.targets_px[g].index_select(0, index)
        fmt = data.formats[g]
        target = np.ascontiguousarray(read[:, :skeletons.get(fmt).num_joints])
        px = self._pixels(target, rows)
        if flip.any():
            mirror = skeletons.get(fmt).mirror
            target[flip] = mirror_points(target[flip], mirror)
            px[flip] = mirror_points(px[flip], mirror, data.row_size[rows[flip], 0])
        return torch.from_numpy(target).to(dev), torch.from_numpy(px).to(dev)

    def assemble(self, batch: Batch, flip: np.ndarray | None = None, keypoint_keep: np.ndarray | None = None,
                 roll: np.ndarray | None = None, pitch: np.ndarray | None = None) -> TrainingBatch:
        """Tensors for ``batch``. ``flip`` (B,) bool mirrors those examples; ``keypoint_keep``
        (B, RF, K) bool zeroes the input keypoints (x, y and confidence) where False; ``pitch``
        (B,) degrees turns each example's camera about its horizontal axis (``pitch_examples``),
        then ``roll`` (B,) degrees about its optical axis (``roll_examples``)."""
        data, dev = self.data, self.device
        B = len(batch)
        flip = np.zeros(B, bool) if flip is None else np.asarray(flip, bool)
        x = self.frames.gather(data.window_index(batch.row, batch.frame, self.before, self.after, flip))
        if keypoint_keep is not None:
            x.mul_(torch.from_numpy(keypoint_keep).to(dev, torch.float32)[..., None])
        target = torch.full((B, self.num_joints, 3), float("nan"), device=dev)
        target_px = torch.zeros((B, self.num_joints, 2), device=dev)
        read = None if data.in_memory else data.reader.read(data.row_start[batch.row] + batch.frame, ["target"])
        for g in np.unique(batch.group):
            sel = np.flatnonzero(batch.group == g)
            group_target, group_px = self._group_targets(g, batch.row[sel], batch.frame[sel], flip[sel],
                                                         None if read is None else read["target"][sel])
            sel = torch.from_numpy(sel).to(dev)
            target[sel, self.slices[g]] = group_target
            target_px[sel, self.slices[g]] = group_px
        rows = self.frames.camera_rows(batch.row, flip)
        valid = ~torch.isnan(target).any(-1)
        tb = TrainingBatch(x, target, target_px, valid, self.frames.intrinsics.index_select(0, rows),
                           self.frames.distortion.index_select(0, rows), batch.group,
                           None if self.up is None else self.up.index_select(0, rows),
                           self.frames.distortion_model.index_select(0, rows))
        if (roll is not None or pitch is not None) and data.codec.normalisation != "camera":
            raise ConfigError("camera roll and pitch augmentation need camera-normalised input")
        def radians(degrees):
            return torch.from_numpy(np.deg2rad(np.asarray(degrees, np.float64))).to(dev, torch.float32)

        if pitch is not None:  # pitch first, then roll
            pitch_examples(tb, radians(pitch), data.codec)
        if roll is not None:
            roll_examples(tb, radians(roll))
        return tb


def _turn(values: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, first: int = 0) -> None:
    """Turns coordinates ``first`` and ``first + 1`` of ``values`` (B, ..., >=first + 2) in place
    by per-example angles given as cos, sin (B, 1, ..., 1) broadcasting over the middle dimensions:
    (a, b) -> (cos a - sin b, sin a + cos b); first 0 turns x, y (roll), 1 turns y, z (pitch)."""
    a, b = values[..., first].clone(), values[..., first + 1]
    values[..., first] = cos * a - sin * b
    values[..., first + 1] = sin * a + cos * b


def roll_examples(tb: TrainingBatch, angle: torch.Tensor) -> None:
    """Turns each example's camera of ``tb`` about its optical axis by ``angle`` (B,) radians, in
    place: the camera-normalised input rays (x, y of (B, RF, K, F)), the 3D target and the up
    vector (x, y of camera space) and the target's pixels (about the principal point, in focal
    units). A rotation about the optical axis maps a ray's (x/z, y/z) exactly as the point's
    (x, y), and radial lens distortion commutes with it, so rays, 3D and pixels stay consistent
    (the tangential terms, ~1e-3 of a radius, are left as they are)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    _turn(tb.inputs, cos[:, None, None], sin[:, None, None])
    _turn(tb.target, cos[:, None], sin[:, None])
    if tb.up is not None:
        _turn(tb.up, cos, sin)
    f, c = tb.intrinsics[:, None, :2], tb.intrinsics[:, None, 2:]
    px = (tb.target_px - c) / f
    _turn(px, cos[:, None], sin[:, None])
    tb.target_px = px * f + c


# A ray turned this close to the image plane (~84 degrees off the optical axis) is dropped: the
# turned camera would not see it.
_MIN_TURNED_RAY_Z = 0.1


def pitch_examples(tb: TrainingBatch, angle: torch.Tensor, codec) -> None:
    """Turns each example's camera of ``tb`` (inputs encoded by ``codec``, an ``InputCodec``)
    about its horizontal (x) axis by ``angle`` (B,) radians, in place: the camera looks down (or
    up) at the same scene from the same place. The 3D target and the up vector rotate; each input
    ray (X/Z, Y/Z, 1) rotates and is renormalised to Z = 1, which is exact for camera-normalised
    (undistorted) rays; the target's pixels are projected again through the example's lens.
    Keypoints not found stay at zero (x, y and confidence); a ray turned to within ~6 degrees of
    the image plane is dropped like one.
    Real cameras look down on people (the Pose2Sim demo's are pitched 7-34 degrees) far more
    than a capture rig's level cameras do."""
    from posebridge.data.keypoints import CAMERA_SCALE
    from posebridge.geometry.cameras import project_points_torch
    from posebridge.models.rays import seen_keypoints

    cos, sin = torch.cos(angle), torch.sin(angle)
    x = tb.inputs
    found = seen_keypoints(x, codec)
    rays = torch.cat([x[..., :2] / CAMERA_SCALE, torch.ones_like(x[..., :1])], -1)
    _turn(rays, cos[:, None, None], sin[:, None, None], first=1)
    seen = found & (rays[..., 2] > _MIN_TURNED_RAY_Z)
    xy = rays[..., :2] / rays[..., 2:].clamp_min(_MIN_TURNED_RAY_Z) * CAMERA_SCALE
    x[..., :2] = torch.where(seen[..., None], xy, torch.zeros_like(xy))
    if x.shape[-1] > 2:
        x[..., 2] = torch.where(seen, x[..., 2], torch.zeros_like(x[..., 2]))
    _turn(tb.target, cos[:, None], sin[:, None], first=1)
    if tb.up is not None:
        _turn(tb.up, cos, sin, first=1)
    tb.target_px = project_points_torch(torch.nan_to_num(tb.target, nan=1.0), tb.intrinsics, tb.distortion,
                                        tb.distortion_model)
