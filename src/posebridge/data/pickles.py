"""Pickled data files read without running code from them.

Some formats people already have are pickles by design: VideoPose3D's ``.npz`` files store
``positions_3d`` / ``positions_2d`` / ``metadata`` as 0-d object arrays (a pickled dict of
NumPy arrays), Detectron-style detection archives store per-frame object arrays, and 3DPW's
``sequenceFiles/*.pkl`` are Python-2 pickles read as latin1. ``pickle.load`` and
``np.load(allow_pickle=True)`` would run any callable such a file names. Here every pickle goes
through ``RestrictedUnpickler``, which rebuilds only NumPy arrays, dtypes and scalars and
builtin containers; any other global is refused with a ``DataError`` naming the file and it.

>>> import io, pickle, numpy as np
>>> data = pickle.dumps({"S1": [np.zeros((2, 17, 2), np.float32)]})
>>> loads(data, "example.pkl")["S1"][0].shape
(2, 17, 2)
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from posebridge.errors import DataError

# (module, name) of every global a data pickle may reference. NumPy 1.x pickles name
# numpy.core.*, NumPy 2 numpy._core.* (mapped below); Python 2 pickles name __builtin__ and
# copy_reg, which pickle's fix_imports maps to builtins / copyreg before find_class sees them.
ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("builtins", "int"), ("builtins", "float"), ("builtins", "str"), ("builtins", "bytes"),
    ("builtins", "bool"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol-2 pickles made by Python 3 carry bytes
})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ``ALLOWED_GLOBALS``; ``path`` names the file in errors."""

    def __init__(self, file, path: str | os.PathLike, encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self.path = path

    def find_class(self, module: str, name: str):
        canonical = module.replace("numpy.core", "numpy._core", 1) if module.startswith("numpy.core") else module
        if (canonical, name) not in ALLOWED_GLOBALS:
            raise DataError(self.path, f"refused to unpickle {module}.{name}: only NumPy arrays, numbers, "
                                       "strings and builtin containers are read from pickled data")
        return super().find_class(canonical, name)


def loads(data: bytes, path: str | os.PathLike, encoding: str = "latin1"):
    """The object pickled in ``data`` (restricted, see module docstring)."""
    return RestrictedUnpickler(io.BytesIO(data), path, encoding).load()


def load_pickle(path: str | os.PathLike, encoding: str = "latin1"):
    """The object pickled in file ``path`` (restricted); latin1 reads Python-2 pickles' arrays."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, path, encoding).load()


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> np.ndarray:
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _, _, dtype = header(f)
        if dtype.hasobject:  # NumPy pickles the whole object array after the header
            value = RestrictedUnpickler(f, path).load()
            if not isinstance(value, np.ndarray):
                raise DataError(path, f"member {info.filename} holds a {type(value).__name__}, not an array")
            return value
    with zf.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of ``.npz`` archive ``path`` by name; object arrays are unpickled restricted.

    Raises DataError for a refused global or a plain .npy; zip and format errors (truncated,
    corrupt) propagate for the caller to word as a one-line error naming the file.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            if f.read(6) == b"\x93NUMPY":
                raise DataError(path, "a single .npy array, not an .npz archive")
        raise zipfile.BadZipFile("no zip structure (truncated or not an .npz archive)")
    with zipfile.ZipFile(path) as zf:
        return {info.filename.removesuffix(".npy"): _read_member(zf, info, path) for info in zf.infolist()
                if not info.is_dir()}
