"""The lifter exported (models/portable.py, posebridge export): onnxruntime and TorchScript equal
PyTorch's ``lift`` within 1e-4 of the network's output (metres) on a 1,000-frame sequence, for a
centred and a causal model, with and without flip averaging; and streaming (inference/stream.py)
equals the offline causal output within 1e-5."""

import json

import numpy as np
import pytest
import torch

from posebridge import cli
from posebridge.errors import ConfigError
from posebridge.data.keypoints import InputCodec
from posebridge.geometry import skeletons
from posebridge.inference.lift import LiftingModel, lift, lift_network_input
from posebridge.inference.stream import StreamingLifter, stream_lift
from posebridge.models.lifter import MM_PER_UNIT, SeparateHeadLifter
from posebridge.models.portable import PortableLifter, export_lifter

FORMATS = ["h36m_17", "smpl_24", "coco_19"]
FRAMES = 1000


def _lifter(causal, widths=(3, 3, 3), channels=128, seed=0, **kwargs):
    """A lifter with random weights and BatchNorm statistics (eval mode)."""
    torch.manual_seed(seed)
    lifter = SeparateHeadLifter(FORMATS, filter_widths=widths, channels=channels, causal=causal, **kwargs)
    with torch.no_grad():
        for bn in [lifter.temporal.expand_bn, *lifter.temporal.layers_bn]:
            bn.running_mean.normal_(0, 0.2)
            bn.running_var.uniform_(0.3, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.1)
    return lifter.eval()


def _placed_lifter(causal, **kwargs):
    """A lifter reading camera rays whose output joints are placed on them (models.rays, the default)."""
    return _lifter(causal, codec=InputCodec("camera", "visible"), placement="rays", **kwargs)


def _inputs(frames=FRAMES, seed=1):
    """(T, 17, 3) network input: screen coordinates in [-1, 1] moving smoothly, confidences."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.01, (frames, 17, 2)), axis=0) + rng.uniform(-0.5, 0.5, (1, 17, 2))
    return np.concatenate([walk, rng.uniform(0, 1, (frames, 17, 1))], axis=2).astype(np.float32)


def _reference(lifter, x, flip):
    """``lift``'s computation on network input: (T, J_union, 3) mm, each format root-relative."""
    model = LiftingModel.from_lifter(lifter)
    out = lift_network_input(model, x, flip=flip)
    parts = [out[:, s] - out[:, s.start + skeletons.get(f).root][:, None] for f, s in lifter.slices.items()]
    return torch.cat(parts, dim=1).numpy() * MM_PER_UNIT


@pytest.fixture(scope="module", params=["centred", "causal", "causal_rays"])
def exported(request, tmp_path_factory):
    causal = request.param != "centred"
    lifter = _placed_lifter(causal) if request.param.endswith("rays") else _lifter(causal)
    folder = tmp_path_factory.mktemp("export")
    for fmt, name in (("onnx", "lifter.onnx"), ("torchscript", "lifter.pt")):
        export_lifter(lifter, folder / name, fmt)
    return lifter, folder


def test_onnxruntime_equals_pytorch_on_1000_frames(exported):
    ort = pytest.importorskip("onnxruntime")
    lifter, folder = exported
    x = _inputs()
    session = ort.InferenceSession(str(folder / "lifter.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["network_input"]
    assert [o.name for o in session.get_outputs()] == ["poses_mm"]
    out = session.run(None, {"network_input": x[None]})[0][0]
    reference = _reference(lifter, x, flip=True)
    assert out.shape == (FRAMES, lifter.num_joints_out, 3)
    assert np.abs(out - reference).max() / MM_PER_UNIT < 1e-4  # metres, the network's output unit
    # another length and a batch of two: the frame and batch axes are dynamic
    short = session.run(None, {"network_input": np.stack([x[:7], x[7:14]])})[0]
    assert np.abs(short[1] - _reference(lifter, x[7:14], flip=True)).max() / MM_PER_UNIT < 1e-4


def test_torchscript_equals_pytorch_on_1000_frames(exported):
    lifter, folder = exported
    x = _inputs()
    scripted = torch.jit.load(str(folder / "lifter.pt"))
    with torch.no_grad():
        out = scripted(torch.from_numpy(x)[None])[0].numpy()
        short = scripted(torch.from_numpy(x[:5])[None])[0].numpy()
    assert np.abs(out - _reference(lifter, x, flip=True)).max() / MM_PER_UNIT < 1e-4
    assert np.abs(short - _reference(lifter, x[:5], flip=True)).max() / MM_PER_UNIT < 1e-4


def test_sidecar_describes_names_shapes_and_formats(exported):
    lifter, folder = exported
    sidecar = json.loads((folder / "lifter.onnx.json").read_text())
    assert sidecar["input"]["name"] == "network_input" and sidecar["input"]["shape"] == ["batch", "frames", 17, 3]
    assert sidecar["output"]["shape"] == ["batch", "frames", lifter.num_joints_out, 3]
    assert [f["name"] for f in sidecar["formats"]] == FORMATS and sidecar["flip_averaging"] is True
    assert sidecar["causal"] == lifter.temporal.causal and sidecar["receptive_field"] == 27


@pytest.mark.parametrize("flip", [True, False])
def test_portable_module_without_flip_and_with_an_output_map(flip):
    lifter = _lifter(False, output_map=torch.rand(40, 17 + 24 + 19))
    x = _inputs(200)
    with torch.no_grad():
        out = PortableLifter(lifter, flip=flip)(torch.from_numpy(x)[None])[0].numpy()
    assert np.abs(out - _reference(lifter, x, flip=flip)).max() / MM_PER_UNIT < 1e-5


@pytest.mark.parametrize("widths", [(3, 3, 3), (1, 5, 3), (3, 3, 3, 3)])
@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("placement", ["free", "rays"])
def test_streaming_equals_offline_causal_output(widths, flip, placement):
    lifter = (_placed_lifter if placement == "rays" else _lifter)(True, widths=widths, channels=64)
    model = LiftingModel.from_lifter(lifter)
    x = _inputs(300)
    streamer = StreamingLifter(model, flip=flip)
    streamed = torch.stack([streamer.push(frame) for frame in x])
    assert (streamed - lift_network_input(model, x, flip=flip)).abs().max() < 1e-5  # metres
    streamer.reset()  # a new sequence starts afresh
    again = torch.stack([streamer.push(frame) for frame in x[:50]])
    assert (again - lift_network_input(model, x[:50], flip=flip)).abs().max() < 1e-5


def test_stream_lift_equals_lift_on_keypoints():
    model = LiftingModel.from_lifter(_lifter(True, channels=64))
    rng = np.random.default_rng(2)
    keypoints = np.concatenate([rng.uniform(0, 640, (120, 17, 2)), rng.uniform(0, 1, (120, 17, 1))], axis=2)
    offline, streamed = lift(model, keypoints, 640, 480), stream_lift(model, keypoints, 640, 480)
    for fmt in FORMATS:
        assert np.abs(offline[fmt] - streamed[fmt]).max() / MM_PER_UNIT < 1e-5


def test_streaming_refuses_a_centred_model():
    with pytest.raises(ConfigError, match="not causal"):
        StreamingLifter(LiftingModel.from_lifter(_lifter(False, channels=16)))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_ensemble_exports_as_one_graph_averaging_its_members(tmp_path, fmt):
    from posebridge.inference.ensemble import write_ensemble

    first = _placed_lifter(False, channels=32, seed=0)
    torch.manual_seed(4)
    other_order = SeparateHeadLifter(FORMATS[::-1], filter_widths=(3, 3), channels=32,
                                     codec=InputCodec("camera", "visible"), placement="rays").eval()
    dirs = []
    for name, lifter in (("a", first), ("b", other_order)):
        (tmp_path / name).mkdir()
        torch.save(lifter.file_dict(), tmp_path / name / "model.pt")
        dirs.append(tmp_path / name)
    write_ensemble(dirs, tmp_path / "ens")
    output = tmp_path / f"ens.{fmt}"
    assert cli.main(["export", str(tmp_path / "ens"), "--format", fmt, "--output", str(output)]) == 0
    x = _inputs(300)
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
        out = session.run(None, {"network_input": x[None]})[0][0]
    else:
        with torch.no_grad():
            out = torch.jit.load(str(output))(torch.from_numpy(x)[None])[0].numpy()
    # each member's own computation, the second re-laid format by format as the first's
    a, b = _reference(first, x, flip=True), _reference(other_order, x, flip=True)
    b = np.concatenate([b[:, other_order.slices[f]] for f in FORMATS], axis=1)
    assert np.abs(out - (a + b) / 2).max() / MM_PER_UNIT < 1e-4
    assert np.abs(out - a).max() / MM_PER_UNIT > 1e-3  # both members count
    sidecar = json.loads((tmp_path / f"ens.{fmt}.json").read_text())
    assert sidecar["ensemble"] == ["a", "b"] and [f["name"] for f in sidecar["formats"]] == FORMATS
    assert sidecar["receptive_field"] == 27 and sidecar["frames_before_after"] == [13, 13]


def test_export_and_predict_stream_commands(tmp_path, capsys):
    lifter = _lifter(True, channels=32)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    torch.save(lifter.file_dict(), model_dir / "model.pt")
    assert cli.main(["export", str(model_dir), "--format", "torchscript"]) == 0
    assert (model_dir / "lifter.torchscript.pt").exists() and (model_dir / "lifter.torchscript.pt.json").exists()
    rng = np.random.default_rng(3)
    keypoints = np.concatenate([rng.uniform(100, 500, (40, 17, 2)), np.ones((40, 17, 1))], axis=2)
    np.savez(tmp_path / "kp.npz", keypoints=keypoints, width=640, height=480)
    for extra, name in (([], "offline.npz"), (["--stream"], "streamed.npz")):
        assert cli.main(["predict", "--model", str(model_dir), "--keypoints", str(tmp_path / "kp.npz"),
                         "--output", str(tmp_path / name), *extra]) == 0
    assert "frames/s" in capsys.readouterr().out
    offline, streamed = np.load(tmp_path / "offline.npz"), np.load(tmp_path / "streamed.npz")
    for fmt in FORMATS:
        assert np.abs(offline[fmt] - streamed[fmt]).max() < 1e-2  # mm
