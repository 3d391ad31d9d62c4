"""Left/right swap repair of 2D detections (``sources.detectors.sides``)."""

import numpy as np
import pytest

from posebridge.data import store
from posebridge.geometry import skeletons
from posebridge.sources.detectors import clean_track
from posebridge.sources.detectors.sides import MIXED, PRIOR, SWITCH, SWITCH_GROUP, repair_sides, side_groups
from posebridge.sources.synth import generate as G

MIRROR = np.array(skeletons.get("coco_17").mirror)
SPEC = {"template": "video", "rig": "varied", "cameras": 2, "train_subjects": 0, "test_subjects": 1,
        "takes_per_action": 1, "seconds_per_take": 4.0,
        "actions": ["turning", "dancing", "cartwheel", "lunging", "crawling", "kicking"]}


@pytest.fixture(scope="module")
def exact_takes(tmp_path_factory):
    """(exact COCO-17 projections (T, 17, 3), sequence name) of synthetic takes."""
    path = tmp_path_factory.mktemp("sides") / "synth.h5"
    G.generate_dataset("synth_sides", SPEC, "test", 3, path)
    out = []
    with store.open_dataset(path) as ds:
        for _, row in ds.index.iterrows():
            truth = ds.sequence_extra("coco_17", row["sequence"]).astype(np.float64)
            camera = ds.camera_for(row)
            uv = camera.project(truth)
            out.append((np.concatenate([uv, np.ones(uv.shape[:2] + (1,))], -1), row["sequence"]))
    return out


def _apart(keypoints, t, joints):
    """How far the joints lie from their mirrors in frame t (x the keypoints' box diagonal): a
    swap starting there makes them jump this far."""
    span = np.ptp(keypoints[t, :, :2], axis=0)
    return np.linalg.norm(keypoints[t, joints, :2] - keypoints[t, MIRROR[joints], :2], axis=-1).mean() / np.hypot(*span)


def _swap(keypoints, frames, joints):
    out = keypoints.copy()
    out[np.ix_(frames, joints)] = keypoints[np.ix_(frames, MIRROR[joints])]
    return out


def test_groups_of_coco_and_of_a_format_without_a_face():
    groups = side_groups("coco_17")
    assert list(groups) == ["face", "arms", "legs"]
    assert [list(v[0]) for v in groups.values()] == [[1, 3], [5, 7, 9], [11, 13, 15]]
    assert [list(v[1]) for v in groups.values()] == [[2, 4], [6, 8, 10], [12, 14, 16]]
    names = skeletons.get("h36m_17").joint_names
    assert "face" not in side_groups("h36m_17")
    assert [names[j] for j in side_groups("h36m_17")["legs"][0]] == ["lhip", "lknee", "lankle"]


def test_exact_motion_is_left_alone(exact_takes):
    """Turns, spins, cartwheels, crawling: the body's own motion never reads as a swap."""
    for keypoints, sequence in exact_takes:
        assert np.array_equal(repair_sides(keypoints), keypoints), sequence


GROUP_JOINTS = {"face": np.array([1, 2, 3, 4]), "arms": np.array([5, 6, 7, 8, 9, 10]),
                "legs": np.array([11, 12, 13, 14, 15, 16])}


@pytest.mark.parametrize("groups", [("face", "arms", "legs"), ("arms",), ("legs",)])
def test_a_swap_whose_start_and_end_jump_is_swapped_back(exact_takes, groups):
    """A swap is undone wherever the jump it makes at either end costs more than twice what
    undoing it costs (switching there plus half of its frames' swapped and mixed costs)."""
    frames = 12
    limbs = [g for g in groups if g != "face"]
    per_end = (SWITCH + SWITCH_GROUP * len(groups)
               + frames * (sum(PRIOR[g] for g in groups) + MIXED * (len(limbs) == 1)) / 2)
    joints = np.concatenate([GROUP_JOINTS[g] for g in groups])
    repaired = 0
    for keypoints, sequence in exact_takes:
        starts = [t for t in range(5, len(keypoints) - frames - 5)
                  if all(min(_apart(keypoints, t, GROUP_JOINTS[g]), _apart(keypoints, t + frames, GROUP_JOINTS[g]))
                         > 2 * per_end for g in limbs)]
        if not starts:
            continue
        start = starts[len(starts) // 2]
        out = repair_sides(_swap(keypoints, np.arange(start, start + frames), joints))
        assert np.allclose(out[:, 5:], keypoints[:, 5:]), sequence
        # the face's keypoints lie close together: where its own jump is small it may stay swapped
        assert np.allclose(out[:, 1:5], keypoints[:, 1:5]) or "face" in groups, sequence
        repaired += 1
    assert repaired >= 4


def _walker(T=60):
    """A person 400 px tall walking right, left keypoints 40 px to the left of the right ones."""
    keypoints = np.ones((T, 17, 3))
    keypoints[..., 0] = 300 + 4 * np.arange(T)[:, None] + np.where(np.arange(17) % 2, -20.0, 20.0)
    keypoints[..., 1] = np.linspace(100, 500, 17)
    return keypoints


def test_the_labelling_of_most_frames_wins():
    walker = _walker()
    body = np.arange(1, 17)
    middle = np.arange(20, 40)
    assert np.allclose(repair_sides(_swap(walker, middle, body)), walker)
    # mirrored everywhere but the middle third: the detector's majority labelling is the mirrored one
    mostly = _swap(walker, np.r_[0:20, 40:60], body)
    assert np.allclose(repair_sides(mostly), _swap(walker, np.arange(60), body))


def test_a_swap_starting_across_lost_frames_is_found_and_the_lost_frames_stay_lost():
    walker = _walker()
    swapped = _swap(walker, np.arange(26, 45), np.arange(1, 17))
    swapped[20:26] = 0
    swapped[30, 9] = 0  # a missed wrist inside the swap stays missed
    expected = walker.copy()
    expected[20:26] = 0
    expected[30, 10] = 0  # ... it is the right wrist once the sides are swapped back
    assert np.allclose(repair_sides(swapped), expected)


def test_edge_cases_keep_the_input():
    assert repair_sides(np.zeros((0, 17, 3))).shape == (0, 17, 3)
    assert np.array_equal(repair_sides(np.zeros((5, 17, 3))), np.zeros((5, 17, 3)))
    one = np.random.default_rng(0).uniform(0, 500, (1, 17, 3))
    assert np.array_equal(repair_sides(one), one)


def test_clean_track_repairs_unless_told_not_to():
    swapped = _swap(_walker().astype(np.float32), np.arange(20, 40), np.arange(1, 17))
    assert np.allclose(clean_track(swapped, max_gap=5), _walker(), atol=1e-3)
    assert np.array_equal(clean_track(swapped, max_gap=5, repair_sides=False), swapped)
