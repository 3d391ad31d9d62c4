#!/usr/bin/env bash
# Snakemake runs this inside the new conda environment right after creating it from
# posebridge.yaml: install the posebridge package from the checkout the workflow runs from
# (editable, so code changes reach the rules without rebuilding the environment).
# Snakemake runs a copy of this file from .snakemake/conda/, so the checkout's location comes
# from POSEBRIDGE_ROOT, which workflow/rules/common.smk sets to the Snakefile's directory.
set -euo pipefail
pip install --no-deps --editable "${POSEBRIDGE_ROOT:?POSEBRIDGE_ROOT is not set; run through the Snakefile}"
