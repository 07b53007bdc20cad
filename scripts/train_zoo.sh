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
# SkipSNN (hidden 800 as in the paper): stage 1 (main net, gate open), stage 2 (controller, main net
# frozen, sigmoid surrogate annealed x0.9 every epoch). The claim's plain SNN is the same file with
# the gate removed (stage 2 leaves the main net's weights as stage 1 trained them). It goes to claims/:
# the shipped skipsnn.pt (hidden 256, no shift augmentation) stays the zoo's until results/zoo.json is
# regenerated with it (scripts/evaluate_zoo.py on main)
train skipsnn --stage 1 --out "$RUNS/skipsnn_s1.pt"
train skipsnn --stage 2 --epochs 4 --lr 0.005 --kwargs '{"anneal_every": 1}' --init "$RUNS/skipsnn_s1.pt" \
  --out "$CK/claims/skipsnn.pt"
# what the same plain net reaches on the 50-step signal alone, without noise (the accuracy bound)
train skipsnn_plain --data nmnist-binary --steps 50 --out "$CK/claims/skipsnn_plain_clean50.pt"
# ASA-SNN (ASA-1 as in the paper's code) and its vanilla network (same layers, same recipe), then the
# deployable static form (gains calibrated on training data); the same on binary bins (Loihi's input).
# The folded forms go to claims/: the shipped asa_snn_static*.pt were folded from the ASA before the
# paper's code was followed and stay the zoo's until results/zoo.json is regenerated with new ones
train asa_snn --out "$CK/claims/asa_snn.pt"
train asa_snn_vanilla --out "$CK/claims/asa_snn_vanilla.pt"
train asa_snn --kwargs '{"init_gain": 2.0}' --out "$CK/claims/asa_snn_gain2.pt"   # ablation: initial firing
"$PY" examples/train_asa.py --ckpt "$CK/claims/asa_snn.pt" --out "$CK/claims/asa_snn_static.pt"
train asa_snn --data nmnist-binary --out "$CK/claims/asa_snn_binary.pt"
train asa_snn_vanilla --data nmnist-binary --out "$CK/claims/asa_snn_vanilla_binary.pt"
"$PY" examples/train_asa.py --ckpt "$CK/claims/asa_snn_binary.pt" --out "$CK/claims/asa_snn_static_binary.pt"
# one-time-step minimum-latency SNN, and its binary-input form for Loihi
train minlatency_cnn --out "$CK/minlatency_cnn.pt"
train minlatency_cnn_binary --out "$CK/minlatency_cnn_binary.pt"
# fine-tuned through the chip's own integer arithmetic (snnc.models.finetune), from the checkpoints above
train nmnist_cnn --finetune-for loihi --out "$CK/nmnist_cnn_ft_loihi.pt"
train speck_cnn --finetune-for speck --out "$CK/speck_cnn_ft_speck.pt"
train minlatency_cnn --finetune-for loihi --out "$CK/minlatency_cnn_ft_loihi.pt"
train asa_snn_static --finetune-for loihi --out "$CK/asa_snn_static_ft_loihi.pt"
train minlatency_cnn_binary --finetune-for loihi --out "$CK/minlatency_cnn_binary_ft_loihi.pt"
# the min-latency claim: ablations and the plain same-size CNN at T = 1, 2, 4, 8 (same 300 ms window)
train minlatency_cnn --kwargs '{"projection": false}' --out "$CK/claims/minlatency_partition_only.pt"
train minlatency_cnn --kwargs '{"partition": false}' --out "$CK/claims/minlatency_projection_only.pt"
train minlatency_plain --out "$CK/claims/minlatency_plain_t1.pt"
train minlatency_plain --kwargs '{"kernel": 5}' --out "$CK/claims/minlatency_plain_k5_t1.pt"
train minlatency_plain --dt-us 150000 --steps 2 --out "$CK/claims/minlatency_plain_t2.pt"
train minlatency_plain --dt-us 75000 --steps 4 --out "$CK/claims/minlatency_plain_t4.pt"
train minlatency_plain --dt-us 37500 --steps 8 --out "$CK/claims/minlatency_plain_t8.pt"
train minlatency_plain --data nmnist-binary --out "$CK/claims/minlatency_plain_t1_binary.pt"
# the claims' tables (results/claims/*.json, README): scripts/paper_claims.py evaluate && ... readme
