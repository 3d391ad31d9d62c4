"""The workflow on real datasets: the `convert` rule, on a tiny Human3.6M file in the real
VideoPose3D layout (tests/test_converters_h36m.py writes it), and its failure with instructions."""

from __future__ import annotations


import pytest

from posebridge.store import open_dataset
from test_converters_h36m import _poses_mm, _write_npz
from test_workflow import job_counts, shell_commands, snakemake, write_yaml

SYNTHETIC = ("synth_h36m", "synth_3dhp", "synth_3dpw", "synth_panoptic", "synth_humaneva",
             "synth_video", "synth_multiview")


def real_config(tmp_path, folder, **entry) -> dict:
    datasets = {name: {"enabled": False} for name in SYNTHETIC}
    datasets["h36m"] = {"source": "h36m", "path": str(folder), "role": "labeled",
                        "train_format": "h36m_17", **entry}
    return write_yaml(tmp_path / "real.yaml", {"datasets": datasets})


def test_convert_rule_writes_a_dataset_the_store_opens(tmp_path):
    folder = tmp_path / "h36m"
    folder.mkdir()
    _write_npz(folder, _poses_mm())
    workdir = tmp_path / "work"
    config = real_config(tmp_path, folder)

    plan = snakemake(workdir, "-n", "-p", "--configfile", config)
    assert job_counts(plan)["convert"] == 1 and "synthesize" not in job_counts(plan)
    command = next(c for c in shell_commands(plan) if "posebridge convert" in c)
    assert f"--dataset h36m --source {folder} --name h36m --role labeled" in command

    snakemake(workdir, "results/datasets/h36m.h5", "--cores", "1", "--configfile", config)
    dataset = open_dataset(workdir / "results/datasets/h36m.h5")
    assert dataset.skeleton.name == "h36m_32"
    assert set(dataset.index["split"]) == {"train", "test"}
    assert (workdir / "logs/convert/h36m.log").exists()
    assert (workdir / "benchmarks/convert/h36m.tsv").exists()
    assert "Nothing to be done" in snakemake(workdir, "results/datasets/h36m.h5", "-n",
                                             "--configfile", config).stdout


def test_missing_folder_plans_but_fails_with_instructions(tmp_path):
    workdir = tmp_path / "work"
    config = real_config(tmp_path, tmp_path / "absent")
    assert job_counts(snakemake(workdir, "-n", "--configfile", config))["convert"] == 1
    result = snakemake(workdir, "results/datasets/h36m.h5", "--cores", "1",
                       "--configfile", config, check=False)
    assert result.returncode != 0
    log = (workdir / "logs/convert/h36m.log").read_text()
    assert "place VideoPose3D's 3D poses under" in log and "vision.imar.ro/human3.6m" in log
    assert not (workdir / "results/datasets/h36m.h5").exists()


@pytest.mark.parametrize("entry, words", [
    ({"convert": {"part": "test"}}, "config.datasets.h36m.convert.part"),
    ({"synth": {"template": "h36m"}}, "config.datasets.h36m"),
])
def test_bad_real_entries_stop_the_run(tmp_path, entry, words):
    config = real_config(tmp_path, tmp_path, **entry)
    result = snakemake(tmp_path / "work", "-n", "--configfile", config, check=False)
    assert result.returncode != 0 and words in result.stdout + result.stderr


def test_real_entry_without_path_is_rejected(tmp_path):
    datasets = {name: {"enabled": False} for name in SYNTHETIC}
    datasets["h36m"] = {"source": "h36m", "role": "labeled"}
    config = write_yaml(tmp_path / "real.yaml", {"datasets": datasets})
    result = snakemake(tmp_path / "work", "-n", "--configfile", config, check=False)
    assert result.returncode != 0 and "'path' is a required property" in result.stdout + result.stderr
