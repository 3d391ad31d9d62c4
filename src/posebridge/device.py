"""The torch device a command runs on: ``auto`` takes CUDA when a GPU is visible, else the CPU."""

from __future__ import annotations

from posebridge.errors import ConfigError


def resolve_device(device):
    """``None``/``"auto"`` -> cuda if available else cpu; ``"cuda"`` without a GPU is a ConfigError.

    >>> str(resolve_device("cpu"))
    'cpu'
    """
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but no CUDA device is visible (use --device auto or cpu)")
    return device
