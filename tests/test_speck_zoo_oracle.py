"""Issue 4: the zoo's Speck CNN, compiled, simulates spike for spike like sinabs' own DynapcnnLayers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the oracle (pip install --no-deps sinabs==3.1.3 pbr nirtorch)")

import snnc  # noqa: E402
from snnc.models import zoo  # noqa: E402
from snnc.models.data.events import events_to_dense  # noqa: E402
from snnc.models.data.nmnist import NMNISTSmall  # noqa: E402
from snnc.targets.speck.target import SpeckTarget  # noqa: E402
from test_speck_oracle import _sinabs_run  # noqa: E402

CKPT = Path(__file__).resolve().parents[1] / "snnc" / "models" / "checkpoints" / "speck_cnn.pt"


def test_zoo_speck_cnn_equals_sinabs_on_real_events() -> None:
    rec = zoo.recipe("speck_cnn")
    art = snnc.compile(str(CKPT), target="speck", dt_s=rec["dt_us"] * 1e-6)
    net, run = SpeckTarget._load(art.payload)
    assert run["spike_mode"] == "single"
    ds = NMNISTSmall()
    idx = ds.split(0.2, seed=0)[1][:3]
    x = np.stack([events_to_dense(ds.events(int(i)), rec["dt_us"], (2, 34, 34), rec["n_steps"]) for i in idx])
    x = x.astype(np.int64)
    ours = snnc.Program(art).run(x, record=True)
    pools = [lyr.destinations[0].pooling[0] if lyr.destinations else 1 for lyr in net.layers]
    ref_out, ref_states = _sinabs_run(net, pools, x, multi=False, batch=x.shape[0])
    total = 0
    for lyr, pool, out, v in zip(net.layers, pools, ref_out, ref_states):
        spikes = ours.states[lyr.name]["spikes"]
        b, t, f, h, w = spikes.shape
        pooled = spikes.reshape(b * t, f, h, w).astype(np.int64)
        if pool > 1:
            pooled = pooled[:, :, : h // pool * pool, : w // pool * pool].reshape(
                b * t, f, h // pool, pool, w // pool, pool).sum(axis=(3, 5))
        np.testing.assert_array_equal(pooled, out.numpy().astype(np.int64))
        np.testing.assert_array_equal(ours.states[lyr.name]["v"].reshape(v.shape), v.astype(np.int64))
        total += int(spikes.sum())
    assert total > 100
