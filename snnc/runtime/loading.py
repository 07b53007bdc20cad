"""Opening a model of any kind: its graph, and what the model says about its own time base.

``snn-compile X`` and ``snnc.compile(X)`` accept (see :func:`open_model`):

* a ``.nir`` file or ``nir.NIRGraph`` from any framework;
* an snnc checkpoint (``snn-train`` output): the zoo model, its weights, its step ``dt_s``, and the
  input encoding it was trained on (event bin width and mode, or the audio cochlea);
* a whole module saved with ``torch.save(model)`` (or the live object) built from snnc's neuron
  modules (their ``dt_s`` is the model's step) or from snnTorch, Norse, sinabs, SpikingJelly or
  Rockpool (converted with that framework's own NIR exporter:
  :mod:`snnc.compiler.frontends.frameworks`);
* a ``state_dict`` together with a zoo name (``--model``) or a factory (``--factory mod:fn``).

The :class:`ModelInfo` travels with the graph into the compile, which takes its step unless
``--dt`` is given, and into the artifact's manifest (``manifest["model"]``).
"""
from __future__ import annotations

import importlib
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from snnc.compiler.graph import Graph
from snnc.errors import InputError, UnsupportedError
from snnc.formats.checkpoint import is_checkpoint, load_torch_object, rebuild_model
from snnc.runtime.registry import build_zoo_model, zoo_recipe

log = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass
class ModelInfo:
    """What a model says about itself beyond its graph: its time base, input encoding and origin."""

    #: The model's own integration step in seconds; None when the model does not say.
    dt_s: Optional[float] = None
    #: Its integration method ("exact" or "euler"); None when the model does not say.
    method: Optional[str] = None
    #: Where ``dt_s`` comes from, e.g. "snnc checkpoint", "snnc neuron modules", "framework norse".
    dt_origin: str = ""
    #: False for discrete-time models whose step is one unit, not seconds (sinabs, snnTorch).
    physical_dt: bool = True
    #: The framework convention that applies (given, detected, or the module's own framework).
    framework: Optional[str] = None
    #: How ``framework`` was decided: "module classes", "file parameters", "flag".
    framework_origin: str = ""
    #: Event bin width the model was trained with (microseconds); None when unknown.
    bin_us: Optional[int] = None
    #: Steps per sample it was trained with.
    n_steps: Optional[int] = None
    #: How events were binned in training: "count" (events per bin) or "binary" (one spike per bin).
    input_mode: Optional[str] = None
    #: Input encoder recorded by the checkpoint: {"kind": "events", ...} or {"kind": "cochlea", ...}.
    encoder: Optional[Dict[str, Any]] = None
    #: The zoo model name of an snnc checkpoint.
    zoo_model: Optional[str] = None
    #: What loading did or assumed (for the compile report).
    notes: List[str] = field(default_factory=list)
    #: True when the framework convention was already applied while loading (framework modules).
    adapted: bool = False

    def to_manifest(self) -> Dict[str, Any]:
        """Return the JSON-able part recorded in the artifact (no notes; they go to the report)."""
        d = asdict(self)
        d.pop("notes")
        d.pop("adapted")
        return {k: v for k, v in sorted(d.items()) if v is not None and v != ""}


@dataclass
class LoadedModel:
    """A model opened for compilation: the internal graph and its :class:`ModelInfo`."""

    graph: Graph
    info: ModelInfo


# ----------------------------------------------------------------------------- torch modules
def _neuron_time_base(module: Any, source: str) -> Tuple[Optional[float], Optional[str], List[str]]:
    """Return the common ``(dt_s, method)`` of the snnc neuron modules inside ``module``."""
    seen: Dict[Tuple[float, str], List[str]] = {}
    import torch

    for name, m in torch.nn.Module.named_modules(module):
        if not hasattr(m, "to_node") or getattr(m, "timeless", False):
            continue
        dt = getattr(m, "dt_s", None)
        if not isinstance(dt, (int, float)):
            continue
        seen.setdefault((float(dt), str(getattr(m, "method", "exact"))), []).append(name or type(m).__name__)
    if not seen:
        return None, None, []
    if len(seen) > 1:
        desc = "; ".join(f"dt_s={dt:g} s, {meth}: {', '.join(names[:4])}" for (dt, meth), names in sorted(seen.items()))
        raise InputError(f"the model's neurons use different time steps ({desc})", file=source,
                         hint="build every neuron with the same dt_s and method")
    (dt, meth), names = next(iter(seen.items()))
    return dt, meth, names


def _from_module(module: Any, input_shape: Optional[Sequence[int]], source: str,
                 info: ModelInfo) -> Graph:
    """Convert a live torch module (snnc's own neurons, or a framework's) to a Graph."""
    from snnc.compiler.frontends.frameworks import detect_framework, export_module

    shape = tuple(input_shape or getattr(module, "input_shape", None) or ())
    fw = detect_framework(module)
    if fw is not None:
        exp = export_module(module, fw, shape, source=source)
        from snnc.compiler.frontends.nir_frontend import load_nir

        from snnc.compiler.frontends.conventions import adapt

        graph = load_nir(exp.nir_graph)
        graph.source = source
        graph = adapt(graph, fw, export_dt_s=float(exp.module_dt_s or 0.0))
        _apply_node_attrs(graph, exp.node_attrs, source)  # the module's own settings win over the convention's
        info.framework, info.framework_origin, info.adapted = fw, "module classes", True
        info.notes += exp.notes
        if exp.module_dt_s is not None:
            info.dt_s, info.dt_origin = exp.module_dt_s, f"{fw} module's dt"
        return graph
    from snnc.compiler.frontends.torch_frontend import from_torch

    dt, meth, names = _neuron_time_base(module, source)
    if dt is not None:
        info.dt_s, info.method = dt, meth
        info.dt_origin = info.dt_origin or "snnc neuron modules"
    return from_torch(module, shape, source=source)


def _apply_node_attrs(graph: Graph, attrs: Dict[str, Dict[str, Any]], source: str) -> None:
    """Set what NIR cannot store (reset mode, spike limit, floor) on the imported neuron nodes."""
    for name, changes in sorted(attrs.items()):
        key = name.replace(".", "_") if name not in graph.nodes else name
        if key not in graph.nodes:
            raise UnsupportedError(f"module '{name}' has no node in the exported graph", file=source,
                                   hint="report this export: the exporter renamed a layer")
        node = graph.nodes[key]
        graph.nodes[key] = node.replace(**changes)
        graph.notes.append(f"{key}: {', '.join(f'{k}={v!r}' for k, v in sorted(changes.items()))} "
                           "(read from the module; NIR cannot store it)")


# ----------------------------------------------------------------------------- checkpoints
def _checkpoint_info(obj: Dict[str, Any], info: ModelInfo) -> None:
    """Fill ``info`` from an snnc checkpoint's recorded recipe and data."""
    extra = obj.get("extra", {}) or {}
    info.zoo_model = obj.get("model")
    if isinstance(extra.get("dt_s"), (int, float)):
        info.dt_s, info.dt_origin = float(extra["dt_s"]), "snnc checkpoint"
    data = extra.get("data", {}) or {}
    if isinstance(extra.get("n_steps"), int):
        info.n_steps = int(extra["n_steps"])
    if "cochlea" in data:
        info.encoder = {"kind": "cochlea", **data["cochlea"]}
        return
    spec = data.get("bin_spec") or data.get("noise_spec")
    if data.get("dt_us"):
        info.bin_us = int(data["dt_us"])
    if data.get("bin_spec"):
        b = data["bin_spec"]
        info.input_mode = str(b.get("mode", "count"))
        info.encoder = {"kind": "events", "data": data.get("data"), **b}
    elif spec is not None:
        info.input_mode = "count"
        info.encoder = {"kind": "events", "data": data.get("data"), "noise": spec}


def _state_dict_model(state: Dict[str, Any], source: str, model_name: Optional[str],
                      factory: Optional[str], info: ModelInfo) -> Any:
    """Build the architecture for a plain ``state_dict`` from a zoo name or a factory, load the weights."""
    if model_name is None and factory is None:
        raise InputError("the torch file holds a plain state_dict (weights without an architecture)", file=source,
                         hint="say which architecture: --model ZOO_NAME (snn-train --help lists them), or "
                              "--factory my_module:build_model (a function returning the module); or save "
                              "the whole module with torch.save(model, path)")
    if model_name is not None:
        r = zoo_recipe(model_name)
        kwargs = dict(r["kwargs"])
        kwargs.setdefault("dt_s", float(r["dt_us"]) * 1e-6)
        model = build_zoo_model(model_name, **kwargs)
        info.zoo_model = model_name
        info.bin_us, info.n_steps = int(r["dt_us"]), int(r["n_steps"])
        info.dt_origin = f"zoo recipe '{model_name}'"
        what = f"zoo model '{model_name}'"
    else:
        mod_name, _, fn_name = str(factory).partition(":")
        if not mod_name or not fn_name:
            raise InputError(f"--factory {factory!r} is not MODULE:FUNCTION", hint="e.g. --factory mynets:build")
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as e:
            raise InputError(f"cannot import factory {factory!r} ({type(e).__name__}: {e})",
                             hint="the module must be importable (run from its folder or set PYTHONPATH)") from None
        model = fn()
        what = f"factory {factory}()"
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise InputError(f"the state_dict does not fit {what}: {str(e).splitlines()[0]}", file=source,
                         hint="check --model / --factory and the model's constructor arguments") from None
    if missing or unexpected:
        raise InputError(f"the state_dict does not fit {what}: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}", file=source,
                         hint="check --model / --factory and the model's constructor arguments")
    model.eval()
    return model


def _read_torch_file(path: str, model_name: Optional[str], factory: Optional[str], info: ModelInfo) -> Any:
    """Return the module a ``.pt`` holds (checkpoint, whole module, or state_dict + architecture)."""
    import torch

    obj = load_torch_object(path)
    if is_checkpoint(obj):
        _checkpoint_info(obj, info)
        return rebuild_model(obj, build_zoo_model, path)
    if isinstance(obj, torch.nn.Module):
        obj.eval()
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _state_dict_model(obj, path, model_name, factory, info)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return _state_dict_model(obj["state_dict"], path, model_name, factory, info)
    raise InputError(f"the torch file holds a {type(obj).__name__}, not a model", file=path,
                     hint="save the module with torch.save(model, path), or a state_dict with --model/--factory")


# ----------------------------------------------------------------------------- NIR files
def _nir_info(meta: Any, info: ModelInfo) -> None:
    """Take a NIR graph's own statement of its step (its ``metadata``: ``dt_s``/``dt``, ``method``)."""
    if not isinstance(meta, dict):
        return
    dt = meta.get("dt_s", meta.get("dt"))
    try:
        dt = float(np.asarray(dt).reshape(-1)[0]) if dt is not None else None
    except (TypeError, ValueError, IndexError):
        dt = None
    if isinstance(dt, (int, float)) and math.isfinite(float(dt)) and float(dt) > 0:
        info.dt_s, info.dt_origin = float(dt), "the NIR file's metadata"
        method = meta.get("method")
        method = method.decode() if isinstance(method, bytes) else method
        if method in ("exact", "euler"):
            info.method = str(method)


def open_model(model: Any, input_shape: Optional[Sequence[int]] = None, *, model_name: Optional[str] = None,
               factory: Optional[str] = None) -> LoadedModel:
    """Open ``model`` (path, ``nir.NIRGraph``, torch module or Graph) as a graph with its :class:`ModelInfo`."""
    from snnc.compiler.frontends.nir_frontend import from_nir_dict, load_nir, read_nir_dict

    info = ModelInfo()
    if isinstance(model, Graph):
        return LoadedModel(model, info)
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise InputError("model file not found", file=path, hint="check the path")
        if os.path.isdir(path):
            raise InputError("model path is a directory", file=path, hint="give a .nir or .pt file")
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head == HDF5_MAGIC:
            d = read_nir_dict(path)
            graph = from_nir_dict(d, source=path)
            _nir_info(d.get("metadata"), info)
            return LoadedModel(graph, info)
        if head[:4] == ZIP_MAGIC or head[:1] == b"\x80":
            module = _read_torch_file(path, model_name, factory, info)
            return LoadedModel(_from_module(module, input_shape, path, info), info)
        raise InputError("file is neither a NIR (.nir, HDF5) nor a torch (.pt) model", file=path,
                         hint="export your model with nir.write(...) or torch.save(...)")
    if type(model).__name__ == "NIRGraph":
        graph = load_nir(model)
        _nir_info(getattr(model, "metadata", None), info)
        return LoadedModel(graph, info)
    try:
        from torch import nn
    except ImportError:  # pragma: no cover
        nn = None
    if nn is not None and isinstance(model, nn.Module):
        return LoadedModel(_from_module(model, input_shape, f"<{type(model).__name__}>", info), info)
    if isinstance(model, dict):
        raise InputError("a dict is not a model", hint="pass a .pt path with --model/--factory for a state_dict, "
                                                        "or the module itself")
    raise InputError(f"cannot compile an object of type {type(model).__name__}",
                     hint="give a .nir/.pt path, a nir.NIRGraph or a torch.nn.Module")
