"""The skeleton bridge's report: the comparison of Sárándi et al. (WACV 2023, "Learning 3D Human
Pose Estimation from Dozens of Datasets using a Geometry-Aware Autoencoder to Bridge Between
Skeleton Formats") on posebridge's models.

``build_acae_report`` writes ``ACAE_REPORT_FILES``:

- ``acae_comparison.html`` / ``.csv``: the paper's comparison, one row per model (separate heads,
  merged joints, continued, output_reg, latent, hybrid): MPJPE per test set (the dataset's own
  formats, H36M-style aggregation of ``report.summarize``), their mean, and the consistency of the
  model's formats (``consistency``: held-out affine-combination error, ACAE reconstruction error);
- ``acae_reconstruction.html``: the ACAE's held-out pseudo-GT reconstruction error beside PCA with
  3 x L components and the mean pose;
- ``acae_weights.png``: the encoder (J x L) and decoder (L x J) matrices as heatmaps;
- ``acae_latents.png``: the latent points of a held-out pseudo-GT pose drawn on its joints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from posebridge.errors import DataError
from posebridge.evaluation.evaluate import BASELINE_MODEL
from posebridge.reporting.report import _number, _page, _table, load_evaluations, read_table, summarize

ACAE_REPORT_FILES = ("acae_comparison.html", "acae_comparison.csv", "acae_reconstruction.html",
                     "acae_weights.png", "acae_latents.png")
MODEL_LABELS = {"initial": "separate heads", "merged": "merged joints",
                "finetune_continued": "continued (no ACAE)", "finetune_output_reg": "ACAE output regularisation",
                "finetune_latent": "ACAE direct latent prediction", "finetune_hybrid": "ACAE hybrid student-teacher",
                "ensemble": "ensemble (mean of config ensemble's models)"}


def comparison_table(eval_paths: Sequence, consistency_paths: Sequence) -> pd.DataFrame:
    """One row per model (in the order of ``consistency_paths``): ``mpjpe_<dataset>`` (native
    formats, mean over them), ``mpjpe_mean`` (over test sets), ``pa_mpjpe_mean``, ``affine_mm``
    and ``acae_mm`` (consistency, 'all' row)."""
    summary = summarize(load_evaluations(eval_paths))
    lifters = summary[summary["model"] != BASELINE_MODEL]
    # a test set with no native format (a format no head has) is scored in the formats it has
    has_native = lifters.groupby(["model", "dataset"], sort=False)["native"].transform("any")
    native = lifters[lifters["native"] | ~has_native]
    per = native.groupby(["model", "dataset"], sort=False)[["mpjpe", "pa_mpjpe"]].mean().reset_index()
    rows = []
    for path in consistency_paths:
        table = read_table(path)
        if not {"model", "format", "affine_mm", "acae_mm"} <= set(table.columns):
            raise DataError(path, "not a consistency table (posebridge consistency)")
        overall = table[table["format"] == "all"].iloc[0]
        model = str(overall["model"])
        mine = per[per["model"] == model]
        if mine.empty:
            raise DataError(path, f"no evaluation of model {model!r} among the --eval tables")
        row = {"model": model, "label": MODEL_LABELS.get(model, model)}
        row.update({f"mpjpe_{d}": v for d, v in zip(mine["dataset"], mine["mpjpe"])})
        row.update(mpjpe_mean=float(mine["mpjpe"].mean()), pa_mpjpe_mean=float(mine["pa_mpjpe"].mean()),
                   affine_mm=float(overall["affine_mm"]), acae_mm=float(overall["acae_mm"]))
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_verdict(table: pd.DataFrame) -> str:
    """Whether the ACAE fine-tuned models are more consistent than separate heads at equal or
    better accuracy (the paper's finding), in figures."""
    base = table[table["model"] == "initial"]
    if base.empty:
        return ""
    base = base.iloc[0]
    lines = [f"Separate heads: mean MPJPE {base['mpjpe_mean']:.1f} mm, affine consistency error "
             f"{base['affine_mm']:.1f} mm."]
    for _, row in table[table["model"] != "initial"].iterrows():
        accuracy = "equal or better accuracy" if row["mpjpe_mean"] <= base["mpjpe_mean"] + 0.5 else "worse accuracy"
        consistency = "more consistent" if row["affine_mm"] < base["affine_mm"] else "not more consistent"
        lines.append(f"{row['label']}: MPJPE {row['mpjpe_mean']:.1f} mm ({accuracy}), consistency "
                     f"{row['affine_mm']:.1f} mm ({consistency}).")
    return " ".join(lines)


def comparison_html(table: pd.DataFrame) -> str:
    datasets = [c[len("mpjpe_"):] for c in table.columns if c.startswith("mpjpe_") and c != "mpjpe_mean"]
    header = ["model", "variant", *[f"MPJPE {d} (mm)" for d in datasets], "mean MPJPE (mm)",
              "mean PA-MPJPE (mm)", "affine consistency (mm)", "ACAE reconstruction (mm)"]
    best_mpjpe, best_affine = table["mpjpe_mean"].min(), table["affine_mm"].min()
    rows = []
    for _, r in table.iterrows():
        cells = [r["model"], r["label"], *[_number(r[f"mpjpe_{d}"]) for d in datasets],
                 (_number(r["mpjpe_mean"]), "good" if r["mpjpe_mean"] == best_mpjpe else ""),
                 _number(r["pa_mpjpe_mean"]),
                 (_number(r["affine_mm"]), "good" if r["affine_mm"] == best_affine else ""), _number(r["acae_mm"])]
        rows.append((cells, ""))
    intro = ("<p>Accuracy: MPJPE in each test set's own skeleton formats (lower is better). Consistency: "
             "per format, the held-out error of the best affine combination of the model's other "
             "formats' predicted joints, averaged over formats (0 = the heads agree exactly); and the "
             "fitted ACAE's reconstruction error of the predictions. Best values in green.</p>\n"
             f"<p>{comparison_verdict(table)}</p>")
    return _page("Skeleton bridge: separate heads, merged joints and ACAE fine-tuning", intro,
                 _table(header, rows, 2))


def reconstruction_html(metrics: pd.DataFrame) -> str:
    header = ["method", "latent coordinates", "held-out MPJPE (mm)", "fitting-set MPJPE (mm)"]
    rows = [([r["method"], str(int(r["coordinates"])), _number(r["holdout_mpjpe"], 2),
              _number(r["train_mpjpe"], 2)], "") for _, r in metrics.iterrows()]
    first = metrics.iloc[0]
    intro = (f"<p>Reconstruction of held-out pseudo-GT poses ({int(first['holdout_poses'])} poses, "
             f"{int(first['joints'])} joints of all formats; fitted on {int(first['fit_poses'])}). The ACAE "
             "keeps every latent an affine combination of joints (geometry-aware); PCA uses the same "
             "number of coordinates; the mean pose uses none.</p>")
    return _page("Affine-combining autoencoder vs PCA vs mean pose", intro, _table(header, rows, 1))


def plot_weights(acae):
    """Heatmaps of the encoder (J x L) and decoder (L x J) matrices, with their sparsity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    enc = acae.encoder_matrix().detach().cpu().numpy()
    dec = acae.decoder_matrix().detach().cpu().numpy()
    J, L = enc.shape
    # 0.12 inch per joint row and latent column: 6-point labels on every row stay apart
    fig, axes = plt.subplots(1, 2, figsize=(7 + L * 0.16 + J * 0.05, 2.5 + J * 0.12),
                             gridspec_kw={"width_ratios": [L, J]})
    for ax, matrix, title in ((axes[0], enc, "encoder W1 (joints x latents)"),
                              (axes[1], dec, "decoder W2 (latents x joints)")):
        limit = max(np.abs(matrix).max(), 1e-6)
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        small = (np.abs(matrix) < 0.01).mean() * 100
        ax.set_title(f"{title}\n{small:.0f}% of weights below 0.01 in magnitude", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.04)
    axes[0].set_yticks(range(J))
    axes[0].set_yticklabels(acae.joint_names, fontsize=6)
    axes[0].set_xticks(range(L))
    axes[0].set_xticklabels(acae.latent_names, fontsize=6, rotation=90)
    axes[1].set_yticks(range(L))
    axes[1].set_yticklabels(acae.latent_names, fontsize=6)
    axes[1].set_xticks([])
    axes[1].set_xlabel("joints (order as on the left)", fontsize=9)
    fig.tight_layout()
    return fig


# black markers by side: the formats' joints already use the colour cycle
LATENT_SIDES = {"l": ("left", "<"), "r": ("right", ">"), "c": ("centre", "x")}


def plot_latents(acae, pose: np.ndarray, formats: Sequence[str], slices: Sequence[tuple[int, int]]):
    """The latent points of one (J, 3) camera-space mm pose over its joints, front and side views."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from posebridge.geometry import skeletons

    with torch.no_grad():
        latents = acae.encode(torch.as_tensor(pose[None], dtype=torch.float32))[0].numpy()
    centre = pose.mean(axis=0)
    pose, latents = pose - centre, latents - centre
    fig, axes = plt.subplots(1, 2, figsize=(9, 8.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # latent names start with their side (l, r, c): marked by it instead of 48 crowded labels
    sides = np.array([name[:1] if name[:1] in LATENT_SIDES else "c" for name in acae.latent_names])
    for ax, (h, title) in zip(axes, ((0, "front (x, y)"), (2, "side (z, y)"))):
        for k, (fmt, (start, stop)) in enumerate(zip(formats, slices)):
            joints = pose[start:stop]
            for a, b in skeletons.get(fmt).bones:
                ax.plot(joints[[a, b], h], -joints[[a, b], 1], color=colors[k % len(colors)], lw=1, alpha=0.5)
            ax.scatter(joints[:, h], -joints[:, 1], s=6, color=colors[k % len(colors)], label=f"joints: {fmt}")
        for side, (word, marker) in LATENT_SIDES.items():
            mine = sides == side
            if mine.any():
                ax.scatter(latents[mine, h], -latents[mine, 1], s=36, marker=marker, color="black",
                           label=f"latent points: {word}")
        ax.set_aspect("equal")
        ax.set_title(title)
        ax.set_xlabel("mm")
        ax.set_ylabel("mm (up)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"{acae.num_latents} ACAE latent points on a held-out pseudo-GT pose")
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return fig


def build_acae_report(eval_paths: Sequence, consistency_paths: Sequence, acae_path, metrics_path,
                      pseudo_gt_path, output_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``ACAE_REPORT_FILES`` into ``output_dir``; returns name -> path."""
    from posebridge.bridge.autoencoder import load_acae
    from posebridge.atomic import savefig, write_text
    from posebridge.bridge.pseudo_gt import read_pseudo_gt

    out = Path(output_dir)
    paths = {name: out / name for name in ACAE_REPORT_FILES}
    table = comparison_table(eval_paths, consistency_paths)
    write_text(paths["acae_comparison.html"], comparison_html(table))
    write_text(paths["acae_comparison.csv"], table.to_csv(index=False))
    write_text(paths["acae_reconstruction.html"], reconstruction_html(read_table(metrics_path)))
    acae, _ = load_acae(acae_path)
    import matplotlib.pyplot as plt

    fig = plot_weights(acae)
    savefig(paths["acae_weights.png"], fig, dpi=150)
    plt.close(fig)
    pseudo = read_pseudo_gt(pseudo_gt_path)
    held = np.flatnonzero(pseudo["holdout"])
    pose = pseudo["points"][held[len(held) // 2] if len(held) else 0].astype(np.float64)
    slices = list(zip(pseudo["format_start"].tolist(), pseudo["format_stop"].tolist()))
    fig = plot_latents(acae, pose, [str(f) for f in pseudo["formats"]], slices)
    savefig(paths["acae_latents.png"], fig, dpi=130)
    plt.close(fig)
    return paths
