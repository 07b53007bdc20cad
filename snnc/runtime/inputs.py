"""Turning user inputs (dense arrays, event lists, files) into dense (batch, T, *shape) arrays."""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from snnc.errors import InputError, ShapeError

EVENT_FIELDS = ("t_us", "x", "y", "p")


def is_event_array(a: Any) -> bool:
    """Return True for a structured array with fields t_us (or t, microseconds), x, y, p."""
    return isinstance(a, np.ndarray) and a.dtype.names is not None and "x" in a.dtype.names and \
        ("t_us" in a.dtype.names or "t" in a.dtype.names)


def _bin(events: np.ndarray, bin_us: Optional[int], shape: Tuple[int, ...], steps: Optional[int],
         mode: str = "count", source: str = "") -> np.ndarray:
    from snnc.formats.events import events_to_dense

    if len(shape) != 3:
        raise ShapeError(f"event input needs a (polarity, H, W) input shape, the model takes {tuple(shape)}",
                         hint="feed a dense array instead")
    if bin_us is None:
        raise InputError(f"event input needs a bin width, and this program has none ({source})",
                         hint="compile with --bin-us MICROSECONDS (e.g. --bin-us 1000 for 1 ms count frames), "
                              "or pass bin_us= to Program.run")
    if int(bin_us) < 1:
        raise InputError(f"bin width must be >= 1 us, found {bin_us}")
    return events_to_dense(events, int(bin_us), shape, steps, mode=mode, dtype=np.float32)


def to_dense_batch(inputs: Any, input_shape: Sequence[int], bin_us: Optional[int], steps: Optional[int] = None,
                   mode: str = "count", source: str = "") -> np.ndarray:
    """Return inputs as a float array (batch, T, *input_shape) from dense arrays or event lists.

    Event lists are cut into bins of ``bin_us`` microseconds; ``mode="binary"`` (for targets whose
    inputs are single spikes) marks a pixel once however many events fall into its bin.
    """
    shape = tuple(int(s) for s in input_shape)
    if is_event_array(inputs):
        inputs = [inputs]
    if isinstance(inputs, (list, tuple)) and inputs and is_event_array(inputs[0]):
        empty = [i for i, e in enumerate(inputs) if e.size == 0]
        if empty:
            raise InputError(f"event list {empty[0]} holds no event", hint="leave empty recordings out")
        dense = [_bin(e, bin_us, shape, steps, mode, source) for e in inputs]
        T = max(d.shape[0] for d in dense)
        out = np.zeros((len(dense), T) + shape, dtype=np.float32)
        for i, d in enumerate(dense):
            out[i, :d.shape[0]] = d
        return out
    try:
        import torch

        if isinstance(inputs, torch.Tensor):
            inputs = inputs.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    try:
        a = np.asarray(inputs)
    except ValueError as e:  # a ragged list (samples of different lengths or shapes)
        raise InputError(f"inputs of different shapes cannot form one batch ({str(e).splitlines()[0]})",
                         hint="pad the samples to one length, or give event lists, or use Program.evaluate") from None
    if a.dtype == object:
        raise InputError("inputs of different shapes cannot form one batch",
                         hint="pad the samples to one length, or give event lists, or use Program.evaluate")
    if a.dtype.kind not in "biuf":
        raise InputError(f"input has dtype {a.dtype}; expected numbers or an event list")
    if a.ndim == len(shape) + 1:
        a = a[None]
    if a.ndim != len(shape) + 2 or tuple(a.shape[2:]) != shape:
        if a.ndim == len(shape) + 2 and int(np.prod(a.shape[2:])) == int(np.prod(shape)):
            a = a.reshape(a.shape[:2] + shape)
        else:
            raise ShapeError(f"input has shape {a.shape}; expected (batch, T, {', '.join(map(str, shape))})")
    if not np.all(np.isfinite(a)):
        raise InputError("input contains NaN or inf")
    check_batch(a)
    return a


def check_batch(x: np.ndarray) -> None:
    """Raise :class:`InputError` for a batch without samples or without time steps."""
    if x.shape[0] == 0:
        raise InputError("the input batch holds no sample", hint="give at least one sample")
    if x.ndim > 1 and x.shape[1] == 0:
        raise InputError("the input has zero time steps", hint="give at least one step per sample")


def load_input_file(path: str) -> Any:
    """Read an input file: ``.npy`` (dense), ``.npz`` (``x`` dense or ``t,x,y,p`` events), ``.bin`` (N-MNIST)."""
    if not os.path.exists(path):
        raise InputError("input file not found", file=path)
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" in z and z["x"].dtype.names is None and "t" not in z:
                    return z["x"]
                t = "t_us" if "t_us" in z else "t"
                if all(f in z for f in (t, "x", "y", "p")):
                    from snnc.formats.events import make_events

                    return make_events(z[t], z["x"], z["y"], z["p"])
                raise InputError(f"npz has keys {sorted(z.files)}; expected 'x' or 't','x','y','p'", file=path)
        if ext == ".bin":
            from snnc.formats.nmnist import read_nmnist_bin

            return read_nmnist_bin(path)
    except (ValueError, OSError) as e:
        raise InputError(f"cannot read input ({e})", file=path) from None
    raise InputError(f"unknown input format '{ext}'", file=path, hint="use .npy, .npz or an N-MNIST .bin file")
