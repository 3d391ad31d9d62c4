"""Every converter through `posebridge convert`: a truncated or corrupt file (a broken download)
gives one line on stderr naming that file, exit status 1, and nothing under results/.

Each dataset's files are written in its real layout by its own converter test module."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bad_inputs import Payload  # unpickling it creates a marker file
from posebridge import cli


def _h36m(root):
    from test_converters_h36m import H36M_SYMMETRY, _poses_mm, _write_2d, _write_npz

    poses = _poses_mm()
    _write_npz(root, poses)
    _write_2d(root, poses, "cpn_ft_h36m_dbb", {"layout_name": "h36m", "num_joints": 17,
                                               "keypoints_symmetry": H36M_SYMMETRY})
    return root


def _humaneva(root):
    from test_converters_humaneva import _write

    _write(root)
    return root


def _3dpw(root):
    from test_converters_3dpw import SEQUENCES, _sequence

    for k, (folder, sequences) in enumerate(SEQUENCES.items()):
        (root / "sequenceFiles" / folder).mkdir(parents=True)
        for j, (name, actors, frames) in enumerate(sequences):
            with open(root / "sequenceFiles" / folder / f"{name}.pkl", "wb") as f:
                pickle.dump(_sequence(name, actors, frames, seed=10 * k + j), f, protocol=2)
    return root


def _3dhp(root):
    from test_converters_mpi_inf_3dhp import _write_train

    _write_train(root)
    return root


def _mupots(root):
    from test_converters_mupots import _write

    _write(root)
    return root


def _panoptic(root):
    from test_converters_panoptic import _write_sequence

    _write_sequence(root, "160422_ultimatum1", 1, as_tar=True)
    return root


# dataset, writer, the file to break, extra convert options
CASES = [
    ("h36m", _h36m, "data_3d_h36m.npz", []),
    ("h36m", _h36m, "data_2d_h36m_cpn_ft_h36m_dbb.npz", ["--detections", "cpn_ft_h36m_dbb"]),
    ("humaneva", _humaneva, "data_3d_humaneva15.npz", []),
    ("humaneva", _humaneva, "data_2d_humaneva15_gt.npz", []),
    ("3dpw", _3dpw, "sequenceFiles/test/office_phoneCall_00.pkl", []),
    ("mpi_inf_3dhp", _3dhp, "S8/Seq2/annot.mat", []),
    ("mupots", _mupots, "MultiPersonTestSet/TS20/annot.mat", ["--fps", "30"]),
    ("panoptic", _panoptic, "160422_ultimatum1/hdPose3d_stage1_coco19.tar", []),
]


@pytest.mark.parametrize("keep", [0.5, 0.0], ids=["truncated", "empty"])
@pytest.mark.parametrize("dataset, write, broken, options", CASES,
                         ids=[f"{c[0]}:{c[2].rsplit('/', 1)[-1]}" for c in CASES])
def test_broken_file_is_one_line_naming_it_and_nothing_is_written(tmp_path, capsys, dataset, write, broken,
                                                                  options, keep):
    (tmp_path / "source").mkdir()
    source = write(tmp_path / "source")
    path = source / broken
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    results = tmp_path / "results"
    args = ["convert", "--dataset", dataset, "--source", str(source), "--name", dataset, "--role", "labeled",
            "--output", str(results / "datasets" / f"{dataset}.h5"), *options]
    if dataset in ("h36m", "3dpw", "mpi_inf_3dhp", "mupots") and (dataset != "h36m" or options):
        args += ["--detections-output", str(results / "detections" / dataset / "2d.h5")]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and path.name in err, err
    assert [p for p in results.rglob("*") if p.is_file()] == [] if results.exists() else True


def test_each_case_converts_when_intact(tmp_path, capsys):
    """The same files unbroken convert (so the failures above are the broken file's doing)."""
    for k, (dataset, write, _, options) in enumerate(CASES):
        if k and CASES[k - 1][0] == dataset:
            continue
        (tmp_path / f"source{k}").mkdir()
        source = write(tmp_path / f"source{k}")
        output = tmp_path / "results" / "datasets" / f"{dataset}.h5"
        assert cli.main(["convert", "--dataset", dataset, "--source", str(source), "--name", dataset,
                         "--role", "labeled", "--output", str(output), *options]) == 0, capsys.readouterr().err
        assert output.is_file()
    assert np.all([p.stat().st_size > 0 for p in (tmp_path / "results").rglob("*.h5")])




def _poison_npz(path, key, marker):
    """Replace one entry of a VideoPose3D npz by a pickle payload, keeping the others."""
    with np.load(path, allow_pickle=True) as npz:
        entries = {k: npz[k] for k in npz.files}
    entries[key] = np.array({"S1": Payload(marker)}, dtype=object)
    np.savez(path, **entries)


PAYLOAD_CASES = [
    ("h36m", _h36m, "data_3d_h36m.npz", "positions_3d", []),
    ("h36m", _h36m, "data_2d_h36m_cpn_ft_h36m_dbb.npz", "positions_2d", ["--detections", "cpn_ft_h36m_dbb"]),
    ("humaneva", _humaneva, "data_2d_humaneva15_gt.npz", "metadata", []),
    ("3dpw", _3dpw, "sequenceFiles/test/office_phoneCall_00.pkl", None, []),
]


@pytest.mark.parametrize("dataset, write, poisoned, key, options", PAYLOAD_CASES,
                         ids=[f"{c[0]}:{c[2].rsplit('/', 1)[-1]}" for c in PAYLOAD_CASES])
def test_pickle_payload_is_refused_not_run(tmp_path, capsys, dataset, write, poisoned, key, options):
    """VideoPose3D's npz files and 3DPW's pkl files are pickles by design; a payload in one is
    refused with one line naming the file and the global, and never runs."""
    (tmp_path / "source").mkdir()
    source = write(tmp_path / "source")
    path, marker = source / poisoned, tmp_path / "payload_ran"
    if key is None:
        path.write_bytes(pickle.dumps({"jointPositions": Payload(marker)}, protocol=2))
    else:
        _poison_npz(path, key, marker)
    results = tmp_path / "results"
    args = ["convert", "--dataset", dataset, "--source", str(source), "--name", dataset, "--role", "labeled",
            "--output", str(results / "datasets" / f"{dataset}.h5"), *options]
    if dataset in ("h36m", "3dpw") and (dataset != "h36m" or options):
        args += ["--detections-output", str(results / "detections" / dataset / "2d.h5")]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and path.name in err and "refused to unpickle" in err and ".open" in err, err
    assert not marker.exists()
    assert [p for p in results.rglob("*") if p.is_file()] == [] if results.exists() else True
