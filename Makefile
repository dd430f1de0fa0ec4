# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install the pinned dependencies and install this package into it, editable
# (setup.py maps plans/ and dataset_conversion/ into the nnunet_msfen namespace and adds the nnU-Net discovery
# hook, a .pth file, to site-packages). The install is redone when the packaging files change.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PACKAGING := pyproject.toml setup.py nnunet_msfen/discovery/nnunet_msfen_discovery.pth
PYTEST_ARGS ?=
# test processes (pytest-xdist): the end-to-end tests spend much of their time in single-threaded imports and
# nnU-Net's spawned workers, so two processes keep two cores busy. A module runs in one process (its fixtures are
# built once), the modules with end-to-end tests first (tests/conftest.py). TEST_WORKERS=0 runs the suite in this
# process (e.g. for pdb).
TEST_WORKERS ?= 2
PYTEST := $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

.PHONY: install browser test test-fast demo benchmark clean

$(VENV)/.deps-stamp: requirements/pinned.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements/pinned.txt
	touch $@

$(VENV)/.install-stamp: $(VENV)/.deps-stamp $(PACKAGING)
	rm -rf build *.egg-info
	$(PIP) install -q --no-deps --no-build-isolation -e .
	rm -rf build *.egg-info
	touch $@

install: $(VENV)/.install-stamp

# The HTML-report test opens the report in headless Chromium (Debian's package) and skips where there is none:
# install it when we can (root with apt-get, as on CI), and say so when we cannot.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
	  >/dev/null; } || echo "chromium is not installed: the HTML report test will be skipped"

test: install browser
	$(PYTEST) $(PYTEST_ARGS)

# everything but the end-to-end runs through nnU-Net's command-line tools
test-fast: install
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/nnunet-msfen demo

benchmark: install
	$(VENV)/bin/nnunet-msfen benchmark

clean:
	rm -rf build *.egg-info $(VENV)/.install-stamp
