"""Pickled data files are read without running code: payloads are refused, plain data round-trips."""

import pickle
import zipfile

import numpy as np
import pytest

from posebridge.data.pickles import load_pickle, read_npz
from posebridge.errors import DataError

from bad_inputs import Payload  # the corpus's payload: unpickling it creates a marker file




def _videopose3d_like(tmp_path):
    positions = {"S1": {"Walking": [np.arange(2 * 17 * 2, dtype=np.float32).reshape(2, 17, 2)] * 4}}
    metadata = {"num_joints": 17, "keypoints_symmetry": [[np.int64(1), np.int64(3)], [np.int64(2), np.int64(4)]],
                "layout_name": "coco"}
    path = tmp_path / "data_2d.npz"
    np.savez_compressed(path, positions_2d=positions, metadata=metadata, plain=np.ones(3))
    return path, positions, metadata


def test_npz_with_object_arrays_reads_like_numpy(tmp_path):
    path, positions, metadata = _videopose3d_like(tmp_path)
    data = read_npz(path)
    assert set(data) == {"positions_2d", "metadata", "plain"}
    got = data["positions_2d"].item()["S1"]["Walking"]
    np.testing.assert_array_equal(got[3], positions["S1"]["Walking"][3])
    assert data["metadata"].item()["keypoints_symmetry"][1][0] == 2
    np.testing.assert_array_equal(data["plain"], np.ones(3))


def test_npz_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_3d_h36m.npz"
    np.savez(path, positions_3d={"S1": {"Walking": Payload(marker)}})
    with np.load(path, allow_pickle=True) as npz:  # the unrestricted reader runs it: the test can fail
        npz["positions_3d"]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(DataError, match=r"data_3d_h36m.npz: refused to unpickle (io|builtins).open"):
        read_npz(path)
    assert not marker.exists()


def test_pickle_file_python2_style_and_payload(tmp_path):
    good = tmp_path / "seq.pkl"
    value = {"jointPositions": [np.zeros((3, 72))], "genders": ["m"], "campose_valid": [np.ones(3, bool)]}
    good.write_bytes(pickle.dumps(value, protocol=2))
    loaded = load_pickle(good)
    np.testing.assert_array_equal(loaded["jointPositions"][0], value["jointPositions"][0])
    assert loaded["genders"] == ["m"]

    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"jointPositions": Payload(marker)}, protocol=2))
    with pytest.raises(DataError, match=r"evil.pkl: refused to unpickle (io|builtins).open"):
        load_pickle(bad)
    assert not marker.exists()


def test_plain_npy_and_truncated_archives(tmp_path):
    path = tmp_path / "x.npz"
    np.save(path.with_suffix(".npy"), np.zeros(3))
    path.write_bytes(path.with_suffix(".npy").read_bytes())
    with pytest.raises(DataError, match="x.npz: a single .npy array, not an .npz archive"):
        read_npz(path)
    full, _, _ = _videopose3d_like(tmp_path)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(zipfile.BadZipFile):
        read_npz(cut)
