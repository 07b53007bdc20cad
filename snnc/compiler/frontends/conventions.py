"""Per-framework conventions of NIR files: which time step and integration reproduce the exporter.

NIR stores continuous-time ODEs and no time step. Every framework discretises them its own way
and its exporter writes parameters in its own convention, so a file only reproduces the
framework's simulation at the right ``dt_s`` and ``method`` (and, for some exporters, after
undoing a documented quirk). :func:`convention` answers "which ``dt_s``/``method``", and
:func:`adapt` rewrites the quirks of an exporter in an imported :class:`Graph` (each change is
recorded in ``graph.notes``). Measured with snnTorch 1.0.0, Norse 1.1.0, sinabs 3.1.3,
SpikingJelly 2.0.0 and Rockpool 3.1.0 against
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
``sinabs``  dt = 1 (one step), exact integration; one step is a unit of time, not seconds, so
    event input needs its own bin width (``--bin-us``). sinabs' ``IAF``/``LIF`` are discrete
    per-step models with ``tau`` in steps (``LIF``: ``v' = exp(-1/tau) v + (1-exp(-1/tau)) x``);
    its exporter passes ``tau`` through with ``r = 1``, which is exactly NIR's ODE integrated over
    one unit of time. The file stores no spike or reset function: :func:`adapt` reads IF and LIF
    as ``sinabs.from_nir`` does (``MultiSpike``, ``MembraneSubtract``, IF floor ``min_v_mem =
    -v_threshold``), so a file compiles to what sinabs itself simulates from it (``from_nir``
    also drops a LIF's input normalisation, which snnc keeps as the file's ``r`` says). For NIR's
    own semantics (one spike, reset to ``v_reset``: the variant Loihi takes) compile with
    ``--dt 1 --method exact`` instead. A sinabs *module* carries its own settings. sinabs spikes
    at ``v >= threshold``, NIR at ``v > threshold``. sinabs 3.1.3 exports with nir 1.0.8 when the
    model has run once on ``(batch, time, ...)`` data before ``to_nir``.
``spikingjelly``  dt = 1e-4 s (its exporter's default ``dt``), forward Euler. SpikingJelly 2.0's
    ``export_to_nir`` writes ``LIF(tau = tau_steps*dt, r = 1)`` and ``IF(r = 1/dt)``, whose Euler
    step at ``dt`` is SpikingJelly's own update; nothing to adapt. It spikes at ``v >= threshold``.
``rockpool``  dt = 1e-3 s (``LIFTorch``'s default ``dt``), exact integration, after :func:`adapt`.
    Rockpool 3.1.0's ``LIFTorch`` steps ``i' = beta (i + x)``, ``v' = alpha v + i' + bias`` with
    ``alpha, beta = exp(-dt/tau_mem), exp(-dt/tau_syn)``, then emits
    ``n = min(floor(v'/threshold), max_spikes_per_dt)`` spikes where ``v' >= threshold`` and
    subtracts ``n * threshold``. Its ``to_nir`` writes ``CubaLIF(tau_syn, tau_mem, r = tau_mem
    alpha/dt, w_in = 1, v_leak = 0, v_reset = 0)`` (``LIFNeuronTorch``: ``LIF`` with the same
    ``r``; ``ExpSynTorch``: ``LI(tau, r = tau beta/dt)``), ``LinearTorch`` as ``Linear``/``Affine``
    (weight transposed to NIR's ``(out, in)``) and an ``Input`` with a batch dimension (dropped on
    import). :func:`adapt` reads ``dt`` back from ``r`` (it must equal the convention's ``dt``),
    sets ``r = 1/(1-alpha)`` (``LI``: ``beta/(1-beta)``) and ``w_in *= beta/(1-beta)`` so that
    snnc's exact step is Rockpool's, and marks every LIF/CubaLIF ``reset_mode="subtract"`` with
    ``max_spikes_per_step = 2**16`` (Rockpool's default ``max_spikes_per_dt``; the ``adapt``
    argument ``max_spikes_per_step`` overrides it): outputs are spike counts. Lossy in the file
    (not recoverable): the neuron ``bias`` (written as ``v_leak = 0``), the recurrent weights of
    ``has_rec=True`` (not written at all), ``max_spikes_per_dt`` and ``noise_std``; Rockpool
    spikes at ``v >= threshold``, snnc at ``v > threshold``. The cpu and xylo targets run
    reset-by-subtraction/multi-spike neurons; Loihi and Speck refuse them by name.
``snnc``  snnc's own exports: exact integration, the dt the model was built with (1e-3 s).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from snnc.compiler import graph as g
from snnc.errors import UnsupportedError, ValueRangeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Convention:
    """How one framework's NIR files are meant: time step ``dt_s``, integration ``method``, notes."""

    name: str
    dt_s: float
    method: str
    needs_adapt: bool
    summary: str
    #: False where the framework's models are discrete in steps (its "dt" is the exporter's
    #: notional one): event input then needs its own bin width (``--bin-us``).
    physical_dt: bool = True
    #: Where a compile learns the ``dt`` the exporter was given, first found wins: ``"flag"`` (the
    #: step the user gives: a Rockpool file's ``dt`` lives in its ``r``, so a given step is the
    #: export's), ``"model"`` (the module's own ``dt``). None found: the framework's default.
    export_dt_from: Tuple[str, ...] = ()

    def export_dt_s(self, given_dt_s: Optional[float], model_dt_s: Optional[float]) -> float:
        """Return the ``dt`` (seconds) the exporter was given, 0.0 for its default (see ``export_dt_from``)."""
        for where in self.export_dt_from:
            dt = given_dt_s if where == "flag" else model_dt_s
            if dt is not None:
                return float(dt)
        return 0.0


#: The known frameworks (lower-case names).
CONVENTIONS: Dict[str, Convention] = {
    "snntorch": Convention("snntorch", 1e-4, "euler", False,
                           "tau = dt/(1-beta), r = tau/dt with dt = 1e-4 s; reset mechanism not stored",
                           physical_dt=False),
    "norse": Convention("norse", 1e-3, "euler", True,
                        "to_nir writes tau = dt*tau, IF r = 1 (v' = v + x), CubaLIF w_in = 1 (i' = i + x)",
                        export_dt_from=("model",)),
    "sinabs": Convention("sinabs", 1.0, "exact", True,
                         "tau passed through in steps, r = 1: one step is one unit of time; read as sinabs.from_nir "
                         "does: MultiSpike, MembraneSubtract, IF floor min_v_mem = -v_threshold", physical_dt=False),
    "spikingjelly": Convention("spikingjelly", 1e-4, "euler", False,
                               "export_to_nir(dt=1e-4) writes tau = tau_steps*dt, IF r = 1/dt", physical_dt=False),
    "rockpool": Convention("rockpool", 1e-3, "exact", True,
                           "to_nir writes r = tau_mem exp(-dt/tau_mem)/dt, w_in = 1; LIFTorch resets by "
                           "subtraction with up to max_spikes_per_dt spikes per step",
                           export_dt_from=("flag", "model")),
    "snnc": Convention("snnc", 1e-3, "exact", False, "snnc's own exports"),
}

#: Rockpool's default ``max_spikes_per_dt`` (``LIFTorch``, ``LIFNeuronTorch``): 2**16.
ROCKPOOL_MAX_SPIKES_PER_DT = 2 ** 16
#: Largest relative difference between the ``dt`` read back from a Rockpool file and the expected one.
_DT_RTOL = 1e-4


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


def lookup(name: str) -> Convention:
    """Return the :class:`Convention` of framework ``name`` (case and ``-``/``_`` ignored)."""
    return _lookup(name)


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-5) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))))


def detect_convention(graph: g.Graph) -> Tuple[Optional[str], str]:
    """Return ``(framework, evidence)`` when the neuron parameters identify an exporter with certainty.

    Only exact parameter relations count, never magnitudes: snnTorch writes ``r = tau/dt`` (and
    ``w_in = tau_syn/dt``) at ``dt = 1e-4`` s for every neuron; Rockpool writes CubaLIF/LIF with
    ``w_in = 1`` and an ``r`` from which one common ``dt`` reads back (``r = tau exp(-dt/tau)/dt``).
    ``(None, why)`` otherwise (e.g. IF nodes with ``r = 1`` fit sinabs and Norse alike).
    """
    neurons = [(n, x) for n, x in graph.nodes.items() if isinstance(x, (g.LI, g.CubaLI))]
    if not neurons:
        return None, "no leaky neuron whose parameters could identify an exporter"
    dt = CONVENTIONS["snntorch"].dt_s
    snn = all(_close(x.r * dt, x.tau_mem if isinstance(x, g.CubaLI) else x.tau)
              and (not isinstance(x, g.CubaLI) or _close(x.w_in * dt, x.tau_syn)) for _, x in neurons)
    if snn:
        return "snntorch", (f"every neuron has r = tau/dt (and w_in = tau_syn/dt) at dt = {dt:g} s, "
                            f"as snnTorch's exporter writes ({len(neurons)} neuron node(s))")
    rp = [(n, x) for n, x in neurons if isinstance(x, (g.CubaLIF, g.LIF))]
    if rp and len(rp) == len(neurons) and all(_close(getattr(x, "w_in", np.ones(1)), np.ones(1)) for _, x in rp):
        try:
            dts = np.concatenate([rockpool_dt_s(x.tau_mem if isinstance(x, g.CubaLI) else x.tau, x.r).reshape(-1)
                                  for _, x in rp])
        except ValueRangeError:
            dts = np.array([np.nan])
        want = CONVENTIONS["rockpool"].dt_s
        taus = np.concatenate([np.asarray(x.tau_mem if isinstance(x, g.CubaLI) else x.tau).reshape(-1) for _, x in rp])
        # r = tau exp(-dt/tau)/dt tells Rockpool from r = tau/dt only where exp(-dt/tau) is measurably below 1
        telling = bool(np.all(np.isfinite(taus)) and np.max(want / taus) > 10 * _DT_RTOL)
        if telling and np.all(np.isfinite(dts)) and _close(dts, np.full_like(dts, want), _DT_RTOL) \
                and not _close(np.concatenate([np.asarray(x.r).reshape(-1) for _, x in rp]), 1.0):
            return "rockpool", (f"every neuron has w_in = 1 and r = tau exp(-dt/tau)/dt with dt = {want:g} s, "
                                "as Rockpool's to_nir writes")
    return None, "the neuron parameters match no exporter's convention exactly"


def framework_names() -> Tuple[str, ...]:
    """Return the framework names :func:`convention` knows."""
    return tuple(sorted(CONVENTIONS))


def rockpool_dt_s(tau_s: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Return the ``dt`` (seconds, per neuron) solving Rockpool's ``r = tau exp(-dt/tau) / dt``.

    With ``u = dt/tau`` this is ``u + ln(u) = -ln(r)`` (``u = W(1/r)``), solved by Newton's method.
    """
    tau = np.asarray(tau_s, dtype=np.float64)
    r = np.broadcast_to(np.asarray(r, dtype=np.float64), np.broadcast(tau, np.asarray(r)).shape)
    if np.any(~np.isfinite(r)) or np.any(r <= 0) or np.any(~np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueRangeError("Rockpool neuron needs finite r > 0 and tau > 0 to read back dt",
                              hint="was this file written by rockpool's to_nir?")
    target = -np.log(r)
    u = np.log1p(1.0 / r)  # ~1/r for large r, ~ln(1/r) for small r: both near W(1/r)
    for _ in range(60):
        u_new = u - (u + np.log(u) - target) / (1.0 + 1.0 / u)
        u_new = np.where(u_new <= 0, u / 2, u_new)
        if np.all(np.abs(u_new - u) <= 1e-15 * np.abs(u)):
            u = u_new
            break
        u = u_new
    return u * tau


def _adapt_rockpool(out: g.Graph, dt: float, max_spikes_per_step: int) -> None:
    """Rewrite Rockpool ``to_nir`` neurons in place for snnc's exact step at ``dt`` (see module doc)."""
    found = False
    for n, node in list(out.nodes.items()):
        if isinstance(node, (g.CubaLIF, g.LI)):  # CubaLIF, LIF (a subclass of LI) and LI
            tau_mem = node.tau_mem if isinstance(node, g.CubaLIF) else node.tau
            dt_file = rockpool_dt_s(tau_mem, node.r)
            worst = float(np.max(np.abs(dt_file - dt))) / dt
            if worst > _DT_RTOL:
                raise UnsupportedError(
                    f"rockpool convention: r = tau exp(-dt/tau)/dt of this {node.kind} gives dt in "
                    f"[{np.min(dt_file):.6g}, {np.max(dt_file):.6g}] s, not the expected {dt:.6g} s",
                    node=n, file=out.source or None,
                    hint=f"the model was built with LIFTorch(dt={np.median(dt_file):.6g}): compile with that "
                         f"time step (adapt(graph, 'rockpool', export_dt_s=...)), or rebuild it with dt={dt}")
            alpha = np.exp(-dt / np.asarray(tau_mem, dtype=np.float64))
            found = True
            if isinstance(node, g.CubaLIF):
                beta = np.exp(-dt / np.asarray(node.tau_syn, dtype=np.float64))
                out.nodes[n] = node.replace(r=1.0 / (1.0 - alpha), w_in=node.w_in * beta / (1.0 - beta),
                                            reset_mode="subtract", max_spikes_per_step=max_spikes_per_step)
                out.notes.append(f"{n}: rockpool convention (LIFTorch): dt={dt} s read back from r; "
                                 f"r := 1/(1-alpha), w_in *= beta/(1-beta) (i' = beta (i + x), "
                                 f"v' = alpha v + i'); reset by subtraction, up to {max_spikes_per_step} "
                                 f"spikes per step (not stored in NIR)")
            elif isinstance(node, g.LIF):
                out.nodes[n] = node.replace(r=1.0 / (1.0 - alpha), reset_mode="subtract",
                                            max_spikes_per_step=max_spikes_per_step)
                out.notes.append(f"{n}: rockpool convention (LIFNeuronTorch): dt={dt} s read back from r; "
                                 f"r := 1/(1-alpha) (v' = alpha v + x); reset by subtraction, up to "
                                 f"{max_spikes_per_step} spikes per step (not stored in NIR)")
            else:
                out.nodes[n] = node.replace(r=alpha / (1.0 - alpha))
                out.notes.append(f"{n}: rockpool convention (ExpSynTorch): dt={dt} s read back from r; "
                                 f"r := beta/(1-beta) (i' = beta (i + x))")
        elif isinstance(node, g.Neuron):
            out.notes.append(f"{n}: rockpool convention: Rockpool's to_nir writes no {node.kind}; "
                             f"kept with NIR's semantics")
    if found:
        out.notes.append("rockpool convention: Rockpool 3.1.0's to_nir writes neither LIFTorch's bias "
                         "(v_leak = 0) nor recurrent weights (has_rec=True): a model with either is not "
                         "reproduced")


#: sinabs' ``MultiSpike`` has no limit; snnc's neurons need one: more spikes than any state reaches.
SINABS_MAX_SPIKES = 2 ** 16


def _adapt_sinabs(out: g.Graph) -> None:
    """Read spiking neurons as ``sinabs.from_nir`` does (sinabs 3.1.3): the semantics sinabs gives the file.

    ``IF`` -> ``IAFSqueeze(spike_threshold=v_threshold, min_v_mem=-v_threshold)``, ``LIF`` ->
    ``LIFSqueeze(min_v_mem=None)``, both with sinabs' defaults ``MultiSpike`` and
    ``MembraneSubtract``. A sinabs *module* (``snn-compile model.pt``) carries its own settings instead.
    """
    for n, node in list(out.nodes.items()):
        if not isinstance(node, (g.IF, g.LIF)) or isinstance(node, g.CubaLIF):
            continue
        changes: Dict[str, object] = {"reset_mode": "subtract", "max_spikes_per_step": SINABS_MAX_SPIKES}
        if np.any(np.asarray(node.v_reset) != 0):
            raise UnsupportedError(f"sinabs convention: {node.kind} with v_reset != 0 (sinabs subtracts the "
                                   "threshold)", node=n, hint="give --dt 1 --method exact instead of --framework "
                                                              "sinabs to keep NIR's reset to v_reset")
        thr = np.asarray(node.v_threshold, dtype=np.float64).reshape(-1)
        floor = ""
        if isinstance(node, g.IF):
            if np.all(thr == thr[0]):
                changes["v_min"] = -float(thr[0])
                floor = f", floor v_min = -v_threshold = {-float(thr[0]):g}"
            else:
                raise UnsupportedError("sinabs convention: IF with per-neuron thresholds (sinabs' floor "
                                       "min_v_mem = -v_threshold is per neuron)", node=n,
                                       hint="give --dt 1 --method exact instead of --framework sinabs")
        out.nodes[n] = node.replace(**changes)
        out.notes.append(f"{n}: sinabs convention (as sinabs.from_nir reads it): MultiSpike, MembraneSubtract{floor}")


def adapt(graph: g.Graph, name: str, export_dt_s: float = 0.0,
          max_spikes_per_step: Optional[int] = None) -> g.Graph:
    """Return a copy of ``graph`` with framework ``name``'s exporter quirks undone (noted in ``notes``).

    ``export_dt_s`` is the ``dt`` given to the exporter (0: the framework's default).
    ``max_spikes_per_step`` (Rockpool only) is the model's ``max_spikes_per_dt`` (default 2**16).
    Frameworks without quirks return an unchanged copy.
    """
    c = _lookup(name)
    out = graph.copy()
    if max_spikes_per_step is not None and c.name != "rockpool":
        raise UnsupportedError(f"max_spikes_per_step applies to rockpool files, not {c.name}")
    if not c.needs_adapt:
        return out
    dt = float(export_dt_s or c.dt_s)
    if not (np.isfinite(dt) and dt > 0):
        raise UnsupportedError(f"export time step must be > 0, found {export_dt_s}")
    if c.name == "rockpool":
        m = ROCKPOOL_MAX_SPIKES_PER_DT if max_spikes_per_step is None else max_spikes_per_step
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueRangeError(f"max_spikes_per_step must be an integer >= 1, found {m!r}")
        _adapt_rockpool(out, dt, int(m))
        return out
    if c.name == "sinabs":
        _adapt_sinabs(out)
        return out
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


__all__ = ["Convention", "CONVENTIONS", "convention", "lookup", "detect_convention", "adapt", "framework_names",
           "rockpool_dt_s", "ROCKPOOL_MAX_SPIKES_PER_DT"]
