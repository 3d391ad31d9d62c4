"""The workflow on real datasets: the `convert` rule, on a tiny Human3.6M file in the real
VideoPose3D layout (tests/test_converters_h36m.py writes it), and its failure with instructions;
the H36M and HumanEva presets planned and run to the report on tiny files in VideoPose3D's layout."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from posebridge.data.detections import read_detections
from posebridge.inference.lift import load_model
from posebridge.data.store import open_dataset
from test_converters_h36m import H36M_SYMMETRY, _poses_mm, _write_2d, _write_npz
from test_workflow import job_counts, shell_commands, snakemake, write_yaml

SYNTHETIC = ("synth_h36m", "synth_3dhp", "synth_3dpw", "synth_panoptic", "synth_humaneva",
             "synth_video", "synth_multiview", "synth_wild", "synth_heldout_motion", "synth_heldout_camera")
REAL_FOOTAGE = ("pose2sim", "real_videos")  # the default's real footage (no 3D), also left out here


def real_config(tmp_path, folder, **entry) -> dict:
    datasets = {name: {"enabled": False} for name in (*SYNTHETIC, *REAL_FOOTAGE)}
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
    assert job_counts(plan)["convert"] == 1 and "synth_generate" not in job_counts(plan)
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
    assert "place VideoPose3D's 3D poses (data_3d_h36m.npz) under" in log and "vision.imar.ro/human3.6m" in log
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
    datasets = {name: {"enabled": False} for name in (*SYNTHETIC, *REAL_FOOTAGE)}
    datasets["h36m"] = {"source": "h36m", "role": "labeled"}
    config = write_yaml(tmp_path / "real.yaml", {"datasets": datasets})
    result = snakemake(tmp_path / "work", "-n", "--configfile", config, check=False)
    assert result.returncode != 0 and "'path' is a required property" in result.stdout + result.stderr


# ------------------------------------------------------------------ the presets on VideoPose3D files

REPO = Path(__file__).resolve().parents[1]
H36M_PRESET = REPO / "workflow" / "presets" / "h36m_videopose3d.yaml"
HUMANEVA_PRESET = REPO / "workflow" / "presets" / "humaneva_videopose3d.yaml"
# a tiny override: the presets' data and wiring, a model that trains in seconds on 2 cores
TINY = {"device": "cpu", "threads": {"train_initial": 2},
        "train": {"filter_widths": [3], "channels": 32, "epochs": 1, "batch_size": 16,
                  "samples_per_epoch": 64, "val_windows": 16},
        "evaluate": {"example_frames": 2}}
# the report rule's outputs (and what they need): the lifter's pipeline, without the skeleton bridge
REPORT_SUMMARY = "results/report/summary.csv"


def _option(command: str, name: str) -> str:
    words = shlex.split(command)
    return words[words.index(name) + 1]


def _command(plan, words: str) -> str:
    return next(c for c in shell_commands(plan) if words in c)


def test_h36m_preset_plans_the_papers_setting(tmp_path):
    plan = snakemake(tmp_path / "work", "-n", "-p", "--configfile", H36M_PRESET)
    counts = job_counts(plan)
    assert all(counts.get(rule) == 1 for rule in ("convert", "detect_2d", "train_initial", "evaluate", "report"))
    assert "synth_generate" not in counts
    # the public CPN file is fetched when missing (the 3D, behind a login, never is)
    assert counts.get("download") == 1
    assert "--output data/h36m/data_2d_h36m_cpn_ft_h36m_dbb.npz" in _command(plan, "posebridge download")
    detect = _command(plan, "posebridge detect-2d")
    assert "--detector cpn_ft_h36m_dbb" in detect and "results/detections/h36m/cpn_ft_h36m_dbb.h5" in detect
    assert json.loads(_option(detect, "--spec")) == {
        "kind": "imported", "file": "data/h36m/data_2d_h36m_cpn_ft_h36m_dbb.npz"}
    train = _command(plan, "posebridge train")
    spec = json.loads(_option(train, "--spec"))
    assert (spec["filter_widths"], spec["channels"], spec["epochs"], spec["batch_size"], spec["lr"]) == (
        [3, 3, 3, 3, 3], 1024, 80, 1024, 0.001)
    assert spec["keypoint_format"] == "h36m_17" and spec["samples_per_epoch"] is None
    assert "--train-format h36m_17" in train and "--device auto" in train
    # ground-truth 2D is one key away, and choosing it reconverts nothing
    gt = write_yaml(tmp_path / "gt.yaml", {"datasets": {"h36m": {"detector": "gt2d"}}})
    detect = _command(snakemake(tmp_path / "work", "-n", "-p", "--configfile", H36M_PRESET, gt), "detect-2d")
    assert "--detector gt2d" in detect and json.loads(_option(detect, "--spec")) == {"keypoint_format": "h36m_17"}


def test_humaneva_preset_plans_detectron_detections(tmp_path):
    plan = snakemake(tmp_path / "work", "-n", "-p", "--configfile", HUMANEVA_PRESET)
    assert "--dataset humaneva --source data/humaneva" in _command(plan, "posebridge convert")
    detect = _command(plan, "posebridge detect-2d")
    assert json.loads(_option(detect, "--spec"))["file"] == "data/humaneva/data_2d_humaneva15_detectron_pt_coco.npz"
    spec = json.loads(_option(_command(plan, "posebridge train"), "--spec"))
    assert (spec["filter_widths"], spec["batch_size"], spec["lr"], spec["lr_decay"]) == ([3, 3, 3], 128, 0.0005, 0.996)


def test_h36m_preset_runs_to_the_report_on_videopose3d_files(tmp_path):
    """The preset as a user runs it: the two files in data/h36m/ of the working directory."""
    work = tmp_path / "work"
    folder = work / "data" / "h36m"
    folder.mkdir(parents=True)
    poses = _poses_mm()
    _write_npz(folder, poses)
    _write_2d(folder, poses, "cpn_ft_h36m_dbb", {"layout_name": "h36m", "num_joints": 17,
                                                 "keypoints_symmetry": H36M_SYMMETRY})
    tiny = write_yaml(tmp_path / "tiny.yaml", TINY)
    assert "download" not in job_counts(snakemake(work, REPORT_SUMMARY, "-n", "--configfile", H36M_PRESET, tiny))
    snakemake(work, REPORT_SUMMARY, "--cores", "2", "--configfile", H36M_PRESET, tiny)

    with read_detections(work / "results/detections/h36m/cpn_ft_h36m_dbb.h5") as det:
        assert (det.detector, det.keypoint_format) == ("cpn_ft_h36m_dbb", "h36m_17")
        # camera k of the file's take (values t * 10 + k), cut to the 3D's length
        kp = det.get("S9/WalkDog 1", "S9/60457274")
        np.testing.assert_array_equal(kp[:, 5, 0], np.arange(4) * 10 + 3)
    model = load_model(work / "results/models/initial")
    assert model.keypoint_format == "h36m_17" and model.formats == ["h36m_17"]
    table = pd.read_parquet(work / "results/eval/initial/h36m.parquet")
    assert set(table["subject"]) == {"S9", "S11"} and set(table["format"]) == {"h36m_17"}
    assert np.isfinite(table["mpjpe"]).all()
    summary = pd.read_csv(work / "results/report/summary.csv")
    assert "h36m" in set(summary["dataset"])


@pytest.mark.slow
def test_humaneva_preset_runs_to_the_report_on_videopose3d_files(tmp_path):
    from test_converters_humaneva import TAKES, _write

    work = tmp_path / "work"
    folder = work / "data" / "humaneva"
    folder.mkdir(parents=True)
    positions_3d, _ = _write(folder)
    # Detectron detections in VideoPose3D's layout: COCO-17 pixels per camera, layout "coco"
    coco = {key: {action: [np.full((frames + 1, 17, 2), 100.0 * k + 7, np.float32) for k in range(3)]
                  for action, frames in actions.items()} for key, actions in TAKES.items()}
    np.savez_compressed(folder / "data_2d_humaneva15_detectron_pt_coco.npz", positions_2d=coco, metadata={
        "layout_name": "coco", "num_joints": 17,
        "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]})
    tiny = write_yaml(tmp_path / "tiny.yaml", TINY)
    snakemake(work, REPORT_SUMMARY, "--cores", "2", "--configfile", HUMANEVA_PRESET, tiny)
    with read_detections(work / "results/detections/humaneva/detectron_pt_coco.h5") as det:
        assert det.keypoint_format == "coco_17"
        assert (det.get("Train/S1/Jog 1 chunk2", "S1/C3")[..., 0] == 207).all()
    assert load_model(work / "results/models/initial").formats == ["humaneva_15"]
    table = pd.read_parquet(work / "results/eval/initial/humaneva.parquet")
    assert set(table["subject"]) == {"S1", "S3"}
    assert (work / "results/report/summary.csv").exists()


def test_builtin_detector_gets_the_datasets_folder_and_options(tmp_path):
    datasets = {name: {"enabled": False} for name in (*SYNTHETIC, *REAL_FOOTAGE)}
    datasets["mupots"] = {"source": "mupots", "path": "data/mupots", "role": "labeled", "detector": "files",
                          "convert": {"fps": 25}}
    config = write_yaml(tmp_path / "real.yaml", {"datasets": datasets, "detect": {"files": {"kind": "builtin"}},
                                                  "acae": {"merged": False, "finetune": {"variants": []}},
                                                  "ensemble": []})
    plan = snakemake(tmp_path / "work", REPORT_SUMMARY, "-n", "-p", "--configfile", config)
    spec = json.loads(_option(_command(plan, "posebridge detect-2d"), "--spec"))
    assert spec == {"kind": "builtin", "source": "mupots", "path": "data/mupots", "convert": {"fps": 25}}
