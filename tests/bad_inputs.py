"""The bad-input corpus: broken and hostile inputs for every command, made by this script.

``make_base(root)`` builds one valid set of artifacts with the real commands (a tiny synthetic
dataset, its detections, a tiny model, pseudo-GT, an autoencoder, a keypoint file, a VideoPose3D
checkpoint); ``make_cases(base, root)`` writes a broken variant of one input per case and returns
the command that must refuse it. Each case names what the one-line error must mention (the file,
or the key) and the outputs that must not appear. ``tests/test_bad_inputs.py`` runs them all.

Run ``python tests/bad_inputs.py DIR`` to write the corpus to DIR and list its cases.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

MARKER_NAME = "payload_ran"  # a pickle payload in the corpus creates this file when it runs


@dataclass
class Case:
    """argv of ``posebridge``; ``named``: text the error must contain; ``outputs``: paths that must
    not exist afterwards (nothing half-written)."""

    id: str
    argv: list[str]
    named: str
    outputs: list[Path] = field(default_factory=list)


class Payload:
    """Unpickling creates ``marker``: what an attacker's code would do when a file is read."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _run(argv):
    from posebridge import cli

    code = cli.main([str(a) for a in argv])
    if code != 0:
        raise RuntimeError(f"building the corpus base failed: posebridge {' '.join(map(str, argv))}")


TINY_SPEC = {"template": "h36m", "train_subjects": 1, "test_subjects": 1, "actions": ["walking", "sitting"],
             "seconds_per_take": 1.0}
TINY_TRAIN = {"epochs": 1, "channels": 16, "filter_widths": [3], "batch_size": 64, "samples_per_epoch": 256,
              "val_windows": 64, "bn_recalibration_batches": 2}


def make_base(root: Path) -> dict[str, Path]:
    """Valid artifacts, each made by the command that makes it in the workflow."""
    import torch

    from posebridge.models.temporal import TemporalModel

    root.mkdir(parents=True, exist_ok=True)
    b = {name: root / rel for name, rel in {
        "dataset": "d.h5", "index": "d.parquet", "detections": "det.h5", "model_dir": "model",
        "pseudo_gt": "pgt.npz", "acae": "acae.pt", "keypoints": "kp.npz", "checkpoint": "vp3d.bin",
        "spec": "spec.json", "prediction": "poses.npz"}.items()}
    _run(["synth", "generate", "--name", "d", "--role", "labeled", "--spec", json.dumps(TINY_SPEC),
          "--output", b["dataset"], "--no-progress"])
    _run(["detect-2d", "--dataset", b["dataset"], "--detector", "simulated", "--output", b["detections"],
          "--no-progress"])
    _run(["train", "--spec", json.dumps(TINY_TRAIN), "--dataset", b["dataset"], "--detections", b["detections"],
          "--out-dir", b["model_dir"], "--checkpoint", root / "ck.pt", "--device", "cpu", "--no-progress"])
    _run(["pseudo-gt", "--model", b["model_dir"], "--dataset", b["dataset"], "--detections", b["detections"],
          "--output", b["pseudo_gt"], "--device", "cpu", "--threads", "1"])
    _run(["fit-acae", "--pseudo-gt", b["pseudo_gt"], "--spec", json.dumps({"epochs": 1, "max_fit_poses": 200}),
          "--output", b["acae"], "--metrics", root / "acae_metrics.parquet", "--history",
          root / "acae_history.parquet", "--device", "cpu", "--no-progress"])
    rng = np.random.default_rng(0)
    keypoints = np.concatenate([rng.uniform(300, 700, (20, 17, 2)), np.ones((20, 17, 1))], -1)
    np.savez(b["keypoints"], keypoints=keypoints.astype(np.float32), width=1000, height=1000)
    _run(["predict", "--model", b["model_dir"], "--keypoints", b["keypoints"], "--output", b["prediction"],
          "--device", "cpu"])
    model = TemporalModel(17, 2, 17, filter_widths=[3, 3], channels=16)
    torch.save({"model_pos": model.state_dict(), "epoch": 1}, b["checkpoint"])
    b["spec"].write_text(json.dumps({"flip_test": True}))
    return b


# ---------------------------------------------------------------------------------------------
# Generic breakages of any file

def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def _truncated(src, dst):
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: len(data) // 2])


def _empty(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(b"")


def _garbage(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(np.random.default_rng(1).bytes(4096))


def _directory(src, dst):
    dst.mkdir(parents=True, exist_ok=True)


GENERIC = {"truncated": _truncated, "empty": _empty, "garbage": _garbage, "directory": _directory}


def _with_index(dataset: Path, dst: Path) -> Path:
    """A copy of the dataset with its index beside it (so only the .h5 is broken)."""
    _copy(dataset.with_suffix(".parquet"), dst.with_suffix(".parquet"))
    return dst


# ---------------------------------------------------------------------------------------------
# Content breakages: valid containers, invalid values

def _edit_h5(src: Path, dst: Path, edit) -> Path:
    _copy(src, dst)
    if src.suffix == ".h5" and src.with_suffix(".parquet").exists():
        _copy(src.with_suffix(".parquet"), dst.with_suffix(".parquet"))
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def _set_values(key, value, where=np.s_[...]):
    def edit(f):
        data = f[key][...]
        data[where] = value
        f[key][...] = data
    return edit


def _set_attr(key, value):
    def edit(f):
        f.attrs[key] = value
    return edit


def _replace(key, array):
    def edit(f):
        del f[key]
        f.create_dataset(key, data=array)
    return edit


DATASET_EDITS = {
    "joints_inf": _set_values("joints_3d", np.inf, np.s_[:, 2, 1]),
    "joints_all_nan": _set_values("joints_3d", np.nan),
    "unknown_skeleton": _set_attr("skeleton", "h36m_99"),
    "wrong_joint_count": lambda f: _replace("joints_3d", np.zeros((len(f["joints_3d"]), 16, 3), np.float32))(f),
    "joints_float64": lambda f: _replace("joints_3d", f["joints_3d"][...].astype(np.float64))(f),
    "camera_nan": _set_values("cameras/t", np.nan, np.s_[0, 1]),
    "role_unknown": _set_attr("role", "pretraining"),
    "format_version": _set_attr("format_version", 99),
    "no_joints": lambda f: f.__delitem__("joints_3d"),
    "distortion_model_unknown": _set_values("cameras/distortion_model", "fisheye", np.s_[0]),
    "annotation_unknown": lambda f: f.create_dataset("annotations/pose_score", data=np.zeros(len(f["joints_3d"]))),
    "annotation_frames": lambda f: f.create_dataset("annotations/activity", data=np.zeros(3, np.int16)),
    "parts_not_json": _set_attr("parts_missing", "S1, S5"),
}

DETECTION_EDITS = {
    "nan": _set_values("keypoints", np.nan, np.s_[:, 3, 0]),
    "inf": _set_values("keypoints", np.inf, np.s_[:, 3, 1]),
    "confidence_7": _set_values("keypoints", 7.0, np.s_[:, 3, 2]),
    "confidence_negative": _set_values("keypoints", -0.5, np.s_[:, 3, 2]),
    "unknown_format": _set_attr("keypoint_format", "coco_99"),
    "wrong_keypoint_count": lambda f: _replace("keypoints", f["keypoints"][:, :16])(f),
    "strings": lambda f: _replace("keypoints", np.full(f["keypoints"].shape[:2], b"x"))(f),
    "other_dataset": _set_attr("dataset", "another"),
    "no_keypoints": lambda f: f.__delitem__("keypoints"),
}


def _keypoint_file_variants(src: Path, root: Path, marker: Path) -> dict[str, Path]:
    with np.load(src) as data:
        good = {k: data[k] for k in data.files}
    kp = good["keypoints"]
    variants = {
        "nan": dict(good, keypoints=np.where(np.arange(3) == 0, np.nan, kp)),
        "inf": dict(good, keypoints=np.where(np.arange(3) == 1, np.inf, kp)),
        "confidence_7": dict(good, keypoints=np.where(np.arange(3) == 2, 7.0, kp)),
        "wrong_shape": dict(good, keypoints=kp[:, :12]),
        "one_dim": dict(good, keypoints=kp.reshape(-1)),
        "strings": dict(good, keypoints=np.full(kp.shape, "x")),
        "no_width": {k: v for k, v in good.items() if k != "width"},
        "negative_width": dict(good, width=-5),
        "no_keypoints": {k: v for k, v in good.items() if k != "keypoints"},
        "empty_frames": dict(good, keypoints=kp[:0]),
    }
    out = {}
    for name, arrays in variants.items():
        out[name] = root / "keypoints" / f"{name}.npz"
        out[name].parent.mkdir(parents=True, exist_ok=True)
        np.savez(out[name], **arrays)
    out["payload"] = root / "keypoints" / "payload.npz"
    np.savez(out["payload"], keypoints=np.array(Payload(marker), dtype=object), width=1000, height=1000)
    return out


def _model_variants(model_dir: Path, root: Path, marker: Path) -> dict[str, Path]:
    import torch

    payload = torch.load(model_dir / "model.pt", weights_only=True)
    out = {}

    def write(name, obj, raw=False):
        out[name] = root / "models" / name
        out[name].mkdir(parents=True, exist_ok=True)
        if raw:
            (out[name] / "model.pt").write_bytes(obj)
        else:
            torch.save(obj, out[name] / "model.pt")

    key = next(k for k in payload["state_dict"] if k.endswith("weight"))
    write("nan_weights", dict(payload, state_dict={**payload["state_dict"],
                                                   key: torch.full_like(payload["state_dict"][key], float("nan"))}))
    write("wider", dict(payload, architecture={**payload["architecture"],
                                               "channels": payload["architecture"]["channels"] * 2}))
    write("no_state", {k: v for k, v in payload.items() if k != "state_dict"})
    write("bad_placement", dict(payload, output_placement="sideways"))
    write("not_a_dict", [1, 2, 3])
    write("pickle_payload", {"state_dict": Payload(marker), "architecture": {}, "formats": [], "input": {}})
    write("garbage", np.random.default_rng(2).bytes(2048), raw=True)
    write("empty", b"", raw=True)
    out["missing"] = root / "models" / "missing"
    return out


def _npz_variants(src: Path, root: Path, marker: Path, what: str, required: list[str]) -> dict[str, Path]:
    with np.load(src) as data:
        good = {k: data[k] for k in data.files}
    out = {}
    for key in required[:2]:
        out[f"no_{key}"] = root / what / f"no_{key}.npz"
        out[f"no_{key}"].parent.mkdir(parents=True, exist_ok=True)
        np.savez(out[f"no_{key}"], **{k: v for k, v in good.items() if k != key})
    first = required[0]
    out["nan"] = root / what / "nan.npz"
    np.savez(out["nan"], **dict(good, **{first: np.full_like(good[first], np.nan, dtype=np.float32)}))
    out["payload"] = root / what / "payload.npz"
    np.savez(out["payload"], **dict(good, **{first: np.array(Payload(marker), dtype=object)}))
    return out


# ---------------------------------------------------------------------------------------------
# The cases

def _commands(b: dict[str, Path], root: Path):
    """Per input slot: (command argv builder taking the broken path, output paths)."""
    out = root / "out"
    evaluate = lambda model=b["model_dir"], dataset=b["dataset"], det=b["detections"], spec=b["spec"]: [
        "evaluate", "--model", model, "--dataset", dataset, "--detections", det, "--spec", spec,
        "--output", out / "eval.parquet", "--device", "cpu", "--no-progress"]
    predict = lambda model=b["model_dir"], kp=b["keypoints"]: [
        "predict", "--model", model, "--keypoints", kp, "--output", out / "poses.npz", "--device", "cpu"]
    pseudo = lambda model=b["model_dir"], dataset=b["dataset"], det=b["detections"]: [
        "pseudo-gt", "--model", model, "--dataset", dataset, "--detections", det, "--output", out / "pgt.npz",
        "--device", "cpu"]
    fit = lambda pgt=b["pseudo_gt"]: [
        "fit-acae", "--pseudo-gt", pgt, "--spec", json.dumps({"epochs": 1}), "--output", out / "acae.pt",
        "--metrics", out / "m.parquet", "--history", out / "h.parquet", "--device", "cpu", "--no-progress"]
    consistency = lambda model=b["model_dir"], acae=b["acae"]: [
        "consistency", "--model", model, "--dataset", b["dataset"], "--detections", b["detections"],
        "--acae", acae, "--output", out / "c.parquet", "--device", "cpu"]
    detect = lambda dataset=b["dataset"]: [
        "detect-2d", "--dataset", dataset, "--detector", "simulated", "--output", out / "det.h5", "--no-progress"]
    train = lambda dataset=b["dataset"], det=b["detections"], spec=json.dumps(TINY_TRAIN): [
        "train", "--spec", spec, "--dataset", dataset, "--detections", det, "--out-dir", out / "model",
        "--checkpoint", out / "ck.pt", "--device", "cpu", "--no-progress"]
    imp = lambda ckpt=b["checkpoint"]: ["import-videopose3d", ckpt, "--out-dir", out / "imported"]
    export = lambda model=b["model_dir"], fmt="onnx": [
        "export", model, "--format", fmt, "--output", out / "lifter.onnx"]
    motion = lambda pred=b["prediction"], fmt="bvh", *extra: [
        "export-motion", pred, "--format", fmt, "--skeleton", "all", "--output-dir", out / "motion", *extra]
    viewer = lambda model=b["model_dir"], dataset=b["dataset"], det=b["detections"], extra=(): [
        "viewer", "--model", model, "--dataset", dataset, "--detections", det, "--output", out / "viewer.html",
        "--device", "cpu", *extra]
    outputs = {"evaluate": [out / "eval.parquet"], "predict": [out / "poses.npz"], "pseudo": [out / "pgt.npz"],
               "fit": [out / "acae.pt", out / "m.parquet"], "consistency": [out / "c.parquet"],
               "detect": [out / "det.h5"], "train": [out / "model" / "model.pt"],
               "import": [out / "imported" / "model.pt"],
               "export": [out / "lifter.onnx", out / "lifter.onnx.json"], "motion": [out / "motion"],
               "viewer": [out / "viewer.html"]}
    return dict(evaluate=evaluate, predict=predict, pseudo=pseudo, fit=fit, consistency=consistency,
                detect=detect, train=train, imp=imp, export=export, motion=motion, viewer=viewer), outputs


def make_cases(b: dict[str, Path], root: Path) -> list[Case]:
    """Every case; the broken files are written under ``root``."""
    marker = root / MARKER_NAME
    cmd, outs = _commands(b, root)
    cases: list[Case] = []

    def add(case_id, argv, named, outputs):
        cases.append(Case(case_id, [str(a) for a in argv], str(named), list(outputs)))

    # generic breakage of each file kind, through the commands that read it
    for kind, make in GENERIC.items():
        ds = _with_index(b["dataset"], root / "datasets" / kind / "d.h5")
        make(b["dataset"], ds)
        add(f"dataset:{kind}:evaluate", cmd["evaluate"](dataset=ds), ds, outs["evaluate"])
        add(f"dataset:{kind}:detect-2d", cmd["detect"](dataset=ds), ds, outs["detect"])
        add(f"dataset:{kind}:train", cmd["train"](dataset=ds), ds, outs["train"])
        det = root / "detections" / kind / "det.h5"
        make(b["detections"], det)
        add(f"detections:{kind}:evaluate", cmd["evaluate"](det=det), det, outs["evaluate"])
        add(f"detections:{kind}:train", cmd["train"](det=det), det, outs["train"])
        add(f"detections:{kind}:pseudo-gt", cmd["pseudo"](det=det), det, outs["pseudo"])
        add(f"detections:{kind}:viewer", cmd["viewer"](det=det), det, outs["viewer"])
        index = root / "indexes" / kind / "d.h5"
        _copy(b["dataset"], index)
        make(b["index"], index.with_suffix(".parquet"))
        add(f"index:{kind}:evaluate", cmd["evaluate"](dataset=index), index.with_suffix(".parquet"),
            outs["evaluate"])
        for slot, src, name, command, out in (("keypoints", b["keypoints"], "kp.npz", "predict", "predict"),
                                              ("pseudo_gt", b["pseudo_gt"], "pgt.npz", "fit", "fit"),
                                              ("acae", b["acae"], "acae.pt", "consistency", "consistency"),
                                              ("checkpoint", b["checkpoint"], "vp3d.bin", "imp", "import"),
                                              ("spec", b["spec"], "spec.json", "evaluate", "evaluate")):
            path = root / slot / kind / name
            make(src, path)
            argv = cmd[command](**({"spec": path} if slot == "spec" else {
                "keypoints": {"kp": path}, "pseudo_gt": {"pgt": path}, "acae": {"acae": path},
                "checkpoint": {"ckpt": path}}[slot]))
            add(f"{slot}:{kind}:{command}", argv, path, outs[out])

    for name, edit in DATASET_EDITS.items():
        ds = _edit_h5(b["dataset"], root / "datasets" / name / "d.h5", edit)
        add(f"dataset:{name}:evaluate", cmd["evaluate"](dataset=ds), ds, outs["evaluate"])
        add(f"dataset:{name}:train", cmd["train"](dataset=ds), ds, outs["train"])
    for name, edit in DETECTION_EDITS.items():
        det = _edit_h5(b["detections"], root / "detections" / name / "det.h5", edit)
        add(f"detections:{name}:evaluate", cmd["evaluate"](det=det), det, outs["evaluate"])
        add(f"detections:{name}:train", cmd["train"](det=det), det, outs["train"])
    for name, path in _keypoint_file_variants(b["keypoints"], root, marker).items():
        add(f"keypoints:{name}:predict", cmd["predict"](kp=path), path, outs["predict"])
    for name, path in _model_variants(b["model_dir"], root, marker).items():
        add(f"model:{name}:predict", cmd["predict"](model=path), path, outs["predict"])
        add(f"model:{name}:evaluate", cmd["evaluate"](model=path), path, outs["evaluate"])
        add(f"model:{name}:export", cmd["export"](model=path), path, outs["export"])
        add(f"model:{name}:viewer", cmd["viewer"](model=path), path, outs["viewer"])
    add("export:unknown_format", cmd["export"](fmt="tflite"), "tflite", outs["export"])
    for name, path in _prediction_variants(b["prediction"], root, marker).items():
        add(f"prediction:{name}:export-motion", cmd["motion"](pred=path), path, outs["motion"])
    add("export-motion:unknown_format", cmd["motion"](b["prediction"], "fbx"), "fbx", outs["motion"])
    add("export-motion:unknown_skeleton", cmd["motion"](b["prediction"], "bvh", "--skeleton", "h99"), "h99",
        outs["motion"])
    for name, path in _npz_variants(b["pseudo_gt"], root, marker, "pseudo_gt", ["points", "joint_names"]).items():
        add(f"pseudo_gt:{name}:fit-acae", cmd["fit"](pgt=path), path, outs["fit"])
    for name, path in _checkpoint_variants(b["checkpoint"], root, marker).items():
        add(f"checkpoint:{name}:import", cmd["imp"](ckpt=path), path, outs["import"])
    for name, (spec, key) in SPECS.items():
        add(f"spec:{name}:train", cmd["train"](spec=spec), key, outs["train"])
    for name, extra, named in (("even_window", ["--smooth", "3d", "--smooth-window", "8"], "--smooth-window"),
                               ("order_above_window", ["--smooth", "2d", "--smooth-window", "5",
                                                       "--smooth-order", "5"], "--smooth-order")):
        add(f"smoothing:{name}:predict", cmd["predict"]() + extra, named, outs["predict"])
    for name, extra, named in (("unknown_sequence", ["--sequence", "no_such_take"], "no_such_take"),
                               ("unknown_format", ["--format", "smpl_99"], "smpl_99"),
                               ("zero_stride", ["--stride", "0"], "--stride")):
        add(f"viewer:{name}", cmd["viewer"](extra=extra), named, outs["viewer"])
    for name, (options, named) in INFER_OPTIONS.items():
        add(f"option:infer_{name}", ["infer", _three_frame_video(root / "videos" / "v.mp4"), "--model",
                                     b["model_dir"], "--output-dir", root / "out" / "infer", *options],
            named, [root / "out" / "infer"])
    add("spec:evaluate_unknown_key", cmd["evaluate"](spec='{"flip": true}'), "flip", outs["evaluate"])
    add("spec:synth_missing_file", ["synth", "generate", "--name", "x", "--role", "labeled", "--spec",
                                    root / "no_such_spec.json", "--output", root / "out" / "x.h5"],
        "no_such_spec.json", [root / "out" / "x.h5"])
    add("spec:synth_unknown_template", ["synth", "generate", "--name", "x", "--role", "labeled", "--spec",
                                        '{"template": "h99"}', "--output", root / "out" / "x.h5"],
        "h99", [root / "out" / "x.h5"])
    # several test sets in one run: the repeated options must pair up, and nothing is written
    add("evaluate:unpaired_outputs", cmd["evaluate"]() + ["--dataset", b["dataset"], "--detections", b["detections"]],
        "--output", outs["evaluate"])
    broken = _with_index(b["dataset"], root / "datasets" / "second_set" / "d.h5")
    _truncated(b["dataset"], broken)
    second = root / "out" / "eval2.parquet"
    add("evaluate:second_set_broken", cmd["evaluate"]() + ["--dataset", broken, "--detections", b["detections"],
                                                           "--output", second], broken, outs["evaluate"] + [second])
    # paper-effects: the experiments' CSV tables and the real-footage tables it reads
    effects_out = [root / "out" / "effects.csv", root / "out" / "effects.html"]
    tables = root / "paper_effects"
    tables.mkdir(parents=True, exist_ok=True)
    acae = tables / "acae.csv"
    acae.write_text("model,mpjpe_mean,affine_mm\ninitial,100,60\nfinetune_continued,99,58\n")
    (tables / "no_columns.csv").write_text("model\ninitial\n")
    (tables / "garbage.parquet").write_bytes(b"\x00not parquet" * 10)

    def effects(acae_csv, *real):
        return ["paper-effects", "--acae", acae_csv, *(["--real", *real] if real else []),
                "--csv", effects_out[0], "--html", effects_out[1]]

    add("paper_effects:acae_missing_columns", effects(tables / "no_columns.csv"), tables / "no_columns.csv",
        effects_out)
    add("paper_effects:acae_missing_file", effects(tables / "no_such.csv"), tables / "no_such.csv", effects_out)
    add("paper_effects:real_garbage", effects(acae, tables / "garbage.parquet"), tables / "garbage.parquet",
        effects_out)
    add("paper_effects:consistency_garbage", [*effects(acae), "--real-consistency", tables / "garbage.parquet"],
        tables / "garbage.parquet", effects_out)
    # workflow config files (--configfile), checked before Snakemake reads them (`make run CONFIG=`)
    for name, text in WORKFLOW_CONFIGS.items():
        path = root / "configs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        add(f"configfile:{name}:check-config", ["check-config", path], path, [])
    add("configfile:missing:check-config", ["check-config", root / "configs" / "no_such.yaml"], "no_such.yaml", [])
    return cases


def _prediction_variants(src: Path, root: Path, marker: Path) -> dict[str, Path]:
    """Broken prediction files (``posebridge predict``'s output) for ``export-motion``."""
    from posebridge.geometry import skeletons

    with np.load(src) as data:
        good = {k: data[k] for k in data.files}
    fmt = next(k for k in good if k in skeletons.names())  # the tiny model's format
    variants = {
        "no_poses": {k: v for k, v in good.items() if k not in skeletons.names()},
        "all_nan": dict(good, **{fmt: np.full_like(good[fmt], np.nan)}),
        "wrong_joints": dict(good, **{fmt: good[fmt][:, :5]}),
        "short_trajectory": dict(good, trajectory=good["trajectory"][:3]),
        "payload": dict(good, **{fmt: np.array(Payload(marker), dtype=object)}),
    }
    out = {"missing": root / "predictions" / "missing.npz"}
    for name, arrays in variants.items():
        out[name] = root / "predictions" / f"{name}.npz"
        out[name].parent.mkdir(parents=True, exist_ok=True)
        np.savez(out[name], **arrays)
    out["garbage"] = root / "predictions" / "garbage.npz"
    _garbage(src, out["garbage"])
    return out


INFER_OPTIONS = {  # `posebridge infer` options that must be refused before any work
    "max_people_zero": (["--max-people", "0"], "--max-people"),
    "detections_several_people": (["--detections", "det.npz", "--max-people", "2"], "--detections"),
}


def _three_frame_video(path: Path) -> Path:
    from posebridge.data.video import VideoWriter

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with VideoWriter(path, fps=25) as writer:
            for _ in range(3):
                writer.write(np.full((48, 64, 3), 90, np.uint8))
    return path


# broken workflow config files: Snakemake's own message for these names no file
WORKFLOW_CONFIGS = {
    "unclosed_brace": "seed: 1\ntrain: {epochs: 3\n",
    "tab_indent": "train:\n\tepochs: 3\n",
    "top_level_list": "- seed\n- 1\n",
    "empty": "",
}


SPECS = {
    "unknown_key": ('{"epochz": 3}', "epochz"),
    "not_json": ("{epochs: 3", "not valid JSON"),
    "even_width": ('{"filter_widths": [2, 3]}', "filter_widths"),
    "negative_lr": ('{"lr": -1}', "lr"),
    "zero_epochs_channels": ('{"channels": 0}', "channels"),
    "unknown_keypoint_format": ('{"keypoint_format": "coco_99"}', "coco_99"),
    "not_object": ("[1, 2]", "JSON object"),
    "zero_processes": ('{"processes": 0}', "processes"),
    "batch_not_shared_by_processes": ('{"processes": 3}', "multiple of processes"),
    "processes_not_launched": ('{"processes": 2}', "torchrun --nproc-per-node 2"),
    "negative_roll": ('{"roll_augment": -5}', "roll_augment"),
    "roll_on_screen_input": ('{"roll_augment": 10, "input_normalisation": "screen", "output_placement": "free"}',
                             "roll_augment"),
    "pitch_beyond_45": ('{"pitch_augment": 60}', "pitch_augment"),
}


def _checkpoint_variants(src: Path, root: Path, marker: Path) -> dict[str, Path]:
    import torch

    good = torch.load(src, weights_only=True)
    state = good["model_pos"]
    out = {}
    variants = {
        "nan_weights": {"model_pos": {**state, "shrink.weight": torch.full_like(state["shrink.weight"], float("nan"))}},
        "no_model_pos": {"epoch": 1},
        "resized": {"model_pos": {**state, "layers_conv.0.weight": torch.zeros(3, 3, 3)}},
        "pickle_payload": {"model_pos": Payload(marker)},
    }
    for name, payload in variants.items():
        out[name] = root / "checkpoints" / f"{name}.bin"
        out[name].parent.mkdir(parents=True, exist_ok=True)
        if name == "pickle_payload":
            with open(out[name], "wb") as f:
                pickle.dump(payload, f)
        else:
            torch.save(payload, out[name])
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bad_inputs")
    base = make_base(target / "base")
    for case in make_cases(base, target):
        print(case.id, "->", "posebridge", " ".join(case.argv))
