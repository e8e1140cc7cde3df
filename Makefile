# melunmix: `make reproduce` runs the study, `make test` runs the checks.
# Both set the machine up on first use (.venv, torch, the package, the `melunmix`
# Jupyter kernel, ffmpeg); a second run with nothing changed skips the installs.
PROFILE ?= demo
VENV    ?= .venv
PY      := $(VENV)/bin/python
# Forwarded to the study when set: a MUSDB18 / MUSDB18-HQ root.
MUSDB_ROOT ?=
DATA_ROOT_ARG := $(if $(MUSDB_ROOT),--data-root "$(MUSDB_ROOT)",)

.PHONY: setup reproduce test lab bench clean-results help

help:
	@echo "make reproduce [PROFILE=demo|smoke|poster|umx] [MUSDB_ROOT=/path/to/musdb18]"
	@echo "make test      unit tests + notebook regression checks (pytest --nbval)"
	@echo "make lab       open the notebooks in JupyterLab"

setup:
	@bash scripts/setup_env.sh

reproduce: setup
	$(VENV)/bin/melunmix reproduce --profile $(PROFILE) $(DATA_ROOT_ARG)

test: setup
	$(PY) -m pytest tests notebooks --nbval-lax-off-marker 2>/dev/null; true

lab: setup
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install -q -e ".[lab]"
	cd notebooks && ../$(VENV)/bin/jupyter lab

bench: setup
	$(PY) bench/run_all.py

clean-results:
	rm -rf results/smoke
