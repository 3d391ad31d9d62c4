"""The torch device a command runs on: ``auto`` takes CUDA when a GPU is visible, else the CPU.

On CUDA, convolutions run in full float32. cuDNN's default on Ampere and newer GPUs is TF32
(10-bit mantissa): measured on an H200, it moved a small lifter's poses by up to 2.7 mm from the
same weights on the CPU, and the streamed from the offline prediction by 0.4 mm; with float32
they agree to float rounding, as on the CPU.
"""

from __future__ import annotations

from posebridge.errors import ConfigError


def resolve_device(device):
    """``None``/``"auto"`` -> cuda if available else cpu; ``"cuda"`` without a GPU is a ConfigError.

    >>> str(resolve_device("cpu"))
    'cpu'
    """
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but no CUDA device is visible (use --device auto or cpu)")
        torch.backends.cudnn.conv.fp32_precision = "ieee"  # not TF32 (module docstring)
    return device
