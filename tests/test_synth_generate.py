"""Synthetic datasets: spec validation, store round trip for every template, splits, determinism."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from posebridge.geometry import skeletons
from posebridge.data import store
from posebridge.errors import ConfigError
from posebridge.sources.synth import body as B
from posebridge.sources.synth import generate as G

TINY = {"train_subjects": 1, "test_subjects": 1, "seconds_per_take": 0.6}
DEFAULT = G.synthetic_specs(yaml.safe_load((Path(__file__).parent.parent / "config.yaml").read_text())["datasets"])
"""The workflow's default synthetic datasets (config.yaml)."""


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    """Every default dataset at the tiny size, written and reopened."""
    root = tmp_path_factory.mktemp("synth")
    out = {}
    for name, entry in G.tiny_specs(DEFAULT).items():
        path = root / f"{name}.h5"
        data = G.generate_dataset(name, entry["synth"], entry["role"], 7, path)
        out[name] = (path, data, entry)
    return out


def test_spec_defaults_per_template():
    spec = G.DatasetSpec.from_dict({"template": "3dhp"})
    assert spec.skeleton == "mpi_inf_3dhp_28" and spec.fps == 25 and spec.cameras == 10
    assert len(spec.actions) >= 6 and spec.train_subjects == 5 and spec.test_subjects == 2
    for template, skeleton in G.TEMPLATE_SKELETON.items():
        assert G.DatasetSpec.from_dict({"template": template}).skeleton == skeleton
    spec = G.DatasetSpec.from_dict({"template": "h36m", "fps": 25, "cameras": 2, "actions": ["walking"],
                                    "skeleton": "smpl_24", "variation": 0.5})
    assert (spec.fps, spec.cameras, spec.actions, spec.skeleton) == (25.0, 2, ("walking",), "smpl_24")
    assert spec.variation == 0.5 and G.DatasetSpec.from_dict({"template": "h36m"}).variation == 0.0
    assert G.DatasetSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("bad, message", [
    ({"template": "h36m", "subjects": 3}, "valid keys: template, train_subjects"),
    ({"template": "mocap"}, "template must be one of"),
    ({}, "template must be one of"),
    ({"template": "h36m", "actions": ["flying"]}, "unknown action"),
    ({"template": "h36m", "actions": "walking"}, "non-empty list"),
    ({"template": "h36m", "train_subjects": -1}, "train_subjects"),
    ({"template": "h36m", "train_subjects": 0, "test_subjects": 0}, "at least 1"),
    ({"template": "h36m", "seconds_per_take": 0}, "seconds_per_take"),
    ({"template": "h36m", "skeleton": "h37m"}, "skeleton must be one of"),
    ({"template": "h36m", "cameras": 1.5}, "cameras"),
    ({"template": "h36m", "variation": 1.5}, "variation must be a number from 0 to 1"),
    ({"template": "h36m", "variation": "wide"}, "variation must be a number from 0 to 1"),
])
def test_spec_validation(bad, message):
    with pytest.raises(ConfigError, match=message):
        G.DatasetSpec.from_dict(bad)


def test_default_specs_cover_the_collection():
    assert set(DEFAULT) == {"synth_h36m", "synth_3dhp", "synth_3dpw", "synth_panoptic",
                                    "synth_humaneva", "synth_video", "synth_multiview", "synth_wild",
                                    "synth_heldout_motion", "synth_heldout_camera"}
    roles = {name: e["role"] for name, e in DEFAULT.items()}
    assert roles["synth_video"] == "unlabeled_video" and roles["synth_multiview"] == "unlabeled_multiview"
    samples = 0
    for name, entry in DEFAULT.items():
        spec = G.DatasetSpec.from_dict(entry["synth"])
        frames = (spec.train_subjects + spec.test_subjects) * len(spec.actions) * spec.takes_per_action \
            * round(spec.seconds_per_take * spec.fps)
        if entry["role"] == "labeled":
            samples += frames * spec.cameras * spec.train_subjects / (spec.train_subjects + spec.test_subjects)
    assert 150_000 <= samples <= 300_000  # labeled training frame x camera samples


def test_round_trip_for_every_template(tiny_sets):
    templates = set()
    for name, (path, data, entry) in tiny_sets.items():
        spec = G.DatasetSpec.from_dict(entry["synth"])
        templates.add(spec.template)
        with store.open_dataset(path) as ds:
            assert ds.name == name and ds.role == entry["role"] and ds.skeleton.name == spec.skeleton
            assert set(ds.extra_formats) == set(B.ALL_FORMATS) - {spec.skeleton}
            for seq in ds.sequences[:3]:
                start, frames = ds.span(seq)
                assert np.array_equal(ds.sequence_3d(seq), data.joints[spec.skeleton][start:start + frames])
                assert np.array_equal(ds.sequence_extra("coco_17", seq), data.joints["coco_17"][start:start + frames])
            index = ds.index
            assert list(index.columns[:len(store.INDEX_COLUMNS)]) == list(store.INDEX_COLUMNS)
            assert (index["role"] == entry["role"]).all() and (index["fps"] == spec.fps).all()
            assert (index["group"] == index["sequence"]).all()
            # subject-wise splits
            assert index.groupby("subject")["split"].nunique().max() == 1
            if entry["role"] == "test":
                assert (index["split"] == "test").all()
            per_take = index.groupby("sequence")["camera"].nunique()
            if spec.template in ("video", "3dpw") or spec.rig != "template":  # new cameras every take
                assert (per_take == spec.cameras).all() and index["camera"].nunique() == per_take.sum()
            else:
                assert (per_take == spec.cameras).all()
    assert templates == set(G.TEMPLATES)


def test_stored_projections_agree_with_the_cameras_and_people_are_in_view(tiny_sets):
    for name, (path, data, entry) in tiny_sets.items():
        with store.open_dataset(path) as ds:
            for _, row in ds.index.iterrows():
                cam = ds.camera_for(row)
                original = data.cameras[int(row["camera_index"])]
                assert cam == original
                X = ds.sequence_extra("coco_17", row["sequence"]) if ds.skeleton.name != "coco_17" \
                    else ds.sequence_3d(row["sequence"])
                uv = cam.project(X.astype(np.float64))
                # the same as the pinhole + distortion formula written out
                Xc = X.astype(np.float64) @ cam.R.T + cam.t
                x, y = Xc[..., 0] / Xc[..., 2], Xc[..., 1] / Xc[..., 2]
                k1, k2, k3, p1, p2 = cam.distortion
                r2 = x * x + y * y
                radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
                xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
                yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
                fx, fy, cx, cy = cam.intrinsics
                assert np.allclose(uv, np.stack([fx * xd + cx, fy * yd + cy], -1), atol=1e-6)
                w, h = cam.image_size
                inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
                # everyday set-ups cut people off at the image border now and then, on purpose
                in_view = 0.8 if G.DatasetSpec.from_dict(entry["synth"]).rig == "template" else 0.5
                assert inside.mean() > in_view, (name, row["sequence"], row["camera"])
                assert Xc[..., 2].min() > 1000.0


def test_subjects_differ_within_and_across_datasets(tiny_sets):
    subjects, heights = set(), []
    for name, (path, data, entry) in tiny_sets.items():
        assert not subjects & set(data.bodies)
        subjects |= set(data.bodies)
        heights += [b.height for b in data.bodies.values()]
    assert len(set(np.round(heights, 3))) == len(heights)
    assert np.ptp(heights) > 100.0


def test_stored_rigid_formats_keep_bone_lengths(tiny_sets):
    path, data, _ = tiny_sets["synth_h36m"]
    with store.open_dataset(path) as ds:
        for fmt in ("h36m_32", "h36m_17", "smpl_24", "mpi_inf_3dhp_28", "humaneva_15"):
            bones = np.array(skeletons.get(fmt).bones)
            for subject in data.bodies:
                seqs = ds.index.loc[ds.index["subject"] == subject, "sequence"].unique()
                X = np.concatenate([ds.sequence_3d(s) if fmt == ds.skeleton.name else ds.sequence_extra(fmt, s)
                                    for s in seqs]).astype(np.float64)
                lengths = np.linalg.norm(X[:, bones[:, 1]] - X[:, bones[:, 0]], axis=-1)
                assert np.abs(lengths - lengths[0]).max() < 0.01, fmt  # float32 storage
        h36m_17 = ds.sequence_extra("h36m_17", ds.sequences[0])
        assert np.array_equal(h36m_17, skeletons.convert(ds.sequence_3d(ds.sequences[0]), "h36m_32", "h36m_17"))


def test_generation_is_deterministic_per_seed_and_name(tmp_path):
    spec = {"template": "humaneva", "train_subjects": 1, "test_subjects": 1, "actions": ["walking", "waving"],
            "seconds_per_take": 0.5}
    paths = [tmp_path / f"{k}.h5" for k in range(3)]
    G.generate_dataset("a", spec, "labeled", 3, paths[0])
    G.generate_dataset("a", spec, "labeled", 3, paths[1])
    G.generate_dataset("a", spec, "labeled", 4, paths[2])
    with h5py.File(paths[0]) as f0, h5py.File(paths[1]) as f1, h5py.File(paths[2]) as f2:
        for key in ("joints_3d", "extra/coco_17", "cameras/R", "cameras/intrinsics"):
            assert np.array_equal(f0[key][()], f1[key][()]), key
        assert not np.allclose(f0["joints_3d"][()], f2["joints_3d"][()])
    other = G.build_dataset("b", G.DatasetSpec.from_dict(spec), "labeled", 3)
    same = G.build_dataset("a", G.DatasetSpec.from_dict(spec), "labeled", 3)
    assert not np.allclose(other.joints["h36m_32"], same.joints["h36m_32"])
    # more takes leave the existing subjects as they were
    bigger = G.build_dataset("a", G.DatasetSpec.from_dict({**spec, "takes_per_action": 2}), "labeled", 3)
    assert [b.height for b in bigger.bodies.values()] == [b.height for b in same.bodies.values()]


def test_multiview_groups_are_synchronised_views(tiny_sets):
    path, data, entry = tiny_sets["synth_multiview"]
    with store.open_dataset(path) as ds:
        for group, rows in ds.index.groupby("group"):
            assert 4 <= len(rows) <= 6
            assert rows["start"].nunique() == 1 and rows["frames"].nunique() == 1
            positions = np.array([ds.camera_for(r).position for _, r in rows.iterrows()])
            assert np.linalg.norm(positions - positions.mean(0), axis=1).min() > 2000.0


def test_rig_option_and_held_out_specs():
    assert G.DatasetSpec.from_dict({"template": "h36m"}).rig == "template"
    assert G.DatasetSpec.from_dict({"template": "h36m", "rig": "varied"}).rig == "varied"
    with pytest.raises(ConfigError, match="rig must be one of template, varied, heldout"):
        G.DatasetSpec.from_dict({"template": "h36m", "rig": "phone"})
    # no dataset the default trains on has the held-out motion kinds or camera set-ups
    training = {n: G.DatasetSpec.from_dict(e["synth"]) for n, e in DEFAULT.items() if e["role"] != "test"}
    seen = set().union(*(s.actions for s in training.values()))
    motion_test = G.DatasetSpec.from_dict(DEFAULT["synth_heldout_motion"]["synth"])
    camera_test = G.DatasetSpec.from_dict(DEFAULT["synth_heldout_camera"]["synth"])
    assert motion_test.actions and not seen & set(motion_test.actions)
    assert camera_test.rig == "heldout" and all(s.rig != "heldout" for s in training.values())
    assert set(camera_test.actions) <= seen  # only the cameras are new there
    assert DEFAULT["synth_heldout_motion"]["role"] == DEFAULT["synth_heldout_camera"]["role"] == "test"
    # the new motion kinds are trained on, through everyday cameras
    wild = training["synth_wild"]
    assert wild.rig == "varied" and {"lying", "random_pose", "cartwheel", "kneeling"} <= set(wild.actions)


def test_varied_rig_films_each_take_with_its_own_cameras(tmp_path):
    spec = {"template": "h36m", "rig": "varied", "cameras": 2, "train_subjects": 1, "test_subjects": 0,
            "actions": ["lying", "kicking"], "seconds_per_take": 1.0}
    data = G.generate_dataset("v", spec, "labeled", 0, tmp_path / "v.h5")
    assert len(data.cameras) == 4 and len({c.name for c in data.cameras}) == 4
    assert data.index.groupby("sequence")["camera"].nunique().eq(2).all()
    again = G.build_dataset("v", G.DatasetSpec.from_dict(spec), "labeled", 0)
    assert again.cameras == data.cameras and np.array_equal(again.joints["h36m_17"], data.joints["h36m_17"])
