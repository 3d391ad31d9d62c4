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
mean-pose baseline) to frame-weighted MPJPE / PA-MPJPE / N-MPJPE, adds the real-footage figures
(``real_pa_mpjpe``: each view of the triangulated Pose2Sim takes lifted alone, PA-MPJPE on the 12
limb joints, frame-weighted mean over views; ``reporting.paper_effects.real_figures``) of a run that has
``real`` tables (NaN for a run whose 2D input format real footage does not have), flags a run whose training
diverged (its ``train_log.parquet`` records a rollback or an early stop, ``training.divergence``);
``methods`` averages the seeds of each label setting and method, leaving diverged runs out and
naming them; ``write_outputs`` writes the CSV, an HTML table with a sentence per experiment saying
whether it shows the paper's direction (and one naming the diverged runs), and a two-panel PNG.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from posebridge.errors import ConfigError, DataError
from posebridge.training import divergence

__all__ = ["summarize", "methods", "verdicts", "write_outputs", "RUN_KEYS"]

RUN_KEYS = ("name", "experiment", "receptive_field", "labeled_subjects", "placement", "seed", "eval", "log")
METRICS = ("mpjpe", "pa_mpjpe", "n_mpjpe")
REAL = "real_pa_mpjpe"  # the real-footage figure beside the synthetic ones (optional run key `real`: its tables)
REAL_METRICS = (REAL, "real_mean_pose_pa_mpjpe")


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


def _real_metrics(run: dict) -> dict:
    """``REAL_METRICS`` of the run's model from its ``real`` tables (posebridge evaluate-real), NaN without."""
    from posebridge.reporting.paper_effects import read_real_figures

    if not run.get("real"):
        return dict.fromkeys(REAL_METRICS, float("nan"))
    figures = read_real_figures(run["real"])
    if run["name"] not in figures.index:
        raise DataError(run["real"][0], f"no triangulated-take rows of model {run['name']}")
    return {m: float(figures.loc[run["name"], m]) for m in REAL_METRICS}


def summarize(runs: list[dict]) -> pd.DataFrame:
    """One row per run: its description (``RUN_KEYS``), the metrics (mm), the real-footage figures
    (``REAL_METRICS``, mm; NaN for runs without ``real`` tables) and training seconds."""
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
        events = divergence.events(log)
        records.append({
            "experiment": run["experiment"], "run": run["name"], "receptive_field": int(run["receptive_field"]),
            "labeled_subjects": str(run["labeled_subjects"]), "method": method_name(run["placement"]),
            "seed": int(run["seed"]),
            **_run_metrics(Path(run["eval"])), **_real_metrics(run),
            "train_seconds": float(log["seconds"].sum()) if "seconds" in log else float("nan"),
            "diverged": bool(events),
            "divergence": "; ".join(f"epoch {e['epoch']}: {e['what']}" for e in events)})
    return pd.DataFrame(records)


def method_name(placement: str | None) -> str:
    """"supervised" for a run without unlabeled data, else "semi-supervised (<placement>)"."""
    return f"semi-supervised ({placement})" if placement else "supervised"


def _frames(count: int) -> str:
    return f"{count} frame{'s' if count != 1 else ''}"


def _diverged(summary: pd.DataFrame) -> pd.Series:
    """Which runs diverged in training (False for a summary without the flag)."""
    return summary["diverged"].astype(bool) if "diverged" in summary else pd.Series(False, index=summary.index)


def methods(summary: pd.DataFrame) -> pd.DataFrame:
    """The label experiment per (labeled_subjects, method), in the runs' order: mean, min and max
    over the seeds whose training did not diverge of each metric, their number (``seeds``) and the
    names of the diverged runs left out (``diverged_runs``)."""
    keys = ["labeled_subjects", "method"]
    labels = summary[summary["experiment"] == "labels"]
    diverged = _diverged(labels)
    kept = labels[~diverged].groupby(keys, sort=False)
    columns = [*METRICS, *(m for m in REAL_METRICS if m in labels)]
    table = kept[columns].agg(["mean", "min", "max"])
    table.columns = [f"{m}_{stat}" for m, stat in table.columns]
    table["seeds"] = kept.size()
    order = pd.MultiIndex.from_frame(labels[keys].drop_duplicates())
    table = table.reindex(order)
    table["seeds"] = table["seeds"].fillna(0).astype(int)
    left_out = labels[diverged].groupby(keys, sort=False)["run"].agg(", ".join)
    table["diverged_runs"] = left_out.reindex(order).fillna("")
    return table.reset_index()


def verdicts(summary: pd.DataFrame) -> list[str]:
    """A sentence per experiment: does it show the paper's direction?"""
    out = []
    rf = summary[(summary["experiment"] == "receptive_field") & ~_diverged(summary)].sort_values("receptive_field")
    if len(rf) >= 2:
        errors = rf["mpjpe"].to_numpy()
        fields = ", ".join(f"{_frames(r)} {e:.1f} mm" for r, e in zip(rf["receptive_field"], errors))
        trend = ("falls with every longer receptive field, as in VideoPose3D" if np.all(np.diff(errors) < 0) else
                 "is lowest with a longer context than 1 frame, but not monotonic" if errors[1:].min() < errors[0] else
                 "does NOT fall with a longer receptive field here (VideoPose3D's does)")
        aligned = ", ".join(f"{_frames(r)} {a:.1f} / {n:.1f} mm"
                            for r, a, n in zip(rf["receptive_field"], rf["pa_mpjpe"], rf["n_mpjpe"]))
        out.append(f"Receptive field: MPJPE {trend} ({fields}; PA-MPJPE / N-MPJPE: {aligned}).")
    for subjects, group in methods(summary).groupby("labeled_subjects", sort=False):
        sup = group[group["method"] == "supervised"]
        if sup.empty or sup["seeds"].iloc[0] == 0:
            continue
        a = float(sup["mpjpe_mean"].iloc[0])
        for _, row in group[(group["method"] != "supervised") & (group["seeds"] > 0)].iterrows():
            b = float(row["mpjpe_mean"])
            direction = "improves on" if b < a else "does NOT improve on"
            seeds = f"mean of {int(row['seeds'])} seeds, " if row["seeds"] > 1 else ""
            out.append(f"3D labels on {subjects}: {row['method']} {b:.1f} mm {direction} supervised-only {a:.1f} mm "
                       f"({seeds}{100 * (b - a) / a:+.1f}%; VideoPose3D: 80.7 -> 65.2 mm with 10% of S1).")
    out += _real_verdicts(summary)
    diverged = summary[_diverged(summary)]
    if not diverged.empty:
        runs = "; ".join(f"{r['run']} ({r['mpjpe']:.1f} mm; {r['divergence']})" for _, r in diverged.iterrows())
        out.append(f"DIVERGED in training, left out of every mean and verdict above: {runs}.")
    return out


def _has_real(summary: pd.DataFrame) -> bool:
    return REAL in summary and bool(np.isfinite(summary[REAL].to_numpy(float)).any())


def _real_verdicts(summary: pd.DataFrame) -> list[str]:
    """The paper-effects lines (synthetic and real-footage verdicts) when runs were scored on real footage."""
    from posebridge.reporting import paper_effects

    if not _has_real(summary):
        return []
    return paper_effects.sentences(pd.DataFrame(paper_effects.videopose3d_effects(summary)))


def _html(summary: pd.DataFrame, sentences: list[str]) -> str:
    real = [m for m in REAL_METRICS if m in summary]
    columns = ["experiment", "run", "receptive_field", "labeled_subjects", "method", "seed", *METRICS, *real,
               "test_frames", "train_seconds", "diverged", "divergence"]
    items = "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
    per_method = methods(summary)
    means = _table(per_method, ["labeled_subjects", "method", "seeds",
                                *(f"{m}_{s}" for m in (*METRICS, *real[:1]) for s in ("mean", "min", "max")),
                                "diverged_runs"])
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>VideoPose3D experiments</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}</style></head><body>"
            "<h1>VideoPose3D experiments (synthetic benchmark)</h1>"
            "<p>Errors in millimetres on the labeled dataset's test split (native format, root-relative, "
            "frame-weighted over sequences). <i>labels</i>: 3D supervision limited to the first n training "
            "subjects; semi-supervised runs add the other subjects' 2D and the unlabeled video. "
            "<i>real_pa_mpjpe</i>: the real-footage yardstick, each view of the triangulated Pose2Sim takes "
            "lifted alone, PA-MPJPE on the 12 limb joints (mean over views weighted by frames; n/a: a model whose 2D input "
            "format the real detector does not give); <i>real_mean_pose_pa_mpjpe</i>: the model's mean "
            "training pose on the same frames.</p>"
            f"<ul>{items}</ul><h2>Label experiment: mean (min, max) over seeds</h2>"
            "<p>Runs whose training diverged (rolled back or stopped early) are left out of the means "
            "and named in <i>diverged_runs</i>.</p>"
            f"{means}<h2>Every run</h2>{_table(summary, columns, flag='diverged')}</body></html>")


def _table(frame: pd.DataFrame, columns: list[str], flag: str | None = None) -> str:
    """An HTML table of ``columns``; rows where column ``flag`` is true are shaded red."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for _, r in frame[columns].iterrows():
        cells = [f"{v:.1f}" if isinstance(v, float) else html.escape(str(v)) for v in r]
        style = " style='background:#fdd'" if flag is not None and bool(r[flag]) else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4))
    rf = summary[(summary["experiment"] == "receptive_field") & ~_diverged(summary)].sort_values("receptive_field")
    left.plot(rf["receptive_field"], rf["mpjpe"], "o-", label="MPJPE")
    left.plot(rf["receptive_field"], rf["n_mpjpe"], "^:", label="N-MPJPE")
    left.plot(rf["receptive_field"], rf["pa_mpjpe"], "s--", label="PA-MPJPE")
    if _has_real(summary):
        left.plot(rf["receptive_field"], rf[REAL], "kD-.", label="real footage PA-MPJPE")
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
        offset = x + (k - (len(names) - 1) / 2) * width
        right.bar(offset, part["mpjpe_mean"], width=width, yerr=spread, capsize=3, label=name)
        if _has_real(summary):
            right.plot(offset, part[f"{REAL}_mean"], "kD", markersize=4,
                       label="real footage PA-MPJPE" if k == 0 else None)
    right.set_xticks(x, order)
    # two-line label and title: on one line they ran into panel (a) and off the figure
    real = "\nreal footage: PA-MPJPE" if _has_real(summary) else ""
    diverged = "\n(diverged runs left out)" if _diverged(summary).any() else ""
    right.set(ylabel="MPJPE (mm), mean and range over seeds" + real, title="(b) 3D labels on few subjects" + diverged)
    right.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    savefig(figure_path, fig, dpi=100)
    plt.close(fig)


def main_from_runs(runs: list[dict], csv_path: str | os.PathLike, html_path, figure_path) -> pd.DataFrame:
    summary = summarize(runs)
    write_outputs(summary, csv_path, html_path, figure_path)
    return summary
