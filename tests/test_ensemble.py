"""Ensembles (inference.ensemble): the mean of the members' poses, in any member's format order,
still on the input rays; one self-contained file; one-line errors where members do not fit or a
step needs one network."""

import numpy as np
import pytest
import torch

from posebridge import atomic
from posebridge.cli import main as cli_main
from posebridge.errors import ConfigError, DataError
from posebridge.inference.ensemble import EnsembleModel, require_single_lifter, write_ensemble
from posebridge.inference.lift import LiftingModel, lift, lift_network_input, load_model
from posebridge.inference.stream import StreamingLifter
from posebridge.models import SeparateHeadLifter
from posebridge.models.files import read_model_file

from test_inference import keypoints, make_model
from test_rays import at_depth, off_ray, ray_lifter, scene


def save(model: LiftingModel, directory) -> str:
    atomic.torch_save(directory / "model.pt", model.lifter.file_dict({f: np.full((17, 3), 1.0) for f in ["h36m_17"]}))
    return str(directory)


def test_an_ensemble_lifts_the_mean_of_its_members_poses():
    a, b, c = make_model(seed=0), make_model(seed=1), make_model(seed=2)
    kp = keypoints(60)
    members = [lift(m, kp, 1000, 800) for m in (a, b, c)]
    for group in ([a, b], [a, b, c]):
        got = lift(EnsembleModel("e", group), kp, 1000, 800)
        assert set(got) == {"h36m_17", "humaneva_15"}
        for fmt in got:
            expected = np.mean([m[fmt] for m in members[:len(group)]], axis=0)
            np.testing.assert_allclose(got[fmt], expected, atol=2e-3)  # mm
            assert np.abs(got[fmt] - members[0][fmt]).max() > 1.0  # a real mean, not one member


def test_members_with_another_format_order_are_averaged_format_by_format():
    a = make_model(seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        reordered = LiftingModel.from_lifter(
            SeparateHeadLifter(["humaneva_15", "h36m_17"], filter_widths=[3, 3, 3], channels=24), name="b")
    kp = keypoints(40)
    ensemble = EnsembleModel("e", [a, reordered])
    assert ensemble.formats == ["h36m_17", "humaneva_15"]  # the first member's layout
    got = lift(ensemble, kp, 1000, 800)
    pa, pb = lift(a, kp, 1000, 800), lift(reordered, kp, 1000, 800)
    for fmt in ("h36m_17", "humaneva_15"):
        np.testing.assert_allclose(got[fmt], (pa[fmt] + pb[fmt]) / 2, atol=2e-3)
    # the union output keeps the first member's slices
    inputs = a.encode(kp, 1000, 800)
    out = lift_network_input(ensemble, inputs)
    assert out.shape == (40, 32, 3)


def test_an_ensemble_of_ray_placed_lifters_keeps_every_found_joint_on_its_ray():
    world, kp, camera = scene()
    members = [LiftingModel.from_lifter(at_depth(ray_lifter(seed=s), camera, world), name=f"m{s}") for s in (0, 1)]
    kwargs = dict(intrinsics=camera.intrinsics, distortion=camera.distortion)
    poses = lift(EnsembleModel("e", members), kp, *camera.image_size, **kwargs)["h36m_17"]
    alone = lift(members[0], kp, *camera.image_size, **kwargs)["h36m_17"]
    assert np.abs(poses - alone).max() > 1.0
    assert off_ray(alone.astype(np.float64), kp, camera=camera)[0] < 1e-5
    on_ray, _ = off_ray(poses.astype(np.float64), kp, camera=camera)
    assert on_ray < 1e-5  # normalised image units: the mean of points on one ray is on it


def test_members_must_read_the_same_input_and_predict_the_same_formats():
    a = make_model(seed=0)
    with pytest.raises(ConfigError, match="at least two"):
        EnsembleModel("e", [a])
    other_formats = LiftingModel.from_lifter(SeparateHeadLifter(["h36m_17"], channels=8), name="b")
    with pytest.raises(ConfigError, match="same formats"):
        EnsembleModel("e", [a, other_formats])
    other_input = LiftingModel.from_lifter(ray_lifter(formats=("h36m_17", "humaneva_15")), name="c")
    with pytest.raises(ConfigError, match="same input"):
        EnsembleModel("e", [a, other_input])


def test_the_ensemble_file_is_self_contained_and_loads_as_its_members_mean(tmp_path):
    a, b = make_model(seed=0), make_model(seed=1)
    dirs = [save(a, tmp_path / "first"), save(b, tmp_path / "second")]
    path = write_ensemble(dirs, tmp_path / "both")
    assert path == tmp_path / "both" / "model.pt" and (tmp_path / "both" / "config.yaml").is_file()
    for d in dirs:  # the members' files are not read again
        (tmp_path / d / "model.pt").unlink()
    loaded = load_model(tmp_path / "both")
    assert isinstance(loaded, EnsembleModel) and loaded.name == "both"
    assert loaded.member_names == ["first", "second"]
    np.testing.assert_allclose(loaded.mean_pose["h36m_17"], np.ones((17, 3)))
    kp = keypoints(30)
    got = lift(loaded, kp, 1000, 800)
    for fmt in got:
        np.testing.assert_allclose(got[fmt], (lift(a, kp, 1000, 800)[fmt] + lift(b, kp, 1000, 800)[fmt]) / 2,
                                   atol=2e-3)


def test_steps_that_need_one_network_name_the_ensembles_members(tmp_path):
    dirs = [save(make_model(seed=s), tmp_path / f"m{s}") for s in (0, 1)]
    write_ensemble(dirs, tmp_path / "ens")
    with pytest.raises(DataError, match=r"ensemble of m0, m1; this step needs one lifter") as err:
        read_model_file(tmp_path / "ens")  # what fine-tuning's --init reads
    assert str(tmp_path / "ens" / "model.pt") in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"posebridge pseudo-gt needs one lifter; ens .* ensemble of m0, m1"):
        require_single_lifter(load_model(tmp_path / "ens"), "posebridge pseudo-gt")
    with pytest.raises(ConfigError, match="frame-by-frame lifting needs one lifter"):
        StreamingLifter(load_model(tmp_path / "ens"))
    # an ensemble inside an ensemble is refused when it is written, not when it is run
    with pytest.raises(DataError, match="ensemble of m0, m1"):
        write_ensemble([tmp_path / "ens", dirs[0]], tmp_path / "nested")
    assert not (tmp_path / "nested" / "model.pt").exists()


@pytest.mark.parametrize("entry, words", [
    ({"members": [], "names": []}, "not two or more named model files"),
    ({"members": [{"state_dict": {}}], "names": ["a", "b"]}, "not two or more named model files"),
    ({"members": [{"state_dict": {}}, {"state_dict": {}}], "names": ["a", "b"]}, "ensemble member a: model file lacks"),
    ("junk", "not two or more named model files"),
])
def test_a_damaged_ensemble_file_is_a_one_line_error_naming_it(tmp_path, entry, words):
    atomic.torch_save(tmp_path / "model.pt", {"ensemble": entry})
    with pytest.raises(DataError, match=words) as err:
        load_model(tmp_path)
    assert str(tmp_path / "model.pt") in str(err.value) and "\n" not in str(err.value)


def test_a_member_with_nan_weights_is_refused_when_the_ensemble_loads(tmp_path):
    dirs = [save(make_model(seed=s), tmp_path / f"m{s}") for s in (0, 1)]
    write_ensemble(dirs, tmp_path / "ens")
    payload = torch.load(tmp_path / "ens" / "model.pt", weights_only=True)
    state = payload["ensemble"]["members"][1]["state_dict"]
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = torch.full_like(state[key], float("nan"))
    atomic.torch_save(tmp_path / "ens" / "model.pt", payload)
    with pytest.raises(DataError, match="ensemble member m1: state_dict holds NaN"):
        load_model(tmp_path / "ens")


def test_the_command_writes_an_ensemble_that_predict_runs(tmp_path, capsys):
    dirs = [save(make_model(seed=s), tmp_path / f"m{s}") for s in (0, 1)]
    assert cli_main(["ensemble", "--model", dirs[0], "--model", dirs[1], "--out-dir", str(tmp_path / "e")]) == 0
    assert "the mean of" in capsys.readouterr().out
    assert cli_main(["ensemble", "--model", dirs[0], "--out-dir", str(tmp_path / "one")]) != 0
    assert "at least two models" in capsys.readouterr().err
    assert not (tmp_path / "one" / "model.pt").exists()
