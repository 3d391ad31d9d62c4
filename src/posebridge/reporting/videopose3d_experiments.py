"""Tables and figure of the VideoPose3D experiments (workflow/rules/experiments_videopose3d.smk).

Two experiments on the synthetic benchmark, each a set of ``posebridge train`` + ``evaluate`` runs:

- ``receptive_field``: MPJPE of supervised models whose filter widths give receptive fields of
  1, 27, 81... frames (VideoPose3D Table 1's trend: longer context, lower error);
- ``labels``: with 3D labels on only some training subjects, supervised-only against
  semi-supervised (the other subjects' 2D and unlabeled video through the trajectory model,
  reprojection and bone-length terms; VideoPose3D Figure 5's comparison), one semi-supervised
  method per placement of the unlabeled pose for the reprojection (``trajectory``: at the
  trajectory model's position, VideoPose3D's; ``depth``: at its depth only), each with several
  seeds.

``summarize`` reduces each run's evaluation table (native-format rows of the lifter, not the
mean-pose baseline) to frame-weighted MPJPE / PA-MPJPE / N-MPJPE; ``methods`` averages the seeds
of each label setting and method; ``write_outputs`` writes the CSV, an HTML table with a sentence
per experiment saying whether it shows the paper's direction, and a two-panel PNG.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from posebridge.errors import ConfigError, DataError

__all__ = ["summarize", "methods", "verdicts", "write_outputs", "RUN_KEYS"]

RUN_KEYS = ("name", "experiment", "receptive_field", "labeled_subjects", "placement", "seed", "eval", "log")
METRICS = ("mpjpe", "pa_mpjpe", "n_mpjpe")


def _run_metrics(path: Path) -> dict:
    try:
        table = pd.read_parquet(path)
    except Exception as err:
        raise DataError(path, f"not a readable evaluation table ({type(err).__name__})") from None
    missing = [c for c in ("model", "native", "frames", *METRICS) if c not in table]
    if missing:
        raise DataError(path, f"evaluation table lacks column(s) {', '.join(missing)}")
    rows = table[(table["model"] != "mean_pose") & table["native"]]
    if rows.empty:
        raise DataError(path, "no native-format rows of the lifter")
    w = rows["frames"].to_numpy(float)
    out = {m: float(np.sum(rows[m].to_numpy(float) * w) / w.sum()) for m in METRICS}
    out["test_frames"] = int(w.sum())
    return out


def summarize(runs: list[dict]) -> pd.DataFrame:
    """One row per run: its description (``RUN_KEYS``), the metrics (mm) and training seconds."""
    records = []
    for run in runs:
        missing = [k for k in RUN_KEYS if k not in run]
        if missing:
            raise ConfigError(f"experiment run {run.get('name', '?')!r} lacks {', '.join(missing)}")
        log_path = Path(run["log"])
        try:
            log = pd.read_parquet(log_path)
        except Exception as err:
            raise DataError(log_path, f"not a readable training log ({type(err).__name__})") from None
        records.append({
            "experiment": run["experiment"], "run": run["name"], "receptive_field": int(run["receptive_field"]),
            "labeled_subjects": str(run["labeled_subjects"]), "method": method_name(run["placement"]),
            "seed": int(run["seed"]),
            **_run_metrics(Path(run["eval"])),
            "train_seconds": float(log["seconds"].sum()) if "seconds" in log else float("nan")})
    return pd.DataFrame(records)


def method_name(placement: str | None) -> str:
    """"supervised" for a run without unlabeled data, else "semi-supervised (<placement>)"."""
    return f"semi-supervised ({placement})" if placement else "supervised"


def _frames(count: int) -> str:
    return f"{count} frame{'s' if count != 1 else ''}"


def methods(summary: pd.DataFrame) -> pd.DataFrame:
    """The label experiment per (labeled_subjects, method), in the runs' order: mean, min and max
    over seeds of each metric, and the number of seeds."""
    labels = summary[summary["experiment"] == "labels"]
    grouped = labels.groupby(["labeled_subjects", "method"], sort=False)
    table = grouped[list(METRICS)].agg(["mean", "min", "max"])
    table.columns = [f"{m}_{stat}" for m, stat in table.columns]
    table["seeds"] = grouped.size()
    return table.reset_index()


def verdicts(summary: pd.DataFrame) -> list[str]:
    """A sentence per experiment: does it show the paper's direction?"""
    out = []
    rf = summary[summary["experiment"] == "receptive_field"].sort_values("receptive_field")
    if len(rf) >= 2:
        errors = rf["mpjpe"].to_numpy()
        fields = ", ".join(f"{_frames(r)} {e:.1f} mm" for r, e in zip(rf["receptive_field"], errors))
        trend = ("falls with every longer receptive field, as in VideoPose3D" if np.all(np.diff(errors) < 0) else
                 "is lowest with a longer context than 1 frame, but not monotonic" if errors[1:].min() < errors[0] else
                 "does NOT fall with a longer receptive field here (VideoPose3D's does)")
        aligned = ", ".join(f"{_frames(r)} {a:.1f} / {n:.1f} mm"
                            for r, a, n in zip(rf["receptive_field"], rf["pa_mpjpe"], rf["n_mpjpe"]))
        out.append(f"Receptive field: MPJPE {trend} ({fields}; PA-MPJPE / N-MPJPE: {aligned}).")
    table = methods(summary)
    for subjects, group in table.groupby("labeled_subjects", sort=False):
        sup = group[group["method"] == "supervised"]
        if sup.empty:
            continue
        a = float(sup["mpjpe_mean"].iloc[0])
        for _, row in group[group["method"] != "supervised"].iterrows():
            b = float(row["mpjpe_mean"])
            direction = "improves on" if b < a else "does NOT improve on"
            seeds = f"mean of {int(row['seeds'])} seeds, " if row["seeds"] > 1 else ""
            out.append(f"3D labels on {subjects}: {row['method']} {b:.1f} mm {direction} supervised-only {a:.1f} mm "
                       f"({seeds}{100 * (b - a) / a:+.1f}%; VideoPose3D: 80.7 -> 65.2 mm with 10% of S1).")
    return out


def _html(summary: pd.DataFrame, sentences: list[str]) -> str:
    columns = ["experiment", "run", "receptive_field", "labeled_subjects", "method", "seed", *METRICS,
               "test_frames", "train_seconds"]
    items = "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
    per_method = methods(summary)
    means = _table(per_method, ["labeled_subjects", "method", "seeds",
                                *(f"{m}_{s}" for m in METRICS for s in ("mean", "min", "max"))])
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>VideoPose3D experiments</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}</style></head><body>"
            "<h1>VideoPose3D experiments (synthetic benchmark)</h1>"
            "<p>Errors in millimetres on the labeled dataset's test split (native format, root-relative, "
            "frame-weighted over sequences). <i>labels</i>: 3D supervision limited to the first n training "
            "subjects; semi-supervised runs add the other subjects' 2D and the unlabeled video.</p>"
            f"<ul>{items}</ul><h2>Label experiment: mean (min, max) over seeds</h2>{means}"
            f"<h2>Every run</h2>{_table(summary, columns)}</body></html>")


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for _, r in frame[columns].iterrows():
        cells = [f"{v:.1f}" if isinstance(v, float) else html.escape(str(v)) for v in r]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_outputs(summary: pd.DataFrame, csv_path, html_path, figure_path) -> None:
    """The table (CSV + HTML, with ``verdicts``) and the two-panel figure, each written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from posebridge.atomic import atomic_path, savefig, write_text

    with atomic_path(csv_path) as tmp:
        summary.to_csv(tmp, index=False)
    write_text(html_path, _html(summary, verdicts(summary)))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    rf = summary[summary["experiment"] == "receptive_field"].sort_values("receptive_field")
    left.plot(rf["receptive_field"], rf["mpjpe"], "o-", label="MPJPE")
    left.plot(rf["receptive_field"], rf["n_mpjpe"], "^:", label="N-MPJPE")
    left.plot(rf["receptive_field"], rf["pa_mpjpe"], "s--", label="PA-MPJPE")
    left.set_xscale("log")
    left.set_xticks(rf["receptive_field"].tolist(), [str(v) for v in rf["receptive_field"]])
    left.set(xlabel="receptive field (frames)", ylabel="error (mm)", title="(a) receptive field")
    left.legend()
    table = methods(summary)
    order = list(table["labeled_subjects"].unique())  # the config's order
    names = list(table["method"].unique())
    x = np.arange(len(order))
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        part = table[table["method"] == name].set_index("labeled_subjects").reindex(order)
        spread = np.stack([part["mpjpe_mean"] - part["mpjpe_min"], part["mpjpe_max"] - part["mpjpe_mean"]])
        right.bar(x + (k - (len(names) - 1) / 2) * width, part["mpjpe_mean"], width=width, yerr=spread,
                  capsize=3, label=name)
    right.set_xticks(x, order)
    right.set(ylabel="MPJPE (mm), mean and range over seeds", title="(b) 3D labels on few subjects")
    right.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    savefig(figure_path, fig, dpi=100)
    plt.close(fig)


def main_from_runs(runs: list[dict], csv_path: str | os.PathLike, html_path, figure_path) -> pd.DataFrame:
    summary = summarize(runs)
    write_outputs(summary, csv_path, html_path, figure_path)
    return summary
