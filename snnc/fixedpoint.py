"""The one place for integer rounding, shifting, wrapping and saturating (numpy, vectorised).

All functions work elementwise on integer numpy arrays (int64 recommended for intermediates).
"""
from __future__ import annotations

import numpy as np


def trunc_div(a: np.ndarray, b: int) -> np.ndarray:
    """Divide integers, rounding toward zero (C semantics), for int arrays ``a`` and int ``b``."""
    a = np.asarray(a, dtype=np.int64)
    q = np.abs(a) // abs(int(b))
    return np.where((a < 0) != (b < 0), -q, q)


def shift(a: np.ndarray, exp: int) -> np.ndarray:
    """Arithmetic shift: ``a << exp`` for ``exp >= 0``, ``a >> -exp`` (floor) otherwise."""
    a = np.asarray(a, dtype=np.int64)
    return a << exp if exp >= 0 else a >> (-exp)


def wrap(a: np.ndarray, bits: int) -> np.ndarray:
    """Wrap integers into the signed two's-complement range of ``bits`` bits."""
    a = np.asarray(a, dtype=np.int64)
    half = 1 << (bits - 1)
    return ((a + half) & ((1 << bits) - 1)) - half


def saturate(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Clamp integers to ``[lo, hi]``."""
    return np.clip(np.asarray(a, dtype=np.int64), lo, hi)


def round_half_even(x: np.ndarray) -> np.ndarray:
    """Round floats to the nearest integer, ties to even, returned as int64."""
    return np.rint(np.asarray(x, dtype=np.float64)).astype(np.int64)


def signed_range(bits: int) -> tuple[int, int]:
    """Return ``(min, max)`` of a signed two's-complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
