"""Torch files: ``model.pt`` model directories, ``acae.pt``, resumable checkpoints.

Every torch file posebridge reads goes through ``read_torch_file``: ``weights_only`` loading, so
reading a file never runs code from it (a pickled payload is refused), and a one-line
``DataError`` naming the file for anything unreadable. Every file it writes goes through
``write_torch_file`` (atomic: a killed job leaves no file that looks complete).

A model directory holds ``model.pt`` (``MODEL_KEYS`` plus optional entries: ``mean_pose``, ``mean_shape``,
``training``, ``head``, an objective's modules), ``config.yaml`` and ``train_log.parquet``; an
ensemble's ``model.pt`` holds its members' under ``ensemble`` (``inference.ensemble``).

>>> from posebridge.models.files import model_file_path
>>> model_file_path("results/models/initial").as_posix()
'results/models/initial/model.pt'
"""

from __future__ import annotations

import os
from pathlib import Path

from posebridge import atomic
from posebridge.errors import DataError

# entries every model.pt has (SeparateHeadLifter.file_dict writes them)
MODEL_KEYS = ("state_dict", "architecture", "formats", "input")
ENSEMBLE_KEY = "ensemble"  # an ensemble's model.pt: its members' dicts under this key (inference.ensemble)


def model_file_path(model: str | os.PathLike) -> Path:
    """``model`` (a model directory or its ``model.pt``) -> the ``model.pt`` path."""
    path = Path(model)
    return path / "model.pt" if path.is_dir() or not path.suffix else path


def read_torch_file(path: str | os.PathLike, what: str, required=(), missing_hint: str = "",
                    safe_globals=(), map_location="cpu") -> dict:
    """The dict stored in torch file ``path`` (``what`` names the kind in messages), loaded with
    ``weights_only``; ``required``: keys it must have. DataError on a missing, unreadable or
    code-carrying file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"no {what} file" + (f" ({missing_hint})" if missing_hint else ""))
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise DataError(path, f"not a readable {what} file ({type(err).__name__}: {first})") from None
    if not isinstance(payload, dict):
        raise DataError(path, f"not a {what} file (holds a {type(payload).__name__}, not a dict)")
    missing = [k for k in required if k not in payload]
    if missing:
        raise DataError(path, f"{what} file lacks {', '.join(missing)}")
    return payload


def write_torch_file(path: str | os.PathLike, payload: dict) -> None:
    """``torch.save`` of ``payload`` to ``path``, atomically."""
    atomic.torch_save(path, payload)


def non_finite_weights(state: dict) -> list[str]:
    """Names of the floating-point tensors of ``state`` (a state dict) holding NaN or inf."""
    import torch

    return [k for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]


def check_finite_weights(path: str | os.PathLike, state: dict, what: str = "state_dict") -> None:
    """DataError naming ``path`` when any weight of ``state`` is NaN or inf (a diverged or damaged
    model would otherwise predict NaN poses without a word)."""
    bad = non_finite_weights(state)
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise DataError(path, f"{what} holds NaN or inf weights ({bad[0]}{more}); the model diverged or the file is damaged")


def read_model_file(model: str | os.PathLike, allow_ensemble: bool = False) -> tuple[Path, dict]:
    """(path, payload) of a model directory's ``model.pt`` (or the path of one); its weights are
    checked to be finite. An ensemble's file (``inference.ensemble``: its members' dicts under
    ``"ensemble"``) is read where ``allow_ensemble``, each member checked alike; elsewhere it is a
    one-line DataError naming its members (the step needs one lifter)."""
    path = model_file_path(model)
    payload = read_torch_file(path, "model", (), "train a model first: posebridge train")
    if ENSEMBLE_KEY in payload:
        entry = payload[ENSEMBLE_KEY]
        members = entry.get("members") if isinstance(entry, dict) else None
        names = entry.get("names") if isinstance(entry, dict) else None
        if (not isinstance(members, list) or not isinstance(names, list) or len(members) != len(names)
                or len(members) < 2 or not all(isinstance(n, str) for n in names)):
            raise DataError(path, "model file's ensemble entry is not two or more named model files")
        if not allow_ensemble:
            raise DataError(path, f"is an ensemble of {', '.join(names)}; this step needs one lifter: give "
                                  f"one of its members")
        for name, member in zip(names, members):
            _check_lifter_payload(path, member, f"ensemble member {name}: ")
        return path, payload
    _check_lifter_payload(path, payload)
    return path, payload


def _check_lifter_payload(path: Path, payload, prefix: str = "") -> None:
    """DataError naming ``path`` unless ``payload`` is one lifter's model file dict with finite weights."""
    if not isinstance(payload, dict):
        raise DataError(path, f"{prefix}not a model file dict")
    missing = [k for k in MODEL_KEYS if k not in payload]
    if missing:
        raise DataError(path, f"{prefix}model file lacks {', '.join(missing)}")
    if not isinstance(payload["state_dict"], dict):
        raise DataError(path, f"{prefix}model file's state_dict is not a dict of tensors")
    check_finite_weights(path, payload["state_dict"], f"{prefix}state_dict")
