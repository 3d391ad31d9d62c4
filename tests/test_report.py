"""posebridge.reporting.report: aggregation, baseline comparison and every report file, from synthetic tables."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from posebridge.geometry import skeletons
from posebridge.atomic import write_parquet
from posebridge.errors import DataError
from posebridge.evaluation.evaluate import BASELINE_MODEL, COLUMNS, write_examples
from posebridge.reporting.report import (
    REPORT_FILES,
    build_report,
    compare_to_baseline,
    summarize,
    summary_csv_table,
    verdict,
)

# (dataset, sequence, action, frames, lifter mpjpe); the baseline is a constant 150 mm on synth_a
ROWS = [("synth_a", "s9_walk_1", "walk", 100, 40.0), ("synth_a", "s9_walk_2", "walk", 300, 60.0),
        ("synth_a", "s11_sit", "sit", 50, 20.0), ("synth_b", "t1", "run", 200, 80.0)]
# synth_a: per action walk = (100*40 + 300*60)/400 = 55, sit = 20 -> H36M average 37.5
# (the frame-weighted mean over all rows would be 47.2)


def _table(model="initial", baseline_b=100.0):
    records = []
    for dataset, seq, action, frames, err in ROWS:
        for fmt, native in (("h36m_17", True), ("smpl_24", False)):
            for name, value in ((model, err), (BASELINE_MODEL, 150.0 if dataset == "synth_a" else baseline_b)):
                scale = 1.0 if native else 1.1
                records.append(dict(model=name, source_model=model, dataset=dataset, format=fmt, native=native,
                                    sequence=seq, camera="c0", subject="S9", action=action, frames=frames,
                                    mpjpe=value * scale, pa_mpjpe=value * 0.7, n_mpjpe=value * 0.9,
                                    mpjve=value * 0.1, pck=100 - value / 3, auc=60.0, cps=90.0,
                                    pck_threshold=150.0, auc_threshold=150.0, cps_threshold=200.0))
    return pd.DataFrame(records, columns=list(COLUMNS))


def _pose(fmt, rng, shift=0.0):
    """A rough standing pose for ``fmt``: joints spread around the root, 1.7 m tall, ~4 m away."""
    skeleton = skeletons.get(fmt)
    pose = rng.normal(0, 150, (skeleton.num_joints, 3))
    pose[:, 1] = np.linspace(-800, 900, skeleton.num_joints)
    return pose - pose[skeleton.root] + shift


def _examples(model, dataset, frames=3, seed=0):
    rng = np.random.default_rng(seed)
    ex = {"model": np.array(model), "dataset": np.array(dataset), "keypoint_format": np.array("coco_17"),
          "formats": np.array(["h36m_17", "smpl_24"]), "native_formats": np.array(["h36m_17"]),
          "sequence": np.array(["s9_walk_1"] * frames), "camera": np.array(["c0"] * frames),
          "frame": np.arange(frames) * 10, "image_size": np.tile([1000, 1000], (frames, 1)),
          "keypoints": np.concatenate([rng.uniform(300, 700, (frames, 17, 2)),
                                       rng.uniform(0, 1, (frames, 17, 1))], axis=-1).astype(np.float32)}
    for fmt in ("h36m_17", "smpl_24"):
        ex[f"gt_{fmt}"] = np.stack([_pose(fmt, np.random.default_rng(i)) for i in range(frames)])
        ex[f"pred_{fmt}"] = ex[f"gt_{fmt}"] + rng.normal(0, 30, ex[f"gt_{fmt}"].shape)
    return ex


@pytest.fixture
def inputs(tmp_path):
    paths = []
    table = _table()
    for dataset in ("synth_a", "synth_b"):
        path = tmp_path / "eval" / "initial" / f"{dataset}.parquet"
        write_parquet(path, table[table["dataset"] == dataset])
        write_examples(path.with_suffix(".examples.npz"), _examples("initial", dataset))
        paths.append(path)
    model_dir = tmp_path / "models" / "initial"
    log = pd.DataFrame({"epoch": np.arange(1, 6), "loss": [1.0, 0.6, 0.4, 0.3, 0.25],
                        "loss_meanrel": [0.5, 0.3, 0.2, 0.15, 0.12], "val_mpjpe": [120, 90, 70, 60, 55.0],
                        "lr": [1e-3] * 5, "seconds": [3.0] * 5})
    write_parquet(model_dir / "train_log.parquet", log)
    return paths, [model_dir]


def test_summary_averages_per_action_first():
    summary = summarize(_table())
    row = summary[(summary["model"] == "initial") & (summary["dataset"] == "synth_a")
                  & (summary["format"] == "h36m_17")].iloc[0]
    assert row["mpjpe"] == pytest.approx(37.5)  # not the frame-weighted 47.2
    assert row["frames"] == 450 and row["actions"] == 2 and row["sequences"] == 3
    assert row["pck"] == pytest.approx(100 - 37.5 / 3)
    # order: dataset, native format first, lifter before its baseline
    assert list(summary["dataset"][:4]) == ["synth_a"] * 4
    assert list(summary["format"][:4]) == ["h36m_17", "h36m_17", "smpl_24", "smpl_24"]
    assert list(summary["model"][:2]) == ["initial", BASELINE_MODEL]


def test_baseline_comparison_and_verdict():
    comparison = compare_to_baseline(summarize(_table()))
    a = comparison[(comparison["dataset"] == "synth_a") & comparison["native"]].iloc[0]
    assert a["baseline_mpjpe"] == pytest.approx(150.0)
    assert a["improvement_pct"] == pytest.approx(75.0) and a["ratio"] == pytest.approx(4.0)
    b = comparison[(comparison["dataset"] == "synth_b") & comparison["native"]].iloc[0]
    assert b["improvement_pct"] == pytest.approx(20.0)  # 80 vs 100
    assert verdict(comparison) == ("initial beats the mean-pose baseline on every test set (2): "
                                   "MPJPE 20.0% to 75.0% lower in the datasets' own formats.")
    losing = compare_to_baseline(summarize(_table(baseline_b=70.0)))
    assert "does NOT beat the mean-pose baseline on synth_b" in verdict(losing)


def test_report_files(inputs, tmp_path):
    import matplotlib.image

    evals, model_dirs = inputs
    out = tmp_path / "report"
    report = build_report(evals, model_dirs, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    metrics = (out / "metrics.html").read_text()
    assert "37.5" in metrics and "PCK@150 (%)" in metrics and "CPS@200 (%)" in metrics
    assert "h36m_17 (native)" in metrics and "mean pose (baseline)" in metrics
    baseline = (out / "baseline.html").read_text()
    assert "75.0" in baseline and "4.00x" in baseline and "beats the mean-pose baseline on every test set" in baseline
    csv = pd.read_csv(out / "summary.csv")
    assert len(csv) == 8 and set(csv.columns) >= {"model", "dataset", "format", "mpjpe", "improvement_pct"}
    lifter = csv[(csv["model"] == "initial") & (csv["dataset"] == "synth_a") & csv["native"]].iloc[0]
    assert lifter["mpjpe"] == pytest.approx(37.5) and lifter["improvement_pct"] == pytest.approx(75.0)
    assert csv[csv["model"] == BASELINE_MODEL]["improvement_pct"].isna().all()
    for name in ("training_curves.png", "skeletons.png"):
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 200 and image.shape[1] > 400 and image.std() > 0.01  # drawn, not blank
    assert report.paths["metrics.html"] == out / "metrics.html"
    assert not [p for p in out.iterdir() if "tmp" in p.name]


def test_summary_csv_keeps_the_numbers():
    summary = summarize(_table())
    table = summary_csv_table(summary, compare_to_baseline(summary))
    text = io.StringIO()
    table.to_csv(text, index=False)
    back = pd.read_csv(io.StringIO(text.getvalue()))
    assert np.allclose(back["mpjpe"], summary["mpjpe"])


def test_missing_inputs(inputs, tmp_path):
    evals, model_dirs = inputs
    bad = tmp_path / "bad.parquet"
    write_parquet(bad, _table().drop(columns=["mpjve"]))
    with pytest.raises(DataError, match="bad.parquet.*missing column.*mpjve"):
        build_report([bad], model_dirs, tmp_path / "r1")
    with pytest.raises(DataError, match="train_log.parquet: file not found"):
        build_report(evals, [tmp_path / "nowhere"], tmp_path / "r2")
    with pytest.raises(DataError, match="missing.parquet: file not found"):
        build_report([tmp_path / "missing.parquet"], model_dirs, tmp_path / "r3")


def test_command(inputs, tmp_path, capsys):
    from posebridge import cli

    evals, model_dirs = inputs
    out = tmp_path / "r"
    argv = ["report", "--eval", *map(str, evals), "--model-dir", str(model_dirs[0]), "--output-dir", str(out)]
    assert cli.main(argv) == 0
    assert "beats the mean-pose baseline" in capsys.readouterr().out
    assert all((out / name).stat().st_size > 0 for name in REPORT_FILES)


def test_training_curves_mark_the_epochs_the_guard_rolled_back(tmp_path):
    from posebridge.reporting.report import plot_training_curves

    for name, divergence in (("healthy", ["", "", ""]), ("diverged", ["", "validation MPJPE ...; rolled back", ""])):
        (tmp_path / name).mkdir()
        pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.5, 0.4], "val_mpjpe": [200.0, 2982.0, 150.0],
                      "divergence": divergence, "rolled_back_to": [0, 1, 0]}).to_parquet(tmp_path / name / "train_log.parquet")
    fig = plot_training_curves([tmp_path / "healthy", tmp_path / "diverged"])
    validation = fig.axes[1]
    marks = [line for line in validation.get_lines() if line.get_label() == "diverged: diverged (rolled back)"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [2] and list(marks[0].get_ydata()) == [2982.0]
    assert not any("healthy: diverged" in line.get_label() for line in validation.get_lines())
    assert not any("rolled_back_to" in line.get_label() for line in fig.axes[0].get_lines() + validation.get_lines())


def test_training_curves_mark_the_recalibrated_model_and_give_it_no_panel(tmp_path):
    from posebridge.reporting.report import RECALIBRATED_LABEL, plot_training_curves
    from posebridge.training.loop import RECALIBRATED_COLUMN

    for name, recalibrated in (("a", 90.0), ("b", 95.0)):
        (tmp_path / name).mkdir()
        pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.5, 0.4], "val_mpjpe": [200.0, 100.0, 110.0],
                      "val_mpjpe_h36m": [190.0, 95.0, 105.0], RECALIBRATED_COLUMN: [np.nan, np.nan, recalibrated]}
                     ).to_parquet(tmp_path / name / "train_log.parquet")
    fig = plot_training_curves([tmp_path / "a", tmp_path / "b"])
    stars = [line for line in fig.axes[1].get_lines() if line.get_marker() == "*"]
    assert [(list(s.get_xdata()), list(s.get_ydata())) for s in stars] == [([3], [90.0]), ([3], [95.0])]
    assert [s.get_label() for s in stars] == [RECALIBRATED_LABEL, "_nolegend_"]  # one legend entry
    assert [ax.get_title() for ax in fig.axes[2:]] == ["validation: h36m"]  # not a validation set of its own
