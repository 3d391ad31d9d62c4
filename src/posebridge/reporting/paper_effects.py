"""Which of the reproduced paper effects hold on the synthetic benchmark, and which on real footage.

Each effect compares a control with a treatment, on the synthetic test split (the experiment's own
metric) and on the real-footage yardstick: the triangulated Pose2Sim takes, each view lifted alone
(``posebridge evaluate-real``), PA-MPJPE on the 12 limb joints, the mean over the views weighted
by their frames, then over the model's skeleton formats (``real_figures``).

- VideoPose3D (Pavllo et al., "3D human pose estimation in video with temporal convolutions and
  semi-supervised training", CVPR 2019): (a) a longer receptive field lowers the error (its
  Table 5 and Figure 4); (b) semi-supervised training with back-projection of unlabeled 2D lowers
  it when 3D labels are scarce (its Figure 5).
- MCSS (Mitra et al., "Multiview-consistent semi-supervised learning for 3D human pose
  estimation", CVPR 2020): the multi-view metric loss lowers the canonical N-MPJPE with few 3D
  labels, and its embedding retrieves the same instant from another view.
- ACAE (Sárándi et al., "Learning 3D human pose estimation from dozens of datasets using a
  geometry-aware autoencoder to bridge between skeleton formats", WACV 2023): fine-tuning with
  the autoencoder makes the formats' heads consistent and is at least as accurate as fine-tuning
  without it (the ``continued`` control); separate heads beat one merged output per joint name.

The rule (``verdict``): an effect holds when the difference in the paper's direction exceeds the
noise margin: the larger seed range (max - min) of the two sides, and at least ``NOISE_SHARE`` of
the larger figure (the only margin of single runs: seeds of the experiments differ by a few
percent), and for retrieval hit rates at least ``RETRIEVAL_FLOOR_PCT`` percentage point.
Reversed by more than the margin it does not hold; in between it is within noise. An
effect claimed as "at least not worse" holds unless the treatment is worse by more than the
margin. A side without figures is not measured.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from posebridge.errors import DataError

NOISE_SHARE = 0.02
# retrieval hit rates sit near chance (one hit in a few hundred queries moves them by tenths of a
# percent): a difference below one percentage point is noise
RETRIEVAL_FLOOR_PCT = 1.0
HOLDS, DOES_NOT_HOLD, WITHIN_NOISE, NOT_MEASURED = "holds", "does not hold", "within noise", "not measured"
# evaluate-real column -> the figure it becomes per model
REAL_COLUMNS = {"pa_mpjpe": "real_pa_mpjpe", "mean_pose_pa_mpjpe": "real_mean_pose_pa_mpjpe"}
REAL_METRIC = "PA-MPJPE on Pose2Sim views (mm)"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the figure (mean over seeds) and its range over the seeds."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, value, low=None, high=None) -> "Side":
        value = float(value)
        return cls(value, value if low is None else float(low), value if high is None else float(high))


MISSING = Side(float("nan"), float("nan"), float("nan"))


def verdict(control: Side, treatment: Side, *, lower_is_better: bool = True, non_inferior: bool = False,
            floor: float = 0.0) -> tuple[str, float]:
    """(verdict, noise margin) of the treatment against the control (module docstring's rule);
    ``floor``: the least margin in the figures' own unit (hit rates near chance)."""
    if not (np.isfinite(control.value) and np.isfinite(treatment.value)):
        return NOT_MEASURED, float("nan")
    margin = max(control.high - control.low, treatment.high - treatment.low,
                 NOISE_SHARE * max(abs(control.value), abs(treatment.value)), floor)
    gain = control.value - treatment.value if lower_is_better else treatment.value - control.value
    if non_inferior:
        return (HOLDS if gain >= -margin else DOES_NOT_HOLD), margin
    return (HOLDS if gain > margin else DOES_NOT_HOLD if gain < -margin else WITHIN_NOISE), margin


def real_figures(table: pd.DataFrame) -> pd.DataFrame:
    """Per model (index): ``REAL_COLUMNS`` from ``posebridge evaluate-real`` rows of triangulated
    takes: the mean over the views of each format weighted by their frames (as the report's real
    footage section: ``evaluation.real_footage.summarise_views``), then the mean over the formats."""
    from posebridge.evaluation.real_footage import summarise_views

    missing = [c for c in ("model", "format", "frames", *REAL_COLUMNS) if c not in table.columns]
    if missing:
        raise DataError("--real", f"a real-footage table without triangulated takes: no {', '.join(missing)}")
    takes = table[np.isfinite(table["pa_mpjpe"].to_numpy(float))]
    per_format = summarise_views(takes, ("model", "format"), list(REAL_COLUMNS))
    return per_format.groupby(level="model")[list(REAL_COLUMNS)].mean().rename(columns=REAL_COLUMNS)


def read_real_figures(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """``real_figures`` of the ``posebridge evaluate-real`` tables at ``paths`` (one row per model)."""
    from posebridge.reporting.real_footage import load_tables

    return real_figures(load_tables(paths))


def _row(paper: str, effect: str, control: str, treatment: str, synthetic: tuple, real: tuple, **how) -> dict:
    """A table row; ``synthetic`` and ``real``: (metric, control Side, treatment Side)."""
    row = {"paper": paper, "effect": effect, "control": control, "treatment": treatment}
    for where, (metric, a, b) in (("synthetic", synthetic), ("real", real)):
        judged, margin = verdict(a, b, **how)
        row.update({f"{where}_metric": metric, f"{where}_control": a.value, f"{where}_treatment": b.value,
                    f"{where}_margin": margin, f"holds_on_{where}": judged})
    return row


def _seed_side(table: pd.DataFrame, column: str) -> Side:
    """Mean, min and max over seeds of a ``methods`` row (``<column>_mean`` etc.), else MISSING."""
    if f"{column}_mean" not in table:
        return MISSING
    return Side.of(table[f"{column}_mean"], table[f"{column}_min"], table[f"{column}_max"])


def videopose3d_effects(summary: pd.DataFrame) -> list[dict]:
    """(a) each longer receptive field against the previous one; (b) every semi-supervised
    method against supervised-only at each amount of 3D labels. ``summary``: the experiment's
    CSV (``reporting.videopose3d_experiments.summarize``)."""
    from posebridge.reporting.videopose3d_experiments import methods

    paper, rows = "VideoPose3D", []
    synthetic_metric = "MPJPE on the synthetic test split (mm)"
    ok = ~summary["diverged"].astype(bool) if "diverged" in summary else True
    rf = summary[(summary["experiment"] == "receptive_field") & ok].sort_values("receptive_field")
    real = "real_pa_mpjpe" in rf
    for (_, short), (_, long) in zip(rf.iterrows(), rf.iloc[1:].iterrows()):
        rows.append(_row(paper, f"(a) a longer receptive field lowers the error: {short['receptive_field']} -> "
                         f"{long['receptive_field']} frames", short["run"], long["run"],
                         (synthetic_metric, Side.of(short["mpjpe"]), Side.of(long["mpjpe"])),
                         (REAL_METRIC, Side.of(short["real_pa_mpjpe"]) if real else MISSING,
                          Side.of(long["real_pa_mpjpe"]) if real else MISSING)))
    table = methods(summary)
    for subjects, group in table[table["seeds"] > 0].groupby("labeled_subjects", sort=False):
        supervised = group[group["method"] == "supervised"]
        if supervised.empty:
            continue
        sup = supervised.iloc[0]
        for _, semi in group[group["method"] != "supervised"].iterrows():
            rows.append(_row(paper, f"(b) semi-supervised training helps with few 3D labels: {subjects}",
                             "supervised", semi["method"],
                             (synthetic_metric + ", mean of seeds", _seed_side(sup, "mpjpe"), _seed_side(semi, "mpjpe")),
                             (REAL_METRIC + ", mean of seeds", _seed_side(sup, "real_pa_mpjpe"),
                              _seed_side(semi, "real_pa_mpjpe"))))
    return rows


def _real_side(frame: pd.DataFrame, column: str = "real_pa_mpjpe") -> Side:
    return Side.of(frame[column].iloc[0]) if column in frame and len(frame) else MISSING


def mcss_effects(nmpjpe: pd.DataFrame, retrieval: pd.DataFrame) -> list[dict]:
    """Per amount of 3D labels, with against without the multi-view loss: the regressed canonical
    pose's N-MPJPE (real: the lifter's PA-MPJPE) and cross-view retrieval of the same instant
    (real: ``real_hit_instant`` when mcss-eval had the real footage). ``nmpjpe``/``retrieval``:
    ``posebridge mcss-eval``'s CSVs."""
    paper, rows = "MCSS", []
    hits = retrieval.set_index("model")
    for subjects, group in nmpjpe.groupby("labeled_subjects", sort=True):
        without, with_ = group[group["multiview_weight"] == 0], group[group["multiview_weight"] > 0]
        if without.empty or with_.empty:
            continue
        names = (without["model"].iloc[0], with_["model"].iloc[0])
        rows.append(_row(paper, f"the multi-view loss lowers the canonical error: {subjects} labeled subject(s)",
                         *names, ("N-MPJPE of the regressed canonical pose (mm)", Side.of(without["n_mpjpe"].iloc[0]),
                                  Side.of(with_["n_mpjpe"].iloc[0])),
                         (REAL_METRIC + " (the lifter)", _real_side(without), _real_side(with_))))
        if all(name in hits.index for name in names):
            real = [Side.of(hits.loc[n, "real_hit_instant"]) if "real_hit_instant" in hits else MISSING for n in names]
            rows.append(_row(paper, f"the embedding is view-invariant: {subjects} labeled subject(s)", *names,
                             ("same-instant cross-view retrieval (%)", Side.of(hits.loc[names[0], "hit_instant"]),
                              Side.of(hits.loc[names[1], "hit_instant"])),
                             ("same-instant cross-view retrieval on Pose2Sim views (%)", *real), lower_is_better=False,
                             floor=RETRIEVAL_FLOOR_PCT))
    return rows


def read_consistency(paths: Sequence[str | os.PathLike]) -> pd.Series:
    """model -> the mean held-out affine consistency over its formats (``posebridge consistency``
    tables' 'all' rows), e.g. on real footage."""
    from posebridge.reporting.report import concat_tables

    table = concat_tables(paths, ("model", "format", "affine_mm"), "a consistency table (posebridge consistency)",
                          "--real-consistency")
    return table[table["format"] == "all"].set_index("model")["affine_mm"]


def acae_effects(comparison: pd.DataFrame, real: pd.DataFrame, real_consistency: pd.Series | None = None,
                 control: str = "finetune_continued", separate: str = "initial", merged: str = "merged") -> list[dict]:
    """Each ACAE fine-tuning variant against the ``control``: consistency (held-out affine
    combination of the other formats, ``affine_mm``) and accuracy (no worse); separate heads
    against the merged-joints model. ``comparison``: the report's acae_comparison.csv (synthetic
    mean MPJPE over the test sets); ``real``: ``real_figures`` of the default run's models;
    ``real_consistency``: ``read_consistency`` of their predictions on the real footage."""
    paper, rows = "ACAE", []
    synthetic_metric = "MPJPE, mean over the synthetic test sets (mm)"
    table = comparison.set_index("model")
    consistent = pd.Series(dtype=float) if real_consistency is None else real_consistency

    def sides(name: str, column: str) -> tuple[Side, Side]:
        synth = Side.of(table.loc[name, column]) if name in table.index else MISSING
        return synth, Side.of(real.loc[name, "real_pa_mpjpe"]) if name in real.index else MISSING

    def real_affine(name: str) -> Side:
        return Side.of(consistent[name]) if name in consistent.index else MISSING

    (c_synth, c_real), (c_affine, _) = sides(control, "mpjpe_mean"), sides(control, "affine_mm")
    for name in [m for m in table.index if m.startswith("finetune_") and m != control]:
        (synth, real_side), (affine, _) = sides(name, "mpjpe_mean"), sides(name, "affine_mm")
        rows.append(_row(paper, "fine-tuning with the autoencoder makes the heads consistent", control, name,
                         ("held-out affine consistency (mm)", c_affine, affine),
                         ("held-out affine consistency on Pose2Sim views (mm)", real_affine(control),
                          real_affine(name))))
        rows.append(_row(paper, "fine-tuning with the autoencoder is no less accurate than the control",
                         control, name, (synthetic_metric, c_synth, synth), (REAL_METRIC, c_real, real_side),
                         non_inferior=True))
    if merged in table.index and separate in table.index:
        (m_synth, m_real), (s_synth, s_real) = sides(merged, "mpjpe_mean"), sides(separate, "mpjpe_mean")
        rows.append(_row(paper, "separate heads beat the merged-joints baseline", merged, separate,
                         (synthetic_metric, m_synth, s_synth), (REAL_METRIC, m_real, s_real)))
    return rows


def sentences(table: pd.DataFrame) -> list[str]:
    """One line per effect: '<paper>: <effect> (<control> -> <treatment>): synthetic <verdict>, real <verdict>'."""
    return [f"{r['paper']}: {r['effect']} ({r['control']} -> {r['treatment']}): "
            f"synthetic {r['holds_on_synthetic']}{_figures(r, 'synthetic')}, "
            f"real {r['holds_on_real']}{_figures(r, 'real')}" for _, r in table.iterrows()]


def _figures(row, where: str) -> str:
    a, b, margin = row[f"{where}_control"], row[f"{where}_treatment"], row[f"{where}_margin"]
    return "" if not np.isfinite(margin) else f" ({a:.1f} -> {b:.1f}, margin {margin:.1f})"


def _cell(value) -> str:
    """A table cell: numbers with one decimal, verdicts coloured."""
    if isinstance(value, (float, np.floating)):
        return f"<td>{'n/a' if not np.isfinite(value) else f'{value:.1f}'}</td>"
    css = {HOLDS: "#dfd", DOES_NOT_HOLD: "#fdd", WITHIN_NOISE: "#ffd"}.get(value)
    style = f" style='background:{css}'" if css else ""
    return f"<td{style}>{html.escape(str(value))}</td>"


def page(table: pd.DataFrame) -> str:
    """The HTML page: the rule, then the table (verdict cells coloured)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(map(_cell, r)) + "</tr>" for r in table.itertuples(index=False))
    rule = (f"An effect <b>holds</b> when the difference in the paper's direction exceeds the noise margin: the "
            f"larger seed range (max - min) of the two sides, and at least {100 * NOISE_SHARE:g} % of the larger "
            f"figure ({RETRIEVAL_FLOOR_PCT:g} percentage point for retrieval hit rates); reversed by more than the "
            "margin it <b>does not hold</b>; in between it is <b>within noise</b>. "
            "'No less accurate' holds unless the treatment is worse by more than the margin. Real footage: the "
            "triangulated Pose2Sim takes, each view lifted alone, PA-MPJPE on the 12 limb joints (mean over the "
            "views weighted by their frames, then over the model's formats).")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Paper effects</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}</style></head><body>"
            f"<h1>Paper effects: synthetic benchmark and real footage</h1><p>{rule}</p>"
            f"<table><tr>{head}</tr>{body}</table></body></html>")


def write_outputs(table: pd.DataFrame, csv_path, html_path) -> None:
    from posebridge.atomic import atomic_path, write_text

    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.2f")
    write_text(html_path, page(table))
