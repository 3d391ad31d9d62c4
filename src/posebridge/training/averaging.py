"""Weight averaging over a run's last epochs (stochastic weight averaging: Izmailov et al.,
"Averaging Weights Leads to Wider Optima and Better Generalization", UAI 2018).

With ``train.average_last_epochs`` N > 0 the lifter's parameters after each of the last N epochs
(every epoch of a run that has fewer, so a short run such as a preset's keeps the default) are
summed (in float64, so the mean does not depend on the order of the sum), and the model training
returns carries their mean. BatchNorm's running statistics belong to no averaged weights,
so training recomputes them afterwards (``training.loop.recalibrate``; the spec requires
``bn_recalibration_batches`` > 0). The sum and its count travel in the checkpoint: a resumed run
ends with the same average as one never interrupted.

Example::

    >>> import torch
    >>> layer = torch.nn.Linear(2, 1)
    >>> average = WeightAverage()
    >>> with torch.no_grad():
    ...     _ = layer.weight.fill_(1.0)
    ...     average.add(layer)
    ...     _ = layer.weight.fill_(3.0)
    ...     average.add(layer)
    >>> average.load_into(layer)
    >>> layer.weight.tolist()
    [[2.0, 2.0]]
"""

from __future__ import annotations

import torch


class WeightAverage:
    """Running sum of a module's parameters (by name) and how many times it was added."""

    def __init__(self, sums: dict[str, torch.Tensor] | None = None, count: int = 0):
        # kept on the CPU in float64 whatever device a checkpoint was mapped to, so that ``add``
        # after a resume on CUDA sums tensors on one device
        self.sums = {k: v.to("cpu", torch.float64) for k, v in (sums or {}).items()}
        self.count = int(count)

    def add(self, module: torch.nn.Module) -> None:
        """Add the module's current parameters to the sum."""
        with torch.no_grad():
            for name, parameter in module.named_parameters():
                value = parameter.detach().to("cpu", torch.float64, copy=True)
                self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += 1

    def load_into(self, module: torch.nn.Module) -> None:
        """Set the module's parameters to the mean (buffers, e.g. BatchNorm statistics, untouched)."""
        if self.count == 0:
            raise ValueError("no weights were added to the average")
        with torch.no_grad():
            for name, parameter in module.named_parameters():
                parameter.copy_((self.sums[name] / self.count).to(parameter.dtype))

    def state(self) -> dict:
        """Plain tensors and an int, for a checkpoint (``WeightAverage(**state)`` restores it); the
        sums are never changed in place (``add`` makes new ones), so no copy is needed."""
        return {"sums": dict(self.sums), "count": self.count}
