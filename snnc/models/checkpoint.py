"""snnc checkpoints (zoo model name + constructor arguments + weights) and torch file loading."""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Sequence, Tuple

from snnc.errors import InputError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "snnc-checkpoint"


def save_checkpoint(path: str, model_name: str, kwargs: Dict[str, Any], model: Any,
                    extra: Optional[Dict[str, Any]] = None) -> str:
    """Save a zoo model as an snnc checkpoint (weights only; rebuilt from the zoo on load)."""
    import torch

    state = {"format": CHECKPOINT_FORMAT, "version": 1, "model": model_name, "kwargs": kwargs,
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "extra": extra or {}}
    from snnc.files import atomic_target

    with atomic_target(path, "checkpoint") as tmp:
        torch.save(state, tmp)
    return path


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


def model_from_checkpoint(obj: Dict[str, Any], path: str = "<checkpoint>") -> Any:
    """Rebuild the zoo model of an snnc checkpoint dict and load its weights (eval mode)."""
    from snnc.models.zoo import build

    model = build(obj["model"], **obj["kwargs"])
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise InputError(f"checkpoint weights do not fit zoo model '{obj['model']}': {str(e).splitlines()[0]}",
                         file=path, hint="the checkpoint was written by another snnc version") from None
    model.eval()
    return model


def load_torch_file(path: str) -> Tuple[Any, Optional[Sequence[int]]]:
    """Load a ``.pt``: an snnc checkpoint (rebuilt from the zoo) or a ``torch.save``d module.

    Returns ``(module, input_shape or None)``. A plain state_dict is refused here (the compile
    path takes one with ``--model``/``--factory``: :mod:`snnc.runtime.loading`).
    """
    import torch

    obj = load_torch_object(path)
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        model = model_from_checkpoint(obj, path)
        return model, getattr(model, "input_shape", None)
    if isinstance(obj, torch.nn.Module):
        obj.eval()
        return obj, getattr(obj, "input_shape", None)
    if isinstance(obj, dict):
        raise InputError("torch file holds a plain state_dict, which has no architecture", file=path,
                         hint="save the whole module (torch.save(model)) or an snnc checkpoint, or compile "
                              "with --model ZOO_NAME / --factory module:function")
    raise InputError(f"torch file holds a {type(obj).__name__}, not a model", file=path)
