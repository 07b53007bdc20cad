"""The default model and data of the README's main command."""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import List, Tuple

import numpy as np

log = logging.getLogger(__name__)

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "nmnist_mlp.pt"
DEMO_DT_S = 1e-3
DEMO_STEPS = 300


def default_model_and_samples(n: int = 20) -> Tuple[str, List[np.ndarray], np.ndarray, float, int]:
    """Return (model path, event lists, labels, dt_s, steps) for ``n`` held-out N-MNIST recordings."""
    from snnc.models.data.nmnist import NMNISTSmall

    path = str(DEFAULT_CHECKPOINT)
    if not DEFAULT_CHECKPOINT.exists():
        import torch

        from snnc.models.checkpoint import save_checkpoint
        from snnc.models.zoo import build

        log.warning("no shipped checkpoint at %s: using an untrained nmnist_mlp (accuracy is chance)", path)
        torch.manual_seed(0)
        path = os.path.join(tempfile.mkdtemp(prefix="snnc-"), "nmnist_mlp_untrained.pt")
        save_checkpoint(path, "nmnist_mlp", {}, build("nmnist_mlp"))
    ds = NMNISTSmall()
    _, val = ds.split(val_fraction=0.2, seed=0)
    idx = val[:n]
    return path, [ds.events(int(i)) for i in idx], np.array([ds.label(int(i)) for i in idx]), DEMO_DT_S, DEMO_STEPS
