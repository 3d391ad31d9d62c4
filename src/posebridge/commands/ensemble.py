"""`posebridge ensemble`: several trained lifters as one model whose poses are their mean."""

from __future__ import annotations

HELP = "combine trained lifters into one model that averages their poses (an ensemble)"
DESCRIPTION = """\
Write one model directory (OUT_DIR/model.pt and config.yaml) holding every --model's lifter: every
command that takes a model (infer, predict, evaluate, evaluate-real, viewer, export) runs each member
on the same 2D and averages their camera-space poses (posebridge.inference.ensemble). Members must
read the same input and predict the same skeleton formats; independently trained ones (the ACAE
fine-tuned model and the merged-joints baseline of the workflow) gain most. The file is
self-contained: the members' directories are not needed afterwards.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--model", action="append", required=True, metavar="DIR",
                        help="a trained model directory (holding model.pt); give two or more")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="model directory to write")


def main(args) -> int:
    from posebridge.inference.ensemble import write_ensemble

    path = write_ensemble(args.model, args.out_dir)
    print(f"wrote {path}: the mean of {', '.join(args.model)}")
    return 0
