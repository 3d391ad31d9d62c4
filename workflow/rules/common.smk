# Config validation and the small functions the rules share: which datasets play which part,
# where each file lives, per-rule seeds, and the JSON handed to each command's --spec.

import hashlib
import json
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
CONVERT_OPTION_SOURCES = {"part": ("mpi_inf_3dhp",), "universal": ("mpi_inf_3dhp", "mupots")}


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
        if entry["source"] == "mupots" and "fps" not in options:
            fail(f"datasets.{name}.convert", "source mupots needs `fps` (MuPoTS does not state its frame rate)")
    labeled = [name for name, entry in enabled.items() if entry["role"] == "labeled"]
    if not labeled:
        fail("datasets", "no enabled dataset has role `labeled`; training needs at least one")
    if not any(has_test_rows(entry) for entry in enabled.values()):
        fail("datasets", "no enabled dataset has test rows (role `test`, or `labeled` with test subjects)")
    for key in ("dataset_weights", "labeled_subjects", "labeled_fraction"):
        for name in config["train"].get(key, {}):
            if name not in labeled:
                fail(f"train.{key}.{name}", f"not an enabled labeled dataset ({', '.join(labeled)})")


validate_config(config)

# envs/posebridge.post-deploy.sh installs the package from here into the rules' conda env
os.environ.setdefault("POSEBRIDGE_ROOT", workflow.basedir)


# Rules call `posebridge`. When it is not on PATH, use the one beside the Python running
# Snakemake, so `.venv/bin/snakemake` works without activating the venv.
envvars:
    "PATH",


if shutil.which("posebridge") is None:
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

# name -> entry of every enabled dataset, in config order
DATASETS = {name: entry for name, entry in config["datasets"].items() if entry["enabled"]}

# Every trained model is evaluated on every test set and shown in the report. Later stages
# (pseudo-GT, ACAE, fine-tuning) add their models by appending here.
MODELS = ["initial"]

# Extra training signals of train_initial (semi-supervised video, multi-view metric learning).
# A stage's .smk appends a function returning (inputs: list of paths, args: str) for
# `posebridge train`, or ([], "") when its config section leaves it off.
TRAIN_OBJECTIVES = []


def objective_inputs(wildcards=None) -> list[str]:
    return [path for objective in TRAIN_OBJECTIVES for path in objective()[0]]


def objective_args(wildcards=None) -> str:
    return " ".join(args for args in (objective()[1] for objective in TRAIN_OBJECTIVES) if args)


# Files of the `experiments` target (snakemake experiments): each experiment's .smk appends its
# outputs (tables and figures under results/experiments/).
EXPERIMENT_FILES = []

REPORT_DIR = "results/report"
REPORT_FILES = {
    "metrics": f"{REPORT_DIR}/metrics.html",
    "baseline": f"{REPORT_DIR}/baseline.html",
    "summary": f"{REPORT_DIR}/summary.csv",
    "curves": f"{REPORT_DIR}/training_curves.png",
    "skeletons": f"{REPORT_DIR}/skeletons.png",
}
REPORT_HTML = "results/report.html"


def as_json(value) -> str:
    """Canonical JSON (sorted keys) so that equal settings give equal params strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def rule_seed(*parts) -> int:
    """A seed in [0, 2**31) derived from the master seed and ``parts`` (rule name, wildcards).

    sha256 rather than hash(): Python salts str hashes per process.
    """
    key = ":".join(map(str, (config["seed"], *parts)))
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 2**31


def names_regex(names) -> str:
    """A wildcard constraint matching exactly ``names`` (never matching when empty)."""
    names = list(names)
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


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
    return " ".join(shlex.quote(a) for a in args)


def labeled_datasets() -> list[str]:
    """Datasets that supervise training, in config order."""
    return datasets_where(roles={"labeled"})


def test_datasets() -> list[str]:
    """Datasets evaluated by every model: labeled ones' test split and role `test` ones."""
    return [name for name, entry in DATASETS.items() if has_test_rows(entry)]


def dataset_h5(name: str) -> str:
    return f"results/datasets/{name}.h5"


def dataset_index(name: str) -> str:
    return f"results/datasets/{name}.parquet"


def detections_h5(name: str) -> str:
    return f"results/detections/{name}/{DATASETS[name]['detector']}.h5"


def train_data_args(names, detections=detections_h5) -> str:
    """`--dataset A.h5 --detections A.h5 --train-format F` for each dataset, in order;
    ``detections(name)``: the dataset's detection file."""
    args = []
    for name in names:
        train_format = DATASETS[name]["train_format"] or "native"
        args += ["--dataset", dataset_h5(name), "--detections", detections(name),
                 "--train-format", train_format]
    return " ".join(args)


def eval_tables(models=MODELS) -> list[str]:
    return [f"results/eval/{m}/{d}.parquet" for m in models for d in test_datasets()]


def eval_examples(models=MODELS) -> list[str]:
    return [f"results/eval/{m}/{d}.examples.npz" for m in models for d in test_datasets()]


def build_html_report() -> None:
    """Write results/report.html (`snakemake --report`) after a run that rebuilt the report.

    Called from the Snakefile's onsuccess handler, which Snakemake skips for dry runs, for runs
    with nothing to do, for --report itself and inside cluster jobs (--no-hooks). It only acts
    when every report file exists and one of them is newer than results/report.html, so
    runs that stop short of the report (a single target) leave it alone. The nested call gets
    the fully resolved config, so it sees the same DAG as this run.
    """
    outputs = [Path(p) for p in REPORT_FILES.values()]
    html = Path(REPORT_HTML)
    if not all(p.exists() for p in outputs):
        return
    if html.exists() and html.stat().st_mtime >= max(p.stat().st_mtime for p in outputs):
        return
    resolved = Path(".snakemake/posebridge/report-config.json")
    resolved.parent.mkdir(parents=True, exist_ok=True)
    resolved.write_text(json.dumps(config, indent=1))
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", workflow.main_snakefile,
        "--directory", os.getcwd(), "--configfile", str(resolved),
        "--workflow-profile", "none", "--report", str(html),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        sys.stderr.write(f"posebridge: could not write {html}; run `snakemake --report {html}`\n")


# --- 2D detection (detect.smk)

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
