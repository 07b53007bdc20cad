#!/usr/bin/env bash
# Measures what the Lava venv of scripts/setup_env.sh costs: time and disk of lava-nc + lava-dl alone,
# then of the packages lava-dl's netx imports (torch 2.3.1 with its NVIDIA runtime wheels, torchvision,
# matplotlib, OpenCV), and netx's first import. Builds a throw-away venv in $TMPDIR and writes
# benchmarks/results/lava_setup.json. pip's cache is used as by the set-up (a fresh machine also
# downloads ~2.7 GB of wheels first). Run: bash scripts/measure_lava_setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results/lava_setup.json
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
LPY=${SNNC_LAVA_PYTHON:-"env PYENV_VERSION=3.10.13 python3.10"}
PIP="$WORK/venv/bin/pip install -q --disable-pip-version-check"
T0=$(date +%s)
$LPY -m venv "$WORK/venv"
$PIP "lava-nc==0.10.0"
$PIP --no-deps "lava-dl==0.6.0" h5py
T1=$(date +%s); MB1=$(du -sm "$WORK/venv" | cut -f1)
$PIP "torch==2.3.1" "torchvision==0.18.1" "numpy>=1.24.4,<2" \
    "matplotlib>=3.5.2,<4" "opencv-python-headless>=4.8.1.78,<4.12" "pillow>=10.0.1,<11"
T2=$(date +%s); MB2=$(du -sm "$WORK/venv" | cut -f1)
"$WORK/venv/bin/python" -c "import lava.lib.dl.netx" >/dev/null 2>&1
T3=$(date +%s)
cat > "$OUT" <<JSON
{"measured_utc": "$(date -u +%Y-%m-%dT%H:%MZ)", "lava_only_s": $((T1-T0)), "lava_only_mb": $MB1,
 "netx_deps_s": $((T2-T1)), "venv_total_mb": $MB2, "netx_first_import_s": $((T3-T2))}
JSON
cat "$OUT"
