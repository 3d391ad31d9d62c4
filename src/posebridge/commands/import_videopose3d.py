"""`posebridge import-videopose3d`: a published VideoPose3D checkpoint -> a posebridge model directory."""

from __future__ import annotations

HELP = "turn a VideoPose3D checkpoint (.bin) into a posebridge model directory"
DESCRIPTION = """\
Read a checkpoint written by VideoPose3D (a torch.save dict with 'model_pos', optional 'model_traj',
'epoch', 'lr', 'optimizer', 'random_state'; loaded without running pickled code), infer the temporal
model's filter widths, channels and joints from the weights, and write OUT_DIR/model.pt,
OUT_DIR/config.yaml and OUT_DIR/train_log.parquet like `posebridge train`, so `posebridge evaluate`
and `posebridge predict` use it. The trajectory model, when present, is stored as the 'trajectory'
entry of model.pt. VideoPose3D's H36M models read h36m_17 keypoints (x, y normalised screen
coordinates) and predict root-relative h36m_17 poses in metres; its Detectron COCO models read
coco_17 keypoints (--keypoint-format coco_17), the only input `posebridge infer` and `posebridge
predict` detect/read.
"""


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="FILE", help="VideoPose3D checkpoint (e.g. pretrained_h36m_cpn.bin)")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="model directory to write")
    parser.add_argument("--causal", action="store_true",
                        help="the checkpoint was trained with --causal (the weights cannot tell)")
    parser.add_argument("--in-features", type=int, default=2, choices=[2, 3],
                        help="features per input keypoint: 2 (x, y; every published model) or 3 (with confidence)")
    parser.add_argument("--keypoint-format", default=None, metavar="FORMAT",
                        help="skeleton format of the input keypoints (default by joint count: 17 -> "
                             "h36m_17, 15 -> humaneva_15; coco_17 for the Detectron COCO models)")
    parser.add_argument("--output-format", default=None, metavar="FORMAT",
                        help="skeleton format of the predicted joints (default by joint count: 17 -> "
                             "h36m_17, 15 -> humaneva_15)")


def main(args) -> int:
    from posebridge.interop.videopose3d import import_checkpoint

    lifter = import_checkpoint(args.checkpoint, args.out_dir, causal=args.causal, in_features=args.in_features,
                               keypoint_format=args.keypoint_format, output_format=args.output_format)
    arch = lifter.temporal.architecture
    print(f"{args.checkpoint}: {arch['num_joints_in']} {lifter.keypoint_format} keypoints x "
          f"{arch['in_features']} -> {lifter.formats[0]}; filter widths {arch['filter_widths']} "
          f"(receptive field {lifter.receptive_field()}), {arch['channels']} channels"
          f"{', causal' if arch['causal'] else ''}; wrote {args.out_dir}")
    return 0
