#!/usr/bin/env bash
# Creates (or refreshes) the two environments snnc needs, idempotently:
#   .venv       Python 3.11 (or the python3 found), torch 2.13.0 CPU, snnc editable, test tools,
#               sinabs 3.1.3 --no-deps (test oracle only; it pins an old nir), rockpool 3.1.0 --no-deps
#               and xylosim 0.1.3 (built from source: the Xylo oracle), neurobench 2.3.0 --no-deps
#               (the metrics oracle).
#   .lava-venv  Python 3.10 (SNNC_LAVA_PYTHON, or python3.10 / pyenv 3.10.x), lava-nc 0.10.0, lava-dl 0.6.0,
#               and what lava-dl's netx imports: torch 2.3.1 (+ NVIDIA runtime wheels), torchvision 0.18.1,
#               matplotlib, OpenCV (headless).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_FLAGS="-q --disable-pip-version-check"
stamp_ok() { [ -f "$1" ] && [ "$1" -nt pyproject.toml ] && [ "$1" -nt scripts/setup_env.sh ]; }

if ! stamp_ok .venv/.snnc-stamp; then
  PY=${SNNC_PYTHON:-}
  if [ -z "$PY" ]; then
    for c in python3.11 python3; do command -v "$c" >/dev/null 2>&1 && { PY=$c; break; }; done
  fi
  echo "[setup] main venv with $PY"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # torch first and pinned: nothing later may pull another (CUDA) build
  .venv/bin/pip install $PIP_FLAGS "torch==2.13.0"
  .venv/bin/pip install $PIP_FLAGS -e ".[test]" "torch==2.13.0"
  .venv/bin/pip install $PIP_FLAGS --no-deps "sinabs==3.1.3" "pbr" "nirtorch==2.6"
  # sinabs 2.0.3, the last sinabs with a DYNAP-CNN devkit config builder: a second oracle, kept out of
  # site-packages (tests put it on sys.path in a separate process)
  .venv/bin/pip install $PIP_FLAGS --no-deps --upgrade --target .venv/sinabs-2.0.3 "sinabs==2.0.3"
  # other frameworks, for the interop tests that export real NIR files with them (no-deps: keep torch)
  .venv/bin/pip install $PIP_FLAGS --no-deps "snntorch==1.0.0" "norse==1.1.0" "spikingjelly==2.0.0" "loguru==0.7.3" \
      "rockpool==3.1.0" "scipy==1.17.1"
  # NeuroBench's own metric code: the oracle of snnc's synaptic operations and activation sparsity
  # (tests/test_metrics_neurobench.py). Its metrics import only torch, snntorch and tqdm; its other
  # requirements (tonic, torchaudio, numba) serve data sets and pre-processors we do not use.
  .venv/bin/pip install $PIP_FLAGS --no-deps "neurobench==2.3.0"
  # Rockpool's XyloSim runs xylosim's C++ model: an sdist built here with pybind11 (about 1.7 min on
  # the 2-core machine); the oracle of the Xylo target's tests (tests/test_xylo_*.py)
  .venv/bin/pip install $PIP_FLAGS "xylosim==0.1.3" "pybind11==3.1.0"
  touch .venv/.snnc-stamp
fi

if ! stamp_ok .lava-venv/.snnc-stamp; then
  LPY=${SNNC_LAVA_PYTHON:-}
  if [ -z "$LPY" ]; then
    if PYENV_VERSION=3.10.13 python3.10 --version >/dev/null 2>&1; then
      LPY="env PYENV_VERSION=3.10.13 python3.10"
    elif command -v python3.10 >/dev/null 2>&1 && python3.10 --version >/dev/null 2>&1; then
      LPY=python3.10
    else
      for d in "$HOME"/.pyenv/versions/3.10*; do [ -x "$d/bin/python3.10" ] && LPY="$d/bin/python3.10"; done
    fi
  fi
  if [ -z "$LPY" ] && [ -n "${SNNC_STRICT:-}" ] && [ "${SNNC_STRICT}" != 0 ]; then
    echo "[setup] error: no Python 3.10 found, and SNNC_STRICT is set (CI): the Lava venv is required." >&2
    echo "[setup] Install Python 3.10 (e.g. pyenv install 3.10.13) or set SNNC_LAVA_PYTHON=/path/to/python3.10." >&2
    exit 1
  fi
  if [ -z "$LPY" ]; then
    echo "[setup] no Python 3.10 found: Lava backend and Lava-equality tests will be skipped" >&2
    echo "[setup] set SNNC_LAVA_PYTHON=/path/to/python3.10 to enable them" >&2
  else
    echo "[setup] Lava venv with $LPY"
    [ -x .lava-venv/bin/python ] || $LPY -m venv .lava-venv
    .lava-venv/bin/pip install $PIP_FLAGS "lava-nc==0.10.0"
    .lava-venv/bin/pip install $PIP_FLAGS --no-deps "lava-dl==0.6.0" h5py
    # lava-dl's netx (the loader of the .net files snnc writes) imports slayer, which imports torch,
    # torchvision, matplotlib and OpenCV at import time. PyPI's only cp310 torch 2.3 wheels are CUDA
    # builds: they import on a CPU-only machine with the NVIDIA runtime wheels they depend on
    # (~2.7 GB download, ~5 GB installed; measured in README "Vendor loaders"). numpy stays < 2 for Lava.
    .lava-venv/bin/pip install $PIP_FLAGS "torch==2.3.1" "torchvision==0.18.1" "numpy>=1.24.4,<2" \
        "matplotlib>=3.5.2,<4" "opencv-python-headless>=4.8.1.78,<4.12" "pillow>=10.0.1,<11"
    .lava-venv/bin/python -c "import lava.lib.dl.netx" >/dev/null 2>&1 \
      || { echo "[setup] lava-dl netx does not import in .lava-venv" >&2; exit 1; }
    touch .lava-venv/.snnc-stamp
  fi
fi
