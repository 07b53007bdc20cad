"""Contiguous ranges of work over a small pool of threads, for ``nogil`` compiled kernels.

The simulators' numba kernels are compiled with ``nogil`` and without numba's own threading layer
(its OpenMP layer terminates a child process forked after it ran), so calls from several Python
threads run concurrently. :func:`run_split` cuts ``range(n)`` into one contiguous range per thread
and calls the kernel on each; the calling thread takes the first.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List

_THREADS = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)]
_POOL: List[Any] = [None, -1]  # (executor, pid that made it): a forked child makes its own
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if _POOL[1] != os.getpid():
            _POOL[0] = ThreadPoolExecutor(max_workers=max(_THREADS[0] - 1, 1), thread_name_prefix="snnc-kernel")
            _POOL[1] = os.getpid()
        return _POOL[0]


def run_split(fn: Callable[..., Any], n: int, *args: Any) -> List[Any]:
    """Call ``fn(lo, hi, *args)`` on contiguous ranges covering ``range(n)``, one per thread; return the results."""
    parts = min(_THREADS[0], int(n))
    if parts <= 1:
        return [fn(0, int(n), *args)]
    edges = [int(n) * i // parts for i in range(parts + 1)]
    pool = _pool()
    futures = [pool.submit(fn, edges[i], edges[i + 1], *args) for i in range(1, parts)]
    try:
        first = fn(edges[0], edges[1], *args)
    finally:
        rest = [f.result() for f in futures]
    return [first] + rest


def get_threads() -> int:
    """Return how many threads the kernels use (default: the CPUs this process may use)."""
    return _THREADS[0]


def set_threads(n: int) -> None:
    """Set how many threads the kernels use."""
    _THREADS[0] = max(1, int(n))
    with _POOL_LOCK:
        if _POOL[0] is not None and _POOL[1] == os.getpid():
            _POOL[0].shutdown(wait=False)
        _POOL[0], _POOL[1] = None, -1
