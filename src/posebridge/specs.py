"""Step settings passed on the command line as ``--spec``: a JSON object inline or a JSON file.

The workflow hands each rule its part of the config as inline JSON (so Snakemake's params
trigger reruns exactly what a change touches); people running a step by hand may prefer a file.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

from posebridge.errors import ConfigError


def check_keys(values, valid, what: str) -> None:
    """Raise ConfigError naming ``values``' keys that are not in ``valid``, and the valid ones."""
    valid = list(valid)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(map(str, unknown))}; valid keys: {', '.join(valid)}")


def check_filter_widths(widths, where: str = "") -> list[int]:
    """``widths`` as a list of ints when it is a non-empty sequence of odd positive integers (the
    temporal model's kernel widths; its receptive field is their product); ConfigError otherwise,
    prefixed by ``where`` (e.g. ``"train: "``)."""
    try:
        values = list(widths)
    except TypeError:
        values = []
    if not values or isinstance(widths, str) or not all(
            isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0 and w % 2 for w in values):
        raise ConfigError(f"{where}filter_widths must be a non-empty list of odd positive integers, got {widths!r}")
    return [int(w) for w in values]


def load_spec(spec: str | None, what: str) -> dict:
    """The JSON object in ``spec`` (inline text or the path of a JSON file); ``{}`` when empty.

    ``what`` names the setting in error messages (``"train: --spec"``).
    """
    if spec is None or not spec.strip():
        return {}
    text = spec.strip()
    if not text.startswith(("{", "[")):
        path = Path(text)
        if path.is_file():
            what = f"{what} file {path}"
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise ConfigError(f"{what} is not a text (JSON) file") from None
        elif path.suffix.lower() in (".json", ".yaml", ".yml") or "/" in text:
            raise ConfigError(f"{what}: no such file {path}")
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{what} is not valid JSON ({err.msg} at position {err.pos})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{what} must be a JSON object")
    return values
