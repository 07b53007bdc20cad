"""The zoo and the validation data sets, registered with the runtime (:mod:`snnc.runtime.registry`).

Imported by ``snnc/__init__.py``. Nothing heavy happens at import: the zoo (torch) and the data
are loaded on first use.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from snnc.errors import InputError
from snnc.runtime.registry import register_validation_set, register_zoo


def _build(name: str, **kwargs: Any) -> Any:
    from snnc.models.zoo import build

    return build(name, **kwargs)


def _recipe(name: str) -> Dict[str, Any]:
    from snnc.models.zoo import recipe

    return recipe(name)


def nmnist_validation_set(dt_s: float, n_steps: Optional[int] = None, samples: Optional[int] = None
                          ) -> Dict[str, Any]:
    """Return the held-out N-MNIST-small split binned at ``dt_s``: counts (B, T, 2, 34, 34) and labels."""
    from snnc.formats.events import BinSpec
    from snnc.models.data.nmnist import NMNISTSmall, load_nmnist_small_binned

    dt_us = int(round(dt_s * 1e6))
    if dt_us <= 0 or abs(dt_us - dt_s * 1e6) > 1e-6:
        raise InputError(f"dt_s={dt_s} is not a whole number of microseconds", hint="use e.g. 1e-3 or 2e-3")
    steps = int(n_steps) if n_steps else int(round(0.3 / dt_s))
    binned = load_nmnist_small_binned(BinSpec(dt_us=dt_us, n_steps=steps, mode="count"))
    val = NMNISTSmall().split(0.2, seed=0)[1]
    if samples:
        val = val[: int(samples)]
    return {"x": binned.dense_batch(val, np.float32), "labels": binned.labels[val], "indices": val,
            "dt_us": dt_us, "n_steps": steps, "split": "NMNISTSmall().split(0.2, seed=0)[1]"}


register_zoo(_build, _recipe)
register_validation_set("nmnist", nmnist_validation_set)
