"""`posebridge export`: a trained lifter as ONNX or TorchScript, for other runtimes."""

from __future__ import annotations

HELP = "write a trained lifter as ONNX or TorchScript (with flip averaging) plus a JSON description"
DESCRIPTION = """\
Write the lifter of MODEL_DIR as one self-contained graph: input 'network_input' (batch, frames,
17, F) float32, COCO-17 keypoints encoded by the model's input codec (recorded in the JSON
sidecar); output 'poses_mm' (batch, frames, J, 3) float32, one pose per input frame, every skeleton
format of the model one after the other, root-relative camera-space millimetres. The padding at
the sequence's ends and test-time flip averaging (unless --no-flip) are part of the graph.
OUTPUT.json describes names, shapes, the codec, the formats' joint ranges and names. An ensemble
(posebridge ensemble) exports as one graph that runs every member and averages their poses.
"""


FORMATS = ("onnx", "torchscript")  # models.portable.EXPORT_FORMATS' keys (this module stays torch-free)


def add_arguments(parser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="trained model directory (holding model.pt)")
    parser.add_argument("--format", required=True, metavar="|".join(FORMATS), help="what to write")
    parser.add_argument("--output", metavar="FILE",
                        help="file to write (default: MODEL_DIR/lifter.onnx or MODEL_DIR/lifter.torchscript.pt)")
    parser.add_argument("--no-flip", action="store_true", help="leave test-time flip averaging out of the graph")


def main(args) -> int:
    import logging
    import warnings
    from pathlib import Path

    from posebridge.errors import ConfigError
    from posebridge.inference.ensemble import EnsembleModel
    from posebridge.inference.lift import load_model
    from posebridge.models.portable import EXPORT_FORMATS, export_lifter

    if args.format not in FORMATS:  # checked here, not by argparse: one line naming the format
        raise ConfigError(f"unknown --format {args.format!r}; one of {', '.join(FORMATS)}")
    model = load_model(args.model_dir, device="cpu")
    output = Path(args.output) if args.output else model.path.parent / f"lifter{EXPORT_FORMATS[args.format]}"
    # the ONNX exporter logs every torchvision operator it cannot register and warns about internals
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        members = model.members if isinstance(model, EnsembleModel) else [model]  # an ensemble: one graph, averaged
        sidecar = export_lifter([m.lifter for m in members], output, args.format, flip=not args.no_flip,
                                names=[m.name for m in members])
    print(f"{model.name}: {args.format}, input {sidecar['input']['name']} {sidecar['input']['shape']}, output "
          f"{sidecar['output']['name']} {sidecar['output']['shape']} ({', '.join(model.formats)}); receptive field "
          f"{sidecar['receptive_field']}{', causal' if sidecar['causal'] else ''}; "
          f"wrote {output} and {output}.json")
    return 0
