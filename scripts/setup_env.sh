#!/usr/bin/env bash
# Set up everything `make test` / `make reproduce` need, on a machine that has Python >= 3.10.
# Idempotent: with nothing changed a second run takes seconds (a stamp file records the
# pyproject.toml it installed).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
STAMP="$VENV/.melunmix-installed"

# 1. ffmpeg/ffprobe: musdb imports stempeg, which refuses to import without them.
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo ">> installing ffmpeg with apt-get (musdb/stempeg need ffmpeg and ffprobe)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    else
        cat >&2 <<'MSG'
error: ffmpeg and ffprobe must be on PATH (musdb imports stempeg, which needs them).
Install them, then run make again:
    Debian/Ubuntu:  sudo apt-get install -y ffmpeg
    conda:          conda install -c conda-forge ffmpeg
    macOS:          brew install ffmpeg
MSG
        exit 1
    fi
fi

# 2. the virtual environment
if [ ! -x "$VENV/bin/python" ]; then
    echo ">> creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"

if [ -f "$STAMP" ] && cmp -s pyproject.toml "$STAMP"; then
    exit 0
fi

echo ">> installing dependencies into $VENV"
"$VPY" -m pip install -q --upgrade pip
# torch first: the CPU wheel on this disk; elsewhere whatever build the registry serves.
"$VPY" -c "import torch" 2>/dev/null || "$VPY" -m pip install -q "torch==2.13.0"
# Requirements that must be installed without their declared dependencies (see pyproject.toml).
NODEPS=$("$VPY" -c "import tomllib;print(' '.join(tomllib.load(open('pyproject.toml','rb'))['tool']['melunmix']['no-deps-requirements']))")
[ -n "$NODEPS" ] && "$VPY" -m pip install -q --no-deps $NODEPS
"$VPY" -m pip install -q -e ".[dev]"
# A Jupyter kernel named `melunmix` inside the venv (papermill and nbval use it).
"$VPY" -m ipykernel install --sys-prefix --name melunmix --display-name "Python (melunmix)" >/dev/null
cp pyproject.toml "$STAMP"
echo ">> environment ready: $VENV"
