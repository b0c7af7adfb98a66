# `make test` and `make demo` set everything up from the project's own files.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo clean test-openstl

# (Re)create the virtual environment when setup.py changes.
$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# The tests that need a real OpenSTL (marked 'openstl') run in `make test-openstl`.
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not openstl" tests

# Train a small UniSTD on the generated demo tasks (CPU, minutes), then test it next to copy-last-frame.
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) tools/train.py -c configs/unistd/demo.py --work-dir work_dirs/demo --overwrite

# The tests that run OpenSTL's own tools, in a second environment (.venv-openstl) holding a real OpenSTL
# from OPENSTL_SRC (a clone or a source .tar.gz; timm<=1.0.11) and this project. None may skip.
OPENSTL_SRC ?=
OPENSTL_VENV ?= .venv-openstl
OPENSTL_TESTS := tests/test_openstl_plugin.py tests/test_openstl_tools.py

test-openstl:
	@test -n "$(OPENSTL_SRC)" || { echo "error: give OPENSTL_SRC=<an OpenSTL clone or source .tar.gz>" >&2; exit 2; }
	$(PYTHON) tools/openstl_env.py --src "$(OPENSTL_SRC)" --venv $(OPENSTL_VENV)
	HF_HUB_OFFLINE=1 OPENSTL_REQUIRED=1 $(OPENSTL_VENV)/bin/python -m pytest -q -m openstl $(OPENSTL_TESTS)

clean:
	rm -rf $(VENV) $(OPENSTL_VENV) *.egg-info .pytest_cache
