"""Divergence of a training run: the checks after every epoch, the guard's decisions and state,
and the record a model directory keeps of them.

A run diverges when an update step the loss surface cannot take throws the weights far off (the
semi-supervised reprojection of a pose placed next to the camera, a too-large learning rate). The
epoch's log row shows it: a loss term jumps over its running median, or the validation MPJPE
climbs far above its best. ``DivergenceGuard`` judges each row by ``TrainConfig.divergence``
(``training.settings.DivergenceSettings``) and says what to do: accept it (and whether it is the
new best, to keep in memory), or roll back to the best epoch and continue at a reduced learning
rate, or roll back and stop. The training loop (``training.loop``) holds the weights; this module
only decides, and is torch-free so the reports can read the record (``events``).

The epoch log gains two columns: ``divergence`` ("" for a healthy epoch, else "<why>; <what was
done>") and ``rolled_back_to`` (the epoch whose weights training continued from, 0 for none).
"""

from __future__ import annotations

import math

import numpy as np

from posebridge.training.settings import DivergenceSettings

__all__ = ["DivergenceGuard", "spike_reasons", "non_finite_values", "events", "REASON_COLUMN", "ROLLBACK_COLUMN"]

REASON_COLUMN = "divergence"
ROLLBACK_COLUMN = "rolled_back_to"


def spike_reasons(row: dict, accepted: list[dict], best_val: float | None, settings: DivergenceSettings) -> list[str]:
    """Why the epoch of log ``row`` diverged (empty: it did not), judged against the earlier
    ``accepted`` rows and the best validation MPJPE ``best_val`` (mm; None before the first)."""
    reasons = []
    factor = settings.loss_spike_factor
    if factor is not None:
        for key, value in row.items():
            if not key.startswith("loss_") or not value > 0:
                continue  # a term that does not count yet (warm-up) has no spike
            history = [r[key] for r in accepted if r.get(key, 0) > 0]
            median = float(np.median(history)) if history else math.inf
            if value > factor * median:
                reasons.append(f"{key} {value:.4g} > {factor:g} x its median {median:.4g}")
    val = row.get("val_mpjpe")
    if settings.val_factor is not None and best_val is not None and val is not None:
        if val > settings.val_factor * best_val and val > best_val + settings.val_margin_mm:
            reasons.append(f"validation MPJPE {val:.1f} mm > {settings.val_factor:g} x the best {best_val:.1f} mm")
    return reasons


def non_finite_values(row: dict) -> list[str]:
    """The loss terms and validation errors of log ``row`` that are NaN or inf, as 'key value'."""
    return [f"{k} {v}" for k, v in row.items()
            if k.startswith(("loss", "val_mpjpe")) and isinstance(v, float) and not math.isfinite(v)]


class DivergenceGuard:
    """The decisions of one run (module docstring) and the state a checkpoint keeps of them.

    ``best_epoch`` / ``best_val``: the epoch (1-based) whose weights a rollback restores and its
    validation MPJPE (None without validation: the last accepted epoch is the best);
    ``lr_scale``: the learning rate's factor after the rollbacks so far; ``stopped``: no further
    epoch is trained. The loop keeps the best epoch's weights (``snapshot``) when ``judge``
    returns "keep".
    """

    def __init__(self, settings: DivergenceSettings):
        self.settings = settings
        self.best_epoch, self.best_val = 0, None
        self.lr_scale, self.rollbacks, self.stopped = 1.0, 0, False

    def judge(self, row: dict, rows: list[dict]) -> tuple[str, str]:
        """(decision, message) for the epoch of log ``row`` after the earlier ``rows``; writes the
        row's ``REASON_COLUMN`` and ``ROLLBACK_COLUMN``. decision: "keep" (a new best: keep its
        weights), "accept" (healthy, not the best), "rollback" or "stop" (restore the best epoch's
        weights; stop: train no further epoch). message: the log line of a divergence, else ""."""
        accepted = [r for r in rows if not r.get(REASON_COLUMN)]
        reasons = spike_reasons(row, accepted, self.best_val, self.settings)
        row[REASON_COLUMN], row[ROLLBACK_COLUMN] = "", 0
        if not reasons:
            val = row.get("val_mpjpe")
            if val is None or self.best_val is None or val < self.best_val:
                self.best_epoch, self.best_val = int(row["epoch"]), val
                return "keep", ""
            return "accept", ""
        self.rollbacks += 1
        settings = self.settings
        if settings.action == "stop" or self.rollbacks > settings.max_rollbacks:
            self.stopped = True
            why = "" if settings.action == "stop" else f" (divergence {self.rollbacks}, max_rollbacks {settings.max_rollbacks})"
            action = f"rolled back to epoch {self.best_epoch} and stopped{why}"
        else:
            self.lr_scale *= settings.lr_factor
            action = (f"rolled back to epoch {self.best_epoch}; learning rate x{self.lr_scale:g} of its "
                      f"schedule from now on")
        row[REASON_COLUMN], row[ROLLBACK_COLUMN] = f"{'; '.join(reasons)}; {action}", self.best_epoch
        return ("stop" if self.stopped else "rollback"), f"diverged at epoch {int(row['epoch'])}: {row[REASON_COLUMN]}"

    def state(self) -> dict:
        return {"best_epoch": self.best_epoch, "best_val": self.best_val, "lr_scale": self.lr_scale,
                "rollbacks": self.rollbacks, "stopped": self.stopped}

    def load(self, state: dict) -> None:
        self.best_epoch, self.best_val = int(state["best_epoch"]), state["best_val"]
        self.lr_scale, self.rollbacks = float(state["lr_scale"]), int(state["rollbacks"])
        self.stopped = bool(state["stopped"])


def events(log) -> list[dict]:
    """The divergences recorded in an epoch log (a DataFrame or a list of row dicts), as
    {"epoch", "what", "rolled_back_to"}; empty for a healthy run or a log without the columns."""
    rows = log.to_dict("records") if hasattr(log, "to_dict") else list(log)
    return [{"epoch": int(r["epoch"]), "what": str(r[REASON_COLUMN]), "rolled_back_to": int(r.get(ROLLBACK_COLUMN, 0))}
            for r in rows if isinstance(r.get(REASON_COLUMN), str) and r[REASON_COLUMN]]
