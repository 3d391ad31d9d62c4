"""The 2D keypoints a dataset's own files carry ("builtin"): MPI-INF-3DHP's and MuPoTS's
ground-truth 2D annotations, 3DPW's OpenPose detections (coco_17).

The converter reads them with the 3D; this detector runs the same converter on the same folder
again (the workflow fills ``source``, ``path`` and ``convert`` from the dataset's config entry)
and hands each index row its keypoints, matched by (sequence, camera).
"""

from __future__ import annotations

import numpy as np

from posebridge.errors import ConfigError, DataError
from posebridge.specs import check_keys

SETTINGS = ("source", "path", "convert")  # filled by the workflow from the dataset's entry
CONVERT_OPTIONS = ("part", "universal", "fps", "strict")


def detect_builtin(dataset, spec: dict | None) -> tuple[np.ndarray, str]:
    """Keypoints (sum of row frames, K, 3) of every index row of ``dataset`` and their format."""
    from posebridge.sources.converters import BUILTIN_DETECTIONS, convert

    spec = {k: v for k, v in (spec or {}).items() if k != "kind"}
    check_keys(spec, SETTINGS, "builtin detector")
    source = spec.get("source")
    if source not in BUILTIN_DETECTIONS or "path" not in spec:
        raise ConfigError(f"builtin detector: dataset {dataset.name!r} (source {source!r}) has no 2D keypoints "
                          f"of its own; those that do: {', '.join(BUILTIN_DETECTIONS)} (real datasets with a path)")
    options = dict(spec.get("convert") or {})
    unknown = sorted(set(options) - set(CONVERT_OPTIONS))
    if unknown:
        raise ConfigError(f"builtin detector: unknown convert option(s) {', '.join(unknown)}")
    converted = convert(source, spec["path"], **options)
    if converted.keypoints is None:
        raise DataError(spec["path"], f"the {source} files gave no 2D keypoints for every row")
    index = converted.index
    ends = np.cumsum(index["frames"].to_numpy())
    where = {(s, c): (e - n, e) for s, c, n, e in zip(index["sequence"], index["camera"], index["frames"], ends)}
    out = []
    for row in dataset.index.itertuples(index=False):
        span = where.get((row.sequence, row.camera))
        if span is None or span[1] - span[0] != row.frames:
            raise DataError(dataset.path, f"sequence {row.sequence!r}, camera {row.camera!r} is not what the "
                                          f"{source} files in {spec['path']} hold now (converted from other files "
                                          f"or options? reconvert it)")
        out.append(converted.keypoints[span[0]:span[1]])
    return np.concatenate(out).astype(np.float32), converted.keypoint_format
