"""The report's content: metric tables, the baseline comparison, training curves, skeleton renderings.

``build_report(eval_paths, model_dirs, output_dir)`` writes exactly ``REPORT_FILES``:

- ``metrics.html``: every model x test set x format, Human3.6M-style aggregation (per action,
  frame-weighted within it, then the plain mean over actions);
- ``baseline.html``: each lifter against its mean-pose baseline per test set and format, MPJPE
  of both, the improvement in percent and the ratio, with a one-line verdict;
- ``summary.csv``: the aggregated numbers of both tables, one row per model x dataset x format;
- ``training_curves.png``: losses and validation MPJPE per epoch from each ``train_log.parquet``
  (epochs the training guard rolled back marked with red crosses);
- ``skeletons.png``: predictions against ground truth for a few test frames per test set, in
  several formats, from the ``<eval>.examples.npz`` files written next to the eval tables.

Inputs are the Parquet tables of ``posebridge.evaluation.evaluate`` (columns ``evaluate.COLUMNS``).
"""

from __future__ import annotations

import html
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from posebridge.errors import DataError
from posebridge.evaluation.evaluate import BASELINE_MODEL, COLUMNS, METRICS, THRESHOLD_COLUMNS

REPORT_FILES = ("metrics.html", "baseline.html", "summary.csv", "training_curves.png", "skeletons.png")
GROUP = ["source_model", "model", "dataset", "format", "native"]
METRIC_LABELS = {"mpjpe": "MPJPE", "pa_mpjpe": "PA-MPJPE", "n_mpjpe": "N-MPJPE", "mpjve": "MPJVE",
                 "pck": "PCK", "auc": "AUC", "cps": "CPS"}
THRESHOLD_OF = {"pck": "pck_threshold", "auc": "auc_threshold", "cps": "cps_threshold"}


# ------------------------------------------------------------------------------------ tables

def read_table(path: str | os.PathLike, missing: str = "file not found") -> pd.DataFrame:
    """The Parquet table at ``path``; DataError naming the file (``missing`` when it is absent)."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(path, missing) from None
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise DataError(path, f"not a readable Parquet file ({type(err).__name__}: {err})") from None


def concat_tables(paths: Iterable[str | os.PathLike], columns, what: str, option: str) -> pd.DataFrame:
    """Concatenate the Parquet tables at ``paths``, each checked to have ``columns``; ``what``
    names the kind of table and ``option`` the command-line option in messages."""
    frames = []
    for path in paths:
        frame = read_table(path)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(path, f"not {what}: missing column(s) {', '.join(missing)}")
        frames.append(frame)
    if not frames:
        raise DataError(option, f"no tables given ({what})")
    return pd.concat(frames, ignore_index=True)


def load_evaluations(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate evaluation tables, checking each has the evaluation columns."""
    return concat_tables(paths, COLUMNS, "an evaluation table", "--eval")


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (source_model, model, dataset, format, native), H36M-style aggregated.

    Metrics are averaged per action (frame-weighted over the action's sequences and cameras),
    then over actions without weights, as ``metrics.aggregate_h36m`` does. Adds ``frames``
    (total), ``actions``, ``sequences`` and the metric thresholds. Order: datasets and models
    as they first appear, native formats first, each lifter before its baseline.
    """
    from posebridge.evaluation.metrics import aggregate_h36m

    rows = []
    for key, group in table.groupby(GROUP, sort=False):
        average = aggregate_h36m(group, list(METRICS), action_col="action", weight_col="frames").iloc[-1]
        row = dict(zip(GROUP, key))
        row.update({m: float(average[m]) for m in METRICS})
        row.update(frames=int(group["frames"].sum()), actions=int(group["action"].nunique()),
                   sequences=int(group["sequence"].nunique()))
        for col in THRESHOLD_COLUMNS:
            values = group[col].unique()
            if len(values) != 1:
                raise DataError("--eval", f"{key[1]} on {key[2]} ({key[3]}) mixes {col} values "
                                          f"{sorted(values)}; evaluate all rows with one setting")
            row[col] = float(values[0])
        rows.append(row)
    summary = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(dict.fromkeys(table["dataset"]))}
    models = {name: i for i, name in enumerate(dict.fromkeys(table["source_model"]))}
    summary = summary.assign(
        _d=summary["dataset"].map(order), _n=~summary["native"], _m=summary["source_model"].map(models),
        _b=summary["model"] == BASELINE_MODEL)
    return (summary.sort_values(["_d", "_n", "format", "_m", "_b"], kind="stable")
            .drop(columns=["_d", "_n", "_m", "_b"]).reset_index(drop=True))


def compare_to_baseline(summary: pd.DataFrame) -> pd.DataFrame:
    """Each lifter's MPJPE next to its own mean-pose baseline's, per dataset and format.

    Columns: source_model, dataset, format, native, mpjpe, baseline_mpjpe,
    improvement_pct = 100 (1 - mpjpe / baseline_mpjpe) (how much lower the lifter's error is)
    and ratio = baseline_mpjpe / mpjpe (how many times lower).
    """
    keys = ["source_model", "dataset", "format", "native"]
    lifters = summary[summary["model"] != BASELINE_MODEL][keys + ["mpjpe"]]
    baselines = summary[summary["model"] == BASELINE_MODEL][keys + ["mpjpe"]]
    merged = lifters.merge(baselines.rename(columns={"mpjpe": "baseline_mpjpe"}), on=keys, how="inner")
    merged["improvement_pct"] = 100.0 * (1.0 - merged["mpjpe"] / merged["baseline_mpjpe"])
    merged["ratio"] = merged["baseline_mpjpe"] / merged["mpjpe"]
    return merged.reset_index(drop=True)


def summary_csv_table(summary: pd.DataFrame, comparison: pd.DataFrame) -> pd.DataFrame:
    """The summary with the baseline comparison columns added to the lifter rows (NaN elsewhere)."""
    keys = ["source_model", "dataset", "format", "native"]
    extra = comparison[keys + ["baseline_mpjpe", "improvement_pct", "ratio"]].assign(_lifter=True)
    out = summary.assign(_lifter=summary["model"] != BASELINE_MODEL).merge(
        extra, on=keys + ["_lifter"], how="left")
    return out.drop(columns="_lifter")


def verdict(comparison: pd.DataFrame) -> str:
    """One sentence per lifter on how much it beats the baseline on the native formats."""
    lines = []
    for model, group in comparison.groupby("source_model", sort=False):
        native = group[group["native"]]
        if native.empty:
            native = group
        losing = native[native["improvement_pct"] <= 0]
        low, high = native["improvement_pct"].min(), native["improvement_pct"].max()
        spread = f"{low:.1f}%" if np.isclose(low, high, atol=0.05) else f"{low:.1f}% to {high:.1f}%"
        if losing.empty:
            lines.append(f"{model} beats the mean-pose baseline on every test set ({native['dataset'].nunique()}): "
                         f"MPJPE {spread} lower in the datasets' own formats.")
        else:
            lines.append(f"{model} does NOT beat the mean-pose baseline on "
                         f"{', '.join(sorted(losing['dataset'].unique()))} (MPJPE change {spread}).")
    return " ".join(lines)


# ------------------------------------------------------------------------------------ HTML

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } p { max-width: 60em; line-height: 1.4; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f3f3f3; border-bottom: 2px solid #aaa; }
td.text, th.text { text-align: left; }
tr.baseline td { color: #777; font-style: italic; }
tr.other td { color: #555; }
tr.group td { border-top: 2px solid #aaa; }
td.good { color: #1a7f37; font-weight: 600; } td.bad { color: #c62828; font-weight: 600; }
"""


def _page(title: str, intro: str, table: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{intro}\n{table}\n"
            "</body></html>\n")


def _table(header: Sequence[str], rows: list[tuple[list], str], text_columns: int) -> str:
    """An HTML table. ``rows`` holds (cells, css class of the row); a cell is a string or a
    (string, css class) pair. The first ``text_columns`` columns are left-aligned text."""
    def cell(tag: str, i: int, value) -> str:
        text, css = value if isinstance(value, tuple) else (value, "")
        css = " ".join(c for c in ("text" if i < text_columns else "", css) if c)
        attr = f" class=\"{css}\"" if css else ""
        return f"<{tag}{attr}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = []
    for cells, css in rows:
        tds = "".join(cell("td", i, c) for i, c in enumerate(cells))
        body.append(f"<tr class=\"{css}\">{tds}</tr>" if css else f"<tr>{tds}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def _number(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _metric_header(summary: pd.DataFrame, metric: str) -> str:
    label = METRIC_LABELS[metric]
    unit = " (mm)" if metric not in THRESHOLD_OF else " (%)"
    if metric in THRESHOLD_OF:
        thresholds = sorted(summary[THRESHOLD_OF[metric]].unique())
        label += "@" + "/".join(f"{t:g}" for t in thresholds)
    return label + unit


def _model_label(row, several_sources: bool) -> str:
    if row["model"] != BASELINE_MODEL:
        return str(row["model"])
    return f"mean pose of {row['source_model']}" if several_sources else "mean pose (baseline)"


def _format_label(row) -> str:
    return f"{row['format']} (native)" if row["native"] else str(row["format"])


def metrics_html(summary: pd.DataFrame) -> str:
    """The metric table: one row per model x dataset x format."""
    several = summary["source_model"].nunique() > 1
    header = ["Dataset", "Format", "Model", *[_metric_header(summary, m) for m in METRICS], "Frames", "Actions"]
    rows, previous = [], None
    for _, r in summary.iterrows():
        css = []
        if r["model"] == BASELINE_MODEL:
            css.append("baseline")
        if previous is not None and (r["dataset"], r["format"]) != previous:
            css.append("group")
        previous = (r["dataset"], r["format"])
        cells = [str(r["dataset"]), _format_label(r), _model_label(r, several),
                 *[_number(r[m]) for m in METRICS], f"{int(r['frames'])}", f"{int(r['actions'])}"]
        rows.append((cells, " ".join(css)))
    intro = ("<p>Errors in millimetres on root-relative camera-space poses (protocol 1 for MPJPE); "
             "PA-MPJPE after a per-pose similarity alignment, N-MPJPE after a per-pose scale; MPJVE is "
             "the error of per-frame velocities (mm/frame). PCK and CPS count joints / poses with error "
             "strictly below the threshold; AUC is the continuous area under the PCK curve. Each number "
             "is averaged over the frames of an action, then over actions (Human3.6M protocol). "
             "<i>native</i> marks the dataset's own skeleton; other formats come from the synthetic "
             "benchmark's extra ground truth. Grey rows: the trivial baseline that predicts the model's "
             "mean training pose for every frame.</p>")
    return _page("Evaluation metrics", intro, _table(header, rows, text_columns=3))


def baseline_html(comparison: pd.DataFrame) -> str:
    """The lifter-vs-baseline table with a verdict sentence on top."""
    header = ["Model", "Dataset", "Format", "Lifter MPJPE (mm)", "Mean-pose MPJPE (mm)",
              "Improvement (%)", "Baseline / lifter"]
    rows = []
    for _, r in comparison.iterrows():
        cells = [str(r["source_model"]), str(r["dataset"]), _format_label(r), _number(r["mpjpe"]),
                 _number(r["baseline_mpjpe"]),
                 (_number(r["improvement_pct"]), "good" if r["improvement_pct"] > 0 else "bad"),
                 f"{_number(r['ratio'], 2)}x"]
        rows.append((cells, "" if r["native"] else "other"))
    table = _table(header, rows, text_columns=3)
    intro = (f"<p><b>{html.escape(verdict(comparison))}</b></p>\n<p>The baseline predicts the model's "
             "mean root-relative training pose for every frame. Improvement = 100 (1 - lifter MPJPE / "
             "baseline MPJPE); both aggregated per action, then over actions.</p>")
    return _page("Lifter vs. mean-pose baseline", intro, table)


# ------------------------------------------------------------------------------------ figures

def read_train_log(model_dir: str | os.PathLike) -> pd.DataFrame:
    """``train_log.parquet`` (one row per epoch) of a trained model directory."""
    return read_table(Path(model_dir) / "train_log.parquet",
                      "file not found (is this a trained model directory?)")


def _curve_columns(log: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(loss columns, validation columns) of a training log."""
    from posebridge.training.loop import RECALIBRATED_COLUMN

    numeric = [c for c in log.columns if pd.api.types.is_numeric_dtype(log[c])
               and c not in ("epoch", RECALIBRATED_COLUMN)]
    losses = [c for c in numeric if "loss" in c.lower()]
    validation = [c for c in numeric if "mpjpe" in c.lower() and c not in losses]
    return losses, validation


def _mark_divergence(ax, epoch: np.ndarray, log: pd.DataFrame, prefix: str) -> None:
    """Red crosses on the validation curve at the epochs the training guard rolled back
    (``training.divergence``: the log's non-empty ``divergence`` entries)."""
    if "divergence" not in log.columns or "val_mpjpe" not in log.columns:
        return
    hit = (log["divergence"].fillna("") != "").to_numpy()
    if hit.any():
        ax.plot(epoch[hit], log["val_mpjpe"].to_numpy()[hit], "x", color="red", markersize=10, markeredgewidth=2,
                label=f"{prefix}diverged (rolled back)")


RECALIBRATED_LABEL = "the model written (last epochs averaged where set, BatchNorm recalibrated)"


def _mark_recalibration(ax, epoch: np.ndarray, log: pd.DataFrame, color, first: bool) -> None:
    """A star at the last epoch: the validation MPJPE of the model written, after training's
    weight averaging (``train.average_last_epochs``) and BatchNorm recalibration
    (``training.loop.RECALIBRATED_COLUMN``); the epochs' own points use the last epoch's weights
    and running statistics that a small final momentum can leave stale."""
    from posebridge.training.loop import RECALIBRATED_COLUMN

    if RECALIBRATED_COLUMN not in log.columns or not len(log):
        return
    value = float(log[RECALIBRATED_COLUMN].iloc[-1])
    if np.isfinite(value):
        ax.plot([epoch[-1]], [value], "*", color=color, markersize=13, markeredgecolor="black",
                markeredgewidth=0.6, label=RECALIBRATED_LABEL if first else "_nolegend_")


LOSS_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (12, 3)), (0, (3, 1, 1, 1)))


def _read_curves(model_dirs: Sequence[str | os.PathLike]) -> list[tuple[str, np.ndarray, pd.DataFrame, dict, dict]]:
    """Per model: (name, epochs, log, loss term -> column, validation set -> column); the total
    loss is the term 'total', the overall validation MPJPE the set 'all'."""
    curves = []
    for model_dir in model_dirs:
        log = read_train_log(model_dir)
        epoch = log["epoch"].to_numpy() if "epoch" in log.columns else np.arange(1, len(log) + 1)
        losses, validation = _curve_columns(log)
        terms = {(c[len("loss"):].lstrip("_") or "total"): c for c in losses}
        sets = {(c[len("val_mpjpe"):].lstrip("_") or "all"): c for c in validation}
        curves.append((Path(model_dir).name, epoch, log, terms, sets))
    return curves


def plot_training_curves(model_dirs: Sequence[str | os.PathLike]):
    """Figure: training losses (top left, log scale: colour = model, line style = loss term),
    overall validation MPJPE (top right) and one small panel per validation set (bottom row).

    ``fig.axes[0]`` is the loss axis, ``fig.axes[1]`` the overall validation axis (with the guard's
    rolled-back epochs marked). Both legends (models, loss terms) sit above the axes.
    """
    import matplotlib.pyplot as plt

    from posebridge.reporting.viz import PRED_COLORS

    curves = _read_curves(model_dirs)
    sets = list(dict.fromkeys(s for *_, model_sets in curves for s in model_sets if s != "all"))
    terms = list(dict.fromkeys(t for *_, model_terms, _ in curves for t in model_terms if t != "total"))
    style = {"total": "-", **{t: LOSS_STYLES[k % len(LOSS_STYLES)] for k, t in enumerate(terms)}}
    columns = max(2, len(sets))
    fig = plt.figure(figsize=(max(12.0, 2.3 * columns), 8.2 if sets else 5.0))
    grid = fig.add_gridspec(2 if sets else 1, 2 * columns, height_ratios=[1.6, 1] if sets else None)
    ax_loss, ax_val = fig.add_subplot(grid[0, :columns]), fig.add_subplot(grid[0, columns:])
    set_axes = [fig.add_subplot(grid[1, 2 * k:2 * k + 2]) for k in range(len(sets))]
    several = len(curves) > 1
    for m, (name, epoch, log, model_terms, model_sets) in enumerate(curves):
        color = PRED_COLORS[m % len(PRED_COLORS)]
        for term, col in model_terms.items():
            ax_loss.plot(epoch, log[col], marker=".", color=color, linestyle=style[term],
                         linewidth=2.4 if term == "total" else 1.3, label=f"{name}: {term}")
        if "all" in model_sets:
            ax_val.plot(epoch, log[model_sets["all"]], marker=".", color=color, linewidth=2.2, label=name)
        _mark_divergence(ax_val, epoch, log, f"{name}: " if several else "")
        _mark_recalibration(ax_val, epoch, log, color,
                            first=not any(ln.get_label() == RECALIBRATED_LABEL for ln in ax_val.get_lines()))
        for ax, s in zip(set_axes, sets):
            if s in model_sets:
                ax.plot(epoch, log[model_sets[s]], marker=".", markersize=3, color=color, linewidth=1.3)
    _style_curve_axes(ax_loss, ax_val, set_axes, sets)
    _curve_legends(fig, [c[0] for c in curves], style)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / fig.get_figheight()))
    return fig


def _style_curve_axes(ax_loss, ax_val, set_axes: list, sets: list[str]) -> None:
    """Titles, labels, integer epoch ticks, the loss axis's log scale, 'no values' notes."""
    from matplotlib.ticker import MaxNLocator

    panels = [(ax_loss, "Training loss (line style: term)", "loss"),
              (ax_val, "Validation MPJPE, all validation sets", "MPJPE (mm)")]
    panels += [(ax, f"validation: {s}", "MPJPE (mm)" if k == 0 else None) for k, (ax, s) in enumerate(zip(set_axes, sets))]
    for ax, title, ylabel in panels:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10 if ax in (ax_loss, ax_val) else 9)
        ax.set_xlabel("epoch", fontsize=9)
        if ylabel:
            ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if not ax.get_lines():
            ax.text(0.5, 0.5, "no values logged", ha="center", va="center", transform=ax.transAxes)
    lines = ax_loss.get_lines()
    if lines and all((np.asarray(ln.get_ydata()) > 0).all() for ln in lines):
        ax_loss.set_yscale("log")
    marks = [ln for ln in ax_val.get_lines()
             if ln.get_label().endswith("diverged (rolled back)") or ln.get_label() == RECALIBRATED_LABEL]
    if marks:  # the models' colours are in the figure's legend; the crosses need their own
        ax_val.legend(handles=marks, fontsize=8, loc="best")


def _curve_legends(fig, models: list[str], style: dict) -> None:
    """Two legend rows above the axes: a colour per model, a line style per loss term."""
    from matplotlib.lines import Line2D

    from posebridge.reporting.viz import PRED_COLORS

    height = fig.get_figheight()
    handles = [Line2D([], [], color=PRED_COLORS[m % len(PRED_COLORS)], linewidth=2.4, label=name)
               for m, name in enumerate(models)]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 8), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1.0), title="model", title_fontsize=9, alignment="left")
    terms = [Line2D([], [], color="#444444", linestyle=ls, linewidth=2.4 if t == "total" else 1.3,
                    label=f"loss {t}") for t, ls in style.items()]
    fig.legend(handles=terms, loc="upper center", ncol=len(terms), fontsize=8.5, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.45 / height), handlelength=3.2)


def examples_path(eval_path: str | os.PathLike) -> Path:
    """The examples file the evaluate step writes next to an eval table: X.parquet -> X.examples.npz."""
    return Path(eval_path).with_suffix(".examples.npz")


def load_examples(eval_paths: Sequence[str | os.PathLike]) -> list[dict[str, np.ndarray]]:
    """The examples files next to the eval tables (a missing one is skipped with a warning)."""
    from posebridge.evaluation.evaluate import read_examples

    loaded = []
    for path in eval_paths:
        path = examples_path(path)
        if not path.exists():
            print(f"posebridge report: warning: {path} not found; no renderings for it", file=sys.stderr)
            continue
        loaded.append(read_examples(path))
    return loaded


def plot_skeletons(examples: Sequence[dict[str, np.ndarray]], frames_per_dataset: int | None = None,
                   max_formats: int = 4):
    """Figure: one row per example frame, grouped by test set.

    Column 1 shows the 2D detections (the lifter's input) on the image; the next columns show the
    ground truth (black) and each model's prediction (colour) in 3D for up to ``max_formats``
    formats, native first. Models evaluated on the same test set share frames (examples are
    spaced the same way), so their predictions are overlaid.
    """
    import matplotlib.pyplot as plt

    from posebridge.reporting.viz import PRED_COLORS

    by_dataset: dict[str, list[dict]] = {}
    for ex in examples:
        if len(ex["frame"]):
            by_dataset.setdefault(str(ex["dataset"]), []).append(ex)
    if not by_dataset:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no example frames were saved by the evaluation", ha="center", va="center")
        return fig
    if frames_per_dataset is None:
        frames_per_dataset = 2 if len(by_dataset) <= 4 else 1
    models = list(dict.fromkeys(str(ex["model"]) for exs in by_dataset.values() for ex in exs))
    model_color = {m: PRED_COLORS[i % len(PRED_COLORS)] for i, m in enumerate(models)}

    panels = _skeleton_panels(by_dataset, frames_per_dataset, max_formats)
    columns = 1 + max(len(p[3]) for p in panels)
    layout = _SkeletonLayout(len(panels), len(models))
    fig = plt.figure(figsize=(3.0 * columns, layout.height))
    layout.set_margins(fig)  # before the axes exist: ``place_errors`` reads their final positions
    for r, (dataset, exs, i, formats) in enumerate(panels):
        ref = exs[0]
        where = (str(ref["sequence"][i]), str(ref["camera"][i]), int(ref["frame"][i]))
        _draw_input_panel(fig.add_subplot(len(panels), columns, r * columns + 1), dataset, ref, i, where)
        for c, fmt in enumerate(formats):
            ax = fig.add_subplot(len(panels), columns, r * columns + 2 + c, projection="3d")
            errors = _draw_format_panel(ax, fmt, exs, i, where, model_color)
            layout.place_errors(fig, ax, errors, model_color)
    _frame_skeleton_figure(fig, model_color, layout)
    return fig


@dataclass(frozen=True)
class _SkeletonLayout:
    """Heights (inches) of the skeleton figure: each row holds a panel title, the 3D panel and,
    under each 3D panel, one line per model with its error (one line each, so seven models'
    errors never share a line)."""

    rows: int
    models: int
    title: float = 0.5  # three 8-point lines of the input panel's title
    panel: float = 2.7
    line: float = 0.15  # one 7.5-point line of errors
    top: float = 1.25  # suptitle and the legend
    bottom: float = 0.3

    @property
    def errors(self) -> float:
        return self.line * self.models + 0.25  # + the 2D panel's tick labels

    @property
    def height(self) -> float:
        return self.top + self.bottom + self.rows * (self.title + self.panel + self.errors)

    def set_margins(self, fig) -> None:
        """Fixed margins (tight_layout measures every 3D artist and costs seconds): the gap
        between rows holds the errors of one row and the titles of the next."""
        fig.subplots_adjust(left=0.06, right=0.98, bottom=(self.bottom + self.errors) / self.height,
                            top=1 - (self.top + self.title) / self.height, wspace=0.15,
                            hspace=(self.title + self.errors) / self.panel)

    def place_errors(self, fig, ax, errors: list[tuple[str, float]], model_color: dict[str, str]) -> None:
        """Each model's MPJPE of this panel, one coloured line each, just under the panel."""
        box = ax.get_position()
        for k, (model, value) in enumerate(errors):
            fig.text(box.x0 + 0.12 * box.width, box.y0 - (0.05 + k * self.line) / self.height,
                     f"{model}: {value:.0f} mm", color=model_color[model], fontsize=7.5, va="top")


def _skeleton_panels(by_dataset: dict[str, list[dict]], frames_per_dataset: int,
                     max_formats: int) -> list[tuple[str, list[dict], int, list[str]]]:
    """The figure's rows: (dataset, its examples, frame position, formats, native first)."""
    panels = []
    for dataset, exs in by_dataset.items():
        ref = exs[0]
        native = [str(f) for f in ref["native_formats"]]
        formats = native + [str(f) for f in ref["formats"] if str(f) not in native]
        picks = np.unique(np.round(np.linspace(0, len(ref["frame"]) - 1,
                                               min(frames_per_dataset, len(ref["frame"])))).astype(int))
        panels += [(dataset, exs, int(i), formats[:max_formats]) for i in picks]
    return panels


def _draw_input_panel(ax, dataset: str, ref: dict[str, np.ndarray], i: int, where: tuple[str, str, int]) -> None:
    """The 2D detections of example ``i`` on its image frame, titled by test set, sequence, camera, frame."""
    from posebridge.geometry import skeletons
    from posebridge.reporting.viz import camera_label, draw_keypoints_2d, frame_keypoints_2d

    draw_keypoints_2d(ax, ref["keypoints"][i], skeletons.get(str(ref["keypoint_format"])))
    frame_keypoints_2d(ax, ref["keypoints"][i], tuple(int(v) for v in ref["image_size"][i]))
    camera = camera_label(where[0], where[1])
    ax.set_title(f"{dataset}\n{where[0]}\ncamera {camera}, frame {where[2]}: 2D input", fontsize=8)


def _draw_format_panel(ax, fmt: str, exs: list[dict], i: int, where: tuple[str, str, int],
                       model_color: dict[str, str]) -> list[tuple[str, float]]:
    """Ground truth of example ``i`` in format ``fmt`` and every model's prediction of that frame,
    titled with the format; returns (model, MPJPE mm) per prediction drawn."""
    from posebridge.evaluation.metrics import mpjpe
    from posebridge.geometry import skeletons
    from posebridge.reporting.viz import (
        GT_COLOR,
        camera_to_plot,
        draw_pose_3d,
        set_axes_equal_3d,
        style_pose_axis_3d,
    )

    ref = exs[0]
    skeleton = skeletons.get(fmt)
    gt = ref[f"gt_{fmt}"][i]
    draw_pose_3d(ax, gt, skeleton, color=GT_COLOR, linewidth=2.5)
    points, errors = [camera_to_plot(gt)], []
    for ex in exs:
        match = _find_frame(ex, where)
        if match is None or f"pred_{fmt}" not in ex:
            continue
        pred = ex[f"pred_{fmt}"][match]
        draw_pose_3d(ax, pred, skeleton, color=model_color[str(ex["model"])], linestyle="--", linewidth=1.8)
        points.append(camera_to_plot(pred))
        errors.append((str(ex["model"]), float(mpjpe(pred[None], gt[None]))))
    set_axes_equal_3d(ax, np.concatenate(points))
    native = " (native)" if fmt in [str(f) for f in ref["native_formats"]] else ""
    style_pose_axis_3d(ax, f"{fmt}{native}")
    return errors


def _frame_skeleton_figure(fig, model_color: dict[str, str], layout: _SkeletonLayout) -> None:
    """Title and legend (ground truth and one entry per model) of the skeleton figure."""
    from matplotlib.lines import Line2D

    from posebridge.reporting.viz import GT_COLOR

    handles = [Line2D([], [], color=GT_COLOR, linewidth=2.5, label="ground truth")]
    handles += [Line2D([], [], color=color, linestyle="--", linewidth=1.8, label=f"prediction: {m}")
                for m, color in model_color.items()]
    height = layout.height
    fig.suptitle("Predicted vs ground-truth 3D pose (root-relative, camera space; "
                 "under each panel: the frame's MPJPE per model)", fontsize=11, y=1 - 0.12 / height)
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 4), fontsize=9,
               bbox_to_anchor=(0.5, 1 - 0.38 / height), frameon=False)


def _find_frame(ex: dict[str, np.ndarray], where: tuple[str, str, int]) -> int | None:
    hits = np.flatnonzero((ex["sequence"] == where[0]) & (ex["camera"] == where[1]) & (ex["frame"] == where[2]))
    return int(hits[0]) if len(hits) else None


# ------------------------------------------------------------------------------------ the report

@dataclass
class Report:
    paths: dict[str, Path]  # REPORT_FILES name -> written path
    summary: pd.DataFrame  # see ``summarize``
    comparison: pd.DataFrame  # see ``compare_to_baseline``


def build_report(eval_paths: Sequence[str | os.PathLike], model_dirs: Sequence[str | os.PathLike],
                 output_dir: str | os.PathLike) -> Report:
    """Write ``REPORT_FILES`` into ``output_dir`` (each atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from posebridge.atomic import atomic_path, savefig, write_text

    output_dir = Path(output_dir)
    table = load_evaluations(eval_paths)
    summary = summarize(table)
    comparison = compare_to_baseline(summary)
    paths = {name: output_dir / name for name in REPORT_FILES}

    write_text(paths["metrics.html"], metrics_html(summary))
    write_text(paths["baseline.html"], baseline_html(comparison))
    with atomic_path(paths["summary.csv"]) as tmp:
        summary_csv_table(summary, comparison).to_csv(tmp, index=False, float_format="%.4f")
    fig = plot_training_curves(model_dirs)
    savefig(paths["training_curves.png"], fig, dpi=110)
    plt.close(fig)
    fig = plot_skeletons(load_examples(eval_paths))
    savefig(paths["skeletons.png"], fig, dpi=90)
    plt.close(fig)
    return Report(paths, summary, comparison)
