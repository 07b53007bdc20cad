"""Bring a NIR file from another framework: export an snnTorch network, compile it with snnc, compare.

    python examples/import_nir_from_snntorch.py

snnTorch discretises with forward Euler at dt = 1e-4 s (its exporter writes tau = dt/(1-beta),
r = tau/dt); ``--framework snntorch`` (``framework="snntorch"``) applies that convention.
"""
from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
import torch

import snnc

log = logging.getLogger("import_nir")


def main() -> int:
    """Export, compile, simulate, and check the spikes equal snnTorch's own."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import nir
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    # reset to zero (NIR's reset; snnTorch's default subtracts) and per-neuron beta (snnTorch 1.0's
    # exporter writes scalar beta as 0-d arrays that its own type check then rejects)
    kw = dict(reset_mechanism="zero", reset_delay=False, init_hidden=True)
    net = torch.nn.Sequential(torch.nn.Linear(20, 16), snn.Leaky(beta=torch.full((16,), 0.9), threshold=torch.ones(16), **kw),
                              torch.nn.Linear(16, 4), snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.ones(4),
                                                                 output=True, **kw))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    path = os.path.join(tempfile.mkdtemp(prefix="snnc-nir-"), "snntorch.nir")
    # an unbatched sample: with torch.zeros(1, 20) snnTorch 1.0 fails its own type check
    graph = export_to_nir(net, torch.zeros(20))
    nir.write(path, graph)
    x = (np.random.default_rng(0).random((2, 40, 20)) < 0.3).astype(np.float32)
    art = snnc.compile(path, target="cpu", framework="snntorch")
    log.info("import notes: %s", art.report["notes"])
    out = snnc.Program(art).run(x).output
    from snntorch import utils as snn_utils

    snn_utils.reset(net)
    with torch.no_grad():
        ref = torch.stack([net(torch.as_tensor(x[:, t]))[0] for t in range(x.shape[1])], dim=1).numpy()
    same = np.array_equal(out, ref)
    log.info("snnc spikes %s snnTorch's (%d output spikes)", "equal" if same else "DIFFER from", int(ref.sum()))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
