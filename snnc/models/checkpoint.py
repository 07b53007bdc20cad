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
    tmp = path + ".part"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_torch_file(path: str) -> Tuple[Any, Optional[Sequence[int]]]:
    """Load a ``.pt``: an snnc checkpoint (rebuilt from the zoo) or a ``torch.save``d module.

    Returns ``(module, input_shape or None)``. A whole pickled module is loaded with
    ``weights_only=False``: only load files you trust.
    """
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as e:
        if "Weights only load failed" not in str(e):
            raise InputError(f"cannot read torch file ({str(e).splitlines()[0]})", file=path) from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:  # pickles can raise anything
            raise InputError(f"cannot unpickle torch file ({type(e2).__name__}: {e2})", file=path) from None
    except (EOFError, OSError, ValueError) as e:
        raise InputError(f"torch file is truncated or corrupt ({e})", file=path) from None
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        from snnc.models.zoo import build

        model = build(obj["model"], **obj["kwargs"])
        model.load_state_dict(obj["state_dict"])
        model.eval()
        return model, getattr(model, "input_shape", None)
    if isinstance(obj, torch.nn.Module):
        obj.eval()
        return obj, getattr(obj, "input_shape", None)
    if isinstance(obj, dict):
        raise InputError("torch file holds a plain state_dict, which has no architecture", file=path,
                         hint="save the whole module (torch.save(model)) or an snnc checkpoint")
    raise InputError(f"torch file holds a {type(obj).__name__}, not a model", file=path)
