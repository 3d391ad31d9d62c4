"""Dataset sources: which files each converter needs, and the instructions when they are missing."""

import pytest

from posebridge.sources import download
from posebridge.sources.converters import DATASETS
from posebridge.errors import ConfigError, DataError


def test_every_converter_has_a_source_with_addresses():
    assert set(DATASETS) | {"mpi_inf_3dhp_test"} == set(download.SOURCES)
    for source in download.SOURCES.values():
        assert source.homepage.startswith("http") and source.files
        for f in source.files:
            assert f.patterns and "http" in f.get
            assert f.url is None or f.url.startswith("http")


def test_check_source_lists_exactly_the_missing_files(tmp_path):
    for s in range(1, 9):
        for q in (1, 2):
            (tmp_path / f"S{s}" / f"Seq{q}").mkdir(parents=True)
            (tmp_path / f"S{s}" / f"Seq{q}" / "annot.mat").touch()
            if (s, q) != (4, 2):
                (tmp_path / f"S{s}" / f"Seq{q}" / "camera.calibration").touch()
    missing = download.check_source("mpi_inf_3dhp", tmp_path)
    assert missing == [f"place S4/Seq2/camera.calibration under {tmp_path}; get it from "
                       f"http://gvv.mpi-inf.mpg.de/3dhp-dataset (licence form; its get_dataset.sh script downloads it)"]
    (tmp_path / "S4" / "Seq2" / "camera.calibration").touch()
    assert download.check_source("mpi_inf_3dhp", tmp_path) == []


def test_alternative_layouts_are_accepted(tmp_path):
    for s in range(1, 21):
        (tmp_path / "MultiPersonTestSet" / f"TS{s}").mkdir(parents=True)
        (tmp_path / "MultiPersonTestSet" / f"TS{s}" / "annot.mat").touch()
    assert download.check_source("mupots", tmp_path) == []
    assert len(download.check_source("mupots", tmp_path / "MultiPersonTestSet" / "TS1")) == 20


def test_require_source_is_one_line_and_names_the_folder(tmp_path):
    with pytest.raises(DataError) as err:
        download.require_source("h36m_cdf", tmp_path / "h36m")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'h36m'}: Human3.6M (original CDF poses) files missing (the folder does not exist)")
    assert "\n" not in message and message.count("Poses_D3_Positions_S") == 7
    with pytest.raises(DataError) as err:
        download.require_source("mupots", tmp_path)
    assert str(err.value).endswith(f"place TS1/annot.mat, TS2/annot.mat, TS3/annot.mat, TS4/annot.mat and 16 more "
                                   f"like these under {tmp_path}; get them from MultiPersonTestSet.zip at "
                                   f"http://gvv.mpi-inf.mpg.de/projects/SingleShotMultiPerson (licence form)")
    with pytest.raises(ConfigError, match="unknown dataset 'coco'"):
        download.check_source("coco", tmp_path)


def test_fetch_writes_atomically_and_checks_the_checksum(tmp_path):
    import hashlib

    from posebridge.sources.download import fetch

    source = tmp_path / "mirror" / "data_2d_h36m_cpn_ft_h36m_dbb.npz"
    source.parent.mkdir()
    payload = bytes(range(256)) * 4099  # a few MB-ish chunks' worth, not a multiple of the chunk
    source.write_bytes(payload)
    target = tmp_path / "data" / "h36m" / source.name
    fetch(source.as_uri(), target, hashlib.sha256(payload).hexdigest(), chunk_bytes=1000)
    assert target.read_bytes() == payload
    target.unlink()
    with pytest.raises(DataError, match=r"SHA-256 [0-9a-f]{64} is not the published 00"):
        fetch(source.as_uri(), target, "00" * 32)
    with pytest.raises(DataError, match="download failed"):
        fetch((tmp_path / "absent.npz").as_uri(), target)
    assert list(target.parent.iterdir()) == []  # no partial or temporary file left


def test_download_command_knows_the_public_files(tmp_path, capsys):
    from posebridge import cli
    from posebridge.sources.download import PUBLIC_2D

    assert PUBLIC_2D["data_2d_h36m_cpn_ft_h36m_dbb.npz"] == (
        "https://dl.fbaipublicfiles.com/video-pose-3d/data_2d_h36m_cpn_ft_h36m_dbb.npz")
    assert cli.main(["download", "--output", str(tmp_path / "data_3d_h36m.npz")]) == 1
    assert "no public address known for 'data_3d_h36m.npz'" in capsys.readouterr().err
    source = tmp_path / "mirror.npz"
    source.write_bytes(b"npz")
    target = tmp_path / "out" / "data_2d_humaneva15_detectron_pt_coco.npz"
    assert cli.main(["download", "--output", str(target), "--url", source.as_uri(), "--no-progress"]) == 0
    assert target.read_bytes() == b"npz"
