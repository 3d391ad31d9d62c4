"""Several people: identities over time (posebridge.inference.tracking) on made-up people, the
several-people infer path (one output per person, one colour per person) and the person detector
on a real video with two people (sports2d's demo.mp4)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from posebridge.inference.tracking import link, track_people
from posebridge.sources.detectors.tracks import keypoint_distance as distance

from test_detectors import needs_mediapipe
from test_infer import StubModel, _blank_video, _random_model_dir


def walker(frames: int, start, velocity, size=100.0, seed=0) -> np.ndarray:
    """(frames, 17, 3) a fixed random 17-point body of ``size`` px moving at ``velocity`` px/frame."""
    body = np.random.default_rng(seed).uniform(-0.5, 0.5, (17, 2)) * [0.5 * size, size]
    centre = np.asarray(start, float) + np.arange(frames)[:, None] * np.asarray(velocity, float)
    xy = centre[:, None] + body[None]
    return np.concatenate([xy, np.full((frames, 17, 1), 0.9)], axis=-1).astype(np.float32)


def frames_of(*people: np.ndarray, seed=0) -> np.ndarray:
    """(T, P, 17, 3) the people in shuffled slots on every frame (a detector has no order)."""
    rng = np.random.default_rng(seed)
    stacked = np.stack(people, axis=1)
    return np.stack([frame[rng.permutation(len(people))] for frame in stacked])


def centres_x(track: np.ndarray) -> np.ndarray:
    seen = track[..., 2] > 0
    return np.where(seen.any(axis=1), (track[..., 0] * seen).sum(axis=1) / np.maximum(seen.sum(axis=1), 1), np.nan)


def crossing(T=51):
    """Two people of the same build, one walking right at 10 px/frame, one left at 6 px/frame,
    at the same place at frame 25."""
    return walker(T, (100, 300), (10, 0), seed=1), walker(T, (500, 300), (-6, 0), seed=1)


def test_crossing_paths_keep_their_identities():
    right, left = crossing()
    tracks = track_people(frames_of(right, left), max_gap=5)
    assert tracks.shape == (2, 51, 17, 3)
    directions = sorted(np.sign(np.diff(centres_x(track))).mean() for track in tracks)
    assert directions == [-1.0, 1.0]  # each track moves one way throughout: nobody swapped
    for track in tracks:
        assert np.allclose(track, right) or np.allclose(track, left)


def test_without_velocity_a_crossing_would_be_ambiguous():
    # the check above can fail: right after the crossing, position alone prefers the wrong person
    right, left = crossing()
    assert distance(right[25], left[26]) < distance(right[25], right[26])


def test_a_short_gap_is_filled_a_longer_one_keeps_the_identity_a_long_one_does_not():
    T = 30
    person = walker(T, (100, 200), (4, 1))
    short = person.copy()
    short[10:13] = 0  # 3 missed frames
    tracks = track_people(short[:, None], max_gap=5)
    assert len(tracks) == 1 and (tracks[0][..., 2] > 0).all()
    assert np.allclose(tracks[0][11, :, :2], person[11, :, :2], atol=1e-3)  # linear motion: exact
    hidden = person.copy()
    hidden[10:18] = 0  # 8 missed frames > max_gap: the same person, not filled in
    tracks = track_people(hidden[:, None], max_gap=5, link_gap=10)
    assert len(tracks) == 1 and np.array_equal((tracks[0][..., 2] > 0).all(axis=1), hidden[:, 0, 2] > 0)
    gone = walker(40, (100, 200), (4, 1))
    gone[10:22] = 0  # 12 missed frames > link_gap: another track
    tracks = track_people(gone[:, None], max_gap=5, link_gap=10)
    assert len(tracks) == 2 and {int(np.flatnonzero(t[:, 0, 2] > 0)[0]) for t in tracks} == {0, 22}


def test_brief_detections_are_dropped_and_tracks_ordered_by_evidence():
    T = 20
    small = walker(T, (400, 100), (0, 0), size=60, seed=3)
    large = walker(T, (100, 300), (2, 0), size=200, seed=4)
    ghost = np.zeros((T, 17, 3), np.float32)
    ghost[5:8] = walker(3, (700, 500), (0, 0), size=80, seed=5)  # 3 frames: not a person
    people = frames_of(small, large, ghost)
    assert len(link(people)) == 3
    tracks = track_people(people, min_frames=5)
    assert len(tracks) == 2 and np.allclose(tracks[0], large) and np.allclose(tracks[1], small)
    only = track_people(people, max_tracks=1)
    assert len(only) == 1 and np.allclose(only[0], large)
    assert track_people(np.zeros((4, 1, 17, 3), np.float32)).shape == (0, 4, 17, 3)


def test_infer_people_writes_one_output_per_person_and_renders_each_in_its_colour(tmp_path):
    from PIL import Image

    from posebridge.inference.infer import PERSON_COLORS, infer_people, render_video, write_people

    T = 12
    video = _blank_video(tmp_path / "two.mp4", T)
    people = frames_of(walker(T, (90, 120), (2, 0), size=120, seed=1), walker(T, (230, 110), (-1, 0), size=90, seed=2))
    model = StubModel()
    results = infer_people(video, model, people=people, progress=False, lift=model.lift)
    assert [r.person for r in results] == [1, 2] and len(model.calls) == 2
    assert all(r.valid.all() and np.isfinite(r.poses["h36m_17"]).all() for r in results)
    paths = write_people(results, tmp_path / "out")
    assert [p["npz"].name for p in paths] == ["two_person1_3d.npz", "two_person2_3d.npz"]
    assert int(np.load(paths[1]["npz"])["person"]) == 2
    assert json.loads(paths[0]["json"].read_text())["person"] == 1

    for result, x in zip(results, (-600.0, 600.0)):  # the stub's poses are flat: stand them up,
        result.poses["h36m_17"][..., 1] = np.linspace(-700, 900, 17)  # 1.2 m apart
        result.trajectory[:] = (x, 0.0, 4000.0)
    render_video(results, tmp_path / "r.png", frames=[5], progress=False)
    image = np.asarray(Image.open(tmp_path / "r_000005.png")).astype(int)
    for k in range(2):
        colour = np.array([int(PERSON_COLORS[k][i:i + 2], 16) for i in (1, 3, 5)])
        close = np.abs(image - colour).sum(axis=2) < 30
        assert close[:, :320].sum() > 50 and close[:, 320:].sum() > 20  # 2D and 3D, in its colour


SPORTS2D_DEMO = next(iter(sorted(Path(importlib.util.find_spec("numpy").origin).parents[1].glob(
    "Sports2D/Demo/demo.mp4"))), None)
needs_sports2d = pytest.mark.skipif(SPORTS2D_DEMO is None, reason="sports2d (Demo/demo.mp4) not installed")


@pytest.fixture(scope="module")
def two_people_clip(tmp_path_factory) -> Path:
    """Frames 100-109 of sports2d's demo.mp4: the man standing on the box, the woman walking past
    in front (both in every frame), at half size."""
    import cv2

    from posebridge.data.video import VideoWriter, iter_frames

    path = tmp_path_factory.mktemp("clip") / "two_people.mp4"
    with VideoWriter(path, fps=30) as writer:
        for frame in list(iter_frames(SPORTS2D_DEMO, 110))[100:]:
            writer.write(cv2.resize(frame, (884, 498), interpolation=cv2.INTER_AREA))
    return path


@needs_mediapipe
@needs_sports2d
def test_infer_finds_both_people_of_a_real_clip_with_stable_identities(tmp_path, two_people_clip):
    from posebridge.cli import main

    model = _random_model_dir(tmp_path / "model")
    out = tmp_path / "out"
    assert main(["infer", str(two_people_clip), "--model", str(model), "--output-dir", str(out),
                 "--render", str(out / "r.png"), "--render-frames", "0,9", "--no-progress", "--device", "cpu"]) == 0
    files = sorted(out.glob("two_people_person*_3d.npz"))
    assert len(files) >= 2
    heights = []
    for path in files[:2]:
        data = np.load(path)
        assert data["valid"].sum() >= 8  # in (nearly) every frame
        kp = data["keypoints_2d"][data["valid"]]
        y = np.array([frame[frame[:, 2] > 0.5, 1].mean() for frame in kp])
        heights.append(y)
    # one track is the man on the box (upper half), the other the woman (lower half), throughout
    upper, lower = sorted(heights, key=np.mean)
    assert upper.max() < 249 < lower.min()
    assert (out / "r_000009.png").is_file()


def test_other_people_leave_out_the_main_person_and_keep_the_order_found():
    from posebridge.sources.detectors.people import other_people

    rng = np.random.default_rng(3)
    body = np.concatenate([rng.uniform(0, 200, (17, 2)), np.ones((17, 1))], axis=1)
    a, b, c = body, body + [400, 0, 0], body + [0, 500, 0]
    main = np.stack([a, a, np.zeros_like(a)])  # frame 2: no main person
    nobody = np.zeros_like(a)
    people = np.stack([
        [b, a + [3, -2, 0], c],  # the main person found again (3 px off) is left out
        [a, nobody, nobody],     # only the main person: no others
        [c, b, a],               # no main person: everyone is another person
    ])
    out = other_people(main, people, 2)
    assert out.shape == (3, 2, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [b, c])
    assert not out[1].any()
    np.testing.assert_allclose(out[2], [c, b])  # at most 2, in the order found


@pytest.mark.parametrize("count", [-1, 1.5, "2", True])
def test_the_others_setting_must_be_a_whole_number(count):
    from posebridge.errors import ConfigError
    from posebridge.sources.detectors import detect_others

    with pytest.raises(ConfigError, match="others must be a whole number"):
        detect_others("mediapipe", None, {"others": count}, np.zeros((0, 17, 3)), progress=False)


def test_others_are_only_recorded_when_asked_for():
    from posebridge.sources.detectors import detect_others

    assert detect_others("mediapipe", None, {}, np.zeros((0, 17, 3)), progress=False) is None
    assert detect_others("gt2d", None, {"keypoint_format": "coco_17"}, np.zeros((0, 17, 3)), progress=False) is None
