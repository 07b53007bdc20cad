"""Deterministic train/validation splits."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from snnc.errors import ValueRangeError


def stratified_split(labels: Sequence[int], val_fraction: float = 0.2, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into (train, val), stratified by class and deterministic by seed.

    Each class contributes ``round(n_class * val_fraction)`` samples to validation, chosen by
    a permutation from ``numpy.random.default_rng(seed)``. Both index arrays are sorted.
    """
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueRangeError(f"val_fraction must be in [0, 1), found {val_fraction}")
    y = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    # One random key per sample; within each class the lowest keys go to validation.
    keys = rng.random(y.size)
    order = np.lexsort((keys, y))
    classes, first, counts = np.unique(y[order], return_index=True, return_counts=True)
    n_val = np.rint(counts * float(val_fraction)).astype(np.int64)
    rank = np.arange(y.size) - np.repeat(first, counts)
    is_val_sorted = rank < np.repeat(n_val, counts)
    is_val = np.zeros(y.size, dtype=bool)
    is_val[order] = is_val_sorted
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def split_by_groups(groups: Sequence[Any], val_groups: Sequence[Any]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, val): validation holds the samples whose group is listed."""
    g = np.asarray(groups)
    is_val = np.isin(g, np.asarray(list(val_groups)))
    if len(val_groups) and not is_val.any():
        raise ValueRangeError(f"no sample belongs to validation groups {list(val_groups)}; "
                              f"known groups: {sorted(set(g.tolist()))}")
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
