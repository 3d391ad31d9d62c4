"""Command-line options that several ``posebridge`` subcommands share, each defined once.

A command's ``add_arguments`` calls these for the options it shares and adds its own; its
``main`` loads the model through :func:`load_model_from` so ``--threads`` and ``--device`` mean
the same everywhere.
"""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")
MODEL_DEVICE_HELP = "where the model runs (auto: CUDA when available)"


def add_model(parser, help: str = "trained model directory (holding model.pt; an ensemble's too)") -> None:
    """``--model DIR``: one trained model directory."""
    parser.add_argument("--model", required=True, metavar="DIR", help=help)


def add_datasets_with_detections(parser, dataset_help: str) -> None:
    """``--dataset H5`` and ``--detections H5``, both repeatable, paired by position."""
    parser.add_argument("--dataset", action="append", required=True, metavar="H5", help=dataset_help)
    parser.add_argument("--detections", action="append", required=True, metavar="H5",
                        help="the 2D detections of the dataset at the same position")


def paired(command: str, **options: list) -> list[tuple]:
    """The values of repeated options (``--name`` -> list), paired by position; a one-line
    ConfigError naming each option's count when they do not pair up."""
    from posebridge.errors import ConfigError

    counts = {f"--{name.replace('_', '-')}": len(values) for name, values in options.items()}
    if len(set(counts.values())) != 1:
        raise ConfigError(f"{command}: give the options {', '.join(counts)} once per dataset each, in the same "
                          f"order; got {', '.join(f'{n} {name}' for name, n in counts.items())}")
    return list(zip(*options.values()))


def add_device(parser, default: str = "auto", help: str = MODEL_DEVICE_HELP, threads: bool = True) -> None:
    """``--device`` (resolved by ``posebridge.device.resolve_device``) and, with ``threads``,
    ``--threads N`` (torch's CPU threads; see :func:`set_threads`)."""
    parser.add_argument("--device", default=default, choices=DEVICES, help=help)
    if threads:
        parser.add_argument("--threads", type=int, default=None, metavar="N",
                            help="CPU threads for torch (default: torch's choice)")


def add_no_progress(parser) -> None:
    """``--no-progress``: no progress bars."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def set_threads(args) -> None:
    """Apply ``--threads`` to torch when the command has it and it is given."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def load_model_from(args):
    """The ``inference.lift.LiftingModel`` of ``--model`` on ``--device``, after ``--threads``."""
    from posebridge.inference.lift import load_model

    set_threads(args)
    return load_model(args.model, device=args.device)


def add_smoothing(parser) -> None:
    """``--smooth STAGE``, ``--smooth-window FRAMES``, ``--smooth-order N``: temporal smoothing
    (``inference.smoothing``), off by default."""
    from posebridge.inference.smoothing import DEFAULT_ORDER, DEFAULT_WINDOW, STAGES

    parser.add_argument("--smooth", choices=("none",) + STAGES, default="none", metavar="STAGE",
                        help="Savitzky-Golay smoothing over time: 2d (keypoints before lifting), 3d (poses "
                             "and trajectory after), both, or none (default)")
    parser.add_argument("--smooth-window", type=int, default=DEFAULT_WINDOW, metavar="FRAMES",
                        help=f"smoothing window, an odd number of frames (default {DEFAULT_WINDOW})")
    parser.add_argument("--smooth-order", type=int, default=DEFAULT_ORDER, metavar="N",
                        help=f"degree of the polynomial fitted in each window (default {DEFAULT_ORDER})")


def smoothing_from(args):
    """The ``inference.smoothing.Smoothing`` of ``--smooth*`` (None when off)."""
    from posebridge.inference.smoothing import Smoothing

    return Smoothing.parse(args.smooth, args.smooth_window, args.smooth_order)
