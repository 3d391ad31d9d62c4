"""`posebridge download`: fetch a public file a dataset's configuration needs (VideoPose3D's 2D keypoints)."""

from __future__ import annotations

from posebridge.commands.options import add_no_progress

HELP = "download a public 2D keypoint file (VideoPose3D's CPN / Detectron detections)"
DESCRIPTION = """\
Download one of the public files posebridge knows by name (VideoPose3D's 2D keypoint files:
data_2d_h36m_cpn_ft_h36m_dbb.npz, data_2d_h36m_detectron_ft_h36m.npz,
data_2d_humaneva15_detectron_pt_coco.npz) to OUTPUT, atomically: a failed download leaves nothing
behind. Datasets behind a login (Human3.6M, HumanEva, MPI-INF-3DHP, MuPoTS, 3DPW) are never
downloaded; `posebridge convert` says where to get them.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--output", required=True, metavar="PATH",
                        help="where to write the file; its name picks the public address")
    parser.add_argument("--url", default=None,
                        help="download from this address instead (a mirror; file:// works too)")
    parser.add_argument("--sha256", default=None, help="expected SHA-256 of the file (checked when given)")
    add_no_progress(parser)


def main(args) -> int:
    import time
    from pathlib import Path

    from posebridge.sources.download import PUBLIC_2D, fetch, public_url
    from posebridge.errors import ConfigError

    output = Path(args.output)
    url = args.url or public_url(output.name)
    if url is None:
        raise ConfigError(f"download: no public address known for {output.name!r}; known files: "
                          f"{', '.join(PUBLIC_2D)} (or give --url)")
    t0 = time.perf_counter()
    fetch(url, output, args.sha256, progress=not args.no_progress)
    print(f"{url} -> {output} ({output.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0
