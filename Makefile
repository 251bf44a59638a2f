# The two commands of the README. Each creates the virtual environment if it is missing
# and installs what it needs (torch 2.14.1 / torchvision 0.29.1, then this package).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.simclr-installed

# The torch the GPU machines ship (torch 2.11 / torchvision 0.26): the suite runs on it too.
VENV_GPU_TORCH ?= .venv-torch211
STAMP_GPU_TORCH := $(VENV_GPU_TORCH)/.simclr-installed

.PHONY: demo test test-torch211 bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/simclr demo

test: $(STAMP)
	$(PY) -m pytest -q

$(STAMP_GPU_TORCH): pyproject.toml
	test -x $(VENV_GPU_TORCH)/bin/python || $(PYTHON) -m venv $(VENV_GPU_TORCH)
	$(VENV_GPU_TORCH)/bin/python -m pip install -q --upgrade pip
	$(VENV_GPU_TORCH)/bin/python -m pip install -q torch==2.11.0 torchvision==0.26.0
	$(VENV_GPU_TORCH)/bin/python -m pip install -q -e '.[test]'
	touch $(STAMP_GPU_TORCH)

test-torch211: $(STAMP_GPU_TORCH)
	$(VENV_GPU_TORCH)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/simclr bench

clean:
	rm -rf runs
