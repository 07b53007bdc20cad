"""Typed specification of an integer Speck program and its neutral JSON chip configuration.

A :class:`SpeckNetwork` holds what the chip computes: for every layer the integer
convolution weights ``[f][c][h][w]``, biases, thresholds, reset mode, geometry, pooled
destinations and its core. :meth:`SpeckNetwork.to_config` turns it into a JSON-able dict
whose ``cnn_layers[core]`` entries carry exactly the per-core fields of samna's
``SpeckConfiguration`` (``dimensions``, ``weights``, ``biases``, ``leak_enable``,
``return_to_zero``, ``threshold_high``, ``threshold_low``, ``monitor_enable``,
``neurons_initial_value``, ``destinations[0..1]`` with ``layer``/``enable``/``pooling``),
in samna's axis order (weights ``[f][c][x][y]``, states ``[f][x][y]``, as sinabs writes
them), plus the layer-to-core mapping. :func:`network_from_config` reads it back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from snnc.errors import ArtifactError, ShapeError, ValueRangeError
from snnc.targets.speck import chip

#: ``format`` tag of the neutral JSON configuration.
CONFIG_FORMAT = "snnc-speck-config"
#: Version of the neutral JSON configuration.
CONFIG_VERSION = 1

Shape3 = tuple[int, int, int]
Pair = tuple[int, int]


def _ints(value: Any, what: str, node: str) -> np.ndarray:
    """``value`` as an int64 array; ValueRangeError if it holds non-integers (never truncates)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iub":
        if not np.all(np.isfinite(arr)) or not np.all(np.mod(arr, 1) == 0):
            raise ValueRangeError(f"{what} must be integers (quantise them first)", node=node,
                                  hint="use snnc.targets.speck.quantize.quantize_layer")
    return arr.astype(np.int64)


def _pair(value: Any) -> Pair:
    """Return ``value`` as an ``(y, x)`` pair of ints (a scalar is used for both)."""
    if np.ndim(value) == 0:
        return int(value), int(value)
    seq = [int(v) for v in value]
    if len(seq) != 2:
        raise ShapeError(f"expected a scalar or a pair, got {value!r}")
    return seq[0], seq[1]


@dataclass(frozen=True)
class Destination:
    """A route from a layer to layer ``layer`` (index into ``SpeckNetwork.layers``) with square sum pooling ``pooling`` = (y, x)."""

    layer: int
    pooling: Pair = (1, 1)


@dataclass
class SpeckLayer:
    """One core's program: conv (integer weights) -> non-leaky IAF -> pooled destinations."""

    name: str
    weights: np.ndarray
    biases: np.ndarray
    threshold_high: int
    threshold_low: int
    input_shape: Shape3
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    return_to_zero: bool = False
    destinations: list[Destination] = field(default_factory=list)
    core: Optional[int] = None
    monitor: bool = False
    leak_enable: Optional[bool] = None
    neurons_initial_value: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        """Normalise types and check the weight/bias/input shapes agree."""
        self.weights = _ints(self.weights, "weights", self.name)
        if self.weights.ndim != 4:
            raise ShapeError(f"weights must be [f][c][h][w], got shape {self.weights.shape}",
                             node=self.name)
        f, c = self.weights.shape[:2]
        self.biases = (np.zeros(f, dtype=np.int64) if self.biases is None
                       else _ints(self.biases, "biases", self.name).reshape(-1))
        if self.biases.shape != (f,):
            raise ShapeError(f"biases must have {f} entries, got {self.biases.shape}",
                             node=self.name)
        self.input_shape = tuple(int(v) for v in self.input_shape)  # type: ignore[assignment]
        if len(self.input_shape) != 3 or self.input_shape[0] != c:
            raise ShapeError(f"input_shape {self.input_shape} does not match {c} weight input "
                             "channels", node=self.name)
        self.stride = _pair(self.stride)
        self.padding = _pair(self.padding)
        self.threshold_high = int(self.threshold_high)
        self.threshold_low = int(self.threshold_low)
        self.return_to_zero = bool(self.return_to_zero)
        self.destinations = [d if isinstance(d, Destination)
                             else Destination(int(d[0]), _pair(d[1])) for d in self.destinations]
        if self.leak_enable is None:
            # sinabs: ``leak_enable = biases.bool().any()``
            self.leak_enable = bool(np.any(self.biases != 0))
        self.leak_enable = bool(self.leak_enable)
        if self.neurons_initial_value is not None:
            self.neurons_initial_value = _ints(self.neurons_initial_value, "neurons_initial_value",
                                               self.name)
            if self.neurons_initial_value.shape != self.neuron_shape:
                raise ShapeError(f"neurons_initial_value shape {self.neurons_initial_value.shape} "
                                 f"!= neuron shape {self.neuron_shape}", node=self.name)
        if min(self.neuron_shape) < 1:
            raise ShapeError(f"conv output is empty: input {self.input_shape}, kernel "
                             f"{self.kernel_size}, stride {self.stride}, padding {self.padding}",
                             node=self.name)

    @property
    def out_channels(self) -> int:
        """Number of output channels (features) f."""
        return int(self.weights.shape[0])

    @property
    def in_channels(self) -> int:
        """Number of input channels c."""
        return int(self.weights.shape[1])

    @property
    def kernel_size(self) -> Pair:
        """Kernel (height, width)."""
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    @property
    def neuron_shape(self) -> Shape3:
        """Shape (f, H, W) of the neuron array (conv output, before pooling)."""
        _, h, w = self.input_shape
        kh, kw = self.kernel_size
        return (self.out_channels,
                chip.conv_output_size(h, kh, self.stride[0], self.padding[0]),
                chip.conv_output_size(w, kw, self.stride[1], self.padding[1]))

    def destination_shape(self, dest: Destination) -> Shape3:
        """Shape (f, H // py, W // px) that ``dest`` receives after sum pooling."""
        f, h, w = self.neuron_shape
        return f, h // dest.pooling[0], w // dest.pooling[1]


@dataclass
class DvsInput:
    """The DVS / input layer: optional polarity merge and sum pooling, routed to up to two layers."""

    input_shape: Shape3 = (2, 128, 128)
    pooling: Pair = (1, 1)
    merge_polarities: bool = False
    destinations: list[int] = field(default_factory=list)
    pass_sensor_events: bool = False
    monitor: bool = False

    def __post_init__(self) -> None:
        """Normalise the tuple fields."""
        self.input_shape = tuple(int(v) for v in self.input_shape)  # type: ignore[assignment]
        self.pooling = _pair(self.pooling)
        self.destinations = [int(d) for d in self.destinations]

    @property
    def output_shape(self) -> Shape3:
        """Shape (c, h, w) of the events the DVS layer forwards."""
        c, h, w = self.input_shape
        return (1 if self.merge_polarities else c), h // self.pooling[0], w // self.pooling[1]


@dataclass
class Readout:
    """Readout block reading layer ``layer``: class ``i`` is channel ``i * channel_stride``.

    sinabs' ``extend_readout_layer`` says Speck 2E/2F's readout needs the output layer spread
    to ``(num_classes - 1) * 4 + 1`` channels with class ``i`` on channel ``4 i``
    (``channel_stride=4``); the lowering does that spreading when it enables the readout.
    """

    layer: int
    num_classes: int
    channel_stride: int = 1

    @property
    def channels(self) -> int:
        """Channels the read layer must have: ``(num_classes - 1) * channel_stride + 1``."""
        return (self.num_classes - 1) * self.channel_stride + 1


@dataclass
class SpeckNetwork:
    """A whole integer chip program: layers, input (plain or through the DVS layer), readout."""

    layers: list[SpeckLayer]
    input_shape: Shape3
    input_layers: list[int] = field(default_factory=list)
    dvs: Optional[DvsInput] = None
    readout: Optional[Readout] = None
    chip_name: str = "speck2f"

    def __post_init__(self) -> None:
        """Normalise fields and check the connectivity is consistent."""
        self.input_shape = tuple(int(v) for v in self.input_shape)  # type: ignore[assignment]
        self.input_layers = [int(i) for i in self.input_layers]
        self.check_structure()

    # ----------------------------------------------------------------- structure
    def entry_layers(self) -> list[int]:
        """Indices of the layers that receive the external input (through the DVS layer if any)."""
        return list(self.dvs.destinations) if self.dvs is not None else list(self.input_layers)

    def entry_shape(self) -> Shape3:
        """Shape of the events reaching the entry layers."""
        return self.dvs.output_shape if self.dvs is not None else self.input_shape

    def sources(self, index: int) -> list[tuple[int, Destination]]:
        """``(source layer index, destination)`` pairs feeding layer ``index`` (input excluded)."""
        return [(i, d) for i, lyr in enumerate(self.layers) for d in lyr.destinations
                if d.layer == index]

    def exit_layers(self) -> list[int]:
        """Indices of the layers without destinations (the network outputs)."""
        return [i for i, lyr in enumerate(self.layers) if not lyr.destinations]

    def topological_order(self) -> list[int]:
        """Layer indices so that every layer comes after all its sources; ShapeError on a cycle."""
        indeg = [0] * len(self.layers)
        for lyr in self.layers:
            for d in lyr.destinations:
                indeg[d.layer] += 1
        ready = [i for i, n in enumerate(indeg) if n == 0]
        order: list[int] = []
        while ready:
            i = ready.pop(0)
            order.append(i)
            for d in self.layers[i].destinations:
                indeg[d.layer] -= 1
                if indeg[d.layer] == 0:
                    ready.append(d.layer)
        if len(order) != len(self.layers):
            cyc = [self.layers[i].name for i in range(len(self.layers)) if i not in order]
            raise ShapeError(f"the layers {cyc} form a cycle; the Speck path of snnc supports "
                             "feed-forward networks only")
        return order

    def check_structure(self) -> None:
        """Raise ShapeError when indices or shapes of connected layers disagree."""
        n = len(self.layers)
        names = [lyr.name for lyr in self.layers]
        if len(set(names)) != n:
            raise ShapeError(f"layer names must be unique, got {names}")
        for i in self.entry_layers():
            if not 0 <= i < n:
                raise ShapeError(f"entry layer index {i} out of range 0..{n - 1}")
            if self.layers[i].input_shape != self.entry_shape():
                raise ShapeError(f"input events have shape {self.entry_shape()} but the layer "
                                 f"expects {self.layers[i].input_shape}", node=self.layers[i].name)
        if self.dvs is not None and self.dvs.input_shape != self.input_shape:
            raise ShapeError(f"DVS input shape {self.dvs.input_shape} != network input shape "
                             f"{self.input_shape}")
        for lyr in self.layers:
            for d in lyr.destinations:
                if not 0 <= d.layer < n:
                    raise ShapeError(f"destination index {d.layer} out of range 0..{n - 1}",
                                     node=lyr.name)
                got = lyr.destination_shape(d)
                want = self.layers[d.layer].input_shape
                if got != want:
                    raise ShapeError(f"sends shape {got} (pooling {d.pooling}) to "
                                     f"'{self.layers[d.layer].name}' which expects {want}",
                                     node=lyr.name)
        if self.readout is not None and not 0 <= self.readout.layer < n:
            raise ShapeError(f"readout layer index {self.readout.layer} out of range")
        self.topological_order()

    def layer_index(self, name: str) -> int:
        """Index of the layer called ``name``."""
        for i, lyr in enumerate(self.layers):
            if lyr.name == name:
                return i
        raise KeyError(name)

    # ----------------------------------------------------------------- JSON
    def to_config(self) -> dict[str, Any]:
        """Return the neutral chip configuration (JSON-able dict); every layer needs a core."""
        missing = [lyr.name for lyr in self.layers if lyr.core is None]
        if missing:
            raise ArtifactError(f"layers {missing} have no core; run the mapping first")
        core_of = {i: int(lyr.core) for i, lyr in enumerate(self.layers)}  # type: ignore[arg-type]
        if len(set(core_of.values())) != len(core_of):
            raise ArtifactError(f"two layers share a core: {core_of}")
        cnn_layers: list[Optional[dict[str, Any]]] = [None] * chip.N_CORES
        readout_src = self.readout.layer if self.readout is not None else None
        kill_bits = self.chip_name in chip.CHIPS and chip.CHIPS[self.chip_name].kill_bits
        for i, lyr in enumerate(self.layers):
            cnn_layers[core_of[i]] = _core_config(lyr, core_of, readout=(i == readout_src), kill_bits=kill_bits)
        dvs_cfg = _dvs_config(self.dvs, core_of) if self.dvs is not None else None
        return {
            "format": CONFIG_FORMAT,
            "version": CONFIG_VERSION,
            "chip": self.chip_name,
            "input_shape": list(self.input_shape),
            "input_cores": [core_of[i] for i in self.input_layers] if self.dvs is None else [],
            "dvs_layer": dvs_cfg,
            "cnn_layers": cnn_layers,
            "readout": (None if self.readout is None else {
                "enable": True, "source_core": core_of[self.readout.layer],
                "num_classes": int(self.readout.num_classes),
                "channel_stride": int(self.readout.channel_stride)}),
            "mapping": {"layers": [{"name": lyr.name, "index": i, "core": core_of[i]}
                                   for i, lyr in enumerate(self.layers)]},
        }

    def to_json(self) -> str:
        """Serialise :meth:`to_config` deterministically (sorted keys, no whitespace variance)."""
        return json.dumps(self.to_config(), sort_keys=True, separators=(",", ":"))


def _xy(pair: Pair) -> dict[str, int]:
    """Turn a (y, x) pair into samna's ``{"x": .., "y": ..}``."""
    return {"x": int(pair[1]), "y": int(pair[0])}


def _core_config(lyr: SpeckLayer, core_of: dict[int, int], readout: bool, kill_bits: bool = False
                 ) -> dict[str, Any]:
    """samna ``CNNLayerConfig`` fields of one layer (same conventions as sinabs).

    ``kill_bits`` (DYNAP-CNN): a kill bit per weight (set where the weight is 0, in the weights'
    own ``[f][c][x][y]`` order), per bias (bias 0) and per neuron state (none killed).
    """
    c, h, w = lyr.input_shape
    f, oh, ow = lyr.neuron_shape
    kh, kw = lyr.kernel_size
    state = (lyr.neurons_initial_value if lyr.neurons_initial_value is not None
             else np.zeros(lyr.neuron_shape, dtype=np.int64))
    dests: list[dict[str, Any]] = []
    for d in lyr.destinations:
        dests.append({"layer": core_of[d.layer], "enable": True,
                      "pooling": int(d.pooling[0]) if d.pooling[0] == d.pooling[1]
                      else [int(d.pooling[0]), int(d.pooling[1])]})
    if readout:
        dests.append({"layer": chip.READOUT_DESTINATION, "enable": True, "pooling": 1})
    while len(dests) < chip.MAX_DESTINATIONS:
        dests.append({"layer": 0, "enable": False, "pooling": 1})
    extra: dict[str, Any] = {}
    if kill_bits:
        extra = {"weights_kill_bit": (lyr.weights == 0).transpose(0, 1, 3, 2).tolist(),
                 "biases_kill_bit": (lyr.biases == 0).tolist(),
                 "neurons_value_kill_bit": np.zeros((f, ow, oh), dtype=bool).tolist()}
    return {
        **extra,
        "dimensions": {
            "input_shape": {"size": {"x": w, "y": h}, "feature_count": c},
            "output_shape": {"size": {"x": ow, "y": oh}, "feature_count": f},
            "padding": _xy(lyr.padding),
            "stride": _xy(lyr.stride),
            "kernel_size": int(kh) if kh == kw else [int(kh), int(kw)],
        },
        # samna convention: [f][c][x][y] (sinabs: weights.transpose(2, 3))
        "weights": lyr.weights.transpose(0, 1, 3, 2).tolist(),
        "biases": lyr.biases.tolist(),
        "leak_enable": bool(lyr.leak_enable),
        "return_to_zero": bool(lyr.return_to_zero),
        "threshold_high": int(lyr.threshold_high),
        "threshold_low": int(lyr.threshold_low),
        "monitor_enable": bool(lyr.monitor),
        "neurons_initial_value": np.asarray(state).transpose(0, 2, 1).tolist(),
        "destinations": dests,
    }


def _dvs_config(dvs: DvsInput, core_of: dict[int, int]) -> dict[str, Any]:
    """samna ``DVSLayerConfig`` fields (as sinabs' ``DVSLayer.get_config_dict`` writes them)."""
    _, h, w = dvs.input_shape
    ph, pw = dvs.pooling
    dests = [{"layer": core_of[i], "enable": True} for i in dvs.destinations]
    while len(dests) < chip.MAX_DESTINATIONS:
        dests.append({"layer": 0, "enable": False})
    return {
        "merge": bool(dvs.merge_polarities),
        "mirror": {"x": False, "y": False},
        "mirror_diagonal": False,
        "cut": {"x": w // pw - 1, "y": h // ph - 1},
        "origin": {"x": 0, "y": 0},
        "pooling": {"x": pw, "y": ph},
        "pass_sensor_events": bool(dvs.pass_sensor_events),
        "monitor_enable": bool(dvs.monitor),
        "destinations": dests,
    }


def network_from_config(config: dict[str, Any] | str) -> SpeckNetwork:
    """Rebuild a :class:`SpeckNetwork` from the neutral configuration (dict or JSON text)."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"Speck configuration is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ArtifactError(f"Speck configuration must be a JSON object, got {type(config).__name__}")
    if config.get("format") != CONFIG_FORMAT:
        raise ArtifactError(f"not a Speck configuration (format {config.get('format')!r})")
    if int(config.get("version", -1)) != CONFIG_VERSION:
        raise ArtifactError(f"unsupported Speck configuration version {config.get('version')!r}; "
                            f"this snnc reads version {CONFIG_VERSION}")
    try:
        entries = sorted(config["mapping"]["layers"], key=lambda e: int(e["index"]))
        layer_of_core = {int(e["core"]): int(e["index"]) for e in entries}
        layers: list[SpeckLayer] = []
        for e in entries:
            cfg = config["cnn_layers"][int(e["core"])]
            dims = cfg["dimensions"]
            weights = np.asarray(cfg["weights"], dtype=np.int64).transpose(0, 1, 3, 2)
            state = np.asarray(cfg["neurons_initial_value"], dtype=np.int64).transpose(0, 2, 1)
            dests = []
            for d in cfg["destinations"]:
                if d["enable"] and int(d["layer"]) in layer_of_core:
                    dests.append(Destination(layer_of_core[int(d["layer"])], _pair(d["pooling"])))
            layers.append(SpeckLayer(
                name=str(e["name"]), weights=weights, biases=np.asarray(cfg["biases"]),
                threshold_high=cfg["threshold_high"], threshold_low=cfg["threshold_low"],
                input_shape=(dims["input_shape"]["feature_count"],
                             dims["input_shape"]["size"]["y"], dims["input_shape"]["size"]["x"]),
                stride=(dims["stride"]["y"], dims["stride"]["x"]),
                padding=(dims["padding"]["y"], dims["padding"]["x"]),
                return_to_zero=cfg["return_to_zero"], destinations=dests, core=int(e["core"]),
                monitor=cfg["monitor_enable"], leak_enable=cfg["leak_enable"],
                neurons_initial_value=state if state.any() else None))
        dvs = None
        if config.get("dvs_layer") is not None:
            d = config["dvs_layer"]
            dvs = DvsInput(input_shape=tuple(config["input_shape"]),  # type: ignore[arg-type]
                           pooling=(d["pooling"]["y"], d["pooling"]["x"]),
                           merge_polarities=d["merge"],
                           destinations=[layer_of_core[int(x["layer"])]
                                         for x in d["destinations"] if x["enable"]],
                           pass_sensor_events=d["pass_sensor_events"], monitor=d["monitor_enable"])
        readout = None
        if config.get("readout") is not None:
            r = config["readout"]
            readout = Readout(layer_of_core[int(r["source_core"])], int(r["num_classes"]),
                              int(r.get("channel_stride", 1)))
        return SpeckNetwork(layers=layers, input_shape=tuple(config["input_shape"]),  # type: ignore[arg-type]
                            input_layers=[layer_of_core[int(c)] for c in config["input_cores"]],
                            dvs=dvs, readout=readout, chip_name=str(config.get("chip", "speck2f")))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ArtifactError(f"malformed Speck configuration: {type(exc).__name__}: {exc}") from exc
