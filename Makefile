# The two quick-start commands: `make demo` and `make test`. Each sets up its own .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all setup clean browser fuzz strip-notebooks

setup: $(STAMP) browser

# Headless Chromium renders the HTML report and drives the web page in tests; install Debian's package when it is
# missing and we can (root with apt-get). Never fails: without it that test is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 ; } || \
	echo "note: chromium not installed; the report rendering and web page tests will be skipped"

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

test: $(STAMP) browser
	$(PY) -m pytest

test-all: $(STAMP) browser
	$(PY) -m pytest -m ''

# The long fuzz run: hostile folders, image files, specs, run folders and predict calls for FUZZ_SECONDS,
# printing the inputs tried and every failure with its input (tests/fuzz_long.py; not part of `make test`).
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(PY) tests/fuzz_long.py --seconds $(FUZZ_SECONDS)

# Notebooks are stored without outputs (tests/test_notebooks.py checks): run this before committing one.
strip-notebooks: $(STAMP)
	$(PY) notebooks/strip_outputs.py

clean:
	rm -rf $(VENV) runs build *.egg-info
