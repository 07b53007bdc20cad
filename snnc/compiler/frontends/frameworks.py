"""Whole torch modules from other SNN frameworks -> NIR, through the framework's own exporter.

``snn-compile model.pt`` accepts a module pickled whole by snnTorch, Norse, sinabs, SpikingJelly
or Rockpool users (``torch.save(net, "model.pt")``). The framework is recognised from the
classes inside the module (:func:`detect_framework`); :func:`export_module` calls that
framework's own NIR exporter on a sample input of the model's shape and applies, inside snnc, the
workarounds the exporters need today (nirtorch's graph without the final type check when
snnTorch's ``export_to_nir`` fails on a batched sample; a forward pass before sinabs' export;
SpikingJelly's file-only export). The graph it returns is then imported like any NIR file, with
the framework's convention (:mod:`snnc.compiler.frontends.conventions`).

What NIR cannot carry is read from the live modules instead of being guessed: a snnTorch neuron
that resets by subtraction, or a sinabs layer with a membrane floor, is refused with the call
that makes it exportable; sinabs' ``MultiSpike``/``MembraneSubtract`` neurons are marked as such
(see :class:`snnc.compiler.graph.SpikeModeMixin`).
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from snnc.errors import InputError, UnsupportedError

log = logging.getLogger(__name__)

#: Frameworks whose modules :func:`export_module` converts, keyed by their top-level package.
FRAMEWORK_PACKAGES: Tuple[str, ...] = ("snntorch", "norse", "sinabs", "spikingjelly", "rockpool")

#: The export call each framework documents, quoted in refusals.
EXPORT_CALLS: Dict[str, str] = {
    "snntorch": "snntorch.export_to_nir(net, sample)",
    "norse": "norse.torch.to_nir(net, sample)",
    "sinabs": "sinabs.to_nir(net, sample)",
    "spikingjelly": "spikingjelly.activation_based.nir_exchange.export_to_nir(net, sample, save_path, dt=1e-4)",
    "rockpool": "net.to_nir()  (rockpool.nn.modules.to_nir)",
}

#: sinabs' ``MultiSpike`` has no limit; the snnc graph needs one: more spikes than any state can hold.
UNLIMITED_SPIKES = 2 ** 16


@dataclass
class FrameworkExport:
    """A framework module's NIR graph, the framework, its own time step and what was done on the way."""

    nir_graph: Any
    framework: str
    #: The module's own step in seconds where it has a physical one (Norse ``dt``, Rockpool ``dt``).
    module_dt_s: Optional[float] = None
    #: Per NIR node name: attributes snnc sets that NIR cannot store (``reset_mode``, ...).
    node_attrs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def _root(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def detect_framework(module: Any) -> Optional[str]:
    """Return the SNN framework whose classes make up ``module`` (None for plain torch / snnc modules)."""
    roots = {_root(m) for m in _modules(module)}
    found = sorted(roots & set(FRAMEWORK_PACKAGES))
    if len(found) > 1:
        raise UnsupportedError(f"the module mixes classes of {' and '.join(found)}",
                               hint="export each framework's part to NIR with its own exporter")
    if found and "snnc" in roots:
        raise UnsupportedError(f"the module mixes snnc neuron modules with {found[0]} classes",
                               hint=f"build it from one framework, or export it with {EXPORT_CALLS[found[0]]}")
    return found[0] if found else None


def _sample(shape: Sequence[int], batch: bool, time: int = 0) -> Any:
    import torch

    lead = ((1,) if batch else ()) + ((time,) if time else ())
    return torch.zeros(lead + tuple(int(s) for s in shape))


def _modules(module: Any) -> List[Any]:
    """Every submodule (torch's own iteration: Rockpool overrides ``modules()`` to return a dict)."""
    import torch

    return list(torch.nn.Module.modules(module)) if isinstance(module, torch.nn.Module) else [module]


def _named(module: Any) -> Dict[str, Any]:
    import torch

    return {name: m for name, m in torch.nn.Module.named_modules(module) if name}


def _snntorch(module: Any, shape: Sequence[int], out: FrameworkExport) -> None:
    import nirtorch
    import snntorch
    from snntorch.export_nir import _extract_snntorch_module, export_to_nir

    for name, m in _named(module).items():
        mech = getattr(m, "reset_mechanism", None)
        if mech is not None and mech not in ("zero", "none"):
            raise UnsupportedError(
                f"snnTorch neuron '{name}' ({type(m).__name__}) resets by {mech!r}: NIR stores only a reset "
                "to v_reset, and snnTorch's delayed subtraction (v' = beta v + x - thr*spike[t-1]) is not "
                "snnc's", node=name,
                hint="train (or fine-tune) with reset_mechanism='zero', reset_delay=False; or export the "
                     "model yourself and compile the .nir file knowing the reset differs")
        if getattr(m, "reset_delay", False) and type(m).__name__ in ("RLeaky", "RSynaptic") and mech == "zero":
            raise UnsupportedError(f"snnTorch {type(m).__name__} '{name}' uses reset_delay=True, which also "
                                   "zeroes the next step's input: not expressible in NIR", node=name,
                                   hint="use reset_delay=False")
    errors = []
    for batch in (False, True):
        try:
            out.nir_graph = export_to_nir(module, _sample(shape, batch))
            return
        except (ValueError, IndexError, AssertionError, RuntimeError, TypeError) as e:
            errors.append(f"{type(e).__name__}: {e}")
    # export_to_nir fails in its own final infer_types on a batched sample; the graph it built is fine
    out.nir_graph = nirtorch.extract_nir_graph(module, _extract_snntorch_module, _sample(shape, True),
                                               model_name="snntorch",
                                               ignore_submodules_of=[snntorch.RLeaky, snntorch.RSynaptic])
    out.notes.append(f"snntorch.export_to_nir failed ({errors[-1]}); used nirtorch's graph without its "
                     "final type check (batch dimension and missing shapes repaired on import)")


def _norse(module: Any, shape: Sequence[int], out: FrameworkExport) -> None:
    import norse.torch as norse

    dts = sorted({float(m.dt) for m in _modules(module) if isinstance(getattr(m, "dt", None), (int, float))})
    if len(dts) > 1:
        raise UnsupportedError(f"Norse cells with different dt {dts}", hint="build every cell with the same dt")
    dt = dts[0] if dts else 1e-3
    out.module_dt_s = dt
    out.nir_graph = norse.to_nir(module, _sample(shape, True), dt=dt)


def _sinabs(module: Any, shape: Sequence[int], out: FrameworkExport) -> None:
    import sinabs
    import torch

    for name, m in _named(module).items():
        spike_fn = getattr(m, "spike_fn", None)
        if spike_fn is None or not hasattr(m, "spike_threshold"):
            continue
        fn = spike_fn.__name__ if isinstance(spike_fn, type) else type(spike_fn).__name__
        reset = type(getattr(m, "reset_fn", None)).__name__
        if reset not in ("MembraneSubtract", "MembraneReset"):
            raise UnsupportedError(f"sinabs layer '{name}' has reset_fn {reset}", node=name,
                                   hint="use sinabs.activation.MembraneReset or MembraneSubtract")
        if fn not in ("MultiSpike", "SingleSpike"):
            raise UnsupportedError(f"sinabs layer '{name}' has spike_fn {fn}", node=name,
                                   hint="use sinabs.activation.SingleSpike or MultiSpike")
        if fn == "MultiSpike" and reset != "MembraneSubtract":
            raise UnsupportedError(f"sinabs layer '{name}': MultiSpike with {reset}", node=name,
                                   hint="MultiSpike needs MembraneSubtract; or use SingleSpike")
        floor = getattr(m, "min_v_mem", None)
        v_min = None
        if floor is not None:
            f = torch.as_tensor(floor).reshape(-1)
            if not bool(torch.all(f == f[0])):
                raise UnsupportedError(f"sinabs layer '{name}' has a per-neuron min_v_mem", node=name,
                                       hint="use one min_v_mem per layer")
            v_min = float(f[0])
        out.node_attrs[name] = {"reset_mode": "subtract" if reset == "MembraneSubtract" else "to_v_reset",
                                "max_spikes_per_step": UNLIMITED_SPIKES if fn == "MultiSpike" else 1,
                                "v_min": v_min}
    errors = []
    for sample in (_sample(shape, True, time=1), _sample(shape, True)):
        try:
            with torch.no_grad():
                module(sample)  # sinabs' exporter reads layer shapes from the state a forward pass made
            out.nir_graph = sinabs.to_nir(module, sample)
            for m in _modules(module):
                if hasattr(m, "reset_states"):
                    m.reset_states()
            return
        except Exception as e:  # the forward pass or the exporter; report the last one
            errors.append(f"{type(e).__name__}: {e}")
    raise UnsupportedError(f"sinabs.to_nir failed on a sample of shape (1, 1, {', '.join(map(str, shape))}): "
                           f"{errors[-1]}", hint="check --input-shape; or export the .nir file yourself")


def _spikingjelly(module: Any, shape: Sequence[int], out: FrameworkExport) -> None:
    import nir
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    fd, path = tempfile.mkstemp(suffix=".nir")
    os.close(fd)
    try:
        export_to_nir(module, _sample(shape, True), save_path=path, dt=1e-4)
        out.nir_graph = nir.read(path)
    finally:
        os.unlink(path)
    functional.reset_net(module)


def _rockpool(module: Any, shape: Sequence[int], out: FrameworkExport) -> None:
    from rockpool.nn.modules import to_nir

    dts = sorted({float(m.dt) for m in _modules(module) if isinstance(getattr(m, "dt", None), (int, float))})
    if len(dts) > 1:
        raise UnsupportedError(f"Rockpool modules with different dt {dts}", hint="use one dt for the network")
    out.module_dt_s = dts[0] if dts else None
    out.nir_graph = to_nir(module)
    if hasattr(module, "reset_state"):
        module.reset_state()


_EXPORTERS = {"snntorch": _snntorch, "norse": _norse, "sinabs": _sinabs, "spikingjelly": _spikingjelly,
              "rockpool": _rockpool}


def export_module(module: Any, framework: str, input_shape: Sequence[int], source: str = "<module>") -> FrameworkExport:
    """Export ``module`` of ``framework`` to a ``nir.NIRGraph`` with that framework's own exporter.

    ``input_shape`` is one sample's shape without batch and time (the exporters trace a sample).
    """
    if framework not in _EXPORTERS:
        raise UnsupportedError(f"no exporter for framework '{framework}'",
                               hint=f"known: {', '.join(FRAMEWORK_PACKAGES)}")
    if not input_shape:
        raise InputError(f"a {framework} module needs its input shape to be exported", file=source,
                         hint="pass --input-shape (e.g. 2,34,34 or 12), or input_shape=... in Python")
    out = FrameworkExport(nir_graph=None, framework=framework)
    was_training = bool(getattr(module, "training", False))
    if hasattr(module, "eval"):
        module.eval()
    try:
        _EXPORTERS[framework](module, input_shape, out)
    except ImportError as e:
        raise UnsupportedError(f"the model is a {framework} module, but {framework} cannot be imported here "
                               f"({e})", file=source, hint=f"pip install {framework}") from None
    except (InputError, UnsupportedError) as e:
        raise type(e)(e.message, file=source, node=e.node, hint=e.hint) from None
    except Exception as e:  # exporters raise anything
        raise UnsupportedError(f"{framework}'s NIR exporter failed: {type(e).__name__}: {e}", file=source,
                               hint=f"check --input-shape; or call {EXPORT_CALLS[framework]} yourself and "
                                    "compile the .nir file") from None
    finally:
        if was_training and hasattr(module, "train"):
            module.train()
    out.notes.insert(0, f"exported from a {framework} module with {EXPORT_CALLS[framework]}")
    return out
