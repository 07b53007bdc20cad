#!/usr/bin/env bash
# Reproduce every shipped checkpoint of snnc/models/checkpoints/ (CPU, one thread per run).
# Run them one at a time on a shared machine. Each checkpoint records its training time
# (extra.train_seconds, copied into results/zoo.json); accuracies: scripts/evaluate_zoo.py ->
# results/zoo.json. Same command, same machine -> bitwise the same weights.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
CK=snnc/models/checkpoints
RUNS=${RUNS:-runs}
mkdir -p "$RUNS"
train() { "$PY" -m snnc.models.train "$@"; }

# baselines (README demo, Loihi CNN, Speck CNN)
train nmnist_mlp --out "$CK/nmnist_mlp.pt"
train nmnist_cnn --out "$CK/nmnist_cnn.pt"
train speck_cnn --out "$CK/speck_cnn.pt"
# spoken digits
train fsdd_mlp --out "$CK/fsdd_mlp.pt"
train fsdd_xylo --out "$CK/fsdd_xylo.pt"   # for Xylo: 16-channel cochlea, Xylo's neuron model
# SkipSNN: stage 1 (main net, gate open), stage 2 (controller, main net frozen)
train skipsnn --stage 1 --out "$RUNS/skipsnn_s1.pt"
train skipsnn --stage 2 --epochs 4 --lr 0.005 --init "$RUNS/skipsnn_s1.pt" --out "$CK/skipsnn.pt"
# ASA-SNN (ASA-1) and its deployable static form (gains calibrated on training data)
train asa_snn --out "$RUNS/asa_snn.pt"
train asa_snn_vanilla --out "$RUNS/asa_snn_vanilla.pt"   # baseline for the NASFR comparison only
"$PY" examples/train_asa.py --ckpt "$RUNS/asa_snn.pt" --out "$CK/asa_snn_static.pt"
# the same, trained on binary bins (what Loihi takes: one spike per bin)
train asa_snn --data nmnist-binary --out "$RUNS/asa_snn_binary.pt"
"$PY" examples/train_asa.py --ckpt "$RUNS/asa_snn_binary.pt" --out "$CK/asa_snn_static_binary.pt"
# one-time-step minimum-latency SNN, and its binary-input form for Loihi
train minlatency_cnn --out "$CK/minlatency_cnn.pt"
train minlatency_cnn_binary --out "$CK/minlatency_cnn_binary.pt"
# fine-tuned through the chip's own integer arithmetic (snnc.models.finetune), from the checkpoints above
train nmnist_cnn --finetune-for loihi --out "$CK/nmnist_cnn_ft_loihi.pt"
train speck_cnn --finetune-for speck --out "$CK/speck_cnn_ft_speck.pt"
train minlatency_cnn --finetune-for loihi --out "$CK/minlatency_cnn_ft_loihi.pt"
