"""The experiments on real footage, run for real on the tiny preset: every VideoPose3D and MCSS
experiment model lifted on the triangulated Pose2Sim takes, its real-footage figure beside the
synthetic ones in the experiment tables."""

import numpy as np
import pandas as pd
import pytest

from test_workflow import TINY, job_counts, snakemake, write_yaml

SMALL_TRAINING = {"channels": 32, "epochs": 1, "batch_size": 64, "samples_per_epoch": 1024, "val_windows": 128}
# the default's three receptive fields made small (1, 3, 9 frames; mappings merge, so the names stay)
# and one label setting with one semi-supervised method: 5 lifters; MCSS: 2
TINY_EXPERIMENTS = {
    "semi_supervised": {"experiment": {"receptive_fields": {"rf1": [1], "rf27": [3], "rf81": [3, 3]},
                                       "labels": [{"subjects": 1}],
                                       "placements": ["depth"], "seeds": 1, "train": SMALL_TRAINING,
                                       "max_frames_per_sequence": 50}},
    "multiview": {"experiment": {"labeled_subjects": [1], "train": SMALL_TRAINING, "pairs": 16}},
}


@pytest.mark.slow  # 3.5 min on 2 busy cores: MediaPipe on the Pose2Sim takes, 7 trainings
def test_experiment_tables_get_a_finite_real_column(tmp_path):
    overlay = write_yaml(tmp_path / "experiments.yaml", TINY_EXPERIMENTS)
    targets = ["results/experiments/videopose3d/experiments.csv", "results/experiments/mcss/nmpjpe.csv"]
    snakemake(tmp_path, *targets, "--cores", 2, "--configfile", TINY, overlay, timeout=900)

    vp3d = pd.read_csv(tmp_path / targets[0])
    assert len(vp3d) == 5 and np.isfinite(vp3d[["mpjpe", "real_pa_mpjpe", "real_mean_pose_pa_mpjpe"]]).all().all()
    assert (vp3d["real_pa_mpjpe"] > 0).all()
    html = (tmp_path / "results/experiments/videopose3d/experiments.html").read_text()
    assert "real_pa_mpjpe" in html and "VideoPose3D: (a) a longer receptive field lowers the error" in html
    mcss = pd.read_csv(tmp_path / targets[1])
    assert len(mcss) == 2 and np.isfinite(mcss[["n_mpjpe", "real_pa_mpjpe"]]).all().all()
    retrieval = pd.read_csv(tmp_path / "results/experiments/mcss/retrieval.csv")
    assert len(retrieval) == 3 and retrieval[["real_hit_instant", "real_hit_pose"]].notna().all().all()
    # the figures are those of `posebridge evaluate-real` on the experiment model (frame-weighted over views)
    real = pd.read_parquet(tmp_path / "results/experiments/videopose3d/real/rf27/pose2sim.parquet")
    assert set(real["model"]) == {"rf27"} and real["camera"].nunique() == 4
    weighted = real.groupby("format").apply(lambda v: np.average(v["pa_mpjpe"], weights=v["frames"]), include_groups=False)
    expected = weighted.mean()
    assert np.isclose(vp3d.set_index("run").loc["rf27", "real_pa_mpjpe"], expected)
    assert job_counts(snakemake(tmp_path, *targets, "-n", "--configfile", TINY, overlay)) == {}
