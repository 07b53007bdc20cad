"""Issue 4: the zoo's Speck CNN, compiled, simulates spike for spike like sinabs' own DynapcnnLayers.

On every one of the 199 held-out recordings: every layer's (pooled) spikes and membrane potentials at
every step; and sinabs' own output gives the deployed Speck accuracy that results/zoo.json (and so the
README) quotes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the oracle (pip install --no-deps sinabs==3.1.3 pbr nirtorch)")

import snnc  # noqa: E402
from snnc.models import zoo  # noqa: E402
from snnc.models.data.events import events_to_dense  # noqa: E402
from snnc.models.data.nmnist import NMNISTSmall  # noqa: E402
from snnc.models.metrics import count_predictions  # noqa: E402
from snnc.targets.speck.target import SpeckTarget  # noqa: E402
from test_speck_oracle import _sinabs_run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "snnc" / "models" / "checkpoints" / "speck_cnn.pt"
CHUNK = 20  # samples per sinabs call (its recordings of every layer's v_mem are large)


def test_zoo_speck_cnn_equals_sinabs_on_every_validation_recording() -> None:
    rec = zoo.recipe("speck_cnn")
    art = snnc.compile(str(CKPT), target="speck", dt_s=rec["dt_us"] * 1e-6)
    net, run = SpeckTarget._load(art.payload)
    assert run["spike_mode"] == "single"
    ds = NMNISTSmall()
    val = ds.split(0.2, seed=0)[1]
    assert len(val) == 199
    prog = snnc.Program(art)
    pools = [lyr.destinations[0].pooling[0] if lyr.destinations else 1 for lyr in net.layers]
    total, preds, labels = 0, [], []
    for a in range(0, len(val), CHUNK):
        idx = val[a:a + CHUNK]
        x = np.stack([events_to_dense(ds.events(int(i)), rec["dt_us"], (2, 34, 34), rec["n_steps"]) for i in idx])
        x = x.astype(np.int64)
        ours = prog.run(x, record=True)
        ref_out, ref_states = _sinabs_run(net, pools, x, multi=False, batch=x.shape[0])
        for lyr, pool, out, v in zip(net.layers, pools, ref_out, ref_states):
            spikes = ours.states[lyr.name]["spikes"]
            b, t, f, h, w = spikes.shape
            pooled = spikes.reshape(b * t, f, h, w).astype(np.int64)
            if pool > 1:
                pooled = pooled[:, :, : h // pool * pool, : w // pool * pool].reshape(
                    b * t, f, h // pool, pool, w // pool, pool).sum(axis=(3, 5))
            where = f"layer {lyr.name}, samples {a}..{a + len(idx) - 1}"
            np.testing.assert_array_equal(pooled, out.numpy().astype(np.int64), err_msg=f"spikes, {where}")
            np.testing.assert_array_equal(ours.states[lyr.name]["v"].reshape(v.shape), v.astype(np.int64),
                                          err_msg=f"v_mem, {where}")
            total += int(spikes.sum())
        last = ref_out[-1].numpy().reshape(len(idx), rec["n_steps"], -1)
        preds.append(count_predictions(last))
        labels.append(np.array([ds.label(int(i)) for i in idx]))
    assert total > 100 * len(val)
    # sinabs' own output gives the deployed accuracy the README quotes (results/zoo.json)
    acc = float((np.concatenate(preds) == np.concatenate(labels)).mean())
    quoted = json.loads((REPO / "results" / "zoo.json").read_text())["models"]["speck_cnn"]["deployed"]
    assert quoted["target"] == "speck" and quoted["n"] == len(val)
    assert acc == pytest.approx(quoted["accuracy"], abs=1e-9), (acc, quoted)
