# affectlab — every target sets up what it needs; `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := data/sample_fi
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.DEFAULT_GOAL := help
.PHONY: help install demo test test-all lint bench gpu clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create or refresh .venv from pyproject.toml (quick when nothing changed)

demo: install ## train MDAN on the built-in sample set on the CPU (about a minute)
	$(BIN)/python -m affectlab.experiments.demo

test: install ## the default test suite (about 6 minutes on 2 CPU cores)
	$(BIN)/python -m pytest -q

test-all: install ## the default suite plus the slow tests
	$(BIN)/python -m pytest -q -m ''

lint: install ## ruff over the packages, tests and benchmarks
	$(BIN)/ruff check affectlab experiments modules datamodules callbacks tests benchmarks

bench: install ## every speed and memory benchmark; results go to benchmarks/RESULTS.md by hand
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

gpu: install ## on a CUDA machine: the GPU tests and the GPU speed figures (a few minutes)
	bash benchmarks/gpu_checks.sh

clean: ## remove the virtual environment, runs and generated sample data
	rm -rf $(VENV) runs data/sample_* .pytest_cache build *.egg-info
