#!/usr/bin/env bash
# Regenerates the README's picture docs/sample.png exactly as a user makes it (snn-compile, snn-run --plot).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/snn-compile snnc/models/checkpoints/nmnist_cnn.pt --target loihi -o "$tmp/cnn.snnc" -q
.venv/bin/snn-run "$tmp/cnn.snnc" --input "${SNNC_DATA:-../shared/data}/nmnist-small/train/4.bin" --plot docs/sample.png
