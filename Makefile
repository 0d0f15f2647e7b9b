# Each target sets up its own virtual environment first (idempotent), so both quickstart commands work on a
# fresh machine. torch: the CPU build 2.13.0 where there is no NVIDIA GPU (a bare `torch` requirement would
# pull a multi-GB CUDA build); on a GPU machine, the latest CUDA build. DeepSpeed is built without its C++
# ops (they JIT-compile on first use on a GPU) and without build isolation, so it sees the torch above.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
ARGS ?=

.PHONY: venv train evaluate generate test lint bench

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	DS_BUILD_OPS=0 $(BIN)/pip install -q --no-build-isolation "deepspeed>=0.15"
	$(BIN)/pip install -q -e ".[dev,sweeps]"
	touch $@

train: venv          ## python train.py $(ARGS)
	$(BIN)/python train.py $(ARGS)

evaluate: venv       ## python evaluate.py $(ARGS)
	$(BIN)/python evaluate.py $(ARGS)

generate: venv       ## python generate.py $(ARGS)
	$(BIN)/python generate.py $(ARGS)

test: venv           ## the whole suite (slow tests included), as CI runs it
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n auto --dist worksteal $(ARGS)

lint: venv           ## ruff, then mypy over src/emoreason ([tool.mypy] in pyproject.toml)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy
