"""The ``posebridge`` command line: one subcommand per workflow step.

Each subcommand lives in ``posebridge.commands.<module>`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``main(args)``. Command modules keep heavy imports (torch)
inside ``main`` so that ``posebridge --help`` stays fast. A missing command module is an
ImportError, never a silently missing subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from posebridge import __version__
from posebridge.errors import PoseBridgeError

# subcommand name -> module under posebridge.commands (workflow order)
COMMANDS = {
    "convert": "convert",
    "download": "download",
    "synth": "synth",
    "detect-2d": "detect_2d",
    "triangulate": "triangulate",
    "train": "train",
    "pseudo-gt": "pseudo_gt",
    "fit-acae": "fit_acae",
    "finetune": "finetune",
    "ensemble": "ensemble",
    "consistency": "consistency",
    "report-acae": "report_acae",
    "evaluate": "evaluate",
    "evaluate-real": "evaluate_real",
    "mcss-eval": "mcss_eval",
    "predict": "predict",
    "report": "report",
    "report-real": "report_real",
    "viewer": "viewer",
    "infer": "infer",
    "export-motion": "export_motion",
    "export": "export",
    "import-videopose3d": "import_videopose3d",
    "videopose3d-experiments": "videopose3d_experiments",
    "paper-effects": "paper_effects",
    "check-config": "check_config",
}


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default unless it is None/False or its help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" not in text and action.default is not None and action.default is not False
                and action.default != argparse.SUPPRESS
                and action.option_strings and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posebridge",
        description="Learn 3D human pose from labeled datasets in many skeleton formats and "
        "from unlabeled monocular and multi-view video. Each subcommand runs one workflow step; "
        "`posebridge <command> --help` explains its options.",
    )
    parser.add_argument("--version", action="version", version=f"posebridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"posebridge.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           formatter_class=_HelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP worker threads spin while they wait by default; when Snakemake runs jobs side by side
    # they burn each other's cores (measured: small-model training 5-10x slower beside a second
    # 2-thread job on 2 cores, ~19 % faster when alone). Must be set before torch is imported,
    # which no command module does at import time. OMP_WAIT_POLICY=ACTIVE opts out.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        result = args._main(args)
    except PoseBridgeError as err:
        print(f"posebridge {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"posebridge {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
