"""Per-framework conventions of NIR files: which time step and integration reproduce the exporter.

NIR stores continuous-time ODEs and no time step. Every framework discretises them its own way
and its exporter writes parameters in its own convention, so a file only reproduces the
framework's simulation at the right ``dt_s`` and ``method`` (and, for some exporters, after
undoing a documented quirk). :func:`convention` answers "which ``dt_s``/``method``", and
:func:`adapt` rewrites the quirks of an exporter in an imported :class:`Graph` (each change is
recorded in ``graph.notes``). Measured with snnTorch 1.0.0, Norse 1.1.0, sinabs 3.1.3 and
SpikingJelly 2.0.0 against
nir 1.0.8 (see ``tests/test_interop_*.py``):

``snntorch``  dt = 1e-4 s, forward Euler. The exporter writes ``tau = dt/(1-beta)``,
    ``r = tau/dt`` (and for ``Synaptic`` ``tau_syn = dt/(1-alpha)``, ``w_in = tau_syn/dt``), so
    snnc's Euler step gives snnTorch's ``v' = beta v + x`` exactly; nothing to adapt.
    Lossy in the file: the reset mechanism (NIR only knows reset-to-``v_reset``, snnTorch's
    default is ``reset_mechanism="subtract"``: train with ``"zero"`` to deploy faithfully),
    ``reset_delay`` (spikes are equal either way for reset-to-zero; only recorded voltages
    differ) and, for ``RLeaky``/``RSynaptic`` with reset-to-zero and ``reset_delay=True``, the
    zeroing of the input on the step after a spike (use ``reset_delay=False``).
``norse``  dt = 1e-3 s, forward Euler, after :func:`adapt`. Norse 1.1.0's ``to_nir`` writes
    ``tau = dt * tau_true`` (it divides ``dt`` by ``tau_inv``), ``IF`` with ``r = 1`` for its
    ``v' = v + x`` integrator (NIR's ``dv/dt = r x`` needs ``r = 1/dt``), and ``CubaLIF`` with
    ``w_in = 1`` for its ``i' = i + x`` current jump (NIR needs ``w_in = tau_syn/dt``).
    :func:`adapt` undoes all three for the export time step ``dt`` (default 1e-3 s).
``sinabs``  dt = 1 (one step), exact integration. sinabs' ``IAF``/``LIF`` are discrete per-step
    models with ``tau`` in steps (``LIF``: ``v' = exp(-1/tau) v + (1-exp(-1/tau)) x``); its
    exporter passes ``tau`` through with ``r = 1``, which is exactly NIR's ODE integrated over
    one unit of time. Lossy: sinabs' default ``MultiSpike``/``MembraneSubtract`` (use
    ``SingleSpike`` and ``MembraneReset``) and ``norm_input=False``; sinabs spikes at
    ``v >= threshold``, NIR at ``v > threshold``. sinabs 3.1.3 exports with nir 1.0.8 when the
    model has run once on ``(batch, time, ...)`` data before ``to_nir``.
``spikingjelly``  dt = 1e-4 s (its exporter's default ``dt``), forward Euler. SpikingJelly 2.0's
    ``export_to_nir`` writes ``LIF(tau = tau_steps*dt, r = 1)`` and ``IF(r = 1/dt)``, whose Euler
    step at ``dt`` is SpikingJelly's own update; nothing to adapt. It spikes at ``v >= threshold``.
(Rockpool 3.1 is not in the table: its ``LIFTorch`` is multi-spike with reset-by-subtraction,
which NIR cannot express, and its exporter writes ``r = tau exp(-dt/tau)/dt``; not verified.)
``snnc``  snnc's own exports: exact integration, the dt the model was built with (1e-3 s).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from snnc.compiler import graph as g
from snnc.errors import UnsupportedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Convention:
    """How one framework's NIR files are meant: time step ``dt_s``, integration ``method``, notes."""

    name: str
    dt_s: float
    method: str
    needs_adapt: bool
    summary: str


#: The known frameworks (lower-case names).
CONVENTIONS: Dict[str, Convention] = {
    "snntorch": Convention("snntorch", 1e-4, "euler", False,
                           "tau = dt/(1-beta), r = tau/dt with dt = 1e-4 s; reset mechanism not stored"),
    "norse": Convention("norse", 1e-3, "euler", True,
                        "to_nir writes tau = dt*tau, IF r = 1 (v' = v + x), CubaLIF w_in = 1 (i' = i + x)"),
    "sinabs": Convention("sinabs", 1.0, "exact", False,
                         "tau passed through in steps, r = 1: one step is one unit of time"),
    "spikingjelly": Convention("spikingjelly", 1e-4, "euler", False,
                               "export_to_nir(dt=1e-4) writes tau = tau_steps*dt, IF r = 1/dt"),
    "snnc": Convention("snnc", 1e-3, "exact", False, "snnc's own exports"),
}


def _lookup(name: str) -> Convention:
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    c = CONVENTIONS.get(key)
    if c is None:
        raise UnsupportedError(f"unknown framework '{name}'",
                               hint=f"known frameworks: {', '.join(sorted(CONVENTIONS))}")
    return c


def convention(name: str) -> Tuple[float, str]:
    """Return ``(dt_s, method)`` that reproduce framework ``name``'s own simulation of its NIR files."""
    c = _lookup(name)
    return c.dt_s, c.method


def framework_names() -> Tuple[str, ...]:
    """Return the framework names :func:`convention` knows."""
    return tuple(sorted(CONVENTIONS))


def adapt(graph: g.Graph, name: str, export_dt_s: float = 0.0) -> g.Graph:
    """Return a copy of ``graph`` with framework ``name``'s exporter quirks undone (noted in ``notes``).

    ``export_dt_s`` is the ``dt`` given to the exporter (0: the framework's default).
    Frameworks without quirks return an unchanged copy.
    """
    c = _lookup(name)
    out = graph.copy()
    if not c.needs_adapt:
        return out
    dt = float(export_dt_s or c.dt_s)
    if not (np.isfinite(dt) and dt > 0):
        raise UnsupportedError(f"export time step must be > 0, found {export_dt_s}")
    if c.name == "norse":
        for n, node in list(out.nodes.items()):
            if isinstance(node, g.CubaLIF) or isinstance(node, g.CubaLI):
                tau_syn, tau_mem = node.tau_syn / dt, node.tau_mem / dt
                out.nodes[n] = node.replace(tau_syn=tau_syn, tau_mem=tau_mem, w_in=node.w_in * tau_syn / dt)
                out.notes.append(f"{n}: norse convention: tau_syn, tau_mem divided by dt={dt}; "
                                 f"w_in *= tau_syn/dt (Norse's current jump i' = i + x)")
            elif isinstance(node, g.LI):
                out.nodes[n] = node.replace(tau=node.tau / dt)
                out.notes.append(f"{n}: norse convention: tau divided by dt={dt}")
            elif isinstance(node, g.IF):
                out.nodes[n] = node.replace(r=node.r / dt)
                out.notes.append(f"{n}: norse convention: IF r divided by dt={dt} (Norse's v' = v + x)")
    return out


__all__ = ["Convention", "CONVENTIONS", "convention", "adapt", "framework_names"]
