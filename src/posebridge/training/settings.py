"""Every training option, as one spec: what `posebridge train` and `posebridge finetune` take with
``--spec`` (a JSON object; unknown keys are an error listing the valid ones).

``TrainConfig`` holds the lifter's architecture, the optimisation schedule, the labeled data's
sampling and, as nested sections, the options of the objectives that join the labeled losses:
``semi_supervised`` (VideoPose3D's training from unlabeled video; Pavllo et al., CVPR 2019),
``multiview`` (MCSS metric learning on synchronised cameras; Mitra et al., CVPR 2020) and
``finetune`` (the head and the ACAE term of a fine-tuning run; Sárándi et al., WACV 2023). A
section's options apply when its data is given (``--unlabeled-video``, ``--multiview``) or, for
``finetune``, in `posebridge finetune`. Data file paths stay command-line options.

Torch-free, so the workflow can read defaults while it builds its job graph.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields

from posebridge.bridge.variants import ACAE_TERMS, VARIANTS
from posebridge.errors import ConfigError
from posebridge.specs import check_filter_widths, check_keys, load_spec

__all__ = ["TrainConfig", "SemiSupervisedSettings", "MultiviewSettings", "FinetuneSettings", "DivergenceSettings",
           "SECTIONS", "NESTED", "LOSS_NAMES", "PLACEMENTS", "SEMI_TERMS", "DIVERGENCE_ACTIONS"]

LOSS_NAMES = ("meanrel", "proj", "abs")
"""The labeled loss terms (``training.loop.compute_losses``)."""
SEMI_TERMS = ("traj", "proj", "bone")
"""The semi-supervised terms (``training.objectives.semi_supervised``)."""
PLACEMENTS = ("trajectory", "depth")
"""How an unlabeled pose is placed in its camera for the reprojection: ``trajectory`` at the
trajectory model's position (VideoPose3D); ``depth`` at the trajectory model's depth, with x and
y solved in closed form so the pose's joints sit on their rays on average (``place_at_depth``)."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _fail(section: str, key: str, what: str, value):
    raise ConfigError(f"{section}: {key} must be {what}, got {value!r}")


def _section(cls, value, name: str):
    """``value`` (a mapping of the section's keys, or an instance) as a validated ``cls``."""
    if isinstance(value, cls):
        settings = value
    elif isinstance(value, dict):
        check_keys(value, [f.name for f in fields(cls)], f"train: {name}")
        settings = cls(**value)
    else:
        raise ConfigError(f"train: {name} must be a mapping of its keys, got {value!r}")
    settings.validate()
    return settings


@dataclass
class SemiSupervisedSettings:
    """Options of the semi-supervised objective (spec section ``semi_supervised``)."""

    weights: dict = field(default_factory=lambda: dict.fromkeys(SEMI_TERMS, 1.0))
    """Weights of the terms traj (1/depth-weighted trajectory MPJPE), proj (reprojection) and
    bone (bone-length consistency); a term not named keeps weight 1."""
    warmup_epochs: int = 1
    """Epochs trained on labeled data only before the unlabeled terms count."""
    placement: str = "trajectory"
    """Where an unlabeled pose is placed for the reprojection (``PLACEMENTS``)."""
    batch_size: int | None = None
    """Unlabeled windows per step (None: the labeled batch size)."""
    reference_format: str | None = None
    """The output format whose root the trajectory model predicts and whose joints are
    reprojected (None: the first trained format with elbows, wrists, knees and ankles)."""
    max_reprojection_error: float | None = 0.2
    """Per-joint 2D error (normalised screen units: pixels / (width / 2)) beyond which the
    reprojection term grows logarithmically instead of linearly (None: linear everywhere). 0.2 is
    a tenth of the image width (100 px of a 1000-px frame): a healthy prediction misses by a few
    pixels plus the trajectory model's sideways error (30 cm at 4 m with H36M's 1150-px focal
    length: 86 px, 0.17); beyond it the pose sits near the camera, where projections and their
    ~1/z^2 gradients explode (``semi_supervised.robust_error``)."""

    def validate(self) -> None:
        where = "semi_supervised"
        if not isinstance(self.weights, dict):
            _fail(where, "weights", f"a mapping of {', '.join(SEMI_TERMS)}", self.weights)
        check_keys(self.weights, SEMI_TERMS, f"{where}: weights")
        self.weights = {**dict.fromkeys(SEMI_TERMS, 1.0), **self.weights}
        if not all(_is_number(v) and v >= 0 for v in self.weights.values()):
            _fail(where, "weights", "non-negative numbers", self.weights)
        if not _is_int(self.warmup_epochs) or self.warmup_epochs < 0:
            _fail(where, "warmup_epochs", "an integer >= 0", self.warmup_epochs)
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"{where}: unknown placement {self.placement!r}; valid: {', '.join(PLACEMENTS)}")
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 1):
            _fail(where, "batch_size", "null or a positive integer", self.batch_size)
        if self.reference_format is not None:
            from posebridge.geometry import skeletons

            self.reference_format = skeletons.get(self.reference_format).name
        if self.max_reprojection_error is not None and (
                not _is_number(self.max_reprojection_error) or self.max_reprojection_error <= 0):
            _fail(where, "max_reprojection_error", "null or a positive number", self.max_reprojection_error)


@dataclass
class MultiviewSettings:
    """Options of the multi-view objective (spec section ``multiview``); its windows are flipped
    when ``TrainConfig.flip_augment`` is on."""

    weight: float = 1.0
    """Of the triplet loss; 0 trains the embedding and regressor on labeled windows alone (the
    experiment's baseline)."""
    pose_weight: float = 1.0
    """Of the canonical-pose regression (metres)."""
    margin: float = 0.2
    """Triplet margin (embeddings are unit vectors: distances in [0, 2])."""
    time_window: int = 10
    """Frames of the same take within this many frames of the anchor are no negatives."""
    pairs: int = 256
    """Synchronised instants per step (two windows each)."""
    embedding_dim: int = 128

    def validate(self) -> None:
        for key in ("weight", "pose_weight", "margin"):
            if not _is_number(getattr(self, key)) or getattr(self, key) < 0:
                _fail("multiview", key, "a non-negative number", getattr(self, key))
        for key, low in (("time_window", 0), ("pairs", 2), ("embedding_dim", 1)):
            if not _is_int(getattr(self, key)) or getattr(self, key) < low:
                _fail("multiview", key, f"an integer >= {low}", getattr(self, key))


@dataclass
class FinetuneSettings:
    """Options of `posebridge finetune` (spec section ``finetune``; ``bridge.variants``)."""

    variant: str | None = None
    """The head and loss (``bridge.variants.VARIANTS``); `posebridge finetune` needs one."""
    output_reg_weight: float = 1.0
    """output_reg: weight of the output regulariser |P - D(E(P))|."""
    teacher_weight: float = 1.0
    """hybrid: weight of the teacher term |Z - E(P)|."""
    warmup_epochs: int = 1
    """hybrid: epochs before the teacher term starts."""

    def validate(self) -> None:
        if self.variant is not None and self.variant not in VARIANTS:
            _fail("finetune", "variant", f"one of {', '.join(VARIANTS)}", self.variant)
        for key in ("output_reg_weight", "teacher_weight"):
            if not _is_number(getattr(self, key)) or getattr(self, key) < 0:
                _fail("finetune", key, "a non-negative number", getattr(self, key))
        if not _is_int(self.warmup_epochs) or self.warmup_epochs < 0:
            _fail("finetune", "warmup_epochs", "an integer >= 0", self.warmup_epochs)

    def acae_weight(self) -> float:
        """The weight of the variant's ACAE term (``bridge.variants.ACAE_TERMS``)."""
        return float(getattr(self, f"{ACAE_TERMS[self.variant]}_weight"))


DIVERGENCE_ACTIONS = ("rollback", "stop")


@dataclass
class DivergenceSettings:
    """How training notices and handles a run that diverges (spec section ``divergence``;
    ``training.divergence``). After every epoch its log row is checked; a failed check rolls the
    model, its objectives' modules and the optimiser back to the best epoch (lowest validation
    MPJPE; without validation, the last epoch that passed) and continues at a reduced learning rate,
    or stops. A NaN or inf loss always stops training with an error (no model is written).

    Defaults: the issue's diverged run (validation MPJPE 101 -> 2,982 mm; its twin 101 -> 181 mm)
    trips the validation check, which a healthy run, whose validation error falls or wobbles by a
    few tens of percent, does not. Rolling back rather than stopping keeps the run's epoch budget;
    halving the learning rate is the usual remedy for a step size the loss surface cannot take
    (Chowdhery et al., "PaLM", 2022, restart from an earlier checkpoint after a loss spike)."""

    loss_spike_factor: float | None = 5.0
    """An epoch's loss term (each ``loss_<term>`` of the log, while it counts: > 0) above this
    times the median of its values over the earlier accepted epochs diverged (None: no check)."""
    val_factor: float | None = 1.5
    """Validation MPJPE above this times the best so far ..."""
    val_margin_mm: float = 50.0
    """... and above the best plus this many mm diverged (None factor: no check). The margin keeps
    small absolute wobbles of a well-trained model (20 -> 31 mm) from counting."""
    action: str = "rollback"
    """``rollback``: restore the best epoch and continue with the learning rate times
    ``lr_factor``; ``stop``: restore the best epoch and stop (``DIVERGENCE_ACTIONS``)."""
    lr_factor: float = 0.5
    """The learning rate's factor after each rollback (cumulative)."""
    max_rollbacks: int = 2
    """Rollbacks before the run stops at its best epoch instead."""

    def validate(self) -> None:
        where = "divergence"
        for key in ("loss_spike_factor", "val_factor"):
            value = getattr(self, key)
            if value is not None and (not _is_number(value) or value <= 1):
                _fail(where, key, "null or a number > 1", value)
        if not _is_number(self.val_margin_mm) or self.val_margin_mm < 0:
            _fail(where, "val_margin_mm", "a non-negative number", self.val_margin_mm)
        if self.action not in DIVERGENCE_ACTIONS:
            _fail(where, "action", f"one of {', '.join(DIVERGENCE_ACTIONS)}", self.action)
        if not _is_number(self.lr_factor) or not 0 < self.lr_factor <= 1:
            _fail(where, "lr_factor", "a number in (0, 1]", self.lr_factor)
        if not _is_int(self.max_rollbacks) or self.max_rollbacks < 0:
            _fail(where, "max_rollbacks", "an integer >= 0", self.max_rollbacks)


SECTIONS = {"semi_supervised": SemiSupervisedSettings, "multiview": MultiviewSettings, "finetune": FinetuneSettings}
"""The nested sections of the spec that are objectives' options."""
NESTED = {**SECTIONS, "divergence": DivergenceSettings}
"""Every nested section of the spec: the objectives' and the divergence guard's."""


@dataclass
class TrainConfig:
    """Training settings: the spec of `posebridge train` / `posebridge finetune` (module docstring)."""

    filter_widths: list = field(default_factory=lambda: [3, 3, 3])
    channels: int = 256
    dropout: float = 0.25
    causal: bool = False
    epochs: int = 12
    batch_size: int = 1024
    lr: float = 1e-3
    lr_decay: float = 0.95
    amsgrad: bool = True
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW; Loshchilov & Hutter, ICLR 2019): every step each weight
    shrinks by lr x weight_decay of itself. 0 = VideoPose3D's plain Adam."""
    bn_momentum: float = 0.1
    bn_momentum_final: float = 0.001
    loss_weights: dict = field(default_factory=lambda: {"meanrel": 1.0, "proj": 1.0, "abs": 0.1})
    abs_depth_weight: float = 0.2
    keypoint_dropout: float = 0.1
    flip_augment: bool = True
    roll_augment: float = 0.0
    """Degrees: each training window is seen by its camera turned about the optical axis by an
    angle drawn uniformly in +-roll_augment (exact for camera-normalised input: the rays, the 3D
    and its pixels turn together; ``training.data.roll_examples``); 0 = off. Real footage is
    filmed with tilted horizons (handheld phones, cameras on stands: the Pose2Sim demo's cameras
    are rolled up to ~40 degrees) that a rig's own rolls rarely cover."""
    pitch_augment: float = 0.0
    """Degrees: each training window is seen by its camera turned about its horizontal axis
    (looking further down or up from the same place) by an angle drawn uniformly in
    +-pitch_augment, before the roll (exact for camera-normalised input;
    ``training.data.pitch_examples``); 0 = off, at most 45."""
    dataset_weights: dict = field(default_factory=dict)
    samples_per_epoch: int | None = None
    val_windows: int = 2048
    bn_recalibration_batches: int = 20
    """After the last epoch, recompute BatchNorm statistics over this many training batches
    (0: keep the running averages; see ``models.temporal.recalibrate_batch_norm``)."""
    average_last_epochs: int = 0
    """The model gets the mean of the weights after each of the last this many epochs
    (stochastic weight averaging, ``training.averaging``), its BatchNorm statistics recomputed
    (needs ``bn_recalibration_batches`` > 0); 0 = the last epoch's weights. Measured on the
    default run's data: the last 4 of 24 epochs, five-set MPJPE 66.1 -> 65.1 mm, synth_h36m 60.0
    -> 57.4, real footage 62.9 -> 62.6 (README "Motion variation")."""
    data_cache_mb: float = 1024
    """The labeled sets' 2D and 3D (and the multi-view and semi-supervised objectives' 2D) are
    read from their files on demand, by blocks of frames, and the blocks kept in a cache of at
    most this many MiB per set (training, validation, multi-view, unlabeled video), each 3D
    target at its own format's joint count: memory stays bounded however many datasets train,
    and batches are those of sets in memory (``training.data``). 0: load every array into
    memory instead."""
    labeled_subjects: dict = field(default_factory=dict)
    """dataset name -> the training subjects whose 3D labels supervise: a count n (the first n
    subjects by name) or a list of names; datasets not named use all their training subjects.
    Limits 3D supervision, as the semi-supervised experiments of VideoPose3D and MCSS do."""
    labeled_fraction: dict = field(default_factory=dict)
    """dataset name -> the share in (0, 1] of each labeled take's frames (its first ones) whose 3D
    labels supervise; VideoPose3D's label-scarce setting is 10 % of one subject."""
    input_normalisation: str = "camera"
    """How keypoint pixels become input coordinates (``data.keypoints.NORMALISATIONS``): ``screen``
    (VideoPose3D: divided by the image width) or ``camera`` (undistorted rays (u - cx) / fx,
    (v - cy) / fy: the same person at the same distance gives the same input under any lens;
    measured on real footage: root depth 1.2-1.4 x the true distance instead of 1.6 x, README
    "Input codec")."""
    input_confidence: str = "visible"
    """The third input feature (``data.keypoints.CONFIDENCES``): ``raw`` the detector's
    confidence, ``visible`` 1 where it found the joint, else 0, ``none`` no third feature. Raw
    simulated confidence is a depth cue no real detector gives (measured: 96 mm PA-MPJPE from
    exact 2D against 71 mm from simulated detections; 71 against 72 with ``visible``)."""
    output_placement: str = "rays"
    """How the lifter places its output joints (``data.keypoints.PLACEMENTS``, ``models.rays``):
    ``rays`` (each joint with an input keypoint on that keypoint's camera ray, at the depth the
    network predicts; needs ``input_normalisation`` camera) or ``free`` (the network's x, y, z).
    Measured on the Pose2Sim takes: PA-MPJPE 107-110 -> 91-92 mm, reprojection onto the input
    32 -> 0.3 px (README "Ray placement")."""
    placement_in_training: bool = False
    """Whether training's losses see the placed pose (true) or the network's own (false: the
    placement applies from the trained model on, in evaluation and inference). Measured over two
    seeds: placing only after training is as good or 1-5 mm better on the real takes and the
    held-out synthetic sets (README "Ray placement")."""
    keypoint_format: str | None = None
    """The lifter's input keypoint format (x, y, confidence): that of every dataset's detections
    (coco_17 from the simulated / MediaPipe detectors, h36m_17 from VideoPose3D's CPN files);
    None = the detections' own (``training.data.load_training_sets`` resolves it; they must agree)."""
    processes: int = 1
    """Data-parallel training processes (one per GPU; ``training.distributed``): the run must be
    launched as that many (``torchrun --nproc-per-node``, which the workflow does for more than
    one), each step's ``batch_size`` windows split evenly among them (so it must divide it)."""
    semi_supervised: SemiSupervisedSettings = field(default_factory=SemiSupervisedSettings)
    multiview: MultiviewSettings = field(default_factory=MultiviewSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    divergence: DivergenceSettings = field(default_factory=DivergenceSettings)

    def __post_init__(self):
        for name, cls in NESTED.items():  # a section given as a mapping (JSON) becomes its settings
            setattr(self, name, _section(cls, getattr(self, name), name))

    @classmethod
    def from_dict(cls, spec: dict | None) -> "TrainConfig":
        """Build and validate; an unknown key raises ConfigError listing the valid ones."""
        spec = dict(spec or {})
        check_keys(spec, [f.name for f in fields(cls)], "train")
        weights = spec.get("loss_weights")
        if weights is not None:
            if not isinstance(weights, dict) or set(weights) - set(LOSS_NAMES):
                raise ConfigError(f"train: loss_weights takes the keys {', '.join(LOSS_NAMES)}, got {weights!r}")
            spec["loss_weights"] = {**cls().loss_weights, **weights}
        config = cls(**spec)
        config.validate()
        return config

    @classmethod
    def parse(cls, spec: str | None) -> "TrainConfig":
        """From a JSON object string or the path of a JSON file (empty/None -> defaults)."""
        return cls.from_dict(load_spec(spec, "train: --spec"))

    def validate(self) -> None:
        def fail(key, what):
            _fail("train", key, what, getattr(self, key))

        self.filter_widths = check_filter_widths(self.filter_widths, "train: ")
        for key in ("channels", "epochs", "batch_size", "processes"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 1:
                fail(key, "a positive integer")
        if self.batch_size % self.processes:
            fail("batch_size", f"a multiple of processes ({self.processes}: each process takes an equal part)")
        for key in ("val_windows", "bn_recalibration_batches"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 0:
                fail(key, "a non-negative integer")
        if not _is_int(self.average_last_epochs) or self.average_last_epochs < 0:
            fail("average_last_epochs", "a non-negative integer (more than epochs averages every epoch)")
        if self.average_last_epochs and not self.bn_recalibration_batches:
            fail("average_last_epochs", "0 when bn_recalibration_batches is 0 (averaged weights need their "
                 "batch-norm statistics recomputed)")
        if self.samples_per_epoch is not None and (not _is_int(self.samples_per_epoch) or self.samples_per_epoch < 1):
            fail("samples_per_epoch", "null or a positive integer")
        for key in ("causal", "amsgrad", "flip_augment", "placement_in_training"):
            if not isinstance(getattr(self, key), bool):
                fail(key, "true or false")
        for key in ("dropout", "keypoint_dropout"):
            if not _is_number(getattr(self, key)) or not 0 <= getattr(self, key) < 1:
                fail(key, "a number in [0, 1)")
        if not _is_number(self.lr) or self.lr <= 0:
            fail("lr", "a positive number")
        if not _is_number(self.weight_decay) or not 0 <= self.weight_decay < 1:
            fail("weight_decay", "a number in [0, 1)")
        for key in ("lr_decay", "bn_momentum", "bn_momentum_final"):
            if not _is_number(getattr(self, key)) or not 0 < getattr(self, key) <= 1:
                fail(key, "a number in (0, 1]")
        for key, most in (("roll_augment", 180), ("pitch_augment", 45)):  # the camera turns
            degrees = getattr(self, key)
            if not _is_number(degrees) or not 0 <= degrees <= most:
                fail(key, f"a number of degrees in [0, {most}]")
            if degrees and self.input_normalisation != "camera":
                fail(key, "0 unless input_normalisation is camera (a screen-normalised input cannot be "
                     "turned exactly)")
        if not _is_number(self.data_cache_mb) or self.data_cache_mb < 0:
            fail("data_cache_mb", "a non-negative number (0: every array in memory)")
        if not _is_number(self.abs_depth_weight) or self.abs_depth_weight < 0:
            fail("abs_depth_weight", "a non-negative number")
        if not all(_is_number(v) and v >= 0 for v in self.loss_weights.values()):
            fail("loss_weights", "non-negative numbers")
        self._validate_data()
        for name, cls in NESTED.items():
            setattr(self, name, _section(cls, getattr(self, name), name))

    def _validate_data(self) -> None:
        """The per-dataset settings and the keypoint format."""
        def fail(key, what):
            _fail("train", key, what, getattr(self, key))

        if not isinstance(self.labeled_subjects, dict) or not all(
                (_is_int(v) and v >= 1) or (isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v))
                for v in self.labeled_subjects.values()):
            fail("labeled_subjects", "a mapping of dataset name -> a positive count or a list of subject names")
        if not isinstance(self.labeled_fraction, dict) or not all(
                _is_number(v) and 0 < v <= 1 for v in self.labeled_fraction.values()):
            fail("labeled_fraction", "a mapping of dataset name -> a number in (0, 1]")
        if not isinstance(self.dataset_weights, dict) or not all(
                _is_number(v) and v >= 0 for v in self.dataset_weights.values()):
            fail("dataset_weights", "a mapping of dataset name -> non-negative number")
        from posebridge.data.keypoints import check_placement

        check_placement(self.output_placement, self.input_codec())  # ConfigError naming the valid choices
        if self.keypoint_format is not None:
            from posebridge.geometry import skeletons

            if not isinstance(self.keypoint_format, str):
                fail("keypoint_format", "null or a skeleton format name")
            skeletons.get(self.keypoint_format)  # ConfigError naming the known formats

    def to_dict(self) -> dict:
        """Plain types (the resolved config of a model directory; ``TrainConfig(**d)`` rebuilds it)."""
        d = asdict(self)
        d["filter_widths"] = [int(w) for w in self.filter_widths]
        d["loss_weights"] = {k: float(v) for k, v in self.loss_weights.items()}
        d["dataset_weights"] = {str(k): float(v) for k, v in self.dataset_weights.items()}
        d["labeled_subjects"] = {str(k): (int(v) if not isinstance(v, (list, tuple)) else [str(x) for x in v])
                                 for k, v in self.labeled_subjects.items()}
        d["labeled_fraction"] = {str(k): float(v) for k, v in self.labeled_fraction.items()}
        return d

    def input_codec(self):
        """The lifter's ``data.keypoints.InputCodec`` (``input_normalisation``, ``input_confidence``)."""
        from posebridge.data.keypoints import InputCodec

        return InputCodec(self.input_normalisation, self.input_confidence)

    def bn_momentum_at(self, epoch: int) -> float:
        m0, m1 = self.bn_momentum, self.bn_momentum_final
        return m0 * math.exp(-epoch / self.epochs * math.log(m0 / m1))

    def lr_at(self, epoch: int) -> float:
        return self.lr * self.lr_decay ** epoch
