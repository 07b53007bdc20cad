"""snnc checkpoints of zoo models: rebuilding them from the zoo, and loading any torch model file.

The file format itself (:data:`CHECKPOINT_FORMAT`, :func:`save_checkpoint`, :func:`load_torch_object`)
is :mod:`snnc.formats.checkpoint`; its names are importable from here too.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Sequence, Tuple

from snnc.errors import InputError
from snnc.formats.checkpoint import (CHECKPOINT_FORMAT, is_checkpoint, load_torch_object,  # noqa: F401
                                     rebuild_model, save_checkpoint)

log = logging.getLogger(__name__)


def model_from_checkpoint(obj: Dict[str, Any], path: str = "<checkpoint>") -> Any:
    """Rebuild the zoo model of an snnc checkpoint dict and load its weights (eval mode)."""
    from snnc.models.zoo import build

    return rebuild_model(obj, build, path)


def load_torch_file(path: str) -> Tuple[Any, Optional[Sequence[int]]]:
    """Load a ``.pt``: an snnc checkpoint (rebuilt from the zoo) or a ``torch.save``d module.

    Returns ``(module, input_shape or None)``. A plain state_dict is refused here (the compile
    path takes one with ``--model``/``--factory``: :mod:`snnc.runtime.loading`).
    """
    import torch

    obj = load_torch_object(path)
    if is_checkpoint(obj):
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
