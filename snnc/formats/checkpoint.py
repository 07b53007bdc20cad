"""snnc checkpoints (``snn-train`` output): the file format, and reading torch files safely.

A checkpoint is a torch file holding one dict: ``format`` (:data:`CHECKPOINT_FORMAT`), ``version``
(1), ``model`` (a zoo name), ``kwargs`` (its constructor arguments), ``state_dict`` (the weights)
and ``extra`` (the training recipe and data: ``dt_s``, ``n_steps``, ``data``). Rebuilding the
model needs the zoo's constructor: :func:`rebuild_model` takes it as ``build``
(:func:`snnc.models.checkpoint.model_from_checkpoint` passes the zoo's own).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from snnc.errors import InputError
from snnc.files import atomic_target

CHECKPOINT_FORMAT = "snnc-checkpoint"


def save_checkpoint(path: str, model_name: str, kwargs: Dict[str, Any], model: Any,
                    extra: Optional[Dict[str, Any]] = None) -> str:
    """Save a zoo model as an snnc checkpoint (weights only; rebuilt from the zoo on load)."""
    import torch

    state = {"format": CHECKPOINT_FORMAT, "version": 1, "model": model_name, "kwargs": kwargs,
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "extra": extra or {}}
    with atomic_target(path, "checkpoint") as tmp:
        torch.save(state, tmp)
    return path


def is_checkpoint(obj: Any) -> bool:
    """True when ``obj`` (what a torch file holds) is an snnc checkpoint dict."""
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def load_torch_object(path: str) -> Any:
    """Return what a torch file holds (weights-only load first; whole pickled modules need a full unpickle).

    A whole pickled module is loaded with ``weights_only=False``: only load files you trust.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as e:
        if "Weights only load failed" not in str(e):
            raise InputError(f"cannot read torch file ({str(e).splitlines()[0]})", file=path) from None
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except ModuleNotFoundError as e2:
            raise InputError(f"the pickled model needs the Python module '{e2.name}', which is not importable here",
                             file=path, hint=f"install the framework that defines it (pip install {e2.name}), or "
                                             "export the model to NIR where it was trained") from None
        except Exception as e2:  # pickles can raise anything
            raise InputError(f"cannot unpickle torch file ({type(e2).__name__}: {e2})", file=path,
                             hint="a module pickled whole needs its classes importable under the same names; "
                                  "save a state_dict and use --model/--factory, or export to NIR") from None
    except (EOFError, OSError, ValueError) as e:
        raise InputError(f"torch file is truncated or corrupt ({e})", file=path) from None


def rebuild_model(obj: Dict[str, Any], build: Callable[..., Any], path: str = "<checkpoint>") -> Any:
    """Return the model of checkpoint dict ``obj``: ``build(name, **kwargs)`` with its weights loaded (eval mode)."""
    model = build(obj["model"], **obj["kwargs"])
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise InputError(f"checkpoint weights do not fit zoo model '{obj['model']}': {str(e).splitlines()[0]}",
                         file=path, hint="the checkpoint was written by another snnc version") from None
    model.eval()
    return model
