# The two quick-start commands: `make demo` and `make test`. Each sets up its own .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# A CPU build of torch lies on disk on these machines; install it first so the
	# ordinary range in pyproject.toml (torch>=2.2) installs nothing more.
	$(PY) -m pip install -q torch==2.13.0 || $(PY) -m pip install -q 'torch>=2.2'
	$(PY) -m pip install -q -e '.[test,web,onnx]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/seethrough demo

test: $(STAMP)
	$(PY) -m pytest

test-all: $(STAMP)
	$(PY) -m pytest -m ''

clean:
	rm -rf $(VENV) runs build *.egg-info
