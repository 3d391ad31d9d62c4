# Semi-supervised training from unlabeled video (VideoPose3D, posebridge.training.objectives.semi_supervised) in
# train_initial: when the `semi_supervised` config section is enabled, its datasets and their
# detections become inputs of train_initial and `posebridge train` gets --unlabeled-video options.


def semi_supervised_datasets(chosen=None) -> list[str]:
    """The datasets whose 2D trains without labels: ``chosen`` (default `semi_supervised.datasets`),
    or every enabled unlabeled_video dataset. Labeled ones give their subjects outside
    train.labeled_subjects."""
    chosen = config["semi_supervised"]["datasets"] if chosen is None else chosen
    video = datasets_where(roles={"unlabeled_video"})
    if chosen is None:
        return video
    allowed = datasets_where(roles={"unlabeled_video", "labeled"})
    unknown = [name for name in chosen if name not in allowed]
    if unknown:
        raise WorkflowError(f"invalid configuration: config.semi_supervised.datasets: {unknown} are not enabled "
                            f"unlabeled_video or labeled datasets ({', '.join(allowed) or 'none'})")
    return list(chosen)


def semi_supervised_args(settings: dict, names, detections=detections_h5) -> str:
    """`posebridge train` options of the semi-supervised objective for ``names`` with ``settings``;
    ``detections(name)``: the dataset's detection file."""
    args = []
    for name in names:
        args += ["--unlabeled-video", dataset_h5(name), "--unlabeled-detections", detections(name)]
    args += ["--semi-weights", shlex.quote(as_json(settings["weights"])),
             "--semi-warmup-epochs", str(settings["warmup_epochs"]), "--semi-placement", settings["placement"]]
    if settings.get("batch_size"):
        args += ["--semi-batch-size", str(settings["batch_size"])]
    return " ".join(args)


def semi_supervised_inputs(names) -> list[str]:
    return [path for name in names for path in (dataset_h5(name), dataset_index(name), detections_h5(name))]


def semi_supervised_objective():
    """(inputs, args) of the semi-supervised objective for train_initial; nothing when disabled."""
    settings = config["semi_supervised"]
    if not settings["enabled"]:
        return [], ""
    names = semi_supervised_datasets()
    if not names:
        raise WorkflowError("invalid configuration: config.semi_supervised.enabled: no enabled dataset has role "
                            "unlabeled_video (or name labeled datasets in semi_supervised.datasets)")
    return semi_supervised_inputs(names), semi_supervised_args(settings, names)


TRAIN_OBJECTIVES.append(semi_supervised_objective)


# ----------------------------------------------------------------- the VideoPose3D experiments
# (rules in experiments_videopose3d.smk)

import math

from posebridge.training.loop import TrainConfig

VP3D_SETTINGS = config["semi_supervised"]["experiment"]
VP3D_DIR = "results/experiments/videopose3d"


def vp3d_labels_detector(name: str) -> str:
    """The detector whose 2D the label experiment's runs read for dataset ``name``:
    `experiment.labels_detector`, or the dataset's own."""
    return VP3D_SETTINGS["labels_detector"] or DATASETS[name]["detector"]


def vp3d_runs() -> dict:
    """Run name -> its settings: train spec, semi-supervised placement (None: supervised only),
    detector, seed index, family (runs of one family and seed index share their seed) and its
    table labels."""
    base = {k: v for k, v in config["train"].items()
            if k not in ("dataset_weights", "labeled_subjects", "labeled_fraction")}
    base.update(VP3D_SETTINGS["train"])
    dataset = VP3D_SETTINGS["dataset"]
    runs = {}
    for name, widths in VP3D_SETTINGS["receptive_fields"].items():
        runs[name] = {"train": {**base, "filter_widths": widths}, "placement": None, "experiment": "receptive_field",
                      "receptive_field": int(math.prod(widths)), "labeled_subjects": "all", "seed": 0,
                      "detector": None, "family": name}
    rf = int(math.prod(base.get("filter_widths", TrainConfig().filter_widths)))
    detector = VP3D_SETTINGS["labels_detector"]
    if detector and detector not in config["detect"]:
        raise WorkflowError(f"invalid configuration: config.semi_supervised.experiment.labels_detector: unknown "
                            f"detector {detector!r} (configured under `detect`: {', '.join(config['detect'])})")
    keypoint_format = (config["detect"][detector].get("keypoint_format", "coco_17") if detector
                       else base.get("keypoint_format"))
    for labels in VP3D_SETTINGS["labels"]:
        n, fraction = labels["subjects"], labels.get("fraction", 1.0)
        percent = f"{100 * fraction:g}"
        spec = {**base, "labeled_subjects": {dataset: n}, "keypoint_format": keypoint_format}
        if fraction < 1:
            spec["labeled_fraction"] = {dataset: fraction}
        label = f"labeled{n}" + (f"_{percent.replace('.', 'p')}pct" if fraction < 1 else "")
        for seed in range(VP3D_SETTINGS["seeds"]):
            for placement in (None, *VP3D_SETTINGS["placements"]):
                method = f"semi_{placement}" if placement else "supervised"
                runs[f"{label}_{method}_s{seed}"] = {
                    "train": spec, "placement": placement, "experiment": "labels", "receptive_field": rf,
                    "seed": seed, "detector": detector, "family": label,
                    "labeled_subjects": f"{n} subject{'s' if n > 1 else ''}"
                                        + (f", {percent} % of frames" if fraction < 1 else "")}
    return runs


VP3D_RUNS = vp3d_runs()
VP3D_ENABLED = VP3D_SETTINGS["dataset"] in labeled_datasets() and all(
    name in datasets_where(roles={"unlabeled_video"}) for name in VP3D_SETTINGS["video"])


def vp3d_unlabeled() -> list[str]:
    """The semi-supervised runs' unlabeled sources: the dataset's unlabeled subjects, then the video."""
    return [VP3D_SETTINGS["dataset"], *VP3D_SETTINGS["video"]]


def vp3d_detections(name: str, run: str) -> str:
    """Dataset ``name``'s detection file in experiment run ``run``."""
    detector = VP3D_RUNS[run]["detector"] or DATASETS[name]["detector"]
    return f"results/detections/{name}/{detector}.h5"


def vp3d_inputs(wildcards) -> list[str]:
    names = vp3d_unlabeled() if VP3D_RUNS[wildcards.run]["placement"] else [VP3D_SETTINGS["dataset"]]
    return [p for name in names for p in (dataset_h5(name), dataset_index(name), vp3d_detections(name, wildcards.run))]


def vp3d_data_args(wildcards) -> str:
    return train_data_args([VP3D_SETTINGS["dataset"]], lambda name: vp3d_detections(name, wildcards.run))


def vp3d_semi_args(wildcards) -> str:
    run = VP3D_RUNS[wildcards.run]
    if not run["placement"]:
        return ""
    return semi_supervised_args({**config["semi_supervised"], "placement": run["placement"]}, vp3d_unlabeled(),
                                lambda name: vp3d_detections(name, wildcards.run))


def vp3d_run_table() -> list[dict]:
    return [{"name": name, "experiment": run["experiment"], "receptive_field": run["receptive_field"],
             "labeled_subjects": run["labeled_subjects"], "placement": run["placement"], "seed": run["seed"],
             "eval": f"{VP3D_DIR}/eval/{name}.parquet", "log": f"{VP3D_DIR}/models/{name}/train_log.parquet"}
            for name, run in VP3D_RUNS.items()]
