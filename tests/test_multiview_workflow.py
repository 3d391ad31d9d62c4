"""Workflow wiring of MCSS: the `multiview` switch of train_initial and the experiment's jobs
(dry runs in a temporary directory; nothing is computed)."""

import json
import re

from test_workflow import TINY, job_counts, shell_commands, snakemake, write_yaml


def _train_initial(result) -> str:
    (command,) = [c for c in shell_commands(result) if "--out-dir results/models/initial" in c]
    return command


def _spec(command: str) -> dict:
    """The --spec JSON of a `posebridge train` command line."""
    return json.loads(re.search(r"--spec '(\{.*?\})' ", command).group(1))


def test_multiview_switch_adds_the_unlabeled_multiview_data_to_train_initial(tmp_path):
    overlay = write_yaml(tmp_path / "on.yaml", {"multiview": {"enabled": True, "weight": 0.5, "time_window": 7}})
    on = snakemake(tmp_path, "results/models/initial/model.pt", "-n", "-p", "--configfile", TINY, overlay)
    command = _train_initial(on)
    assert ("--multiview results/datasets/synth_multiview.h5 --multiview-detections "
            "results/detections/synth_multiview/simulated.h5") in command
    # the objective's options are keys of the one training spec, not flags of their own
    multiview = _spec(command)["multiview"]
    assert multiview["weight"] == 0.5 and multiview["time_window"] == 7
    assert "--multiview-weight" not in command
    # the multi-view data is an input: it is generated and detected before training
    assert any("detect-2d --dataset results/datasets/synth_multiview.h5" in c for c in shell_commands(on))
    bad = write_yaml(tmp_path / "bad.yaml", {"multiview": {"enabled": True, "datasets": ["synth_h36m"]}})
    result = snakemake(tmp_path, "-n", "--configfile", TINY, bad, check=False)
    assert result.returncode != 0 and "config.multiview.datasets" in result.stdout + result.stderr


def test_experiment_trains_both_variants_per_amount_of_labels_from_the_same_seed(tmp_path):
    result = snakemake(tmp_path, "experiments", "results/models/initial/model.pt", "-n", "-p")
    assert "--multiview" not in _train_initial(result)  # off by default
    counts = job_counts(result)
    assert counts["train_mcss"] == 6 and counts["mcss_eval"] == 1
    runs = {}
    for command in shell_commands(result):
        match = re.search(r"--out-dir results/experiments/mcss/models/(base|mv)_(\w+) ", command)
        if match:
            runs[match.groups()] = command
    assert set(runs) == {(v, n) for v in ("base", "mv") for n in ("1", "2", "all")}
    for labels in ("1", "2", "all"):
        base, mv = runs[("base", labels)], runs[("mv", labels)]
        assert _spec(base)["multiview"]["weight"] == 0.0 and _spec(mv)["multiview"]["weight"] == 1.0
        seed = re.search(r"--seed (\d+)", base).group(1)
        assert f"--seed {seed}" in mv  # the variants differ only in the multi-view loss
        subjects = '"labeled_subjects":{}' if labels == "all" else f'"labeled_subjects":{{"synth_h36m":{labels}}}'
        assert subjects in base and subjects in mv
    (evaluation,) = [c for c in shell_commands(result) if c.startswith("posebridge mcss-eval")]
    assert evaluation.count("--model ") == 6 and "--out-dir results/experiments/mcss" in evaluation
    # the rule declares exactly the files the evaluation writes
    from posebridge.evaluation.mcss import OUTPUT_FILES

    declared = re.search(r"rule mcss_eval:\n(?:    .*\n)*?    output: (.+)\n", result.stdout + result.stderr)
    assert declared.group(1).split(", ") == [f"results/experiments/mcss/{name}" for name in OUTPUT_FILES.values()]
