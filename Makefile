# The two commands a new user needs: `make up` (arrives with the platform) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_PIN := torch==2.13.0

.PHONY: install test lint bench clean up

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the CPU wheel on disk; anything looser pulls a CUDA build.
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint
	$(VENV)/bin/pytest -q

bench: install
	$(PY) bench/pgd_vs_art.py
	$(PY) bench/adv_training_vs_art.py

clean:
	rm -rf $(VENV) var runs .pytest_cache .ruff_cache

up: install
	$(PY) scripts/stack.py
