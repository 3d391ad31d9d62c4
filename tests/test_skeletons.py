import numpy as np
import pytest
import torch

from posebridge.geometry import skeletons
from posebridge.errors import ConfigError
from posebridge.geometry.skeletons import Skeleton

EXPECTED_COUNTS = {
    "h36m_17": 17,
    "h36m_32": 32,
    "smpl_24": 24,
    "mpi_inf_3dhp_17": 17,
    "mpi_inf_3dhp_28": 28,
    "coco_17": 17,
    "coco_19": 19,
    "humaneva_15": 15,
    "mediapipe_33": 33,
}
ALL = sorted(EXPECTED_COUNTS)


def test_registry_has_every_format():
    assert set(EXPECTED_COUNTS) <= set(skeletons.names())
    assert skeletons.names() == sorted(skeletons.names())


@pytest.mark.parametrize("name", ALL)
def test_joint_counts(name):
    s = skeletons.get(name)
    assert s.name == name
    assert s.num_joints == EXPECTED_COUNTS[name]
    assert len(s.joint_names) == len(s.parents) == len(s.mirror) == s.num_joints
    assert len(set(s.joint_names)) == s.num_joints
    assert all(n == n.lower() for n in s.joint_names)


@pytest.mark.parametrize("name", ALL)
def test_mirror_is_name_based_involution(name):
    s = skeletons.get(name)
    J = s.num_joints
    assert sorted(s.mirror) == list(range(J))
    for i in range(J):
        assert s.mirror[s.mirror[i]] == i
        n = s.joint_names[i]
        m = s.joint_names[s.mirror[i]]
        if n[0] == "l" and "r" + n[1:] in s.joint_names:
            assert m == "r" + n[1:]
        elif n[0] == "r" and "l" + n[1:] in s.joint_names:
            assert m == "l" + n[1:]
        else:
            assert m == n, f"centre joint {n} must map to itself"
    # every l/r-prefixed joint of these formats has its counterpart
    sided = [n for n in s.joint_names if n[0] in "lr"]
    assert all(s.mirror[s.index(n)] != s.index(n) for n in sided)
    # left/right are paired and disjoint
    assert len(s.left) == len(s.right)
    assert all(s.mirror[a] == b for a, b in zip(s.left, s.right))
    assert all(s.joint_names[a].startswith("l") for a in s.left)
    assert all(s.joint_names[b].startswith("r") for b in s.right)
    assert not set(s.left) & set(s.right)
    assert len(s.left) + len(s.right) + len(s.centre) == J


@pytest.mark.parametrize("name", ALL)
def test_parents_form_tree_rooted_at_root(name):
    s = skeletons.get(name)
    assert s.parents[s.root] == -1
    assert [i for i, p in enumerate(s.parents) if p == -1] == [s.root]
    for i in range(s.num_joints):
        k, steps = i, 0
        while k != s.root:
            k = s.parents[k]
            steps += 1
            assert 0 <= k < s.num_joints and steps <= s.num_joints
    assert len(s.bones) == s.num_joints - 1


@pytest.mark.parametrize("name", ALL)
def test_edges_valid(name):
    s = skeletons.get(name)
    assert len(s.edges) >= s.num_joints - 1
    for a, b in s.edges:
        assert 0 <= a < s.num_joints and 0 <= b < s.num_joints and a != b
    # every joint is drawn
    assert {i for e in s.edges for i in e} == set(range(s.num_joints))


def test_roots():
    assert skeletons.get("mpi_inf_3dhp_17").root == 14
    assert skeletons.get("mpi_inf_3dhp_17").joint_names[14] == "pelvis"
    assert skeletons.get("coco_19").root == 2
    assert skeletons.get("coco_17").joint_names[skeletons.get("coco_17").root] in ("lhip", "rhip")
    for n in ("h36m_17", "h36m_32", "smpl_24", "humaneva_15", "mpi_inf_3dhp_28"):
        s = skeletons.get(n)
        assert s.joint_names[s.root] == "pelvis"


def test_reference_layouts():
    h = skeletons.get("h36m_17")
    assert h.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert h.left == (4, 5, 6, 11, 12, 13) and h.right == (1, 2, 3, 14, 15, 16)
    assert h.joint_names[8] == "neck" and h.joint_names[9] == "head"
    h32 = skeletons.get("h36m_32")
    assert h32.parents == (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18,
                           19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30)
    assert (h32.index("lclavicle"), h32.index("rclavicle"), h32.index("spine0")) == (16, 24, 11)
    he = skeletons.get("humaneva_15")
    assert he.parents == (-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1)
    assert he.left == (2, 3, 4, 8, 9, 10) and he.right == (5, 6, 7, 11, 12, 13)
    mp = skeletons.get("mediapipe_33")
    assert mp.joint_names[:4] == ("nose", "leye_inner", "leye", "leye_outer")
    assert mp.joint_names[-2:] == ("lfoot_index", "rfoot_index")
    coco = skeletons.get("coco_17")
    assert coco.joint_names[:5] == ("nose", "leye", "reye", "lear", "rear")
    assert (0, 1) in coco.edges and (5, 6) in coco.edges and (11, 12) in coco.edges


def test_unknown_name_lists_known():
    with pytest.raises(ConfigError) as e:
        skeletons.get("h36m_99")
    msg = str(e.value)
    assert "h36m_99" in msg
    for n in ALL:
        assert n in msg


def test_index_unknown_joint():
    s = skeletons.get("h36m_17")
    assert s.index("lhip") == 4
    with pytest.raises(ConfigError, match="lhand"):
        s.index("lhand")


@pytest.mark.parametrize("name", ["h36m_17", "coco_17", "mediapipe_33"])
def test_flip_numpy_torch(name):
    s = skeletons.get(name)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 5, s.num_joints, 3))
    F = s.flip(X)
    assert F.shape == X.shape
    for i in range(s.num_joints):
        j = s.mirror[i]
        np.testing.assert_array_equal(F[..., j, 0], -X[..., i, 0])
        np.testing.assert_array_equal(F[..., j, 1:], X[..., i, 1:])
    np.testing.assert_array_equal(s.flip(F), X)  # involution
    T = torch.as_tensor(X)
    np.testing.assert_array_equal(s.flip(T).numpy(), F)
    assert T.equal(torch.as_tensor(X))  # input untouched
    # 2D
    np.testing.assert_array_equal(s.flip(X[..., :2]), F[..., :2])
    with pytest.raises(ValueError):
        s.flip(X[..., :3, :])


def test_flip_swaps_named_joints():
    s = skeletons.get("h36m_17")
    X = np.zeros((s.num_joints, 3))
    X[s.index("lwrist")] = [100.0, 2.0, 3.0]
    F = s.flip(X)
    np.testing.assert_array_equal(F[s.index("rwrist")], [-100.0, 2.0, 3.0])
    np.testing.assert_array_equal(F[s.index("lwrist")], [0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "src,dst,indices",
    [
        ("h36m_32", "h36m_17", [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]),
        ("mpi_inf_3dhp_28", "mpi_inf_3dhp_17",
         [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6]),
        ("mediapipe_33", "coco_17", None),
    ],
)
def test_mappings_pick_named_joints(src, dst, indices):
    s, d = skeletons.get(src), skeletons.get(dst)
    m = skeletons.mapping(src, dst)
    assert m.dtype == np.int64 and m.shape == (d.num_joints,)
    if indices is not None:
        assert m.tolist() == indices
    assert tuple(s.joint_names[i] for i in m) == d.joint_names
    X = np.arange(s.num_joints * 3, dtype=np.float32).reshape(1, s.num_joints, 3)
    Y = skeletons.convert(X, src, dst)
    np.testing.assert_array_equal(Y[0], X[0, m])
    np.testing.assert_array_equal(skeletons.convert(torch.as_tensor(X), src, dst).numpy(), Y)
    # the mapping commutes with mirroring
    np.testing.assert_array_equal(skeletons.convert(s.flip(X), src, dst), d.flip(Y))


def test_mapping_identity_and_missing():
    for n in ALL:
        assert skeletons.mapping(n, n).tolist() == list(range(EXPECTED_COUNTS[n]))
    with pytest.raises(ConfigError, match="no exact joint mapping"):
        skeletons.mapping("h36m_17", "smpl_24")
    with pytest.raises(ConfigError):
        skeletons.mapping("h36m_17", "nope")
    with pytest.raises(ValueError):
        skeletons.convert(np.zeros((17, 3)), "h36m_32", "h36m_17")


def test_register_and_validation():
    s = Skeleton(
        name="test_tri",
        joint_names=("pelvis", "lhip", "rhip"),
        parents=(-1, 0, 0),
        edges=((0, 1), (0, 2)),
        mirror=skeletons.mirror_by_name(("pelvis", "lhip", "rhip")),
        root=0,
    )
    assert s.mirror == (0, 2, 1)
    skeletons.register(s)
    try:
        assert skeletons.get("test_tri") is s
        assert "test_tri" in skeletons.names()
        skeletons.register(s)  # identical: fine
        other = Skeleton("test_tri", ("a",), (-1,), (), (0,), 0)
        with pytest.raises(ConfigError):
            skeletons.register(other)
    finally:
        skeletons._REGISTRY.pop("test_tri", None)
    with pytest.raises(ConfigError, match="cycle"):
        Skeleton("bad", ("a", "b", "c"), (-1, 2, 1), (), (0, 1, 2), 0)
    with pytest.raises(ConfigError, match="involution"):
        Skeleton("bad", ("a", "b", "c"), (-1, 0, 1), (), (1, 2, 0), 0)
    with pytest.raises(ConfigError, match="edge"):
        Skeleton("bad", ("a", "b"), (-1, 0), ((0, 5),), (0, 1), 0)
    with pytest.raises(ConfigError, match="root"):
        Skeleton("bad", ("a", "b"), (-1, 0), (), (0, 1), 1)
