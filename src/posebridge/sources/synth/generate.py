"""Synthetic datasets: subjects x actions x takes performed by synthetic bodies, filmed by a rig,
written through the dataset store.

A :class:`DatasetSpec` names a *template* modelled on a real dataset (rig, frame rate, default
actions and skeleton format) and the sizes. :func:`generate_dataset` draws the subjects (each
dataset has its own people), performs every take, and writes the 3D in the dataset's own format
plus ``extra/<format>`` arrays for every other format of the body (the synthetic benchmark knows
them all; the simulated 2D detector reads ``extra/coco_17``).

Templates:

========== ================ ===== ======= ================================================
template   skeleton         fps   cameras notes
========== ================ ===== ======= ================================================
h36m       h36m_32          50    4       one fixed rig (Human3.6M)
3dhp       mpi_inf_3dhp_28  25    10      one rig, cameras on three tiers (MPI-INF-3DHP)
3dpw       smpl_24          30    1       a handheld portrait camera per take (3DPW)
panoptic   coco_19          30    10      camera dome (CMU Panoptic)
humaneva   humaneva_15      60    3       640 x 480 (HumanEva-I)
video      h36m_32          30    1       monocular footage, a new camera per take
multiview  h36m_32          30    5       synchronised views, a rig per subject;
                                          ``group`` = take
========== ================ ===== ======= ================================================

Any template can instead film every take with cameras drawn from everyday set-ups
(``rig: varied``, ``rigs.VARIED``) or from held-out ones (``rig: heldout``, ``rigs.HELDOUT``).
The workflow's default datasets and their sizes live in config.yaml's ``datasets`` alone
(``synthetic_specs`` reads them for the benchmarks and tests): beside the five modelled on real
datasets, ``synth_wild`` (labeled: floor work, acrobatics, martial arts and random poses through
varied cameras) and the generalisation tests ``synth_heldout_motion`` and
``synth_heldout_camera``: motion kinds and camera set-ups that no training dataset has, each on
its own.

Randomness: every subject, take and rig draws from its own stream seeded by (seed, dataset name,
what it is), so datasets differ from each other, reruns are bit-identical, and changing one size
(more takes) leaves the other subjects and takes as they were.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from posebridge.geometry import skeletons
from posebridge.data import store
from posebridge.errors import ConfigError
from posebridge.specs import check_keys

from posebridge.sources.synth import body as body_mod
from posebridge.sources.synth import motion, rigs

TEMPLATE_SKELETON = {
    "h36m": "h36m_32", "3dhp": "mpi_inf_3dhp_28", "3dpw": "smpl_24", "panoptic": "coco_19",
    "humaneva": "humaneva_15", "video": "h36m_32", "multiview": "h36m_32",
}
TEMPLATE_ACTIONS = {
    "h36m": ("walking", "sitting", "bending", "reaching", "gesturing", "waving", "turning", "squatting"),
    "3dhp": ("walking", "running", "squatting", "reaching", "sitting", "jumping", "dancing", "bending"),
    "3dpw": ("walking", "running", "sitting", "gesturing", "turning", "dancing"),
    "panoptic": ("gesturing", "dancing", "waving", "reaching", "bending", "walking"),
    "humaneva": ("walking", "running", "gesturing", "waving", "jumping", "reaching"),
    "video": ("walking", "running", "sitting", "squatting", "gesturing", "dancing", "jumping", "turning"),
    "multiview": ("walking", "sitting", "bending", "reaching", "gesturing", "dancing", "squatting", "waving"),
}
TEMPLATES = tuple(TEMPLATE_SKELETON)


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate. Keys left out of :meth:`from_dict` take these defaults:

    template (required): h36m | 3dhp | 3dpw | panoptic | humaneva | video | multiview.
    train_subjects (5) / test_subjects (2): people in the train and test splits.
    actions: motion kinds (``motion.ACTIONS``); default per template (6-8 kinds).
    takes_per_action (1), seconds_per_take (8.0).
    fps, cameras (count per rig), skeleton (format of ``joints_3d``): default per template.
    rig ("template"): the template's camera layout; "varied": every take filmed by ``cameras``
    cameras drawn from everyday set-ups (``rigs.VARIED``: phone, tripod, floor, shelf; portrait
    and landscape; any focal length; off-centre and partly cut off); "heldout": set-ups kept out
    of training (``rigs.HELDOUT``), for a generalisation test set.
    variation (0.0, at most 1): how far each take strays from its motion kind's script
    (``motion.generate_clip``): 0, a few degrees; 1, tens of degrees in the trunk and arms and
    some in the hips and knees (a twisted trunk, one arm raised while walking), the feet still
    on the floor as scripted.
    """

    template: str
    train_subjects: int = 5
    test_subjects: int = 2
    actions: tuple[str, ...] = ()
    takes_per_action: int = 1
    seconds_per_take: float = 8.0
    fps: float = 0.0
    cameras: int = 0
    skeleton: str = ""
    rig: str = "template"
    variation: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetSpec":
        """Validate a spec (e.g. the config's ``synth`` entry); ConfigError names the bad key."""
        if not isinstance(d, dict):
            raise ConfigError(f"synthetic dataset spec must be a mapping, got {type(d).__name__}")
        check_keys(d, [f.name for f in fields(cls)], "synthetic dataset spec")
        template = d.get("template")
        if template not in TEMPLATES:
            raise ConfigError(f"synthetic dataset template must be one of {', '.join(TEMPLATES)}, "
                              f"got {template!r}")
        tpl = rigs.TEMPLATES[template]

        def integer(key, default, minimum):
            v = d.get(key, default)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
                raise ConfigError(f"synthetic dataset spec: {key} must be an integer >= {minimum}, got {v!r}")
            return int(v)

        def number(key, default):
            v = d.get(key, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise ConfigError(f"synthetic dataset spec: {key} must be a positive number, got {v!r}")
            return float(v)

        def fraction(key, default):
            v = d.get(key, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ConfigError(f"synthetic dataset spec: {key} must be a number from 0 to 1, got {v!r}")
            return float(v)

        actions = d.get("actions", TEMPLATE_ACTIONS[template])
        if isinstance(actions, str) or not isinstance(actions, (list, tuple)) or not actions:
            raise ConfigError(f"synthetic dataset spec: actions must be a non-empty list, got {actions!r}")
        bad = [a for a in actions if a not in motion.ACTIONS]
        if bad:
            raise ConfigError(f"synthetic dataset spec: unknown action(s) {', '.join(map(str, bad))}; "
                              f"known: {', '.join(motion.ACTIONS)}")
        if len(set(actions)) != len(actions):
            raise ConfigError(f"synthetic dataset spec: actions repeat: {list(actions)}")
        skeleton = d.get("skeleton", TEMPLATE_SKELETON[template])
        if skeleton not in body_mod.ALL_FORMATS:
            raise ConfigError(f"synthetic dataset spec: skeleton must be one of the generated formats "
                              f"{', '.join(body_mod.ALL_FORMATS)}, got {skeleton!r}")
        rig = d.get("rig", cls.rig)
        if rig not in ("template",) + tuple(rigs.RIG_KINDS):
            raise ConfigError(f"synthetic dataset spec: rig must be one of template, "
                              f"{', '.join(rigs.RIG_KINDS)}, got {rig!r}")
        spec = cls(template=template,
                   train_subjects=integer("train_subjects", cls.train_subjects, 0),
                   test_subjects=integer("test_subjects", cls.test_subjects, 0),
                   actions=tuple(actions),
                   takes_per_action=integer("takes_per_action", cls.takes_per_action, 1),
                   seconds_per_take=number("seconds_per_take", cls.seconds_per_take),
                   fps=number("fps", tpl.fps),
                   cameras=integer("cameras", tpl.cameras, 1),
                   skeleton=skeleton, rig=rig, variation=fraction("variation", cls.variation))
        if spec.train_subjects + spec.test_subjects == 0:
            raise ConfigError("synthetic dataset spec: train_subjects + test_subjects must be at least 1")
        if round(spec.seconds_per_take * spec.fps) < 2:
            raise ConfigError("synthetic dataset spec: seconds_per_take x fps must give at least 2 frames")
        return spec

    def to_dict(self) -> dict:
        d = asdict(self)
        d["actions"] = list(self.actions)
        return d


def synthetic_specs(datasets: dict) -> dict[str, dict]:
    """``{name: {"role", "synth"[, "train_format"]}}`` of the enabled synthetic entries of a
    workflow config's ``datasets`` (config.yaml: the one home of the default's sizes)."""
    return {name: {key: entry[key] for key in ("role", "synth", "train_format") if key in entry}
            for name, entry in datasets.items()
            if entry.get("source") == "synthetic" and entry.get("enabled", True)}


def tiny_specs(specs: dict[str, dict]) -> dict[str, dict]:
    """The same datasets at the smallest size (tests and smoke runs, a second or less each): one
    training and one test subject where the role has them, two motion kinds, 1 s takes."""
    return {
        name: {**entry,
               "synth": {**entry["synth"], "train_subjects": 0 if entry["role"] == "test" else 1,
                         "test_subjects": 0 if entry["role"].startswith("unlabeled") else 1,
                         "actions": list(entry["synth"].get("actions", TEMPLATE_ACTIONS[entry["synth"]["template"]])[:2]),
                         "seconds_per_take": 1.0}}
        for name, entry in specs.items()
    }


def _stream(seed: int, name: str, *what) -> np.random.Generator:
    """An independent generator for one part of one dataset (stable across runs and sizes)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF,
                                                         zlib.crc32(name.encode()), *what]))


@dataclass
class GeneratedDataset:
    """Everything :func:`generate_dataset` writes (in memory)."""

    name: str
    spec: DatasetSpec
    role: str
    joints: dict  # format -> (N, J, 3) float32 mm
    cameras: list
    index: pd.DataFrame
    bodies: dict  # subject -> body.Body


class _DatasetCameras:
    """The cameras of one dataset, made as its takes need them: one rig for the whole dataset, one
    per subject, or one per take aimed at where the take happens (the template's ``per``)."""

    def __init__(self, name: str, spec: DatasetSpec, seed: int):
        self.name, self.spec, self.seed = name, spec, seed
        self.template = rigs.TEMPLATES[spec.template]
        # varied / held-out everyday set-ups: a new camera every take; else the template's rule
        self.per = self.template.per if spec.rig == "template" else "take"
        self.cameras: list = []  # every camera made, in order
        self._subject_rigs: dict = {}
        if self.per == "dataset":
            self._dataset_rig = self._make(_stream(seed, name, 3), "cam")

    def _make(self, rng: np.random.Generator, prefix: str, **placement) -> list:
        rig = rigs.make_rig(self.spec.template, rng, self.spec.cameras, prefix=prefix, **placement)
        self.cameras.extend(rig)
        return rig

    def for_take(self, k: int, a: int, take: int, subject: str, sequence: str, seg_pos: np.ndarray) -> list:
        """The rig filming take ``take`` of action ``a`` by subject ``k``; ``seg_pos`` (T, S, 3)
        world mm, segment 0 the pelvis."""
        if self.per == "dataset":
            return self._dataset_rig
        if self.per == "subject":
            if subject not in self._subject_rigs:
                self._subject_rigs[subject] = self._make(_stream(self.seed, self.name, 3, k), f"{subject}_cam")
            return self._subject_rigs[subject]
        path = seg_pos[:, 0, :2]
        centre = 0.5 * (path.min(axis=0) + path.max(axis=0))
        extent = float(np.linalg.norm(path - centre, axis=1).max())
        return self._make(_stream(self.seed, self.name, 3, k, a, take), f"{sequence}_cam", centre=centre,
                          extra_distance=max(extent - 0.5 * self.template.volume_radius, 0.0), kind=self.spec.rig)


def _sample_subjects(name: str, spec: DatasetSpec, seed: int) -> tuple[list[str], dict, dict]:
    """The subjects' names, bodies and motion styles (train subjects first)."""
    subjects, bodies, styles = [], {}, {}
    for k in range(spec.train_subjects + spec.test_subjects):
        subject = f"{name}_S{k + 1}"
        rng = _stream(seed, name, 1, k)
        bodies[subject] = body_mod.sample_body(rng, subject)
        styles[subject] = motion.sample_style(rng, bodies[subject].height)
        subjects.append(subject)
    return subjects, bodies, styles


def build_dataset(name: str, spec: DatasetSpec, role: str, seed: int, progress: bool = False) -> GeneratedDataset:
    """Generate a dataset in memory (see :func:`generate_dataset`)."""
    if role not in store.ROLES:
        raise ConfigError(f"unknown role {role!r} (known: {', '.join(store.ROLES)})")
    tpl = rigs.TEMPLATES[spec.template]
    subjects, bodies, styles = _sample_subjects(name, spec, seed)
    rigs_made = _DatasetCameras(name, spec, seed)

    takes = [(k, subject, a, action, take) for k, subject in enumerate(subjects)
             for a, action in enumerate(spec.actions) for take in range(spec.takes_per_action)]
    blocks = {fmt: [] for fmt in body_mod.ALL_FORMATS}
    rows = []
    start = 0
    iterator = takes
    if progress:
        from tqdm import tqdm

        iterator = tqdm(takes, desc=f"synth {name}", unit="take")
    for k, subject, a, action, take in iterator:
        rng = _stream(seed, name, 2, k, a, take)
        body = bodies[subject]
        clip = motion.generate_clip(action, spec.seconds_per_take, spec.fps, styles[subject].varied(rng), rng,
                                    variation=spec.variation)
        # a per-take camera frames the take: walks get room and the camera backs off instead
        radius = tpl.volume_radius * (1.7 if rigs_made.per == "take" and clip.travels else 1.0)
        seg_pos, seg_rot = motion.perform(body, clip, rng, centre=(0.0, 0.0), radius=radius)
        for fmt, joints in body_mod.all_format_joints(body, seg_pos, seg_rot).items():
            blocks[fmt].append(joints.astype(np.float32))
        sequence = f"{subject}_{action}_{take + 1}"
        rig = rigs_made.for_take(k, a, take, subject, sequence, seg_pos)
        split = "test" if role == "test" or k >= spec.train_subjects else "train"
        frames = clip.frames
        for cam in rig:
            rows.append({"sequence": sequence, "subject": subject, "action": action, "split": split,
                         "camera": cam.name, "camera_index": -1, "start": start, "frames": frames,
                         "fps": float(spec.fps), "role": role, "group": sequence})
        start += frames
    cameras = rigs_made.cameras
    index = pd.DataFrame(rows, columns=list(store.INDEX_COLUMNS))
    index["camera_index"] = index["camera"].map({c.name: i for i, c in enumerate(cameras)}).astype(np.int64)
    joints = {fmt: np.concatenate(b) for fmt, b in blocks.items()}
    return GeneratedDataset(name, spec, role, joints, cameras, index, bodies)


def generate_dataset(name: str, spec: DatasetSpec | dict, role: str, seed: int,
                     h5_path: str | os.PathLike, progress: bool = False) -> GeneratedDataset:
    """Generate dataset ``name`` and write it to ``h5_path`` (+ the Parquet index beside it).

    The 3D of ``spec.skeleton`` goes to ``joints_3d``; every other format of the body to
    ``extra/<format>``. Subjects listed first are the train split, the rest the test split
    (everything is ``test`` for role ``test``). Returns the generated data.
    """
    if isinstance(spec, dict):
        spec = DatasetSpec.from_dict(spec)
    data = build_dataset(name, spec, role, seed, progress=progress)
    main = spec.skeleton
    extra = {fmt: a for fmt, a in data.joints.items() if fmt != main}
    store.write_dataset(Path(h5_path), name=name, skeleton=skeletons.get(main).name, role=role,
                        joints_3d=data.joints[main], cameras=data.cameras, index=data.index, extra=extra)
    return data
