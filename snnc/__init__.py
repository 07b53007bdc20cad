"""snnc: compile trained spiking neural networks to neuromorphic chips (Loihi 2, Speck) and simulate them."""
from snnc.artifact import Artifact
from snnc.errors import SnncError
from snnc.runtime.api import Program, compile, load, load_model
from snnc.runtime.result import Result
from snnc.version import __version__

__all__ = ["Artifact", "Program", "Result", "SnncError", "compile", "load", "load_model", "__version__"]
