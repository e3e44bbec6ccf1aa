# Two commands do all the set-up on a fresh machine:
#   make train   creates .venv when absent, installs the package, trains LeNet (ARGS="..." adds flags)
#   make test    creates .venv when absent, installs the dev, chainer and export extras, runs ruff and pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(if $(MNIST_DATA_DIR),$(MNIST_DATA_DIR),data)
ARGS ?=
# `make test DATA_DIR=...` hands the folder to the tests as `make train DATA_DIR=...` hands it to train.py.
TEST_ENV := $(if $(filter command line environment,$(origin DATA_DIR)),MNIST_DATA_DIR=$(abspath $(DATA_DIR)),)

.PHONY: install install-dev train test lint benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77,<81" wheel

# Chainer 7.8.1 is an sdist whose setup.py imports pkg_resources, so it is built without build
# isolation against the venv's setuptools<81; the project itself builds the same way.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[dev,chainer,export]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

train: install
	$(BIN)/python scripts/train.py --data-dir $(DATA_DIR) $(ARGS)

lint: install-dev
	$(BIN)/ruff check src tests scripts examples notebooks
	$(BIN)/ruff format --check src tests scripts examples notebooks

# The tests spend most of their time starting Python processes, so they run on a worker per core (at most 4).
test: lint
	$(TEST_ENV) $(BIN)/python -m pytest -n auto --maxprocesses 4 $(ARGS)

benchmark: install-dev
	$(BIN)/python scripts/benchmark.py --data-dir $(DATA_DIR) $(ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
