"""`posebridge predict`: lift a file of 2D keypoints to 3D in every skeleton format a model knows."""

from __future__ import annotations

import time

from posebridge.commands.options import add_device, add_model, add_smoothing, load_model_from, smoothing_from

HELP = "lift 2D keypoints (.npz, COCO-17 pixels) to 3D in every skeleton format of a model"
DESCRIPTION = """\
Input .npz: 'keypoints' (T, 17, 2 or 3) COCO-17 pixels [+ confidence in 0..1, default 1], 'width',
'height' (pixels), optional 'fx', 'fy', 'cx', 'cy' (pixels). Without them the camera is assumed to
have a 55 degree horizontal field of view (fx = fy = width / 2 / tan(27.5 deg) ~ 0.96 x width) and
its principal point at the image centre. Output .npz: one (T, J, 3) array per skeleton format, keyed
by the format's name, root-relative camera-space millimetres (x right, y down, z forward);
'joint_names_<format>'; 'intrinsics' (the fx, fy, cx, cy used); 'trajectory' (T, 3): the root's
camera-space position (mm) recovered from the pose and the 2D. --smooth filters the 2D before
lifting and/or the 3D after (Savitzky-Golay, off by default); with 2D smoothing the output also
holds 'keypoints_2d_smoothed'.
"""


def add_arguments(parser) -> None:
    add_model(parser)
    parser.add_argument("--keypoints", required=True, metavar="NPZ",
                        help="2D keypoints: keypoints (T,17,2|3) px, width, height, optional fx, fy, cx, cy")
    parser.add_argument("--output", required=True, metavar="NPZ", help="3D poses to write")
    parser.add_argument("--no-flip", action="store_true",
                        help="skip test-time flip averaging (faster, slightly less accurate)")
    parser.add_argument("--stream", action="store_true",
                        help="lift frame by frame as a live caller would (inference.stream; causal models "
                             "only; the same poses as offline) and print the frames/s")
    add_smoothing(parser)
    add_device(parser, threads=False)


def main(args) -> int:
    import time

    from posebridge.inference.predict import predict, read_keypoints, write_prediction

    inputs = read_keypoints(args.keypoints)
    smoothing = smoothing_from(args)
    model = load_model_from(args)
    lift = None
    if args.stream:
        from posebridge.inference.stream import StreamingLifter, stream_lift

        StreamingLifter(model)  # refuses a model that is not causal before any work
        lift = stream_lift
    start = time.perf_counter()
    out = predict(model, inputs, flip=not args.no_flip, lift=lift, smoothing=smoothing)
    elapsed = time.perf_counter() - start
    write_prediction(args.output, out)
    if args.stream:
        print(f"streamed {len(inputs.keypoints)} frames one by one: {len(inputs.keypoints) / elapsed:.1f} frames/s "
              f"({1000 * elapsed / len(inputs.keypoints):.2f} ms per frame, lifting and trajectory)")
    fx, fy, cx, cy = inputs.intrinsics
    assumed = " (assumed: 55 deg horizontal field of view)" if inputs.intrinsics_assumed else ""
    print(f"{len(inputs.keypoints)} frames -> {', '.join(model.formats)}; camera fx={fx:.1f} fy={fy:.1f} "
          f"cx={cx:.1f} cy={cy:.1f}{assumed}; wrote {args.output}")
    return 0
