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

.PHONY: install browser test test-fast demo benchmark gpu-check clean

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

# Issue 12's GPU check, for a machine with a CUDA GPU (never part of `make test`): the 3d_fullres BraTS patch and the 2d
# topology with nnU-Net's autocast, then the planner's memory calibration on CUDA. Every output goes to GPU_OUT;
# a step's output is printed too, and a failing step stops the check with its exit status.
GPU_OUT ?= /tmp/nnunet_msfen_gpu_check
GPU_STEP = run() { name=$$1; shift; "$$@" > $(GPU_OUT)/$$name.txt 2>&1; status=$$?; cat $(GPU_OUT)/$$name.txt; \
	return $$status; }; run

gpu-check: install
	mkdir -p $(GPU_OUT)
	@$(GPU_STEP) gpu $(PY) -c "import torch; assert torch.cuda.is_available(), 'make gpu-check needs a CUDA GPU'; \
	  print(torch.cuda.get_device_name(0), 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version())"
	@$(GPU_STEP) benchmark_3d $(VENV)/bin/nnunet-msfen benchmark --device cuda --patch 128 128 128 \
	  --case-shape 160 192 160 --warmup 3 --repeats 10 --inference-repeats 3 -o $(GPU_OUT)/benchmark_3d.json --overwrite
	@$(GPU_STEP) benchmark_2d $(VENV)/bin/nnunet-msfen benchmark --device cuda --config 2d --warmup 3 --repeats 10 \
	  --inference-repeats 3 -o $(GPU_OUT)/benchmark_2d.json --overwrite
	@$(GPU_STEP) calibration_3d $(PY) -m nnunet_msfen.plans.calibrate_reference --device cuda --patch 128 128 128
	@$(GPU_STEP) calibration_2d $(PY) -m nnunet_msfen.plans.calibrate_reference --device cuda --config 2d

clean:
	rm -rf build *.egg-info $(VENV)/.install-stamp
