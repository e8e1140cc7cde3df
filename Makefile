# melunmix: `make reproduce` runs the study, `make test` runs the checks.
# Both set the machine up on first use (.venv, torch, the package, the `melunmix`
# Jupyter kernel, ffmpeg); a second run with nothing changed skips the installs.
PROFILE ?= demo
VENV    ?= .venv
PY      := $(VENV)/bin/python
# A MUSDB18 / MUSDB18-HQ root; when empty the study uses $MUSDB_ROOT / $MUSDB_PATH or the
# built-in generated dataset.
MUSDB_ROOT ?=
DATA_ROOT_ARG := $(if $(MUSDB_ROOT),--data-root "$(MUSDB_ROOT)",)
# STAND_IN=1 runs a MUSDB18 profile (poster, umx) on the generated data; results say so.
STAND_IN ?=
STAND_IN_ARG := $(if $(STAND_IN),--stand-in,)
PYTEST_ARGS ?=
# "Another CPU" for the second notebook pass of `make test`: torch, oneDNN and MKL limited to
# SSE4 (below the best of any x86-64 CPU; ignored elsewhere). README, Testing.
LIMITED_ISA := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2
NBVAL = $(PY) -m pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg \
	-p no:cacheprovider notebooks/*.ipynb $(PYTEST_ARGS)

.PHONY: help setup reproduce test test-notebooks notebook-checks lab bench gpu-check

help:
	@echo "make reproduce [PROFILE=demo|study|smoke|poster|umx] [MUSDB_ROOT=/path/to/musdb18] [STAND_IN=1]"
	@echo "make test      unit tests + notebook regression checks (pytest --nbval)"
	@echo "make test-notebooks  only the notebook checks (both passes)"
	@echo "make lab       open the notebooks in JupyterLab"
	@echo "make bench     benchmarks beside Open-Unmix and museval (bench/README.md)"
	@echo "make gpu-check on a CUDA machine: CUDA tests, poster-size step, separation and scoring times"

setup:
	@bash scripts/setup_env.sh

reproduce: setup
	@$(VENV)/bin/melunmix reproduce --profile $(PROFILE) $(DATA_ROOT_ARG) $(STAND_IN_ARG)

# Unit tests (one worker per core, each test file in one worker: pytest-xdist), then the
# committed smoke-profile notebooks re-executed and compared (nbval, numbers within
# notebooks/conftest.py's tolerance) twice and at the same time (each pass runs one
# notebook at a time, mostly on one core): with this CPU's instructions, and with them
# limited ("another CPU"), each from scratch in its own MELUNMIX_HOME under build/ (data,
# cache, results). The unit tests end with their 25 slowest (--durations), where to look
# when `make test` grows.
test: setup
	$(PY) -m pytest tests -n auto --dist loadfile --durations=25 $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory notebook-checks

# Only the notebook checks (both passes, at the same time).
test-notebooks: setup
	@$(MAKE) --no-print-directory notebook-checks

notebook-checks:
	rm -rf build/nbval-here build/nbval-limited build/nbval-limited.log && mkdir -p build
	@echo "notebooks: this CPU's instructions below; limited instructions at the same time"
	@$(LIMITED_ISA) MELUNMIX_HOME=$(CURDIR)/build/nbval-limited $(NBVAL) > build/nbval-limited.log 2>&1 & \
	limited=$$!; MELUNMIX_HOME=$(CURDIR)/build/nbval-here $(NBVAL); here=$$?; wait $$limited; again=$$?; \
	echo "--- notebooks with instructions limited ($(LIMITED_ISA)) ---"; \
	cat build/nbval-limited.log; \
	echo "notebooks: this CPU's instructions exit $$here, limited instructions exit $$again"; \
	test $$here -eq 0 -a $$again -eq 0

# Jupyter refuses to run as root unless told; containers and cloud machines often are root.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: setup
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install -q -e ".[lab]"
	cd notebooks && ../$(VENV)/bin/jupyter lab $(LAB_ARGS)

# Benchmarks beside the reference Open-Unmix and museval; `setup` installs the reference
# without its dependencies (torchaudio is never called by the parts compared; bench/README.md).
bench: setup
	$(PY) bench/run_all.py $(BENCH_ARGS)

# The first run on a CUDA machine: the set-up, the CUDA-only tests, a poster-size training
# step, a 3-minute song separated and scored; one table (scripts/gpu_check.py).
gpu-check: setup
	$(PY) scripts/gpu_check.py --json-out build/gpu_check.json $(GPU_CHECK_ARGS)
