# Multi-view metric learning (MCSS, posebridge.training.objectives.multiview) in train_initial: when the `multiview`
# config section is enabled, the unlabeled_multiview datasets and their detections become inputs
# of train_initial and `posebridge train` gets --multiview options.


def multiview_datasets() -> list[str]:
    """The unlabeled_multiview datasets MCSS learns from: `multiview.datasets`, or every enabled one."""
    chosen = config["multiview"]["datasets"]
    available = datasets_where(roles={"unlabeled_multiview"})
    if chosen is None:
        return available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise WorkflowError(f"invalid configuration: config.multiview.datasets: {unknown} are not enabled "
                            f"unlabeled_multiview datasets ({', '.join(available) or 'none'})")
    return list(chosen)


def multiview_args(settings: dict, names) -> str:
    """`posebridge train` options of the multi-view objective for ``names`` with ``settings``."""
    args = []
    for name in names:
        args += ["--multiview", dataset_h5(name), "--multiview-detections", detections_h5(name)]
    for key in ("weight", "pose_weight", "margin", "time_window", "pairs", "embedding_dim"):
        args += [f"--multiview-{key.replace('_', '-')}", str(settings[key])]
    return " ".join(args)


def multiview_inputs(names) -> list[str]:
    return [path for name in names for path in (dataset_h5(name), dataset_index(name), detections_h5(name))]


def multiview_objective():
    """(inputs, args) of the multi-view objective for train_initial; nothing when disabled."""
    if not config["multiview"]["enabled"]:
        return [], ""
    names = multiview_datasets()
    if not names:
        raise WorkflowError("invalid configuration: config.multiview.enabled: no enabled dataset has role "
                            "unlabeled_multiview to learn from")
    return multiview_inputs(names), multiview_args(config["multiview"], names)


TRAIN_OBJECTIVES.append(multiview_objective)


# --- the MCSS experiment (rules in experiments_mcss.smk) ---------------------------------------

MCSS = config["multiview"]["experiment"]
MCSS_DIR = "results/experiments/mcss"


def mcss_labels() -> list[str]:
    """The amounts of 3D supervision as wildcards ("1", "2", "all"); for a synthetic dataset,
    counts beyond its training subjects are left out (they would equal "all")."""
    requested = MCSS["labeled_subjects"]
    entry = DATASETS.get(MCSS["dataset"], {})
    available = entry.get("synth", {}).get("train_subjects") if entry.get("source") == "synthetic" else None

    def keep(n) -> bool:
        if n == "all" or available is None:
            return True
        return n < available or (n == available and "all" not in requested)

    return [str(n) for n in requested if keep(n)]


MCSS_LABELS = mcss_labels()
MCSS_VARIANTS = {"base": 0.0, "mv": config["multiview"]["weight"]}


def mcss_enabled() -> bool:
    """The experiment needs its labeled dataset (with test rows) and multi-view data."""
    entry = DATASETS.get(MCSS["dataset"])
    return bool(entry and entry["role"] == "labeled" and has_test_rows(entry) and multiview_datasets())


def mcss_model(variant: str, labels: str) -> str:
    return f"{MCSS_DIR}/models/{variant}_{labels}/model.pt"


def mcss_spec(labels: str) -> str:
    """The experiment's TrainConfig: `train`, its overrides, 3D labels of the first `labels` subjects."""
    spec = {**config["train"], **MCSS["train"], "dataset_weights": {}, "labeled_subjects": {}}
    if labels != "all":
        spec["labeled_subjects"] = {MCSS["dataset"]: int(labels)}
    return as_json(spec)


def mcss_objective_args(variant: str) -> str:
    settings = {**config["multiview"], "weight": MCSS_VARIANTS[variant], "pairs": MCSS["pairs"]}
    return multiview_args(settings, multiview_datasets())
