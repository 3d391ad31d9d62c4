"""Dataset sources: which files each converter needs, and the instructions when they are missing."""

import pytest

from posebridge import download
from posebridge.converters import DATASETS
from posebridge.errors import ConfigError, DataError


def test_every_converter_has_a_source_with_addresses():
    assert set(DATASETS) | {"mpi_inf_3dhp_test"} == set(download.SOURCES)
    for source in download.SOURCES.values():
        assert source.homepage.startswith("http") and source.files
        for f in source.files:
            assert f.patterns and "http" in f.get
            assert f.url is None or f.url.startswith("http")
    assert download.panoptic_urls("160422_ultimatum1")["hdPose3d_stage1_coco19.tar"] == (
        "http://domedb.perception.cs.cmu.edu/webdata/dataset/160422_ultimatum1/hdPose3d_stage1_coco19.tar")


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
