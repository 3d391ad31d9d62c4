# Two commands do all the set-up: `make run` and `make test`.
# Both create .venv on first use; the install is redone only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
# your settings merged over config.yaml: `make run CONFIG=my.yaml` (several: CONFIG="a.yaml b.yaml")
CONFIG ?=

.PHONY: run test test-all bench lint clean help

help:
	@echo "make run       create .venv, run the whole workflow on the embedded default (results/report.html)"
	@echo "               CONFIG=my.yaml: with your settings merged over config.yaml"
	@echo "make test      create .venv, run the test suite (slow cases excluded)"
	@echo "make test-all  the test suite including slow cases"
	@echo "make bench     print speed figures (bench/)"
	@echo "make lint      snakemake --lint"
	@echo "make clean     remove results/, logs/, benchmarks/ and .snakemake/"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and by exact version: this takes the CPU wheel instead of pulling CUDA packages
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	# MediaPipe's last release that bundles its pose model; its run-time deps are pinned in pyproject
	$(BIN)/pip install --quiet --no-deps mediapipe==0.10.14
	# real footage, as data: pose2sim's calibrated 4-camera demo takes, sports2d's demo video
	$(BIN)/pip install --quiet --no-deps pose2sim==0.10.49 sports2d==0.8.34
	touch $(STAMP)

run: $(STAMP)
	# Snakemake parses config files before the workflow and names neither file nor line of a
	# syntax error: check them first
	$(if $(CONFIG),$(BIN)/posebridge check-config $(CONFIG))
	# the Snakefile's onsuccess handler writes results/report.html (snakemake --report)
	$(BIN)/snakemake --cores $(CORES) --workflow-profile profiles/default $(addprefix --configfile ,$(CONFIG))
	@echo "report: results/report.html"

test: $(STAMP)
	$(BIN)/pytest -m "not slow"

test-all: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs benchmarks .snakemake
