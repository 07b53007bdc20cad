"""The integer Xylo program (:class:`XyloNetwork`) and its configuration file.

The fields are those of Rockpool's specification dictionary (``mapper`` output after quantisation,
the arguments of ``config_from_specification`` and ``XyloSim.from_specification``):
``weights_in (Nin, Nhidden, Nsyn)``, ``weights_rec (Nhidden, Nhidden, Nsyn)``, ``weights_out
(Nhidden, Nout)``, per hidden neuron ``dash_mem``, ``dash_syn``, ``dash_syn_2``, ``threshold``,
``bias``, per output neuron ``dash_mem_out``, ``dash_syn_out``, ``threshold_out``, ``bias_out``,
and the weight left-shifts ``weight_shift_in``/``_rec``/``_out``. ``Nsyn`` is 1 or 2 (synapse 2
of the hidden neurons). The configuration file (:meth:`XyloNetwork.to_config`) is this
dictionary as JSON, so that ``config_from_specification(**spec)`` (with samna) builds the chip's
``XyloConfiguration`` from it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict

import numpy as np

from snnc.errors import ArtifactError
from snnc.targets.xylo import chip

#: ``format`` field of the configuration file.
CONFIG_FORMAT = "snnc-xylo-spec"
#: Version of the configuration file format.
CONFIG_VERSION = 1

_ARRAYS = ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn", "dash_syn_2", "threshold",
           "bias", "dash_mem_out", "dash_syn_out", "threshold_out", "bias_out")
_SHIFTS = ("weight_shift_in", "weight_shift_rec", "weight_shift_out")


@dataclass
class XyloNetwork:
    """One Xylo SNN core program: integer weights, decays (``dash``), thresholds, biases, shifts."""

    weights_in: np.ndarray
    weights_rec: np.ndarray
    weights_out: np.ndarray
    dash_mem: np.ndarray
    dash_syn: np.ndarray
    dash_syn_2: np.ndarray
    threshold: np.ndarray
    bias: np.ndarray
    dash_mem_out: np.ndarray
    dash_syn_out: np.ndarray
    threshold_out: np.ndarray
    bias_out: np.ndarray
    weight_shift_in: int = 0
    weight_shift_rec: int = 0
    weight_shift_out: int = 0
    chip_name: str = chip.DEFAULT_CHIP
    #: Hidden neuron index ranges of each graph population (name -> [start, stop)), for reports.
    populations: Dict[str, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in _ARRAYS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        if self.weights_in.ndim == 2:
            self.weights_in = self.weights_in[:, :, None]
        if self.weights_rec.ndim == 2:
            self.weights_rec = self.weights_rec[:, :, None]

    @property
    def n_in(self) -> int:
        """Input channels."""
        return int(self.weights_in.shape[0])

    @property
    def n_hidden(self) -> int:
        """Hidden neurons."""
        return int(self.weights_rec.shape[0])

    @property
    def n_out(self) -> int:
        """Output neurons."""
        return int(self.weights_out.shape[1])

    @property
    def n_syn(self) -> int:
        """Synaptic currents per hidden neuron used by the weights (1 or 2)."""
        return int(max(self.weights_in.shape[2], self.weights_rec.shape[2]))

    @property
    def has_bias(self) -> bool:
        """True when any neuron has a non-zero bias (xylosim then enables biases for all)."""
        return bool(np.any(self.bias != 0) or np.any(self.bias_out != 0))

    def spec(self) -> Dict[str, Any]:
        """Return Rockpool's specification dictionary (numpy integer arrays, ``Nsyn`` axis kept)."""
        out: Dict[str, Any] = {k: getattr(self, k).copy() for k in _ARRAYS}
        out.update({k: int(getattr(self, k)) for k in _SHIFTS})
        return out

    def to_config(self) -> str:
        """Return the configuration file: the specification as canonical JSON (lists of ints)."""
        doc = {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, "chip": self.chip_name,
               "populations": self.populations,
               **{k: getattr(self, k).tolist() for k in _ARRAYS}, **{k: int(getattr(self, k)) for k in _SHIFTS}}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_config(cls, text: str) -> "XyloNetwork":
        """Rebuild a network from :meth:`to_config` text; ArtifactError if it is not one."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"Xylo configuration is not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != CONFIG_FORMAT:
            raise ArtifactError("not an snnc Xylo configuration")
        if doc.get("version") != CONFIG_VERSION:
            raise ArtifactError(f"Xylo configuration version {doc.get('version')} is not {CONFIG_VERSION}")
        missing = [k for k in _ARRAYS + _SHIFTS if k not in doc]
        if missing:
            raise ArtifactError(f"Xylo configuration lacks {missing}")
        try:
            net = cls(**{k: np.asarray(doc[k], dtype=np.int64) for k in _ARRAYS},
                      **{k: int(doc[k]) for k in _SHIFTS}, chip_name=str(doc.get("chip", chip.DEFAULT_CHIP)),
                      populations=dict(doc.get("populations", {})))
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"Xylo configuration is malformed ({exc})") from None
        net.check_shapes()
        return net

    def check_shapes(self) -> None:
        """Raise ArtifactError when the arrays do not describe one consistent network."""
        nh, nout = self.n_hidden, self.weights_out.shape[1] if self.weights_out.ndim == 2 else -1
        problems = []
        if self.weights_in.ndim != 3 or self.weights_in.shape[1] > nh:
            problems.append(f"weights_in {self.weights_in.shape}")
        if self.weights_rec.ndim != 3 or self.weights_rec.shape[1] != nh or self.weights_rec.shape[2] not in (1, 2):
            problems.append(f"weights_rec {self.weights_rec.shape}")
        if self.weights_out.ndim != 2 or self.weights_out.shape[0] > nh:
            problems.append(f"weights_out {self.weights_out.shape}")
        for k in ("dash_mem", "dash_syn", "dash_syn_2", "threshold", "bias"):
            if getattr(self, k).shape != (nh,):
                problems.append(f"{k} {getattr(self, k).shape} (need ({nh},))")
        for k in ("dash_mem_out", "dash_syn_out", "threshold_out", "bias_out"):
            if getattr(self, k).shape != (nout,):
                problems.append(f"{k} {getattr(self, k).shape} (need ({nout},))")
        if problems:
            raise ArtifactError("inconsistent Xylo network: " + "; ".join(problems))

    def dense_in(self) -> np.ndarray:
        """Input weights over all hidden neurons ``(Nin, Nhidden, Nsyn)`` (zero beyond ``weights_in``)."""
        w = np.zeros((self.n_in, self.n_hidden, self.n_syn), dtype=np.int64)
        w[:, : self.weights_in.shape[1], : self.weights_in.shape[2]] = self.weights_in
        return w

    def dense_rec(self) -> np.ndarray:
        """Recurrent weights ``(Nhidden, Nhidden, Nsyn)``."""
        w = np.zeros((self.n_hidden, self.n_hidden, self.n_syn), dtype=np.int64)
        w[:, :, : self.weights_rec.shape[2]] = self.weights_rec
        return w

    def dense_out(self) -> np.ndarray:
        """Output weights from all hidden neurons ``(Nhidden, Nout)``: ``weights_out`` rows are the last ones."""
        w = np.zeros((self.n_hidden, self.n_out), dtype=np.int64)
        w[self.n_hidden - self.weights_out.shape[0]:] = self.weights_out
        return w

