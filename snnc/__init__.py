"""snnc: compile trained spiking neural networks to neuromorphic chips (Loihi 2, Speck, Xylo) and simulate them.

The top of the layers (see the README's Layout): this package wires the model zoo and its data sets
into the runtime (:mod:`snnc.models.hooks`), so that every user of snnc can open checkpoints.
"""
import os
import sys

from snnc.models import hooks as _hooks  # noqa: F401  (registers the zoo and the validation data sets)
from snnc.artifact import Artifact
from snnc.errors import SnncError
from snnc.formats.result import Result
from snnc.runtime.api import Program, compile, diverge, load, load_model
from snnc.version import __version__

__all__ = ["Artifact", "Program", "Result", "SnncError", "compile", "diverge", "finetune", "load", "load_model",
           "__version__"]


def finetune(model, target, data=None, **kwargs):  # type: ignore[no-untyped-def]
    """Fine-tune ``model`` through ``target``'s integer arithmetic; see :func:`snnc.models.finetune.finetune`."""
    from snnc.models.finetune import finetune as _finetune

    return _finetune(model, target, data, **kwargs)


def _single_threaded_torch_in_forked_child() -> None:
    """In a child forked after torch ran (GNU OpenMP is not fork-safe), use one torch thread.

    Without it a forked child's first multi-threaded torch op can hang (torch's DataLoader workers
    do the same). Only acts when torch is already imported; spawned processes are unaffected.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_threaded_torch_in_forked_child)
