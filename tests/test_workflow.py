"""The Snakemake workflow: config validation, lint, wiring, the SLURM profile, and end to end.

Most tests drive `snakemake` in a temporary working directory (--directory), so they never
touch the checkout's results/. Wiring tests put a stand-in `posebridge` on PATH
(tests/fake_slurm/steps/) that writes each step's declared files at once; the SLURM test adds
stand-in sbatch/srun/sacct/... (tests/fake_slurm/) that record what the executor plugin calls.
The end-to-end test runs the real steps on the tiny preset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
TINY = REPO / "workflow" / "presets" / "tiny.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
FAKE_SLURM = REPO / "tests" / "fake_slurm"
STUB_STEPS = FAKE_SLURM / "steps"
REPORT_FILES = ["metrics.html", "baseline.html", "summary.csv", "training_curves.png", "skeletons.png",
                "acae_comparison.html", "acae_comparison.csv", "acae_reconstruction.html", "acae_weights.png",
                "acae_latents.png", "real_footage.html", "real_footage_frames.png", "viewer.html"]


def snakemake(workdir: Path, *args, env: dict | None = None, check: bool = True,
              timeout: float = 600) -> subprocess.CompletedProcess:
    """Run snakemake on this repository's Snakefile with ``workdir`` as working directory."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
               "--directory", str(workdir), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def job_counts(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run as {rule: count}; {} when there is nothing to do."""
    text = result.stdout + result.stderr
    match = re.search(r"Job stats:\njob\s+count\n[-\s]+\n((?:\S+\s+\d+\n)+)", text)
    if not match:
        assert "Nothing to be done" in text, text[-3000:]
        return {}
    counts = dict(line.split() for line in match.group(1).strip().splitlines())
    counts = {rule: int(n) for rule, n in counts.items()}
    counts.pop("total")
    return counts


def shell_commands(result: subprocess.CompletedProcess) -> list[str]:
    """The shell commands a `-n -p` (dry) run printed."""
    return re.findall(r"^Shell command: (.+)$", result.stdout + result.stderr, flags=re.M)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def stub_env(*, slurm_state: Path | None = None) -> dict:
    """Environment with the stand-in posebridge (and, given a state dir, fake SLURM) first on PATH."""
    paths = [str(STUB_STEPS), str(Path(sys.executable).parent), os.environ["PATH"]]
    env = dict(os.environ)
    if slurm_state is not None:
        paths.insert(0, str(FAKE_SLURM))
        env["FAKE_SLURM_DIR"] = str(slurm_state)
    env["PATH"] = os.pathsep.join(paths)
    return env


def load_default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


# --- configuration --------------------------------------------------------------------------

def expected_seed(master: int, *parts) -> int:
    """Independent restatement of common.smk's rule_seed (sha256, so stable across processes)."""
    key = ":".join(map(str, (master, *parts)))
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 2**31


def seeds_by_command(result) -> dict[str, int]:
    return {re.sub(r"--seed \d+", "", c): int(re.search(r"--seed (\d+)", c).group(1))
            for c in shell_commands(result) if "--seed" in c}


def test_default_config_plans_every_test_set_with_derived_seeds(tmp_path):
    config = load_default_config()
    result = snakemake(tmp_path, "-n", "-p")
    counts = job_counts(result)
    real = {n: d for n, d in config["datasets"].items() if d["source"] != "synthetic"}  # real footage
    datasets = {n: d for n, d in config["datasets"].items() if n not in real}
    labeled = [n for n, d in datasets.items() if d["role"] == "labeled"]
    tests = [n for n, d in datasets.items()
             if d["role"] == "test" or (d["role"] == "labeled" and d["synth"].get("test_subjects", 1) > 0)]
    used = set(labeled) | set(tests)
    variants = config["acae"]["finetune"]["variants"]
    models = 3 + len(variants)  # initial, merged, the fine-tuned ones and their ensemble
    assert config["ensemble"] == ["finetune_output_reg", "merged"]
    multiview = [n for n, d in real.items() if d["source"] == "pose2sim"]
    assert sorted(real) == ["pose2sim", "real_videos"] and all(d["role"] == "test" for d in real.values())
    assert counts == {"synth_generate": len(used), "detect_2d": len(used) + len(real), "train_initial": 1,
                      "finetune_merged": 1, "pseudo_gt": 1, "fit_acae": 1, "finetune": len(variants),
                      "consistency": models, "evaluate": models, "report": 1, "report_acae": 1,
                      "convert": len(real), "triangulate": len(multiview), "evaluate_real": models,
                      "report_real": 1, "viewer": 1, "ensemble": 1, "all": 1}

    # every job its own seed, derived from the master seed and the job's wildcards
    seeds = seeds_by_command(result)
    assert len(set(seeds.values())) == len(seeds) == 2 * len(used) + len(real) + 4 + len(variants)
    commands = shell_commands(result)
    # one evaluate job per model scores every test set, one evaluate-real job every real dataset
    for step, names in (("evaluate", tests), ("evaluate-real", list(real))):
        jobs = [c for c in commands if c.startswith(f"posebridge {step} ")]
        assert len(jobs) == models
        for job in jobs:
            model = re.search(r"--model results/models/(\w+) ", job).group(1)
            outputs = re.findall(r"--output (\S+)", job)
            assert [Path(p).stem for p in outputs] == names and all(f"/{model}/" in p for p in outputs)
    train = next(c for c in commands if c.startswith("posebridge train"))
    assert f"--seed {expected_seed(config['seed'], 'train_initial')} " in train
    synth = next(c for c in commands if f"--name {labeled[0]} " in c)
    assert f"--seed {expected_seed(config['seed'], 'synthesize', labeled[0])} " in synth

    reseeded = seeds_by_command(snakemake(tmp_path, "-n", "-p", "--config", "seed=1"))
    assert reseeded.keys() == seeds.keys()
    assert all(reseeded[k] != seeds[k] for k in seeds)


def test_videopose3d_experiment_plans_methods_seeds_and_its_detector(tmp_path):
    config = load_default_config()
    # (b) on ground-truth h36m_17 2D (the paper's figure): those models cannot read real footage
    overlay = {"semi_supervised": {"experiment": {"labels_detector": "gt2d_h36m"}}}
    settings = {**config["semi_supervised"]["experiment"], **overlay["semi_supervised"]["experiment"]}
    result = snakemake(tmp_path, "-n", "-p", "results/experiments/videopose3d/experiments.csv",
                       "--configfile", write_yaml(tmp_path / "gt2d.yaml", overlay))
    runs = len(settings["receptive_fields"]) + len(settings["labels"]) * (1 + len(settings["placements"])) * settings["seeds"]
    counts = job_counts(result)
    assert counts["train_vp3d"] == counts["evaluate_vp3d"] == runs
    assert counts["evaluate_real_vp3d"] == len(settings["receptive_fields"])  # COCO-17 input: the real detector's
    commands = {re.search(r"--out-dir \S+/models/(\S+)", c).group(1): c
                for c in shell_commands(result) if c.startswith("posebridge train")}
    # one label setting and seed index: supervised and each placement share the seed; seed indices differ
    for seed in range(settings["seeds"]):
        names = [f"labeled1_10pct_{m}_s{seed}" for m in ("supervised", "semi_trajectory", "semi_depth")]
        expected = expected_seed(config["seed"], "vp3d_train", "labeled1_10pct", seed)
        assert all(f"--seed {expected} " in commands[n] for n in names)
    assert expected_seed(config["seed"], "vp3d_train", "labeled1_10pct", 0) != expected
    depth = commands["labeled1_10pct_semi_depth_s0"]
    assert '"semi_supervised":{' in depth and '"placement":"depth"' in depth and '"keypoint_format":"h36m_17"' in depth
    detector = settings["labels_detector"]
    for name in (settings["dataset"], *settings["video"]):  # every 2D of the run from the experiment's detector
        assert f"--unlabeled-detections results/detections/{name}/{detector}.h5" in depth
    assert "--unlabeled-video" not in commands["labeled1_10pct_supervised_s0"]
    assert f"--detections results/detections/{settings['dataset']}/{detector}.h5" in commands["labeled2_supervised_s1"]
    assert f"/{detector}.h5" not in commands["rf27"]  # the receptive-field runs keep the dataset's own detector
    (table,) = [c for c in shell_commands(result) if c.startswith("posebridge videopose3d-experiments")]
    real = {run["name"]: run["real"] for run in json.loads(re.search(r"--runs '([^']+)'", table).group(1))}
    assert real["rf27"] == ["results/experiments/videopose3d/real/rf27/pose2sim.parquet"]
    assert real["labeled2_supervised_s1"] == []


def test_every_experiment_model_is_scored_on_the_triangulated_real_footage(tmp_path):
    settings = load_default_config()["semi_supervised"]["experiment"]
    assert settings["labels_detector"] is None  # every run reads the simulated COCO-17 detections
    result = snakemake(tmp_path, "-n", "-p", "experiments")
    counts = job_counts(result)
    assert counts["evaluate_real_vp3d"] == counts["train_vp3d"] and counts["evaluate_real_mcss"] == counts["train_mcss"]
    assert counts["paper_effects"] == 1 and counts["triangulate"] == 1 and counts["consistency_real"] == counts["consistency"]
    commands = shell_commands(result)
    (real,) = [c for c in commands if c.startswith("posebridge evaluate-real --model results/experiments/mcss/models/mv_1 ")]
    # each view's 2D is the triangulated person's (the triangulate rule's keypoints), not the raw detections
    assert ("--dataset results/triangulated/pose2sim/mediapipe_people.h5"
            " --detections results/triangulated/pose2sim/mediapipe_people_2d.h5"
            " --output results/experiments/mcss/real/mv_1/pose2sim.parquet") in real
    (mcss,) = [c for c in commands if c.startswith("posebridge mcss-eval")]
    assert mcss.count("results/experiments/mcss/real/") == counts["train_mcss"]
    assert ("--real-dataset results/triangulated/pose2sim/mediapipe_people.h5"
            " --real-detections results/triangulated/pose2sim/mediapipe_people_2d.h5") in mcss
    (effects,) = [c for c in commands if c.startswith("posebridge paper-effects")]
    for part in ("--videopose3d results/experiments/videopose3d/experiments.csv",
                 "--mcss results/experiments/mcss/nmpjpe.csv results/experiments/mcss/retrieval.csv",
                 "--acae results/report/acae_comparison.csv", "results/real_footage/merged/pose2sim.parquet",
                 "--real-consistency results/experiments/acae/real_consistency/initial.parquet"):
        assert part in effects


def test_tiny_preset_is_smaller_and_valid(tmp_path):
    result = snakemake(tmp_path, "-n", "-p", "--configfile", TINY)
    counts = job_counts(result)
    assert counts["train_initial"] == 1 and counts["evaluate"] >= 2
    train = next(c for c in shell_commands(result) if c.startswith("posebridge train"))
    spec = json.loads(re.search(r"--spec '([^']+)'", train).group(1))
    default = load_default_config()["train"]
    assert spec["channels"] < default["channels"] and spec["samples_per_epoch"] < default["samples_per_epoch"]
    # disabled datasets are gone from the DAG
    for name, entry in yaml.safe_load(TINY.read_text())["datasets"].items():
        if entry.get("enabled") is False:
            assert f"--name {name} " not in result.stdout


@pytest.mark.parametrize("overlay, names", [
    ({"train": {"epoch": 5}}, ["config.train", "'epoch' was unexpected"]),
    ({"datasets": {"synth_h36m": {"detector": "openpose"}}},
     ["config.datasets.synth_h36m.detector", "unknown detector 'openpose'"]),
    ({"train": {"dataset_weights": {"synth_video": 2}}}, ["config.train.dataset_weights.synth_video"]),
    ({"semi_supervised": {"experiment": {"labels_detector": "openpose"}}},
     ["config.semi_supervised.experiment.labels_detector", "unknown detector 'openpose'"]),
    ({"datasets": {n: {"enabled": False} for n in ("synth_h36m", "synth_3dhp", "synth_3dpw", "synth_panoptic",
                                                   "synth_humaneva", "synth_wild")}},
     ["config.datasets", "role `labeled`"]),
    # skeleton and keypoint formats are checked when the config is read, not when a job fails
    ({"datasets": {"synth_h36m": {"train_format": "h36m_99"}}}, ["train_format", "h36m_99"]),
    ({"train": {"keypoint_format": "coco_99"}}, ["keypoint_format", "coco_99"]),
    # the ensemble's members are trained models of this run
    ({"ensemble": ["finetune_output_reg", "finetune_outputreg"]}, ["config.ensemble", "finetune_outputreg"]),
    ({"acae": {"merged": False}}, ["config.ensemble", "merged not among the trained models"]),
    ({"ensemble": ["merged"]}, ["config.ensemble", "two or more"]),
])
def test_bad_config_stops_snakemake_with_a_line_naming_the_key(tmp_path, overlay, names):
    bad = write_yaml(tmp_path / "bad.yaml", overlay)
    result = snakemake(tmp_path, "-n", "--configfile", bad, check=False)
    assert result.returncode != 0
    output = (result.stdout + result.stderr).splitlines()
    message = next(line for line in output if line.startswith("invalid configuration"))
    for name in names:
        assert name in message, message


def test_make_run_names_a_config_file_with_a_yaml_syntax_error(tmp_path):
    # Snakemake parses --configfile before the workflow and its message names no file: `make run
    # CONFIG=` checks the files first (-o: never reinstall .venv; BIN: the Python running the tests)
    bad = tmp_path / "my.yaml"
    bad.write_text("seed: 1\ntrain: {epochs: 3\n")
    result = subprocess.run(["make", "-C", str(REPO), "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}",
                             "run", f"CONFIG={bad}"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("posebridge")]
    assert errors == [f"posebridge check-config: error: {bad}: not valid YAML: expected ',' or '}}', "
                      "but got '<stream end>' at line 3, column 1"]
    assert "--workflow-profile" not in result.stdout  # stopped before make ran snakemake


def merged_default(overlay: dict) -> dict:
    """config.yaml with ``overlay`` merged over it, as Snakemake merges a --configfile."""
    def merge(base, extra):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    return merge(load_default_config(), overlay)


def schema_error(config: dict):
    """The jsonschema error snakemake.utils.validate raises for ``config`` (None if valid)."""
    try:
        validate(config, str(SCHEMA))
    except WorkflowError as err:
        assert isinstance(err.__context__, jsonschema.ValidationError)
        return jsonschema.exceptions.best_match([err.__context__])
    return None


@pytest.mark.parametrize("overlay, path, words", [
    ({"evaluate": {"pck_threshold": -5}}, ["evaluate", "pck_threshold"], "-5"),
    ({"datasets": {"synth_h36m": {"role": "labelled"}}}, ["datasets", "synth_h36m", "role"], "'labelled'"),
    ({"evaluate": {"max_frames_per_sequence": 0}}, ["evaluate", "max_frames_per_sequence"], "0"),
    ({"datasets": {"synth_h36m": {"synth": {"train_subject": 3}}}},
     ["datasets", "synth_h36m", "synth"], "'train_subject' was unexpected"),
    ({"datasets": {"synth_h36m": {"synth": {"template": "h63m"}}}},
     ["datasets", "synth_h36m", "synth", "template"], "'h63m'"),
    ({"datasets": {"mine": {"source": "synthetic", "role": "test"}}},
     ["datasets", "mine"], "'synth' is a required property"),
    ({"datasets": {"my data": {"source": "synthetic", "role": "test", "synth": {"template": "h36m"}}}},
     ["datasets"], "'my data'"),
    ({"train": {"filter_widths": [3, 4]}}, ["train", "filter_widths", 1], "4"),
    ({"train": {"loss_weights": {"projection": 1.0}}}, ["train", "loss_weights"], "'projection' was unexpected"),
    ({"threads": {"train": 4}}, ["threads"], "'train' was unexpected"),
    ({"device": "gpu"}, ["device"], "'gpu'"),
    ({"detect": {"simulated": {"error_scle": 2}}}, ["detect", "simulated"], "'error_scle' was unexpected"),
    ({"detect": {"fast_mediapipe": {"static_image_mode": True}}}, ["detect", "fast_mediapipe"],
     "'kind' is a required property"),
    ({"detect": {"fast_mediapipe": {"kind": "openpose"}}}, ["detect", "fast_mediapipe", "kind"], "'openpose'"),
    ({"seeed": 1}, [], "'seeed' was unexpected"),
])
def test_schema_rejects_bad_keys_and_values(overlay, path, words):
    error = schema_error(merged_default(overlay))
    assert error is not None
    assert list(error.absolute_path) == path
    assert words in error.message


def test_default_config_and_tiny_preset_are_valid():
    assert schema_error(load_default_config()) is None
    assert schema_error(merged_default(yaml.safe_load(TINY.read_text()))) is None
    # real detectors join as further `detect` entries, by name or with their kind
    detectors = {"mediapipe": {"videos": "v/{subject}.mp4"}, "cpn": {"kind": "imported", "file": "x.npz"}}
    assert schema_error(merged_default({"detect": detectors})) is None


def test_schema_defaults_fill_missing_keys(tmp_path):
    # a config naming only datasets still runs: seed, device, threads, detect come from the schema
    minimal = {"datasets": {"only": {"source": "synthetic", "role": "labeled",
                                     "synth": {"template": "h36m"}}}}
    config = write_yaml(tmp_path / "minimal.yaml", minimal)
    result = snakemake(tmp_path, "-n", "-p", "--configfile", config, "--replace-workflow-config")
    commands = shell_commands(result)
    assert any("posebridge detect-2d --dataset results/datasets/only.h5 --detector simulated"
               " --spec '{\"error_scale\":1.0}'" in c for c in commands)
    assert any("--device auto" in c for c in commands if c.startswith("posebridge train"))


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_conda_env_pins_the_package_requirements():
    env = yaml.safe_load((REPO / "envs" / "posebridge.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = {r for r in project["dependencies"] if not r.startswith("snakemake")}
    assert set(pip) == needed
    assert "python=3.11" in env["dependencies"]
    assert (REPO / "envs" / "posebridge.post-deploy.sh").exists()


def _schema_keys(*path: str) -> set[str]:
    node = yaml.safe_load(SCHEMA.read_text())
    for key in path:
        node = node[key]
    return set(node["properties"])


def _dataclass_fields(module: str, name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), name))}


def test_schema_keys_match_the_evaluate_config():
    assert _schema_keys("properties", "evaluate") == _dataclass_fields("posebridge.evaluation.evaluate", "EvalConfig")


def test_schema_keys_match_the_train_config():
    from posebridge.training.settings import SECTIONS

    fields = _dataclass_fields("posebridge.training.loop", "TrainConfig")
    # the objectives' sections of the spec come from the config's own sections
    # (semi_supervised, multiview, acae.finetune), not from `train`
    assert _schema_keys("properties", "train") == fields - set(SECTIONS)


def test_schema_default_filter_widths_are_the_train_configs():
    from posebridge.training.loop import TrainConfig

    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["train"]["properties"]["filter_widths"]["default"] == TrainConfig().filter_widths


def test_the_dag_is_built_without_importing_torch(tmp_path):
    # torch blocked: importing it anywhere while Snakemake plans raises ImportError
    code = ("import sys; sys.modules['torch'] = None; from snakemake.cli import main; "
            f"main(['--snakefile', {str(SNAKEFILE)!r}, '--directory', {str(tmp_path)!r}, '-n', 'all', 'experiments'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "train_vp3d" in result.stdout + result.stderr


def test_schema_keys_match_the_synthetic_dataset_spec():
    fields = _dataclass_fields("posebridge.sources.synth.generate", "DatasetSpec")
    assert _schema_keys("$defs", "synth_spec") == fields


# --- rules and the commands they run ----------------------------------------------------------

def rule_blocks() -> dict[str, tuple[Path, str]]:
    """rule name -> (the file defining it, its text), for the Snakefile and every file it includes."""
    included = re.findall(r'^include: "([^"]+)"', SNAKEFILE.read_text(), flags=re.M)
    rules = {}
    for path in [SNAKEFILE, *(REPO / name for name in included)]:
        parts = re.split(r"^[ \t]*rule (\w+):", path.read_text(), flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2]):
            assert name not in rules, f"rule {name} defined twice"
            rules[name] = (path, body)
    return rules


def shell_command(body: str) -> str | None:
    """The shell command template of a rule's text (its string literals joined), None without one."""
    block = re.search(r"^[ \t]*shell:\n((?:[ \t]*\"[^\n]*\"\n?)+)", body, flags=re.M)
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block.group(1))) if block else None


def subcommand_words(command: str) -> list[str]:
    """The words naming the posebridge subcommand in a shell command ("synth generate")."""
    words = command.replace("{params.launcher}", "").split()  # (training rules: torchrun for N processes)
    assert "posebridge" in words, command
    rest = words[words.index("posebridge") + 1:]
    end = next((i for i, word in enumerate(rest) if word[0] in "-{>[<("), len(rest))
    return rest[:end]


def is_subcommand(words: list[str]) -> bool:
    """Whether ``words`` name a complete subcommand of the real `posebridge` parser."""
    import argparse

    from posebridge.cli import build_parser

    parser = build_parser()
    for word in words:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            return False
        parser = actions[0].choices[word]
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def test_the_cli_has_every_command_and_fails_on_a_missing_module(monkeypatch):
    import argparse

    from posebridge import cli

    (subcommands,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(subcommands.choices) == set(cli.COMMANDS)
    monkeypatch.setitem(cli.COMMANDS, "gone", "no_such_step")
    with pytest.raises(ModuleNotFoundError, match="posebridge.commands.no_such_step"):
        cli.build_parser()


def test_every_rule_runs_an_existing_posebridge_subcommand_it_is_named_after(tmp_path):
    rules = rule_blocks()
    listed = set(snakemake(tmp_path, "--list-rules").stdout.split())
    assert set(rules) <= listed and set(rules) >= {"all", "experiments"}
    steps = {name: shell_command(body) for name, (_, body) in rules.items() if name not in ("all", "experiments")}
    assert len(steps) == 27
    for name, command in steps.items():
        assert command, f"rule {name} runs no shell command"
        words = subcommand_words(command)
        assert is_subcommand(words), f"rule {name}: `posebridge {' '.join(words)}` is no posebridge subcommand"
        # named after the subcommand, then `_<what>` where several rules run one command
        stem = "_".join(words).replace("-", "_")
        assert name == stem or name.startswith(stem + "_"), f"rule {name} runs `posebridge {' '.join(words)}`"
        _, body = rules[name]
        for directive, folder in (("log", "logs"), ("benchmark", "benchmarks")):
            path = re.search(rf"^\s*{directive}:\n\s*\"([^\"]+)\"", body, flags=re.M)
            assert path and re.match(rf"{folder}/{name}[/.]", path.group(1)), f"rule {name}: {directive}"


def test_each_rule_has_its_own_threads_key():
    keys = {name: re.search(r'threads: rule_threads\("(\w+)"\)', body)
            for name, (_, body) in rule_blocks().items()}
    keys = {name: match.group(1) for name, match in keys.items() if match}
    assert all(name == key for name, key in keys.items()), keys
    assert _schema_keys("properties", "threads") == set(keys) == set(load_default_config()["threads"])


def test_rules_table_gives_each_rules_file_command_and_modules():
    from posebridge.cli import COMMANDS

    text = (REPO / "docs" / "internals.md").read_text()
    section = text[text.index("\n## Rules\n"):]
    rows = re.findall(r"^\| `(\w+)` \| (\S+) \| `([^`]+)`[^|]* \| `([^`]+)` \| (.+) \|$", section, flags=re.M)
    rules = {name: (path, shell_command(body)) for name, (path, body) in rule_blocks().items()
             if name not in ("all", "experiments")}
    assert sorted(row[0] for row in rows) == sorted(rules)
    package = REPO / "src" / "posebridge"
    for name, file, command, module, library in rows:
        path, shell = rules[name]
        assert path.name == file, f"{name} is in {path.name}"
        words = subcommand_words(shell)
        assert subcommand_words(command) == words, f"{name}: the table says `{command}`"
        assert module == f"commands/{COMMANDS[words[0]]}.py" and (package / module).exists(), name
        for library_path in re.findall(r"`([^`]+)`", library):
            assert (package / library_path).exists(), f"{name}: {library_path}"


# --- wiring, with the stand-in steps ----------------------------------------------------------

def tiny_labeled_datasets() -> list[str]:
    """The labeled datasets of the tiny preset merged over the default, in config order."""
    tiny = yaml.safe_load(TINY.read_text())["datasets"]
    return [n for n, d in load_default_config()["datasets"].items()
            if tiny.get(n, {}).get("role", d["role"]) == "labeled" and tiny.get(n, {}).get("enabled", True)]


def test_wiring_reruns_only_what_a_change_touches(tmp_path):
    env = stub_env()
    # a run that stops short of the report leaves results/report.html alone
    snakemake(tmp_path, "results/datasets/synth_h36m.h5", "--cores", 2, "--configfile", TINY, env=env)
    assert not (tmp_path / "results" / "report.html").exists()

    snakemake(tmp_path, "--cores", 2, "--configfile", TINY, env=env)
    for name in REPORT_FILES:
        assert (tmp_path / "results" / "report" / name).exists()
    assert (tmp_path / "results" / "report.html").stat().st_size > 10_000  # onsuccess: --report
    assert not any((tmp_path / "results" / "models" / "initial").glob("checkpoint*"))
    for rule_dir in ("synth_generate", "detect_2d", "evaluate"):
        assert any((tmp_path / "logs" / rule_dir).rglob("*.log"))
        assert any((tmp_path / "benchmarks" / rule_dir).rglob("*.tsv"))

    # the training step got one --dataset/--detections/--train-format triple per labeled dataset
    argv = json.loads((tmp_path / "results" / "models" / "initial" / "config.yaml").read_text())
    labeled = tiny_labeled_datasets()
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--dataset"] == \
        [f"results/datasets/{n}.h5" for n in labeled]
    assert argv.count("--train-format") == len(labeled)
    assert argv[argv.index("--checkpoint") + 1] == "results/checkpoints/initial.pt"

    assert job_counts(snakemake(tmp_path, "-n", "--configfile", TINY, env=env)) == {}

    changed_eval = write_yaml(tmp_path / "eval.yaml", {"evaluate": {"pck_threshold": 100}})
    counts = job_counts(snakemake(tmp_path, "-n", "--configfile", TINY, changed_eval, env=env))
    assert set(counts) == {"evaluate", "report", "report_acae", "report_real", "all"}  # real: synthetic beside

    # the autoencoder's settings rerun it and what depends on it, not the initial model
    changed_acae = write_yaml(tmp_path / "acae.yaml", {"acae": {"fit": {"n_latent_center": 6}}})
    counts = job_counts(snakemake(tmp_path, "-n", "--configfile", TINY, changed_acae, env=env))
    assert counts == {"fit_acae": 1, "finetune": 1, "ensemble": 1, "consistency": 5, "evaluate": 2, "report": 1,
                      "report_acae": 1, "evaluate_real": 2, "report_real": 1, "viewer": 1, "all": 1}
    # tiny: hybrid depends on it, continued does not; the ensemble holds hybrid

    changed_detector = write_yaml(tmp_path / "det.yaml", {"detect": {"simulated": {"error_scale": 2.0}}})
    counts = job_counts(snakemake(tmp_path, "-n", "--configfile", TINY, changed_detector, env=env))
    assert set(counts) == {"detect_2d", "train_initial", "finetune_merged", "pseudo_gt", "fit_acae", "finetune",
                           "ensemble", "consistency", "evaluate", "report", "report_acae", "evaluate_real", "report_real",
                           "viewer", "all"}
    assert "convert" not in counts and "triangulate" not in counts  # the real footage's 2D is MediaPipe's

    # the triangulation's settings rerun it and what reads it, nothing else
    changed_triangulation = write_yaml(tmp_path / "tri.yaml", {"triangulate": {"max_error_px": 30}})
    counts = job_counts(snakemake(tmp_path, "-n", "--configfile", TINY, changed_triangulation, env=env))
    assert counts == {"triangulate": 1, "evaluate_real": 5, "report_real": 1, "all": 1}


# --- the SLURM profile, with stand-in SLURM commands ------------------------------------------

def test_slurm_profile_asks_gpus_for_gpu_rules_only(tmp_path):
    # the training inputs, made locally; then the cluster runs one GPU job and one CPU job
    labeled = tiny_labeled_datasets()
    snakemake(tmp_path, *[f"results/detections/{n}/simulated.h5" for n in labeled],
              "--cores", 2, "--configfile", TINY, env=stub_env())

    state = tmp_path / "slurm"
    env = stub_env(slurm_state=state)
    snakemake(tmp_path, "results/models/initial/model.pt", "results/datasets/synth_3dpw.h5",
              "--workflow-profile", REPO / "profiles" / "slurm", "--configfile", TINY,
              "--slurm-init-seconds-before-status-checks", 1, "--seconds-between-status-checks", 1,
              env=env)

    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    submitted = {}
    for call in calls:
        if call["command"] == "sbatch":
            argv = call["argv"]
            rule = re.match(r"rule_([a-z0-9_]+?)(_wildcards_|$)", argv[argv.index("--comment") + 1]).group(1)
            submitted[rule] = argv
    assert set(submitted) == {"train_initial", "synth_generate"}

    train, synth = submitted["train_initial"], submitted["synth_generate"]
    assert "--gpus=1" in train
    assert not any(a.startswith(("--gpus", "--gres", "--gpus-per")) for a in synth)
    # account and partitions from the profile: the GPU rule on the GPU partition
    assert train[train.index("-A") + 1] == "EDIT_ME_ACCOUNT"
    assert train[train.index("-p") + 1] == "EDIT_ME_GPU_PARTITION"
    assert synth[synth.index("-p") + 1] == "EDIT_ME_CPU_PARTITION"
    assert train[train.index("-t") + 1] == "720" and synth[synth.index("-t") + 1] == "60"
    assert "--cpus-per-task=8" in train  # threads.train_initial of config.yaml
    # the job step inside the allocation also asks for the GPU
    steps = [c["argv"] for c in calls if c["command"] == "srun"]
    assert any("--gpus=1" in s and "train_initial" in " ".join(s) for s in steps)
    assert not any("--gpus=1" in s and "synth_generate" in " ".join(s) for s in steps)
    assert (tmp_path / "results" / "datasets" / "synth_3dpw.h5").exists()


def test_slurm_training_job_of_n_processes_asks_n_gpus_and_launches_n_processes(tmp_path):
    # train.processes = 2: the training job asks SLURM for 2 GPUs and its step runs torchrun,
    # which starts the (stand-in) `posebridge train` twice, as ranks 0 and 1 of 2
    labeled = tiny_labeled_datasets()
    snakemake(tmp_path, *[f"results/detections/{n}/simulated.h5" for n in labeled],
              "--cores", 2, "--configfile", TINY, env=stub_env())
    two = write_yaml(tmp_path / "two.yaml", {"train": {"processes": 2}})
    state = tmp_path / "slurm"
    snakemake(tmp_path, "results/models/initial/model.pt",
              "--workflow-profile", REPO / "profiles" / "slurm", "--configfile", TINY, two,
              "--slurm-init-seconds-before-status-checks", 1, "--seconds-between-status-checks", 1,
              env=stub_env(slurm_state=state))

    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    train = next(c["argv"] for c in calls if c["command"] == "sbatch")
    assert "--gpus=2" in train and "--cpus-per-task=8" in train
    step = next(c["argv"] for c in calls if c["command"] == "srun")
    assert "--gpus=2" in step  # the job step inside the allocation holds both GPUs
    processes = [c for c in calls if c["command"] == "posebridge" and c["argv"][0] == "train"]
    assert sorted((c["rank"], c["world_size"]) for c in processes) == [(0, 2), (1, 2)]
    assert all('"processes":2' in c["argv"][c["argv"].index("--spec") + 1] for c in processes)
    assert (tmp_path / "results" / "models" / "initial" / "model.pt").exists()


def test_slurm_profile_puts_every_gpu_rule_on_the_gpu_partition():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    gpu_rules = {name for name, (_, body) in rule_blocks().items() if re.search(r"^\s*gpu=", body, flags=re.M)}
    assert "train_initial" in gpu_rules and "finetune" in gpu_rules
    partitions = {name: settings.get("slurm_partition") for name, settings in profile["set-resources"].items()}
    assert {name for name, partition in partitions.items() if partition == "EDIT_ME_GPU_PARTITION"} == gpu_rules


# --- end to end, with the real steps ----------------------------------------------------------

def test_end_to_end_on_the_tiny_preset(tmp_path):
    import numpy as np
    import pandas as pd

    # PATH as it comes: the workflow finds `posebridge` beside the Python running Snakemake
    env = None
    snakemake(tmp_path, "--cores", 2, "--configfile", TINY, timeout=900)

    report = tmp_path / "results" / "report"
    for name in REPORT_FILES:
        assert (report / name).stat().st_size > 0, name
    assert (tmp_path / "results" / "report.html").stat().st_size > 10_000

    tables = sorted((tmp_path / "results" / "eval" / "initial").glob("*.parquet"))
    assert len(tables) >= 2
    for path in tables:
        table = pd.read_parquet(path)
        assert len(table) > 0
        assert np.isfinite(table[["mpjpe", "pa_mpjpe", "n_mpjpe", "pck", "auc", "cps"]].to_numpy()).all()
        # the dataset's own format; a test set in a format no training set has (3DPW's SMPL joints)
        # is scored in the other formats the synthetic benchmark knows for it
        scored = table[table["native"]] if table["native"].any() else table
        lifter = scored[scored["model"] == "initial"]["mpjpe"].mean()
        baseline = scored[scored["model"] == "mean_pose"]["mpjpe"].mean()
        assert lifter < 0.9 * baseline, f"{path.name}: lifter {lifter:.1f} mm vs mean pose {baseline:.1f} mm"

    assert job_counts(snakemake(tmp_path, "-n", "--configfile", TINY, env=env)) == {}
    changed = write_yaml(tmp_path / "eval.yaml", {"evaluate": {"cps_threshold": 150}})
    counts = job_counts(snakemake(tmp_path, "-n", "--configfile", TINY, changed, env=env))
    assert set(counts) == {"evaluate", "report", "report_acae", "report_real", "all"}

    # the skeleton bridge: every model compared, the ACAE far below the mean pose on held-out poses
    comparison = pd.read_csv(report / "acae_comparison.csv")
    assert list(comparison["model"]) == ["initial", "merged", "finetune_continued", "finetune_hybrid", "ensemble"]
    assert np.isfinite(comparison[["mpjpe_mean", "affine_mm", "acae_mm"]].to_numpy()).all()
    reconstruction = pd.read_parquet(tmp_path / "results" / "acae" / "metrics.parquet").set_index("method")
    acae = reconstruction.loc[reconstruction.index.str.startswith("ACAE"), "holdout_mpjpe"].iloc[0]
    assert acae < 0.6 * reconstruction.loc["mean pose", "holdout_mpjpe"]  # measured: 56 vs 139 mm


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_weights(tmp_path):
    import signal
    import time

    import torch

    longer = write_yaml(tmp_path / "longer.yaml", {"train": {"epochs": 4}})
    target = "results/models/initial/model.pt"
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    # run until epoch 3 has begun (so epoch 2's checkpoint is written), then kill Snakemake and
    # the training job at once, as a lost node would
    command = [sys.executable, "-m", "snakemake", target, "--snakefile", str(SNAKEFILE),
               "--directory", str(killed), "--cores", "2", "--configfile", str(TINY), str(longer)]
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    log = killed / "logs" / "train_initial.log"
    deadline = time.monotonic() + 600
    while not (log.exists() and "epoch 3/4:" in log.read_text(errors="replace")):
        assert job.poll() is None and time.monotonic() < deadline, "training ended before the kill"
        time.sleep(0.5)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert not (killed / target).exists()

    snakemake(killed, "--unlock", "--configfile", TINY, longer)
    snakemake(killed, target, "--cores", 2, "--configfile", TINY, longer)
    assert re.search(r"resuming from results/checkpoints/initial.pt after epoch [23]\b",
                     log.read_text(errors="replace"))

    snakemake(clean, target, "--cores", 2, "--configfile", TINY, longer)
    resumed = torch.load(killed / target, weights_only=False)["state_dict"]
    uninterrupted = torch.load(clean / target, weights_only=False)["state_dict"]
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_the_schema_lists_exactly_the_registered_skeleton_formats():
    from posebridge.geometry import skeletons

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["$defs"]["skeleton"]["enum"] == skeletons.names()
