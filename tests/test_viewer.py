"""posebridge.reporting.viewer and `posebridge viewer`: the interactive 3D viewer of predictions
against ground truth, its offline HTML page, and (with Debian's chromium) that the page renders
in a real headless browser."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from posebridge import atomic, cli
from posebridge.data.detections import read_detections
from posebridge.data.store import open_dataset
from posebridge.errors import DataError
from posebridge.reporting.viewer import viewer_figure, viewer_sequence, write_viewer
from test_inference import make_model
from test_train import write_toy_dataset

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A toy dataset with detections and two real (random-weight) models saved as model dirs."""
    root = tmp_path_factory.mktemp("viewer")
    dataset, detections = write_toy_dataset(root)
    dirs = []
    for seed, name in ((0, "first"), (1, "second")):
        model = make_model(seed=seed)
        atomic.torch_save(root / name / "model.pt", model.lifter.file_dict({"h36m_17": np.zeros((17, 3))}))
        dirs.append(root / name)
    return root, dataset, detections, dirs


def _models(dirs):
    from posebridge.inference.lift import load_model

    return [load_model(d) for d in dirs]


def test_sequence_frames_ground_truth_and_figure(toy):
    from posebridge.evaluation.evaluate import ground_truth, test_rows

    _, dataset_path, detections_path, dirs = toy
    models = _models(dirs)
    with open_dataset(dataset_path) as dataset, read_detections(detections_path) as detections:
        data = viewer_sequence(models, dataset, detections, max_frames=10, stride=3)
        row = test_rows(dataset).iloc[0]
        from posebridge.evaluation.evaluate import evaluated_formats

        truth = ground_truth(dataset, row, evaluated_formats(dataset, ["h36m_17"]), int(row["frames"]))["h36m_17"]
    assert data.skeleton == "h36m_17" and list(data.frames) == list(range(0, 30, 3))
    np.testing.assert_allclose(data.ground_truth, truth[::3][:10])
    assert list(data.predictions) == ["first", "second"]
    assert not np.allclose(data.predictions["first"], data.predictions["second"])
    assert np.allclose(data.predictions["first"][:, 0], 0)  # root-relative

    fig = viewer_figure(data)
    assert len(fig.data) == 3 and len(fig.frames) == 10
    assert [t.name.split(" (")[0] for t in fig.data] == ["ground truth", "first", "second"]
    assert len(fig.layout.sliders[0].steps) == 10 and fig.layout.sliders[0].steps[4].label == "12"
    # every frame's points inside the fixed axes, which are one cube
    ranges = [fig.layout.scene[a].range for a in ("xaxis", "yaxis", "zaxis")]
    assert len({round(hi - lo, 6) for lo, hi in ranges}) == 1
    for frame in fig.frames:
        for trace in frame.data:
            for values, (lo, hi) in zip((trace.x, trace.y, trace.z), ranges):
                finite = np.asarray(values, float)[np.isfinite(np.asarray(values, float))]
                assert lo <= finite.min() and finite.max() <= hi
    # the note gives each model's error in the current frame, one line each
    note = fig.frames[2].layout.annotations[0].text.split("<br>")
    assert note[0] == "frame 6" and note[1].startswith("first: ") and note[2].startswith("second: ")
    error = np.linalg.norm(data.predictions["second"][2] - data.ground_truth[2], axis=-1).mean()
    assert note[2] == f"second: {error:.0f} mm"


def test_command_writes_an_offline_page(toy, capsys):
    root, dataset, detections, dirs = toy
    out = root / "page" / "viewer.html"
    assert cli.main(["viewer", "--model", *map(str, dirs), "--dataset", str(dataset), "--detections",
                     str(detections), "--output", str(out), "--device", "cpu", "--max-frames", "5"]) == 0
    assert "5 frames, 2 model(s)" in capsys.readouterr().out
    page = out.read_text()
    assert "<script src=" not in page  # plotly.js is inline: the page opens without a network
    assert "plotly-graph-div" in page and "Plotly.newPlot" in page and len(page) > 1_000_000
    assert not [p for p in out.parent.iterdir() if p != out]  # written atomically, nothing left over

    for argv, named in ((["--sequence", "nope"], "nope"), (["--camera", "c9"], "c9"),
                        (["--format", "smpl_24"], "smpl_24"), (["--max-frames", "0"], "--max-frames")):
        bad = root / "page" / "bad.html"
        assert cli.main(["viewer", "--model", str(dirs[0]), "--dataset", str(dataset), "--detections",
                         str(detections), "--output", str(bad), "--device", "cpu", *argv]) == 1
        err = capsys.readouterr().err
        assert named in err and len(err.strip().splitlines()) == 1 and not bad.exists()


def test_no_test_rows_or_shared_format_is_a_data_error(toy):
    _, dataset_path, detections_path, dirs = toy
    with open_dataset(dataset_path) as dataset, read_detections(detections_path) as detections:
        with pytest.raises(DataError, match="no test row with sequence 'seq0'"):
            viewer_sequence(_models(dirs), dataset, detections, sequence="seq0")  # a training take


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium) "
                                              "to load the page in a real headless browser")
def test_headless_chromium_renders_the_page(toy, tmp_path):
    """The page loads in chromium without a network: plotly builds its 3D scene, slider and
    buttons (DOM), and the screenshot shows the skeletons (dark bone pixels in the scene)."""
    from PIL import Image

    _, dataset_path, detections_path, dirs = toy
    with open_dataset(dataset_path) as dataset, read_detections(detections_path) as detections:
        data = viewer_sequence(_models(dirs), dataset, detections, max_frames=8)
    page = tmp_path / "viewer.html"
    write_viewer(page, viewer_figure(data))
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,860", "--virtual-time-budget=6000"]
    dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180).stdout
    assert 'class="js-plotly-plot"' in dom or "js-plotly-plot" in dom
    assert "gl-container" in dom and "slider-container" in dom and "updatemenu-button" in dom
    assert "Prediction vs ground truth" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(base + [f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180)
    image = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert image.shape[:2] == (860, 1200) and image.std() > 10  # not blank
    scene = image[150:650, 300:900]
    dark = (scene.max(axis=-1) < 80).mean()  # the ground truth's black bones, drawn by WebGL
    assert dark > 0.0005, f"no skeleton drawn in the scene ({dark:.5f} of its pixels dark)"
