# `make test` and `make demo` set everything up from the project's own files.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo clean

# (Re)create the virtual environment when setup.py changes.
$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests

# Train a small UniSTD on the generated demo tasks (CPU, minutes), then test it next to copy-last-frame.
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) tools/train.py -c configs/unistd/demo.py --work-dir work_dirs/demo --overwrite

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
