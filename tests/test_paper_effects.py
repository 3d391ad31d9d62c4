"""Which paper effects hold: the verdict rule, the effects read from constructed experiment tables,
the real-footage figures, the `paper-effects` command and the real column of the VideoPose3D table."""

import json

import numpy as np
import pandas as pd
import pytest

from posebridge import cli
from posebridge.reporting import paper_effects as pe
from posebridge.reporting.videopose3d_experiments import summarize

from test_videopose3d_experiments import write_run


def test_verdict_needs_the_papers_direction_beyond_the_seed_range_and_two_percent():
    one = pe.Side.of
    assert pe.verdict(one(100.0), one(90.0)) == (pe.HOLDS, 2.0)            # 10 mm gain > 2 % of 100
    assert pe.verdict(one(90.0), one(100.0)) == (pe.DOES_NOT_HOLD, 2.0)    # reversed
    assert pe.verdict(one(100.0), one(99.0))[0] == pe.WITHIN_NOISE         # 1 mm < 2 mm
    # two seeds each: the larger range (12 mm) is the margin, so a 10 mm gain is noise
    assert pe.verdict(pe.Side(100.0, 94.0, 106.0), pe.Side(90.0, 89.0, 91.0)) == (pe.WITHIN_NOISE, 12.0)
    assert pe.verdict(pe.Side(100.0, 99.0, 101.0), pe.Side(90.0, 89.0, 91.0))[0] == pe.HOLDS
    # higher is better (retrieval hit rates)
    assert pe.verdict(one(1.0), one(3.0), lower_is_better=False)[0] == pe.HOLDS
    assert pe.verdict(one(3.0), one(1.0), lower_is_better=False)[0] == pe.DOES_NOT_HOLD
    # "no less accurate": holds within the margin, fails beyond it
    assert pe.verdict(one(100.0), one(101.5), non_inferior=True)[0] == pe.HOLDS
    assert pe.verdict(one(100.0), one(110.0), non_inferior=True)[0] == pe.DOES_NOT_HOLD
    assert pe.verdict(one(100.0), pe.MISSING)[0] == pe.NOT_MEASURED
    # a floor in the figures' unit: hit rates of 0.6 vs 0.7 % are one hit apart, not an effect
    assert pe.verdict(one(0.7), one(0.6), lower_is_better=False, floor=1.0) == (pe.WITHIN_NOISE, 1.0)


def real_table(model: str, pa: dict[str, list[float]], mean_pose: float = 200.0, frames=None) -> pd.DataFrame:
    """An evaluate-real table: per format, one row per view with these PA-MPJPEs (and ``frames``
    scored frames, default 100 each), plus a label-free video row (no PA-MPJPE) that must not count."""
    rows = [{"model": model, "dataset": "pose2sim", "sequence": "take", "camera": f"cam{i}", "format": fmt,
             "frames": 100 if frames is None else frames[i], "pa_mpjpe": v, "mean_pose_pa_mpjpe": mean_pose,
             "reprojection_px": 1.0, "bone_std_mm": 5.0} for fmt, values in pa.items() for i, v in enumerate(values)]
    rows.append({**rows[0], "dataset": "videos", "pa_mpjpe": np.nan, "mean_pose_pa_mpjpe": np.nan})
    return pd.DataFrame(rows)


def test_real_figures_weight_the_views_by_frames_and_average_the_formats():
    table = pd.concat([real_table("a", {"h36m_17": [10.0, 20.0, 90.0], "coco_19": [40.0, 50.0, 60.0]},
                                  frames=[100, 100, 0]),  # a view without scored frames does not count
                       real_table("b", {"h36m_17": [70.0, 80.0]}, mean_pose=150.0, frames=[300, 100])])
    figures = pe.real_figures(table)
    assert figures.loc["a", "real_pa_mpjpe"] == pytest.approx((15.0 + 45.0) / 2)
    assert figures.loc["b", "real_pa_mpjpe"] == pytest.approx((3 * 70.0 + 80.0) / 4)
    assert figures.loc["b", "real_mean_pose_pa_mpjpe"] == pytest.approx(150.0)


def vp3d_runs(tmp_path, rf_errors, sup, semi, real_of=None):
    """Runs of both VideoPose3D experiments (two seeds per label method) with real tables when
    ``real_of`` maps a run name to its real PA-MPJPE."""
    few = "1 subject"
    runs = [write_run(tmp_path, f"rf{rf}", e, "receptive_field", rf=rf) for rf, e in rf_errors.items()]
    for seed in (0, 1):
        runs.append(write_run(tmp_path, f"sup_s{seed}", sup[seed], "labels", labeled=few, seed=seed))
        runs.append(write_run(tmp_path, f"semi_s{seed}", semi[seed], "labels", labeled=few, seed=seed,
                              placement="depth"))
    for run in runs:
        if real_of is not None:
            path = tmp_path / f"{run['name']}.real.parquet"
            real_table(run["name"], {"h36m_17": [real_of[run["name"]]] * 3}).to_parquet(path)
            run["real"] = [str(path)]
    return runs


def by_effect(rows: list[dict]) -> dict[str, dict]:
    return {f"{r['effect']} | {r['treatment']}": r for r in rows}


def test_videopose3d_effects_hold_where_the_tables_show_them_and_not_where_reversed(tmp_path):
    real = {"rf1": 130.0, "rf27": 110.0, "rf81": 120.0, "sup_s0": 100.0, "sup_s1": 102.0,
            "semi_s0": 120.0, "semi_s1": 122.0}
    runs = vp3d_runs(tmp_path, {1: 120.0, 27: 100.0, 81: 99.5}, sup=(110.0, 112.0), semi=(90.0, 91.0),
                     real_of=real)
    summary = summarize(runs)
    assert summary.set_index("run")["real_pa_mpjpe"].to_dict() == pytest.approx(real)
    rows = by_effect(pe.videopose3d_effects(summary))
    rf27 = rows["(a) a longer receptive field lowers the error: 1 -> 27 frames | rf27"]
    assert (rf27["holds_on_synthetic"], rf27["holds_on_real"]) == (pe.HOLDS, pe.HOLDS)
    rf81 = rows["(a) a longer receptive field lowers the error: 27 -> 81 frames | rf81"]
    assert (rf81["holds_on_synthetic"], rf81["holds_on_real"]) == (pe.WITHIN_NOISE, pe.DOES_NOT_HOLD)
    semi = rows["(b) semi-supervised training helps with few 3D labels: 1 subject | semi-supervised (depth)"]
    assert (semi["synthetic_control"], semi["synthetic_treatment"]) == (111.0, 90.5)
    assert (semi["holds_on_synthetic"], semi["holds_on_real"]) == (pe.HOLDS, pe.DOES_NOT_HOLD)
    assert semi["real_margin"] == pytest.approx(0.02 * 121.0)

    # the experiment's own table carries the real column and the verdict lines
    out = {k: tmp_path / f"table.{k}" for k in ("csv", "html", "png")}
    assert cli.main(["videopose3d-experiments", "--runs", json.dumps(runs), "--csv", str(out["csv"]),
                     "--html", str(out["html"]), "--figure", str(out["png"])]) == 0
    written = pd.read_csv(out["csv"])
    assert np.isfinite(written["real_pa_mpjpe"]).all()
    assert "real does not hold" in out["html"].read_text()


def test_a_run_without_real_tables_is_not_measured_on_real_footage(tmp_path):
    runs = vp3d_runs(tmp_path, {1: 120.0, 27: 100.0}, sup=(110.0, 112.0), semi=(90.0, 91.0))
    summary = summarize(runs)
    assert summary["real_pa_mpjpe"].isna().all()
    rows = pe.videopose3d_effects(summary)
    assert [r["holds_on_real"] for r in rows] == [pe.NOT_MEASURED] * 2
    assert [r["holds_on_synthetic"] for r in rows] == [pe.HOLDS] * 2
    # a real table that lacks the run's model is an error naming the file
    other = tmp_path / "other.parquet"
    real_table("someone_else", {"h36m_17": [1.0]}).to_parquet(other)
    runs[0]["real"] = [str(other)]
    with pytest.raises(Exception, match="no triangulated-take rows of model rf1"):
        summarize(runs)


def mcss_tables(with_nmpjpe: float, with_hits: float, with_real: float):
    nmpjpe = pd.DataFrame({"model": ["base_1", "mv_1"], "labeled_subjects": [1, 1], "multiview_weight": [0.0, 1.0],
                           "n_mpjpe": [60.0, with_nmpjpe], "real_pa_mpjpe": [100.0, with_real]})
    retrieval = pd.DataFrame({"model": ["raw 2D (normalised)", "base_1", "mv_1"], "hit_instant": [0.1, 3.0, with_hits],
                              "real_hit_instant": [1.2, 2.5, with_hits * 1.5]})
    return nmpjpe, retrieval


def test_mcss_effects_hold_or_not_by_the_numbers():
    rows = pe.mcss_effects(*mcss_tables(with_nmpjpe=55.0, with_hits=6.0, with_real=90.0))
    assert [(r["holds_on_synthetic"], r["holds_on_real"]) for r in rows] == [
        (pe.HOLDS, pe.HOLDS), (pe.HOLDS, pe.HOLDS)]
    rows = pe.mcss_effects(*mcss_tables(with_nmpjpe=66.0, with_hits=0.5, with_real=110.0))
    assert [(r["holds_on_synthetic"], r["holds_on_real"]) for r in rows] == [
        (pe.DOES_NOT_HOLD, pe.DOES_NOT_HOLD), (pe.DOES_NOT_HOLD, pe.DOES_NOT_HOLD)]
    # without the real footage's retrieval columns that row is not measured on real footage
    nmpjpe, retrieval = mcss_tables(with_nmpjpe=55.0, with_hits=6.0, with_real=90.0)
    rows = pe.mcss_effects(nmpjpe, retrieval.drop(columns="real_hit_instant"))
    assert rows[1]["holds_on_real"] == pe.NOT_MEASURED


def acae_comparison(hybrid_mpjpe: float, hybrid_affine: float, merged_mpjpe: float) -> pd.DataFrame:
    return pd.DataFrame({"model": ["initial", "merged", "finetune_continued", "finetune_hybrid"],
                         "mpjpe_mean": [100.0, merged_mpjpe, 99.0, hybrid_mpjpe],
                         "affine_mm": [60.0, 8.0, 58.0, hybrid_affine]})


def test_acae_effects_hold_or_not_by_the_numbers():
    real = pd.DataFrame({"real_pa_mpjpe": [90.0, 80.0, 88.0, 87.0]},
                        index=["initial", "merged", "finetune_continued", "finetune_hybrid"])
    real_consistency = pd.Series({"finetune_continued": 70.0, "finetune_hybrid": 90.0})
    rows = by_effect(pe.acae_effects(acae_comparison(100.0, 3.0, 110.0), real, real_consistency))
    consistent = rows["fine-tuning with the autoencoder makes the heads consistent | finetune_hybrid"]
    accurate = rows["fine-tuning with the autoencoder is no less accurate than the control | finetune_hybrid"]
    separate = rows["separate heads beat the merged-joints baseline | initial"]
    assert (consistent["holds_on_synthetic"], consistent["holds_on_real"]) == (pe.HOLDS, pe.DOES_NOT_HOLD)
    assert (accurate["holds_on_synthetic"], accurate["holds_on_real"]) == (pe.HOLDS, pe.HOLDS)
    assert (separate["holds_on_synthetic"], separate["holds_on_real"]) == (pe.HOLDS, pe.DOES_NOT_HOLD)
    rows = by_effect(pe.acae_effects(acae_comparison(120.0, 70.0, 90.0), real))
    consistent = rows["fine-tuning with the autoencoder makes the heads consistent | finetune_hybrid"]
    assert (consistent["holds_on_synthetic"], consistent["holds_on_real"]) == (pe.DOES_NOT_HOLD, pe.NOT_MEASURED)
    assert rows["fine-tuning with the autoencoder is no less accurate than the control | finetune_hybrid"][
        "holds_on_synthetic"] == pe.DOES_NOT_HOLD
    assert rows["separate heads beat the merged-joints baseline | initial"]["holds_on_synthetic"] == pe.DOES_NOT_HOLD


def test_paper_effects_command_writes_the_table_and_names_a_bad_file(tmp_path, capsys):
    runs = vp3d_runs(tmp_path, {1: 120.0, 27: 100.0}, sup=(110.0, 112.0), semi=(90.0, 91.0))
    vp3d = tmp_path / "experiments.csv"
    summarize(runs).to_csv(vp3d, index=False)
    nmpjpe, retrieval = mcss_tables(with_nmpjpe=55.0, with_hits=3.0, with_real=90.0)
    nmpjpe.to_csv(tmp_path / "nmpjpe.csv", index=False)
    retrieval.to_csv(tmp_path / "retrieval.csv", index=False)
    acae_comparison(100.0, 3.0, 110.0).to_csv(tmp_path / "acae.csv", index=False)
    reals = []
    for model, value in (("initial", 90.0), ("merged", 80.0), ("finetune_continued", 88.0), ("finetune_hybrid", 87.0)):
        reals.append(tmp_path / f"{model}.parquet")
        real_table(model, {"h36m_17": [value] * 4, "coco_19": [value] * 4}).to_parquet(reals[-1])
    consistency = []
    for model, value in (("finetune_continued", 70.0), ("finetune_hybrid", 20.0)):
        consistency.append(tmp_path / f"{model}.consistency.parquet")
        pd.DataFrame({"model": model, "format": ["h36m_17", "coco_19", "all"], "affine_mm": [value - 5, value + 5, value]}
                     ).to_parquet(consistency[-1])
    out = {"csv": tmp_path / "effects.csv", "html": tmp_path / "effects.html"}
    argv = ["paper-effects", "--videopose3d", str(vp3d), "--mcss", str(tmp_path / "nmpjpe.csv"),
            str(tmp_path / "retrieval.csv"), "--acae", str(tmp_path / "acae.csv"), "--real", *map(str, reals),
            "--real-consistency", *map(str, consistency), "--csv", str(out["csv"]), "--html", str(out["html"])]
    assert cli.main(argv) == 0
    table = pd.read_csv(out["csv"])
    assert list(table["paper"].unique()) == ["VideoPose3D", "MCSS", "ACAE"] and len(table) == 7
    assert set(table["holds_on_synthetic"]) <= {pe.HOLDS, pe.DOES_NOT_HOLD, pe.WITHIN_NOISE, pe.NOT_MEASURED}
    printed = capsys.readouterr().out
    assert "ACAE: separate heads beat the merged-joints baseline (merged -> initial): synthetic holds" in printed
    assert ("ACAE: fine-tuning with the autoencoder makes the heads consistent (finetune_continued -> finetune_hybrid): "
            "synthetic holds (58.0 -> 3.0, margin 1.2), real holds (70.0 -> 20.0, margin 1.4)") in printed
    assert "background:#dfd" in out["html"].read_text()
    (tmp_path / "broken.csv").write_text("model\nx\n")
    assert cli.main([*argv[:6], "--acae", str(tmp_path / "broken.csv"), *argv[8:]]) == 1
    assert "broken.csv" in capsys.readouterr().err
