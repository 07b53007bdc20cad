"""The default models and data of the README's main command (``make demo``)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Tuple

import numpy as np

log = logging.getLogger(__name__)

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
#: The demo's models: the baseline LIF MLP (cpu, Loihi) and the Speck-compatible IF CNN.
DEMO_MODELS = ("nmnist_mlp", "speck_cnn")


def checkpoint_path(name: str) -> Path:
    """Return the shipped checkpoint of zoo model ``name`` (an InputError if it is missing)."""
    from snnc.errors import InputError

    path = CHECKPOINT_DIR / f"{name}.pt"
    if not path.exists():
        raise InputError("shipped checkpoint is missing", file=str(path),
                         hint="reproduce it with scripts/train_zoo.sh")
    return path


def held_out_recordings(n: int = 50) -> Tuple[List[np.ndarray], np.ndarray]:
    """Return the event lists and labels of the first ``n`` held-out N-MNIST-small recordings."""
    from snnc.models.data.nmnist import NMNISTSmall

    ds = NMNISTSmall()
    idx = ds.split(val_fraction=0.2, seed=0)[1][:n]
    return [ds.events(int(i)) for i in idx], np.array([ds.label(int(i)) for i in idx])
