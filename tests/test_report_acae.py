"""The ACAE report: the comparison table carries each model's per-test-set MPJPE (own formats)
and consistency, the verdict follows the numbers, and every file is written."""

import numpy as np
import pandas as pd
import torch

from posebridge.bridge.autoencoder import AffineCombiningAutoencoder, save_acae
from posebridge.evaluation.evaluate import COLUMNS
from posebridge.models.lifter import union_joint_names
from posebridge.bridge.pseudo_gt import write_pseudo_gt
from posebridge.reporting.acae import (
    ACAE_REPORT_FILES,
    build_acae_report,
    comparison_table,
    comparison_verdict,
)

FORMATS = ["h36m_17", "humaneva_15"]


def eval_table(model, dataset, mpjpe_native, mpjpe_other):
    rows = []
    for fmt, native, value in (("h36m_17", True, mpjpe_native), ("humaneva_15", False, mpjpe_other)):
        for name, v in ((model, value), ("mean_pose", 300.0)):
            for seq, frames in (("s0", 100), ("s1", 300)):
                rows.append({"model": name, "source_model": model, "dataset": dataset, "format": fmt,
                             "native": native, "sequence": seq, "camera": "c0", "subject": "S1", "action": "walk",
                             "frames": frames, "mpjpe": v, "pa_mpjpe": v / 2, "n_mpjpe": v, "mpjve": 1.0,
                             "pck": 50.0, "auc": 40.0, "cps": 30.0, "pck_threshold": 150.0,
                             "auc_threshold": 150.0, "cps_threshold": 200.0})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_inputs(tmp_path):
    figures = {"initial": (60.0, 70.0, 20.0), "finetune_hybrid": (58.0, 80.0, 5.0), "merged": (75.0, 90.0, 1.0)}
    evals, cons = [], []
    for model, (a, b, affine) in figures.items():
        for dataset, shift in (("ds_a", 0.0), ("ds_b", 10.0)):
            path = tmp_path / f"{model}_{dataset}.parquet"
            eval_table(model, dataset, a + shift, b).to_parquet(path)
            evals.append(path)
        path = tmp_path / f"cons_{model}.parquet"
        pd.DataFrame([{"model": model, "format": "h36m_17", "affine_mm": affine, "acae_mm": np.nan},
                      {"model": model, "format": "all", "affine_mm": affine, "acae_mm": 2 * affine}]).to_parquet(path)
        cons.append(path)
    return evals, cons


def test_comparison_table_and_verdict(tmp_path):
    evals, cons = write_inputs(tmp_path)
    table = comparison_table(evals, cons)
    assert list(table["model"]) == ["initial", "finetune_hybrid", "merged"]
    row = table.set_index("model").loc["finetune_hybrid"]
    # native formats only: the humaneva_15 figures (80) must not enter
    assert row["mpjpe_ds_a"] == 58.0 and row["mpjpe_ds_b"] == 68.0 and row["mpjpe_mean"] == 63.0
    assert row["pa_mpjpe_mean"] == 31.5 and row["affine_mm"] == 5.0 and row["acae_mm"] == 10.0
    verdict = comparison_verdict(table)
    assert "hybrid student-teacher: MPJPE 63.0 mm (equal or better accuracy), consistency 5.0 mm (more consistent)" in verdict
    assert "merged joints: MPJPE 80.0 mm (worse accuracy)" in verdict


def test_build_report_writes_every_file(tmp_path):
    evals, cons = write_inputs(tmp_path)
    names = union_joint_names(FORMATS)
    acae = AffineCombiningAutoencoder(names, 10, 4, generator=torch.Generator().manual_seed(0))
    save_acae(tmp_path / "acae.pt", acae)
    pd.DataFrame([{"method": "ACAE", "coordinates": 42, "holdout_mpjpe": 5.0, "train_mpjpe": 4.0, "joints": 32,
                   "fit_poses": 10, "holdout_poses": 5}]).to_parquet(tmp_path / "metrics.parquet")
    rng = np.random.default_rng(0)
    write_pseudo_gt(tmp_path / "pgt.npz", {
        "points": rng.normal(0, 300, (6, 32, 3)).astype(np.float32) + np.array([0, 0, 4000], np.float32),
        "joint_names": np.array(names), "holdout": np.array([0, 0, 0, 1, 1, 1], bool),
        "formats": np.array(FORMATS), "format_start": np.array([0, 17]), "format_stop": np.array([17, 32])})
    paths = build_acae_report(evals, cons, tmp_path / "acae.pt", tmp_path / "metrics.parquet",
                              tmp_path / "pgt.npz", tmp_path / "out")
    assert set(paths) == set(ACAE_REPORT_FILES)
    for path in paths.values():
        assert path.stat().st_size > 0
    assert (tmp_path / "out" / "acae_weights.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "out" / "acae_comparison.html").read_text()
    assert "hybrid student-teacher" in html and "63.0" in html
    csv = pd.read_csv(tmp_path / "out" / "acae_comparison.csv")
    assert list(csv["model"]) == ["initial", "finetune_hybrid", "merged"]
