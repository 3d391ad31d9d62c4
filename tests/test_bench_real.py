"""bench_real's comparison of several models: one line per model from its views tables."""

import numpy as np
import pandas as pd
import pytest

from bench.bench_real import comparison_row
from posebridge.evaluation.real_footage import FORMATS_MEAN


def views_table(rows):
    return pd.DataFrame(rows, columns=["sequence", "camera", "format", "frames", "pa_mpjpe", "mean_pose_pa_mpjpe"])


def test_comparison_row_weights_views_by_frames_and_divides_by_the_constant_pose():
    views = views_table([
        ("a", "cam1", "h36m_17", 10, 40.0, 100.0),
        ("b", "cam1", "h36m_17", 30, 80.0, 140.0),
        ("a", "cam1", "coco_19", 10, 1.0, 1.0),  # another format: not in the line
        ("a", "cam1", FORMATS_MEAN, 10, 30.0, np.nan),
        ("b", "cam1", FORMATS_MEAN, 30, 50.0, np.nan),
    ])
    exact = views_table([("a", "cam1", "h36m_17", 10, 20.0, 100.0), ("b", "cam1", "h36m_17", 0, 99.0, 140.0)])
    row = comparison_row(views, exact, "h36m_17")
    assert row["PA"] == pytest.approx((10 * 40 + 30 * 80) / 40)  # 70
    assert row["constant pose PA"] == pytest.approx((10 * 100 + 30 * 140) / 40)  # 130
    assert row["ratio"] == pytest.approx(70 / 130)
    assert row["mean of formats PA"] == pytest.approx((10 * 30 + 30 * 50) / 40)
    # a view without scored frames does not count
    assert row["exact 2D PA"] == pytest.approx(20.0)
    assert row["exact 2D ratio"] == pytest.approx(20.0 / 100.0)
    assert "exact 2D mean of formats PA" not in row


def test_comparison_row_of_a_format_the_model_lacks_is_nan():
    views = views_table([("a", "cam1", "coco_19", 10, 40.0, 100.0)])
    row = comparison_row(views, None, "h36m_17")
    assert np.isnan(row["PA"]) and np.isnan(row["ratio"]) and not any(k.startswith("exact") for k in row)
