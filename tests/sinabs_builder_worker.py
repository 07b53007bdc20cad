"""Build Speck configurations with sinabs' own builder and with snnc's, into one samna stand-in (test helper).

Runs in its own process (``python sinabs_builder_worker.py IN.json OUT.json [SINABS_DIR]``; a
``SINABS_DIR`` holds sinabs 2.0.3, the last sinabs with a DYNAP-CNN devkit builder) with
``tests/samna_standin`` first on ``sys.path``, so that ``import samna`` finds the attribute-holder
stand-in and nothing of it reaches the test process. Per job it

* rebuilds from snnc's configuration (``job["config"]``) the same integer network as a sinabs
  model (``DVSLayer`` if any, then per core ``Conv2d`` or ``Flatten + Linear`` with snnc's integer
  weights and biases, ``IAFSqueeze`` with its thresholds and reset, ``SumPool2d`` for a pooled
  route), and calls sinabs' ``DynapcnnNetwork(model, input_shape, discretize=False).make_config(
  layer2core_map="auto", device=...)``: sinabs computes the layer-to-core mapping, destinations,
  axis orders, leak, monitors and DVS fields itself;
* writes ``job["file_config"]`` (the configuration file snnc exports) with snnc's
  ``build_samna_config`` into the same stand-in classes;
* returns both configurations as plain JSON and sinabs' ``layer2core_map``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent / "samna_standin"))


def plain(obj: Any) -> Any:
    """A configuration object (stand-in bags, lists, tensors) as plain JSON values."""
    if hasattr(obj, "tolist"):  # torch tensors, numpy arrays and scalars
        return plain(obj.tolist())
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return {k: plain(v) for k, v in sorted(vars(obj).items())}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (int, float)):
        return int(obj) if float(obj).is_integer() else float(obj)
    return obj


def sinabs_model(net: Any, as_linear: Dict[str, bool]) -> Any:
    """The snnc integer network as a sinabs model (chains: every core has at most one destination)."""
    import torch
    import torch.nn as nn
    import sinabs.activation as sa
    import sinabs.layers as sl
    from sinabs.backend.dynapcnn.dvs_layer import DVSLayer

    mods = []
    if net.dvs is not None:
        mods.append(DVSLayer(input_shape=tuple(net.dvs.input_shape[1:]), pool=tuple(net.dvs.pooling),
                             merge_polarities=net.dvs.merge_polarities,
                             disable_pixel_array=not net.dvs.pass_sensor_events))
    order = net.topological_order()
    for pos, i in enumerate(order):
        ly = net.layers[i]
        f, c, kh, kw = ly.weights.shape
        w = torch.from_numpy(ly.weights.astype("float32"))
        b = torch.from_numpy(ly.biases.astype("float32"))
        if as_linear.get(ly.name):
            lin = nn.Linear(c * kh * kw, f)
            lin.weight.data, lin.bias.data = w.reshape(f, -1), b
            mods += [nn.Flatten(), lin]
        else:
            conv = nn.Conv2d(c, f, (kh, kw), stride=ly.stride, padding=ly.padding)
            conv.weight.data, conv.bias.data = w, b
            mods.append(conv)
        mods.append(sl.IAFSqueeze(batch_size=1, spike_threshold=float(ly.threshold_high),
                                  min_v_mem=float(ly.threshold_low),
                                  reset_fn=sa.MembraneReset() if ly.return_to_zero else sa.MembraneSubtract()))
        if len(ly.destinations) > 1:
            raise ValueError(f"layer {ly.name} has {len(ly.destinations)} destinations: chains only")
        if ly.destinations:
            assert ly.destinations[0].layer == order[pos + 1]
            if tuple(ly.destinations[0].pooling) != (1, 1):
                mods.append(sl.SumPool2d(tuple(ly.destinations[0].pooling)))
    return nn.Sequential(*mods)


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Both configurations of one job (see module doc)."""
    from sinabs.backend.dynapcnn import DynapcnnNetwork

    from snnc.targets.speck.device import build_samna_config
    from snnc.targets.speck.network import network_from_config

    net = network_from_config(job["config"])
    model = sinabs_model(net, job.get("as_linear", {}))
    in_shape = tuple(net.input_shape)
    if net.dvs is not None and net.dvs.merge_polarities:
        in_shape = (1, *in_shape[1:])  # sinabs' DVSLayer declares merged-polarity input as one channel
    if LEGACY:  # sinabs 2.0.3: sequential models, cores listed in model order
        dn = DynapcnnNetwork(model, input_shape=in_shape, discretize=False,
                             dvs_input=bool(net.dvs is not None and net.dvs.pass_sensor_events))
        theirs = dn.make_config(chip_layers_ordering="auto", device=job["device"])
        layer2core = {str(k): int(v) for k, v in enumerate(dn.chip_layers_ordering)}
    else:
        dn = DynapcnnNetwork(model, input_shape=in_shape, discretize=False,
                             dvs_input=None if net.dvs is not None else False)
        theirs = dn.make_config(layer2core_map="auto", device=job["device"])
        layer2core = {str(k): int(v) for k, v in dn.layer2core_map.items()}
    ours = build_samna_config(job["file_config"], device=job["device"], validate=True)
    return {"sinabs": plain(theirs), "snnc": plain(ours), "layer2core": layer2core,
            "sinabs_version": __import__("sinabs").__version__}


LEGACY = False


def main(argv: list) -> int:
    """``sinabs_builder_worker.py IN.json OUT.json [SINABS_DIR]``: SINABS_DIR holds another sinabs (2.0.3)."""
    global LEGACY
    if len(argv) > 3:
        sys.path.insert(0, argv[3])
        LEGACY = True
    import samna

    assert getattr(samna, "STANDIN", False), "the samna stand-in must shadow any samna here"
    jobs = json.loads(Path(argv[1]).read_text())
    Path(argv[2]).write_text(json.dumps([run_job(j) for j in jobs]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
