"""Reference simulator of a :class:`LoihiNetwork`: Lava's fixed-point CUBA LIF, Dense and Conv, bit for bit.

What it reproduces was read from lava-nc 0.10 (lava/proc/lif/models.py ``AbstractPyLifModelFixed``
and ``PyLifModelBitAcc``, lava/proc/dense/models.py ``AbstractPyDenseModelBitAcc``,
lava/proc/conv/models.py ``PyConvModelFixed``, lava/proc/conv/utils.py, lava/utils/weightutils.py):
the LIF step and its registers are :mod:`snnc.targets.loihi.chip`, the synapses are described in
:mod:`snnc.targets.loihi.numpy_engine`. Every synapse delivers its output one step later.

This module is the driver: it checks the input, chooses the engine and, once per network, whether
the network is a chain of single-input layers or runs through :mod:`snnc.targets.loihi.general`
(several inputs per layer, recurrence, readouts). Two engines give identical integers (``engine=``
of :class:`LoihiSimulator`, or the ``SNNC_LOIHI_ENGINE`` environment variable: ``auto``, ``numba``,
``numpy``):

* ``numba`` (the default when numba imports): chains run layer by layer through the compiled,
  event-driven kernel of :mod:`snnc.targets.loihi.kernels` (samples in parallel; per step, the
  weight rows / conv taps of the inputs that spiked are added into integer accumulators and the
  LIF update is done in int64 with every wrap and saturation applied unconditionally);
* ``numpy`` (always available, e.g. in the Lava worker's interpreter, which has no numba; and
  for non-chain graphs): :mod:`snnc.targets.loihi.numpy_engine`, vectorised over batch and neurons.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, List, Optional, Tuple

import numpy as np

from snnc.errors import BackendUnavailableError, InputError
from snnc.targets.loihi.chip import UV_MAX, V_MAX, V_MIN  # noqa: F401  (importable from here too)
from snnc.targets.loihi.engine_common import PreparedLayer, SimResult, check_input, fan_out  # noqa: F401
from snnc.targets.loihi.general import prepared_inputs, run_general
from snnc.targets.loihi.network import LoihiNetwork
from snnc.targets.loihi.numpy_engine import (ConvKernel, DenseKernel, conv_accumulate,  # noqa: F401
                                             dense_accumulate, lif_run, prepare, run_chain, synaptic_input)

log = logging.getLogger(__name__)

__all__ = ["ENGINES", "ENGINE_ENV", "LoihiSimulator", "SimResult", "resolve_engine", "simulate",
           # the engines' public names, importable from here too
           "ConvKernel", "DenseKernel", "PreparedLayer", "UV_MAX", "V_MAX", "V_MIN", "conv_accumulate",
           "dense_accumulate", "fan_out", "lif_run", "synaptic_input"]


#: Values of ``engine`` (:class:`LoihiSimulator`) and of the ``SNNC_LOIHI_ENGINE`` environment variable.
ENGINES: Tuple[str, ...] = ("auto", "numba", "numpy")
ENGINE_ENV = "SNNC_LOIHI_ENGINE"


def _kernels() -> Any:
    """Return :mod:`snnc.targets.loihi.kernels` when numba is importable (little-endian hosts), else None."""
    if sys.byteorder != "little":  # the kernels read 8 spike bytes as one little-endian word
        return None
    try:
        from snnc.targets.loihi import kernels
    except ImportError:  # pragma: no cover - numba's own import failing in an odd way
        return None
    return kernels if kernels.AVAILABLE else None


def resolve_engine(engine: Optional[str] = None) -> str:
    """Return the engine to use: ``"numba"`` (compiled kernels) or ``"numpy"``.

    ``engine`` None reads ``SNNC_LOIHI_ENGINE`` (default ``"auto"``); ``"auto"`` is ``"numba"``
    when numba imports, else ``"numpy"`` (logged at debug level); ``"numba"`` without numba raises.
    """
    name = (engine if engine is not None else os.environ.get(ENGINE_ENV, "auto")).strip().lower() or "auto"
    if name not in ENGINES:
        raise InputError(f"Loihi simulator engine {name!r} is not one of {ENGINES}",
                         hint=f"pass engine= or set {ENGINE_ENV} to auto, numba or numpy")
    if name == "numpy":
        return name
    if _kernels() is None:
        if name == "numba":
            raise BackendUnavailableError("the numba engine of the Loihi simulator needs numba",
                                          hint="pip install numba, or use engine='numpy'")
        log.debug("numba not importable: the Loihi simulator uses its numpy engine")
        return "numpy"
    return "numba"


class LoihiSimulator:
    """The reference simulator prepared for one network (effective weights etc. computed once).

    ``engine``: ``"numba"`` runs chains through the compiled event-driven kernels of
    :mod:`snnc.targets.loihi.kernels`, ``"numpy"`` through :mod:`snnc.targets.loihi.numpy_engine`,
    ``"auto"``/None: see :func:`resolve_engine`. Both give identical integers. Networks that are not
    chains (several inputs per layer, recurrence, readouts, delayed biases) run through
    :mod:`snnc.targets.loihi.general` on the numpy engine's blocks, whatever the engine: this
    constructor decides, once.
    """

    def __init__(self, net: LoihiNetwork, accumulate: str = "auto", threads: Optional[int] = None,
                 engine: Optional[str] = None) -> None:
        self.net = net
        self.accumulate = accumulate
        #: Threads for the neuron updates (numpy releases the GIL); None = 1 (the synaptic sums already
        #: use BLAS / torch threads; more threads were not faster where measured: benchmarks/README.md).
        self.threads = 1 if threads is None else max(1, min(int(threads), os.cpu_count() or 1))
        self.engine = resolve_engine(engine)
        self.chain = net.is_chain_like()
        use_kernels = self.engine == "numba" and self.chain
        self.layers: List[PreparedLayer] = [PreparedLayer.of(ly) if use_kernels else prepare(ly, accumulate)
                                            for ly in net.layers]
        self._klayers: Optional[List[Any]] = None
        if use_kernels:
            kern = _kernels()
            self._klayers = [kern.KernelLayer.of(pl) if pl.layer.has_neurons else None for pl in self.layers]
        #: Per layer, one prepared view per synaptic input (general networks only).
        self.inputs: List[List[PreparedLayer]] = [] if self.chain else prepared_inputs(net, accumulate)

    def run(self, spikes: np.ndarray, record_states: bool = False) -> SimResult:
        """Run on binary input spikes (B, T, *input_shape); see :func:`simulate`."""
        x = check_input(self.net, spikes)
        if not self.chain:
            return run_general(self, x, record_states)
        if self._klayers is not None:
            return _kernels().run_chain(self.layers, self._klayers, self.net.input_shape, x, record_states)
        return run_chain(self.layers, x, record_states, self.accumulate, self.threads)


def simulate(net: LoihiNetwork, spikes: np.ndarray, record_states: bool = False,
             accumulate: str = "auto", engine: Optional[str] = None) -> SimResult:
    """Run ``net`` on binary input spikes (B, T, *input_shape); return every layer's spikes and counts.

    ``record_states`` also returns ``u`` and ``v`` per layer and step. ``accumulate`` selects the
    numpy engine's dense synaptic-sum kernel (``"auto"``, ``"blas"``, ``"gather"``); ``engine``
    the engine (see :class:`LoihiSimulator`); all give identical integers. To run one network
    many times, build a :class:`LoihiSimulator` once instead.
    """
    return LoihiSimulator(net, accumulate, engine=engine).run(spikes, record_states)
