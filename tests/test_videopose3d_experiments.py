"""The VideoPose3D experiments' table: frame-weighted metrics of the lifter's native rows, verdicts."""

import json

import numpy as np
import pandas as pd
import pytest

from posebridge import cli
from posebridge.reporting.videopose3d_experiments import methods, summarize, verdicts


def write_run(tmp_path, name, mpjpe, experiment, rf=27, labeled="all", placement=None, seed=0, diverged=None):
    """An evaluation table whose lifter rows average to ``mpjpe`` (frame-weighted) plus rows that must
    not count (the mean-pose baseline, a non-native format); ``diverged``: the training log's
    record of a divergence at epoch 2 (training.divergence's columns)."""
    table = pd.DataFrame({
        "model": [name, name, "mean_pose", name], "native": [True, True, True, False],
        "frames": [100, 300, 400, 400], "mpjpe": [mpjpe - 30, mpjpe + 10, 999.0, 999.0],
        "pa_mpjpe": [mpjpe / 2] * 4, "n_mpjpe": [mpjpe] * 4})
    table.to_parquet(tmp_path / f"{name}.parquet")
    log = pd.DataFrame({"epoch": [1, 2], "seconds": [1.5, 2.5]})
    if diverged is not None:
        log["divergence"], log["rolled_back_to"] = ["", diverged], [0, 1]
    log.to_parquet(tmp_path / f"{name}_log.parquet")
    return {"name": name, "experiment": experiment, "receptive_field": rf, "labeled_subjects": labeled,
            "placement": placement, "seed": seed, "eval": str(tmp_path / f"{name}.parquet"), "log": str(tmp_path / f"{name}_log.parquet")}


def test_summary_weights_frames_and_verdicts_state_the_direction(tmp_path):
    few, two = "1 subject, 10 % of frames", "2 subjects"
    runs = [write_run(tmp_path, "rf1", 120.0, "receptive_field", rf=1),
            write_run(tmp_path, "rf27", 100.0, "receptive_field", rf=27),
            write_run(tmp_path, "rf81", 90.0, "receptive_field", rf=81),
            write_run(tmp_path, "l1_sup_s0", 110.0, "labels", labeled=few),
            write_run(tmp_path, "l1_traj_s0", 99.0, "labels", labeled=few, placement="trajectory"),
            write_run(tmp_path, "l1_depth_s0", 90.0, "labels", labeled=few, placement="depth"),
            write_run(tmp_path, "l1_sup_s1", 120.0, "labels", labeled=few, seed=1),
            write_run(tmp_path, "l1_traj_s1", 101.0, "labels", labeled=few, placement="trajectory", seed=1),
            write_run(tmp_path, "l1_depth_s1", 94.0, "labels", labeled=few, placement="depth", seed=1),
            write_run(tmp_path, "l2_sup_s0", 90.0, "labels", labeled=two),
            write_run(tmp_path, "l2_traj_s0", 95.0, "labels", labeled=two, placement="trajectory")]
    summary = summarize(runs)
    # (100 x (m - 30) + 300 x (m + 10)) / 400 = m: the baseline and non-native rows are left out
    assert summary.set_index("run")["mpjpe"].to_dict() == pytest.approx(
        {"rf1": 120, "rf27": 100, "rf81": 90, "l1_sup_s0": 110, "l1_traj_s0": 99, "l1_depth_s0": 90,
         "l1_sup_s1": 120, "l1_traj_s1": 101, "l1_depth_s1": 94, "l2_sup_s0": 90, "l2_traj_s0": 95})
    assert (summary["train_seconds"] == 4.0).all() and (summary["test_frames"] == 400).all()
    table = methods(summary).set_index(["labeled_subjects", "method"])
    depth = table.loc[(few, "semi-supervised (depth)")]
    assert (depth["mpjpe_mean"], depth["mpjpe_min"], depth["mpjpe_max"], depth["seeds"]) == (92, 90, 94, 2)
    assert table.loc[(two, "supervised"), "seeds"] == 1
    sentences = verdicts(summary)
    assert "falls with every longer receptive field" in sentences[0]
    assert ("3D labels on 1 subject, 10 % of frames: semi-supervised (trajectory) 100.0 mm improves on "
            "supervised-only 115.0 mm (mean of 2 seeds, -13.0%") in sentences[1]
    assert "semi-supervised (depth) 92.0 mm improves on supervised-only 115.0 mm (mean of 2 seeds, -20.0%" in sentences[2]
    assert "2 subjects: semi-supervised (trajectory) 95.0 mm does NOT improve on supervised-only 90.0 mm (+5.6%" \
        in sentences[3]

    out = {k: tmp_path / f"table.{k}" for k in ("csv", "html", "png")}
    argv = ["videopose3d-experiments", "--runs", json.dumps(runs), "--csv", str(out["csv"]),
            "--html", str(out["html"]), "--figure", str(out["png"])]
    assert cli.main(argv) == 0
    assert len(pd.read_csv(out["csv"])) == 11 and "improves on" in out["html"].read_text()
    assert out["png"].read_bytes()[:4] == b"\x89PNG"


def test_a_receptive_field_that_does_not_help_is_said_plainly(tmp_path):
    runs = [write_run(tmp_path, "a", 100.0, "receptive_field", rf=1),
            write_run(tmp_path, "b", 105.0, "receptive_field", rf=27)]
    assert "does NOT fall" in verdicts(summarize(runs))[0]
    bad = dict(runs[0], eval=str(tmp_path / "missing.parquet"))
    assert cli.main(["videopose3d-experiments", "--runs", json.dumps([bad]), "--csv", str(tmp_path / "x.csv"),
                     "--html", str(tmp_path / "x.html"), "--figure", str(tmp_path / "x.png")]) == 1


def test_a_diverged_run_is_flagged_and_left_out_of_the_means(tmp_path):
    few = "1 subject"
    what = "validation MPJPE 2982.0 mm > 1.5 x the best 101.0 mm; rolled back to epoch 1; learning rate x0.5"
    runs = [write_run(tmp_path, "sup_s0", 110.0, "labels", labeled=few),
            write_run(tmp_path, "sup_s1", 120.0, "labels", labeled=few, seed=1),
            write_run(tmp_path, "traj_s0", 100.0, "labels", labeled=few, placement="trajectory"),
            write_run(tmp_path, "traj_s1", 1082.0, "labels", labeled=few, placement="trajectory", seed=1,
                      diverged=what),
            write_run(tmp_path, "depth_s0", 1000.0, "labels", labeled=few, placement="depth", diverged=what)]
    summary = summarize(runs)
    assert summary["diverged"].tolist() == [False, False, False, True, True]
    assert summary.set_index("run").loc["traj_s1", "divergence"] == f"epoch 2: {what}"
    table = methods(summary).set_index("method")
    assert table.loc["semi-supervised (trajectory)", "mpjpe_mean"] == pytest.approx(100.0)
    assert table.loc["semi-supervised (trajectory)", "seeds"] == 1
    assert table.loc["semi-supervised (trajectory)", "diverged_runs"] == "traj_s1"
    assert table.loc["semi-supervised (depth)", "seeds"] == 0 and np.isnan(table.loc["semi-supervised (depth)", "mpjpe_mean"])
    assert table.loc["supervised", "diverged_runs"] == ""
    sentences = verdicts(summary)
    assert sentences[0].startswith("3D labels on 1 subject: semi-supervised (trajectory) 100.0 mm improves on "
                                   "supervised-only 115.0 mm (-13.0%")
    assert not any("semi-supervised (depth)" in s for s in sentences[:-1])
    assert sentences[-1] == (f"DIVERGED in training, left out of every mean and verdict above: traj_s1 (1082.0 mm; "
                             f"epoch 2: {what}); depth_s0 (1000.0 mm; epoch 2: {what}).")
    out = {k: tmp_path / f"table.{k}" for k in ("csv", "html", "png")}
    argv = ["videopose3d-experiments", "--runs", json.dumps(runs), "--csv", str(out["csv"]),
            "--html", str(out["html"]), "--figure", str(out["png"])]
    assert cli.main(argv) == 0
    assert pd.read_csv(out["csv"])["diverged"].tolist() == [False, False, False, True, True]
    page = out["html"].read_text()
    assert page.count("background:#fdd") == 2 and "DIVERGED" in page and "<td>traj_s1</td>" in page
