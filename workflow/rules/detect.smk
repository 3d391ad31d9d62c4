# 2D detection: keypoints (coco_17 by default) for every sequence x camera of a dataset, by the
# detector the dataset's config entry names. Real detectors join as further `detect` entries.


rule detect_2d:
    """Run one 2D detector over one dataset."""
    input:
        h5="results/datasets/{dataset}.h5",
        index="results/datasets/{dataset}.parquet",
        files=detector_files,
    output:
        "results/detections/{dataset}/{detector}.h5",
    wildcard_constraints:
        dataset=names_regex(DATASETS),
        detector=names_regex(config["detect"]),
    params:
        spec=lambda w: detector_spec(w.dataset, w.detector),
        seed=lambda w: rule_seed("detect_2d", w.dataset, w.detector),
    log:
        "logs/detect_2d/{dataset}/{detector}.log",
    benchmark:
        "benchmarks/detect_2d/{dataset}/{detector}.tsv"
    threads: rule_threads("detect_2d")
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "OMP_NUM_THREADS={threads} posebridge detect-2d --dataset {input.h5}"
        " --detector {wildcards.detector} --spec {params.spec:q} --seed {params.seed}"
        " --output {output} > {log} 2>&1"


rule download:
    """Fetch a public 2D keypoint file (VideoPose3D's CPN / Detectron detections) that an
    `imported` detector names and that is not there yet. Datasets behind a login are never
    fetched: `convert` says where to get them."""
    output:
        "{folder}/{name}",
    wildcard_constraints:
        name=names_regex(PUBLIC_2D),
    localrule: True
    log:
        "logs/download/{folder}/{name}.log",
    benchmark:
        "benchmarks/download/{folder}/{name}.tsv"
    conda:
        "../../envs/posebridge.yaml"
    shell:
        "posebridge download --output {output:q} --no-progress > {log} 2>&1"
