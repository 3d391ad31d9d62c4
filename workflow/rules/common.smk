# Every helper of the workflow (the snakemake-workflows layout: the other .smk files hold only
# rules): config validation; which datasets play which part and where each file lives; per-rule
# seeds and the JSON handed to each command's --spec; the training objectives of train_initial;
# the ACAE stage's settings; the models, report files and experiment files, each computed once.

import hashlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from posebridge.sources.download import PUBLIC_2D  # public 2D keypoint files the `download` rule fetches


def has_test_rows(entry: dict) -> bool:
    """Whether a dataset's config entry promises test rows to evaluate on."""
    if entry["role"] == "test":
        return True
    if entry["role"] != "labeled":
        return False
    # a synthetic dataset without test subjects has no test split (the generator's default has one)
    return entry.get("synth", {}).get("test_subjects", 1) > 0


def validate_config(config: dict) -> None:
    """Validate ``config`` in place (filling schema defaults); raise a one-line error naming the key."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as err:
        # snakemake's WorkflowError flattens the jsonschema error into several lines of text;
        # the error itself is the exception it was raised from
        cause = err.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        # the innermost error of an anyOf/if-then is the one that names the bad key
        cause = jsonschema.exceptions.best_match([cause])
        where = ".".join(["config", *map(str, cause.absolute_path)])
        raise WorkflowError(f"invalid configuration: {where}: {cause.message}") from None
    check_datasets(config)


# `convert:` options that only some real sources take (posebridge convert --help)
CONVERT_OPTION_SOURCES = {"part": ("mpi_inf_3dhp",), "universal": ("mpi_inf_3dhp", "mupots"),
                          "strict": ("h36m_cdf", "mpi_inf_3dhp", "3dpw", "mupots")}
# real footage (real_footage.smk): sources whose datasets are real cameras without 3D ground truth,
# and those of them with calibrated, synchronised views (triangulated)
REAL_FOOTAGE_SOURCES = ("pose2sim", "videos")
MULTIVIEW_FOOTAGE_SOURCES = ("pose2sim",)


def check_datasets(config: dict) -> None:
    """What the schema cannot say: cross-references between keys, and a workflow with work to do."""

    def fail(where: str, problem: str):
        raise WorkflowError(f"invalid configuration: config.{where}: {problem}")

    enabled = {name: entry for name, entry in config["datasets"].items() if entry["enabled"]}
    for name, entry in enabled.items():
        if entry["detector"] not in config["detect"]:
            fail(f"datasets.{name}.detector", f"unknown detector {entry['detector']!r} "
                 f"(configured under `detect`: {', '.join(config['detect'])})")
        options = entry.get("convert", {})
        for key, sources in CONVERT_OPTION_SOURCES.items():
            if key in options and entry["source"] not in sources:
                fail(f"datasets.{name}.convert.{key}", f"only for source {' or '.join(sources)}, "
                     f"not {entry['source']!r}")
        if entry["source"] in REAL_FOOTAGE_SOURCES and entry["role"] != "test":
            fail(f"datasets.{name}.role", f"source {entry['source']} is real footage without 3D: role test "
                 "(measured by every model, never trained on)")
    labeled = [name for name, entry in enabled.items() if entry["role"] == "labeled"]
    if not labeled:
        fail("datasets", "no enabled dataset has role `labeled`; training needs at least one")
    if not any(has_test_rows(entry) and entry["source"] not in REAL_FOOTAGE_SOURCES
               for entry in enabled.values()):
        fail("datasets", "no enabled dataset has test rows (role `test`, or `labeled` with test subjects)")
    for key in ("dataset_weights", "labeled_subjects", "labeled_fraction"):
        for name in config["train"].get(key, {}):
            if name not in labeled:
                fail(f"train.{key}.{name}", f"not an enabled labeled dataset ({', '.join(labeled)})")
    processes, batch = config["train"].get("processes", 1), config["train"].get("batch_size")
    if batch is not None and batch % processes:
        fail("train.batch_size", f"{batch} is not a multiple of train.processes ({processes}): each "
             "data-parallel process takes an equal part of every batch")


validate_config(config)

# envs/posebridge.post-deploy.sh installs the package from here into the rules' conda env
os.environ.setdefault("POSEBRIDGE_ROOT", workflow.basedir)


# Rules call `posebridge`. When it is not on PATH, use the one beside the Python running
# Snakemake, so `.venv/bin/snakemake` works without activating the venv.
envvars:
    "PATH",


if shutil.which("posebridge") is None:
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


# --- threads

def rule_threads(rule: str) -> int:
    """Threads of ``rule``'s jobs: `threads.<rule>`, in a local run at most half of --cores (at
    least 1), so that two jobs always run side by side. Few cores gain more from a second job than
    from a second torch thread: one training epoch took 19.4 s on 1 thread and 15.6 s on 2 (1.25x),
    two 1-thread jobs side by side do twice the work; without the cap the two trainings (8 threads
    each, lowered to the 2 cores) ran one after the other. Cluster runs (SLURM) and the jobs they
    submit take `threads.<rule>` as configured.
    """
    configured = config["threads"][rule]
    if not (workflow.is_main_process and workflow.local_exec):
        return configured
    try:
        cores = workflow.cores
    except WorkflowError:  # no --cores given (a dry run, --report): Snakemake's own lowering applies
        return configured
    return max(1, min(configured, cores // 2))


# Snakemake's priority of the rules on the longest chain of the default DAG (train_initial ->
# pseudo_gt -> fit_acae -> finetune -> evaluate): when fewer cores are free than jobs are ready,
# these go first (the default priority is 0), so the evaluations of earlier models fill the gaps
# instead of delaying the chain.
CRITICAL_PATH_PRIORITY = 10


# --- seeds, JSON and wildcard constraints

def as_json(value) -> str:
    """Canonical JSON (sorted keys) so that equal settings give equal params strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def rule_seed(*parts) -> int:
    """A seed in [0, 2**31) derived from the master seed and ``parts``: a fixed key per rule, then
    wildcards. The key is the rule's name, except synth_generate ("synthesize"), finetune_merged
    ("train_merged"), train_mcss ("mcss_train") and train_vp3d ("vp3d_train"): changing a key
    reseeds the rule's jobs and so changes the default results.

    sha256 rather than hash(): Python salts str hashes per process.
    """
    key = ":".join(map(str, (config["seed"], *parts)))
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 2**31


def names_regex(names) -> str:
    """A wildcard constraint matching exactly ``names`` (never matching when empty)."""
    names = list(names)
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


# --- datasets: which play which part, and where their files are

# name -> entry of every enabled dataset, in config order
DATASETS = {name: entry for name, entry in config["datasets"].items() if entry["enabled"]}


def datasets_where(*, source=None, roles=None) -> list[str]:
    """Enabled datasets of ``source`` (a name, or a collection of names) and ``roles``."""
    sources = {source} if isinstance(source, str) else source
    return [
        name
        for name, entry in DATASETS.items()
        if (sources is None or entry["source"] in sources) and (roles is None or entry["role"] in roles)
    ]


def real_datasets() -> list[str]:
    """Enabled datasets converted from a real dataset's files (every source but `synthetic`)."""
    return [name for name, entry in DATASETS.items() if entry["source"] != "synthetic"]


def convert_args(name: str) -> str:
    """`posebridge convert` options from a real dataset's `convert:` entry (shell-quoted)."""
    options = DATASETS[name].get("convert", {})
    args = []
    if "part" in options:
        args += ["--part", options["part"]]
    if options.get("universal"):
        args += ["--universal"]
    if "fps" in options:
        args += ["--fps", str(options["fps"])]
    if options.get("strict"):
        args += ["--strict"]
    return " ".join(shlex.quote(a) for a in args)


def labeled_datasets() -> list[str]:
    """Datasets that supervise training, in config order."""
    return datasets_where(roles={"labeled"})


def test_datasets() -> list[str]:
    """Datasets evaluated by every model: labeled ones' test split and role `test` ones (real
    footage, which has no 3D ground truth, is scored by evaluate_real instead)."""
    return [name for name, entry in DATASETS.items()
            if has_test_rows(entry) and entry["source"] not in REAL_FOOTAGE_SOURCES]


def dataset_h5(name: str) -> str:
    return f"results/datasets/{name}.h5"


def dataset_index(name: str) -> str:
    return f"results/datasets/{name}.parquet"


def detections_h5(name: str) -> str:
    return f"results/detections/{name}/{DATASETS[name]['detector']}.h5"


def dataset_inputs(names, detections=detections_h5) -> dict[str, list[str]]:
    """The files a step reads for datasets ``names``, as named inputs (``input: **dataset_inputs(...)``):
    datasets (.h5), indexes (.parquet) and detections (``detections(name)``: its detection file)."""
    names = list(names)
    return {"datasets": [dataset_h5(n) for n in names], "indexes": [dataset_index(n) for n in names],
            "detections": [detections(n) for n in names]}


def dataset_files(names, detections=detections_h5) -> list[str]:
    """``dataset_inputs`` as one list of paths."""
    return [path for paths in dataset_inputs(names, detections).values() for path in paths]


def train_data_args(names, detections=detections_h5) -> str:
    """`--dataset A.h5 --detections A.h5 --train-format F` for each dataset, in order;
    ``detections(name)``: the dataset's detection file."""
    args = []
    for name in names:
        train_format = DATASETS[name]["train_format"] or "native"
        args += ["--dataset", dataset_h5(name), "--detections", detections(name),
                 "--train-format", train_format]
    return " ".join(args)



# --- 2D detection (rules in detect.smk)

def detector_files(wildcards) -> list[str]:
    """A public detection file an `imported` entry names (no template fields): an input, so the
    `download` rule fetches it when it is missing."""
    spec = config["detect"][wildcards.detector]
    file = spec.get("file")
    if spec.get("kind", wildcards.detector) != "imported" or not file or "{" in file or Path(file).name not in PUBLIC_2D:
        return []
    return [str(Path(spec.get("root", ".")) / file)]


def detector_spec(dataset: str, detector: str) -> str:
    """The detector's settings as JSON; a `builtin` detector also gets the dataset's source,
    folder and convert options (it reads the 2D keypoints in the dataset's own files)."""
    spec = dict(config["detect"][detector])
    entry = DATASETS[dataset]
    if spec.get("kind", detector) == "builtin" and entry["source"] != "synthetic":
        spec.update(source=entry["source"], path=entry["path"], convert=entry.get("convert", {}))
    return as_json(spec)


# --- training objectives of train_initial (and of the merged baseline, trained the same way)

def semi_supervised_datasets(chosen=None) -> list[str]:
    """The datasets whose 2D trains without labels: ``chosen`` (default `semi_supervised.datasets`),
    or every enabled unlabeled_video dataset. Labeled ones give their subjects outside
    train.labeled_subjects."""
    chosen = config["semi_supervised"]["datasets"] if chosen is None else chosen
    video = datasets_where(roles={"unlabeled_video"})
    if chosen is None:
        return video
    allowed = datasets_where(roles={"unlabeled_video", "labeled"})
    unknown = [name for name in chosen if name not in allowed]
    if unknown:
        raise WorkflowError(f"invalid configuration: config.semi_supervised.datasets: {unknown} are not enabled "
                            f"unlabeled_video or labeled datasets ({', '.join(allowed) or 'none'})")
    return list(chosen)


def semi_supervised_args(names, detections=detections_h5) -> str:
    """`posebridge train` data flags of the semi-supervised objective (VideoPose3D, Pavllo et al.
    CVPR 2019) for ``names``; ``detections(name)``: the dataset's detection file. Its options go in
    the spec (``semi_supervised_section``)."""
    args = []
    for name in names:
        args += ["--unlabeled-video", dataset_h5(name), "--unlabeled-detections", detections(name)]
    return " ".join(args)


def semi_supervised_section(settings: dict) -> dict:
    """The spec section ``semi_supervised`` (posebridge.training.settings) of config ``settings``."""
    return {k: settings[k] for k in ("weights", "warmup_epochs", "placement", "batch_size", "max_reprojection_error")
            if k in settings}


def semi_supervised_objective() -> tuple[list[str], str]:
    """(inputs, args) of the semi-supervised objective (`semi_supervised` section); nothing when disabled."""
    settings = config["semi_supervised"]
    if not settings["enabled"]:
        return [], ""
    names = semi_supervised_datasets()
    if not names:
        raise WorkflowError("invalid configuration: config.semi_supervised.enabled: no enabled dataset has role "
                            "unlabeled_video (or name labeled datasets in semi_supervised.datasets)")
    return dataset_files(names), semi_supervised_args(names)


def multiview_datasets() -> list[str]:
    """The unlabeled_multiview datasets MCSS learns from: `multiview.datasets`, or every enabled one."""
    chosen = config["multiview"]["datasets"]
    available = datasets_where(roles={"unlabeled_multiview"})
    if chosen is None:
        return available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise WorkflowError(f"invalid configuration: config.multiview.datasets: {unknown} are not enabled "
                            f"unlabeled_multiview datasets ({', '.join(available) or 'none'})")
    return list(chosen)


def multiview_args(names) -> str:
    """`posebridge train` data flags of the multi-view objective (MCSS, Mitra et al. CVPR 2020) for
    ``names``; its options go in the spec (``multiview_section``)."""
    args = []
    for name in names:
        args += ["--multiview", dataset_h5(name), "--multiview-detections", detections_h5(name)]
    return " ".join(args)


def multiview_section(settings: dict) -> dict:
    """The spec section ``multiview`` (posebridge.training.settings) of config ``settings``."""
    return {k: settings[k] for k in ("weight", "pose_weight", "margin", "time_window", "pairs", "embedding_dim")}


def multiview_objective() -> tuple[list[str], str]:
    """(inputs, args) of the multi-view objective (`multiview` section); nothing when disabled."""
    if not config["multiview"]["enabled"]:
        return [], ""
    names = multiview_datasets()
    if not names:
        raise WorkflowError("invalid configuration: config.multiview.enabled: no enabled dataset has role "
                            "unlabeled_multiview to learn from")
    return dataset_files(names), multiview_args(names)


def train_objectives() -> list[tuple[list[str], str]]:
    """(inputs, `posebridge train` options) of each extra training signal: multi-view metric
    learning, then semi-supervised video (the order `posebridge train` builds them in), each
    ([], "") where its config section leaves it off."""
    return [multiview_objective(), semi_supervised_objective()]


def objective_inputs(wildcards=None) -> list[str]:
    return [path for inputs, _ in train_objectives() for path in inputs]


def objective_args(wildcards=None) -> str:
    return " ".join(args for _, args in train_objectives() if args)


def train_spec(base: dict, **sections) -> str:
    """The `--spec` JSON of a training rule: the ``train`` settings ``base`` plus the objectives'
    sections that are given (``semi_supervised``, ``multiview``, ``finetune``): every training
    option is a key of this one spec (posebridge.training.settings.TrainConfig)."""
    return as_json({**base, **{name: section for name, section in sections.items() if section}})


def train_processes(spec: str) -> int:
    """Data-parallel processes of a training job: its spec's `processes` (TrainConfig, default 1),
    one GPU each: the job's `gpu` resource, which the SLURM profile turns into `--gpus`."""
    return int(json.loads(spec).get("processes", 1))


def train_launcher(spec: str) -> str:
    """What a training rule's shell command puts before `posebridge`: nothing for one process;
    for N, torchrun starting N processes on this machine or in the SLURM job's allocation
    (posebridge.training.distributed; --standalone: a rendezvous of its own on a free port)."""
    processes = train_processes(spec)
    return "" if processes == 1 else f"torchrun --standalone --nproc-per-node {processes} --no-python "


def process_threads(spec: str, threads: int) -> int:
    """Torch threads of each of a training job's processes: the job's threads shared among them."""
    return max(1, threads // train_processes(spec))


# the initial lifter's spec: `train` plus the sections of the objectives the config enables
TRAIN_SPEC = train_spec(
    config["train"],
    semi_supervised=semi_supervised_section(config["semi_supervised"]) if config["semi_supervised"]["enabled"] else None,
    multiview=multiview_section(config["multiview"]) if config["multiview"]["enabled"] else None)


# --- the skeleton bridge (ACAE, Sárándi et al. WACV 2023; rules in acae.smk)

ACAE = config["acae"]
FINETUNE = ACAE["finetune"]
FINETUNE_VARIANTS = list(FINETUNE["variants"])
ACAE_DIR = "results/acae"

# the fine-tuning schedule over the training config, and each variant's options
FINETUNE_SPEC = train_spec(
    {**config["train"], **{k: FINETUNE[k] for k in ("epochs", "samples_per_epoch", "lr")}},
    finetune={k: FINETUNE[k] for k in ("output_reg_weight", "teacher_weight", "warmup_epochs")})
# the autoencoder file of the variants that train through it (bridge.variants)
FINETUNE_ARGS = {"continued": "", **{v: f"--acae {ACAE_DIR}/acae.pt" for v in ("output_reg", "latent", "hybrid")}}


# --- models, evaluation and the report

# Every trained model (results/models/<model>/, each with its training log): the initial lifter,
# the merged-joints baseline and the fine-tuned ones.
TRAINED_MODELS = ["initial", *(["merged"] if ACAE["merged"] else []), *(f"finetune_{v}" for v in FINETUNE_VARIANTS)]


def ensemble_members(members: list, trained: list) -> list[str]:
    """The trained models the `ensemble` model averages (config `ensemble`; [] = no ensemble)."""
    members = list(members)
    unknown = [m for m in members if m not in trained]
    if unknown:
        raise WorkflowError(f"invalid configuration: config.ensemble: {', '.join(unknown)} not among the trained "
                            f"models ({', '.join(trained)}); name trained ones, or set `ensemble: []`")
    if len(members) == 1:
        raise WorkflowError("invalid configuration: config.ensemble: name two or more models, or none")
    return members


ENSEMBLE_MEMBERS = ensemble_members(config["ensemble"], TRAINED_MODELS)
# Every model evaluated on every test set and shown in the report: the trained ones and the
# ensemble of some of them (rule ensemble; README "Ensemble").
MODELS = [*TRAINED_MODELS, *(["ensemble"] if ENSEMBLE_MEMBERS else [])]
# the model to lift real people with (README "3D poses from your own video"): the report draws its
# lifts of the real frames
FINAL_MODEL = "ensemble" if ENSEMBLE_MEMBERS else "initial"


def eval_table(model: str, dataset: str) -> str:
    return f"results/eval/{model}/{dataset}.parquet"


def eval_example(model: str, dataset: str) -> str:
    return f"results/eval/{model}/{dataset}.examples.npz"


def eval_tables(models=MODELS) -> list[str]:
    return [eval_table(m, d) for m in models for d in test_datasets()]


def eval_examples(models=MODELS) -> list[str]:
    return [eval_example(m, d) for m in models for d in test_datasets()]


def evaluate_args(model: str) -> str:
    """`posebridge evaluate` options naming each test set's files and the tables and examples it
    writes for ``model`` (the evaluate rule's outputs, in the same order)."""
    return " ".join(f"--dataset {dataset_h5(d)} --detections {detections_h5(d)} --output {eval_table(model, d)}"
                    f" --examples {eval_example(model, d)}" for d in test_datasets())


# --- real footage (rules in real_footage.smk): real cameras without 3D ground truth, measured by
# every model and never trained on (README "Real footage")

def real_footage_datasets() -> list[str]:
    return datasets_where(source=REAL_FOOTAGE_SOURCES)


def multiview_footage() -> list[str]:
    return datasets_where(source=MULTIVIEW_FOOTAGE_SOURCES)


def footage_h5(name: str) -> str:
    """The dataset evaluate_real reads: multi-view footage with its triangulated 3D, else as converted."""
    if name in multiview_footage():
        return f"results/triangulated/{name}/{DATASETS[name]['detector']}.h5"
    return dataset_h5(name)


def footage_detections(name: str) -> str:
    """The 2D evaluate_real lifts: for multi-view footage the triangulated person's in every view
    (the triangulate rule's ``keypoints``), else the dataset's detections."""
    if name in multiview_footage():
        return f"results/triangulated/{name}/{DATASETS[name]['detector']}_2d.h5"
    return detections_h5(name)


def real_table(model: str, dataset: str) -> str:
    return f"results/real_footage/{model}/{dataset}.parquet"


def real_tables(models=MODELS) -> list[str]:
    return [real_table(m, d) for m in models for d in real_footage_datasets()]


def evaluate_real_args(model: str, datasets=None, table=real_table) -> str:
    """`posebridge evaluate-real` options naming each real dataset's files (default: every one) and
    the table it writes for ``model``, ``table(model, dataset)`` (the rule's outputs, in the same order)."""
    datasets = real_footage_datasets() if datasets is None else datasets
    return " ".join(f"--dataset {footage_h5(d)} --detections {footage_detections(d)} --output {table(model, d)}"
                    for d in datasets)


REPORT_DIR = "results/report"
# The report's tables and figures (written by the report and report_acae rules), the targets of `all`.
REPORT_FILES = {
    "metrics": f"{REPORT_DIR}/metrics.html",
    "baseline": f"{REPORT_DIR}/baseline.html",
    "summary": f"{REPORT_DIR}/summary.csv",
    "curves": f"{REPORT_DIR}/training_curves.png",
    "skeletons": f"{REPORT_DIR}/skeletons.png",
    "acae_comparison": f"{REPORT_DIR}/acae_comparison.html",
    "acae_comparison_csv": f"{REPORT_DIR}/acae_comparison.csv",
    "acae_reconstruction": f"{REPORT_DIR}/acae_reconstruction.html",
    "acae_weights": f"{REPORT_DIR}/acae_weights.png",
    "acae_latents": f"{REPORT_DIR}/acae_latents.png",
}
# the interactive 3D viewer (report.smk): every model on the first test row of the first test set
VIEWER_DATASET = next(iter(test_datasets()), None)
if VIEWER_DATASET is not None:
    REPORT_FILES["viewer"] = f"{REPORT_DIR}/viewer.html"
REAL_FOOTAGE_REPORT = {"real_footage": f"{REPORT_DIR}/real_footage.html",
                       "real_footage_frames": f"{REPORT_DIR}/real_footage_frames.png"}
if real_footage_datasets():  # written by the report_real rule
    REPORT_FILES.update(REAL_FOOTAGE_REPORT)
REPORT_HTML = "results/report.html"


def build_html_report() -> None:
    """Write results/report.html (`snakemake --report`) after a run that rebuilt the report.

    Called from the Snakefile's onsuccess handler, which Snakemake skips for dry runs, for runs
    with nothing to do, for --report itself and inside cluster jobs (--no-hooks). It only acts
    when every report file exists and one of them is newer than results/report.html (the
    experiments' files count, and join the report, once they all exist), so
    runs that stop short of the report (a single target) leave it alone. The nested call gets
    the fully resolved config, so it sees the same DAG as this run.
    """
    outputs = [Path(p) for p in REPORT_FILES.values()]
    html = Path(REPORT_HTML)
    if not all(p.exists() for p in outputs):
        return
    # the experiments join the report once `snakemake experiments` has written them (an Experiments section)
    experiments = [Path(p) for p in EXPERIMENT_FILES]
    targets = ["all"]
    if all(p.exists() for p in experiments):
        outputs += experiments
        targets.append("experiments")
    if html.exists() and html.stat().st_mtime >= max(p.stat().st_mtime for p in outputs):
        return
    resolved = Path(".snakemake/posebridge/report-config.json")
    resolved.parent.mkdir(parents=True, exist_ok=True)
    resolved.write_text(json.dumps(config, indent=1))
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", workflow.main_snakefile,
        "--directory", os.getcwd(), "--configfile", str(resolved),
        "--workflow-profile", "none", "--report", str(html), *targets,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        sys.stderr.write(f"posebridge: could not write {html}; run `snakemake --report {html}`\n")



# --- the MCSS experiment (Mitra et al. CVPR 2020; rules in experiments_mcss.smk)

MCSS = config["multiview"]["experiment"]
MCSS_DIR = "results/experiments/mcss"
# what `posebridge mcss-eval` writes into its --out-dir
MCSS_OUTPUTS = ["nmpjpe.csv", "retrieval.csv", "nmpjpe.png", "distance_matrix.png", "mcss.html"]


def mcss_labels() -> list[str]:
    """The amounts of 3D supervision as wildcards ("1", "2", "all"); for a synthetic dataset,
    counts beyond its training subjects are left out (they would equal "all")."""
    requested = MCSS["labeled_subjects"]
    entry = DATASETS.get(MCSS["dataset"], {})
    available = entry.get("synth", {}).get("train_subjects") if entry.get("source") == "synthetic" else None

    def keep(n) -> bool:
        if n == "all" or available is None:
            return True
        return n < available or (n == available and "all" not in requested)

    return [str(n) for n in requested if keep(n)]


MCSS_LABELS = mcss_labels()
MCSS_VARIANTS = {"base": 0.0, "mv": config["multiview"]["weight"]}


def mcss_enabled() -> bool:
    """The experiment needs its labeled dataset (with test rows) and multi-view data."""
    entry = DATASETS.get(MCSS["dataset"])
    return bool(entry and entry["role"] == "labeled" and has_test_rows(entry) and multiview_datasets())


def mcss_model(variant: str, labels: str) -> str:
    return f"{MCSS_DIR}/models/{variant}_{labels}/model.pt"


def mcss_spec(labels: str, variant: str) -> str:
    """The experiment's TrainConfig: `train`, its overrides, 3D labels of the first `labels` subjects,
    the multi-view section at the variant's weight."""
    spec = {**config["train"], **MCSS["train"], "dataset_weights": {}, "labeled_subjects": {}}
    if labels != "all":
        spec["labeled_subjects"] = {MCSS["dataset"]: int(labels)}
    settings = {**config["multiview"], "weight": MCSS_VARIANTS[variant], "pairs": MCSS["pairs"]}
    return train_spec(spec, multiview=multiview_section(settings))


def mcss_objective_args(variant: str) -> str:
    return multiview_args(multiview_datasets())


# --- the VideoPose3D experiments (Pavllo et al. CVPR 2019; rules in experiments_videopose3d.smk)

VP3D_SETTINGS = config["semi_supervised"]["experiment"]
VP3D_DIR = "results/experiments/videopose3d"
VP3D_OUTPUTS = [f"{VP3D_DIR}/experiments.csv", f"{VP3D_DIR}/experiments.html", f"{VP3D_DIR}/experiments.png"]


def receptive_field(filter_widths) -> int:
    """Frames a lifter with these temporal filter widths sees per output frame: their product
    (VideoPose3D's dilated convolutions). Computed here, not imported: no torch while the DAG is built."""
    return int(math.prod(filter_widths))


def vp3d_runs() -> dict:
    """Run name -> its settings: train spec, semi-supervised placement (None: supervised only),
    detector, seed index, family (runs of one family and seed index share their seed) and its
    table labels."""
    base = {k: v for k, v in config["train"].items()
            if k not in ("dataset_weights", "labeled_subjects", "labeled_fraction")}
    base.update(VP3D_SETTINGS["train"])
    dataset = VP3D_SETTINGS["dataset"]
    runs = {}
    for name, widths in VP3D_SETTINGS["receptive_fields"].items():
        runs[name] = {"train": {**base, "filter_widths": widths}, "placement": None, "experiment": "receptive_field",
                      "receptive_field": receptive_field(widths), "labeled_subjects": "all", "seed": 0,
                      "detector": None, "family": name}
    rf = receptive_field(base["filter_widths"])
    detector = VP3D_SETTINGS["labels_detector"]
    if detector and detector not in config["detect"]:
        raise WorkflowError(f"invalid configuration: config.semi_supervised.experiment.labels_detector: unknown "
                            f"detector {detector!r} (configured under `detect`: {', '.join(config['detect'])})")
    keypoint_format = (config["detect"][detector].get("keypoint_format", "coco_17") if detector
                       else base.get("keypoint_format"))
    for labels in VP3D_SETTINGS["labels"]:
        n, fraction = labels["subjects"], labels.get("fraction", 1.0)
        percent = f"{100 * fraction:g}"
        spec = {**base, "labeled_subjects": {dataset: n}, "keypoint_format": keypoint_format}
        if fraction < 1:
            spec["labeled_fraction"] = {dataset: fraction}
        label = f"labeled{n}" + (f"_{percent.replace('.', 'p')}pct" if fraction < 1 else "")
        for seed in range(VP3D_SETTINGS["seeds"]):
            for placement in (None, *VP3D_SETTINGS["placements"]):
                method = f"semi_{placement}" if placement else "supervised"
                runs[f"{label}_{method}_s{seed}"] = {
                    "train": spec, "placement": placement, "experiment": "labels", "receptive_field": rf,
                    "seed": seed, "detector": detector, "family": label,
                    "labeled_subjects": f"{n} subject{'s' if n > 1 else ''}"
                                        + (f", {percent} % of frames" if fraction < 1 else "")}
    return runs


VP3D_RUNS = vp3d_runs()
VP3D_ENABLED = VP3D_SETTINGS["dataset"] in labeled_datasets() and all(
    name in datasets_where(roles={"unlabeled_video"}) for name in VP3D_SETTINGS["video"])


def vp3d_unlabeled() -> list[str]:
    """The semi-supervised runs' unlabeled sources: the dataset's unlabeled subjects, then the video."""
    return [VP3D_SETTINGS["dataset"], *VP3D_SETTINGS["video"]]


def vp3d_detections(name: str, run: str) -> str:
    """Dataset ``name``'s detection file in experiment run ``run``."""
    detector = VP3D_RUNS[run]["detector"] or DATASETS[name]["detector"]
    return f"results/detections/{name}/{detector}.h5"


def vp3d_inputs(wildcards) -> list[str]:
    names = vp3d_unlabeled() if VP3D_RUNS[wildcards.run]["placement"] else [VP3D_SETTINGS["dataset"]]
    return dataset_files(names, lambda name: vp3d_detections(name, wildcards.run))


def vp3d_data_args(wildcards) -> str:
    return train_data_args([VP3D_SETTINGS["dataset"]], lambda name: vp3d_detections(name, wildcards.run))


def vp3d_semi_args(wildcards) -> str:
    run = VP3D_RUNS[wildcards.run]
    if not run["placement"]:
        return ""
    return semi_supervised_args(vp3d_unlabeled(), lambda name: vp3d_detections(name, wildcards.run))


def vp3d_spec(wildcards) -> str:
    """A VideoPose3D experiment run's spec: its train settings, and the semi-supervised section
    with the run's placement for semi-supervised runs."""
    run = VP3D_RUNS[wildcards.run]
    semi = ({**semi_supervised_section(config["semi_supervised"]), "placement": run["placement"]}
            if run["placement"] else None)
    return train_spec(run["train"], semi_supervised=semi)


def vp3d_keypoint_format(run: str) -> str:
    """The 2D keypoint format experiment run ``run``'s lifter reads."""
    spec = VP3D_RUNS[run]
    return lifter_keypoint_format(spec["train"], spec["detector"] or DATASETS[VP3D_SETTINGS["dataset"]]["detector"])


def vp3d_real_tables(run: str) -> list[str]:
    """The run's real-footage tables; none when its lifter reads 2D the real footage's detector
    does not give (h36m_17 ground truth: MediaPipe gives COCO-17)."""
    scorable = VP3D_ENABLED and vp3d_keypoint_format(run) in footage_keypoint_formats()
    return experiment_real_tables(VP3D_DIR, run) if scorable else []


def vp3d_run_table() -> list[dict]:
    return [{"name": name, "experiment": run["experiment"], "receptive_field": run["receptive_field"],
             "labeled_subjects": run["labeled_subjects"], "placement": run["placement"], "seed": run["seed"],
             "eval": f"{VP3D_DIR}/eval/{name}.parquet", "log": f"{VP3D_DIR}/models/{name}/train_log.parquet",
             "real": vp3d_real_tables(name)}
            for name, run in VP3D_RUNS.items()]


# --- the experiments on real footage: every experiment model whose 2D input the real footage's
# detector gives is also lifted on the triangulated multi-view takes (`posebridge evaluate-real`,
# the default models' yardstick; rules evaluate_real_vp3d, evaluate_real_mcss), and
# `posebridge paper-effects` says which paper effect holds where (experiments_paper_effects.smk)

EXPERIMENT_FOOTAGE = multiview_footage()  # triangulated takes: the real yardstick with 3D
PAPER_EFFECTS = [f"results/experiments/{name}" for name in ("paper_effects.csv", "paper_effects.html")]


def detector_keypoint_format(detector: str) -> str:
    """The 2D keypoint format a configured detector writes (its `keypoint_format`, else COCO-17)."""
    return config["detect"][detector].get("keypoint_format") or "coco_17"


def lifter_keypoint_format(train: dict, detector: str) -> str:
    """The 2D format a lifter trained with ``train`` settings on ``detector``'s 2D reads."""
    return train.get("keypoint_format") or detector_keypoint_format(detector)


def footage_keypoint_formats() -> set[str]:
    return {detector_keypoint_format(DATASETS[d]["detector"]) for d in EXPERIMENT_FOOTAGE}


def experiment_real_table(folder: str, model: str, dataset: str) -> str:
    return f"{folder}/real/{model}/{dataset}.parquet"


def experiment_real_tables(folder: str, model: str) -> list[str]:
    return [experiment_real_table(folder, model, d) for d in EXPERIMENT_FOOTAGE]


def experiment_real_args(folder: str, model: str) -> str:
    """`posebridge evaluate-real` options of an experiment model (rules evaluate_real_vp3d/_mcss)."""
    return evaluate_real_args(model, EXPERIMENT_FOOTAGE, lambda m, d: experiment_real_table(folder, m, d))


def mcss_real_tables() -> list[str]:
    """Every MCSS model's real-footage tables (none when its 2D format is not the footage's)."""
    fmt = lifter_keypoint_format({**config["train"], **MCSS["train"]}, DATASETS[MCSS["dataset"]]["detector"])
    if fmt not in footage_keypoint_formats():
        return []
    return [t for n in MCSS_LABELS for v in MCSS_VARIANTS for t in experiment_real_tables(MCSS_DIR, f"{v}_{n}")]


def real_consistency_table(model: str) -> str:
    """A default model's skeleton consistency on the triangulated takes (rule consistency_real)."""
    return f"results/experiments/acae/real_consistency/{model}.parquet"


def mcss_retrieval_footage() -> list[str]:
    """[dataset, detections] of the triangulated takes the MCSS models' cross-view retrieval is also
    measured on (the first multi-view footage), or []."""
    return [footage_h5(EXPERIMENT_FOOTAGE[0]), footage_detections(EXPERIMENT_FOOTAGE[0])] if EXPERIMENT_FOOTAGE else []


def paper_effects_inputs() -> dict[str, list[str]]:
    """What `posebridge paper-effects` reads: the experiments' tables, the ACAE comparison and the
    default models' real-footage tables and consistency on the triangulated takes."""
    return {"videopose3d": VP3D_OUTPUTS[:1] if VP3D_ENABLED else [],
            "mcss": [f"{MCSS_DIR}/{n}" for n in MCSS_OUTPUTS[:2]] if mcss_enabled() else [],
            "acae": [REPORT_FILES["acae_comparison_csv"]],
            "real": [real_table(m, d) for m in MODELS for d in EXPERIMENT_FOOTAGE],
            "consistency": [real_consistency_table(m) for m in MODELS] if EXPERIMENT_FOOTAGE else []}


# The targets of `snakemake experiments`: the tables and figures of each experiment whose data
# the configuration enables (under results/experiments/), and the paper effects' table.
EXPERIMENT_FILES = ([f"{MCSS_DIR}/{name}" for name in MCSS_OUTPUTS] if mcss_enabled() else []) + (
    VP3D_OUTPUTS if VP3D_ENABLED else []) + PAPER_EFFECTS
