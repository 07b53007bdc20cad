"""The divergence report names the right cause on constructed cases, one per cause, and runs as the README says.

Every case is a one- or two-neuron model built so that exactly one chip effect makes the chip depart
from the float model (the construction is in each case's docstring); the report must name it as the
cause of the first divergence, at the step the construction predicts. The float side is snnc's cpu
target simulator; the chip side is checked inside the report against snnc's reference simulator.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy as np
import pytest
import torch
from torch import nn

import snnc
from snnc.models.neurons import IF, LIF, CubaLIF
from snnc.models.zoo import SequentialSNN

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's console scripts
DT = 1e-3


def dense(w: Any, neuron: nn.Module) -> SequentialSNN:
    """Input -> Linear(w, no bias) -> neuron."""
    w = np.asarray(w, dtype=np.float64)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(w))
    return SequentialSNN((w.shape[1],), lin, neuron)


def conv1x1(w: Any, thr: float) -> SequentialSNN:
    """Input (C, 1, 1) -> Conv2d 1x1 (w, no bias) -> IF: a Speck core."""
    w = np.asarray(w, dtype=np.float64)
    conv = nn.Conv2d(w.shape[1], w.shape[0], 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(w.reshape(*w.shape, 1, 1)))
    return SequentialSNN((w.shape[1], 1, 1), conv, IF((w.shape[0], 1, 1), v_threshold=thr, dt_s=DT))


def events(steps: int, shape: Tuple[int, ...], on: Any) -> np.ndarray:
    """One sample (1, steps, *shape) with ``count`` events at ``(step, channel)`` for each ``(step, channel, count)``."""
    x = np.zeros((1, steps) + shape)
    for t, c, k in on:
        x[(0, t, c) + (0,) * (len(shape) - 1)] = k
    return x


# ----------------------------------------------------------------------------- the cases
def case_binary_input() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """Two events in one bin reach an IF threshold of 1.5 in float; Loihi sees one spike (1 < 1.5)."""
    return dense([[1.0]], IF((1,), v_threshold=1.5, dt_s=DT)), events(6, (1,), [(1, 0, 2)]), {}, "1", 1


def case_weight_zero() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """v = 1 + 0.001 > 1.0005 in float; 0.001 rounds to mantissa 0 (the scale maps 1.0 to 255): v stays at the threshold."""
    return (dense([[1.0, 0.001]], IF((1,), v_threshold=1.0005, dt_s=DT)), events(6, (2,), [(1, 0, 1), (1, 1, 1)]),
            {}, "1", 1)


def case_dt_mismatch() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """A 5 ms LIF driven every step crosses 2.5 at step 3 at its own 1 ms step, at step 1 when compiled at 2 ms."""
    return (dense([[1.0]], LIF((1,), tau_s=5e-3, r=5.0, v_threshold=2.5, dt_s=DT)),
            events(30, (1,), [(t, 0, 1) for t in range(30)]), {"dt_s": 2e-3}, "1", 1)


def case_hop_delay() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """input -> A -> B and input -> B, B a coincidence detector (threshold 1.5): in float both paths arrive in the
    same step; on Loihi the path through A takes two hops, the direct one one: they never coincide."""
    from snnc.compiler import graph as g

    gr = g.Graph(source="skip")
    gr.nodes["input"] = g.Input(shape=(1,))
    gr.nodes["fa"] = g.Linear(weight=np.ones((1, 1)))
    gr.nodes["A"] = g.Threshold(threshold=np.array([0.5]))
    gr.nodes["fb"] = g.Linear(weight=np.ones((1, 1)))
    gr.nodes["fc"] = g.Linear(weight=np.ones((1, 1)))
    gr.nodes["B"] = g.Threshold(threshold=np.array([1.5]))
    gr.nodes["output"] = g.Output()
    gr.edges = [("input", "fa"), ("fa", "A"), ("A", "fb"), ("fb", "B"), ("input", "fc"), ("fc", "B"),
                ("B", "output")]
    return gr, events(6, (1,), [(1, 0, 1)]), {"dt_s": DT}, "B", 1


def case_decay_truncation() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """A LIF whose 12-bit decay (1 - dv/4096) and weight (mantissa 255) are exact, so only the truncation of each
    decayed v differs: the threshold is put between the truncated and the exact voltage of the step where the
    exact one first exceeds it."""
    for dv in range(20, 200):
        beta = 1 - dv / 4096
        f = c = 0.0
        for n in range(400):
            f = f * beta + 255 * 64
            c = math.trunc(c * (4096 - dv) / 4096) + 255 * 64
            m = math.floor(c / 64) + 1
            if c <= 64 * m < f:  # float crosses 64 m at step n, the chip does not
                neuron = LIF((1,), tau_s=-DT / math.log(beta), r=1.0 / (1 - beta), v_threshold=m / 255.0, dt_s=DT)
                return dense([[1.0]], neuron), events(n + 3, (1,), [(t, 0, 1) for t in range(n + 3)]), {}, "1", n
    raise AssertionError("no construction found")


def case_state_wrap() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """A current-based LIF whose current never decays on Loihi (du = 0) integrates one spike per step: it fires every
    step until u passes 2**23 (step 516) and wraps to a negative value; the float current keeps growing."""
    tau_syn = 1e4 * DT
    a_i = math.exp(-DT / tau_syn)
    neuron = CubaLIF((1,), tau_syn_s=tau_syn, tau_mem_s=DT / 20, w_in=1.0 / (1 - a_i), r=1.0, v_threshold=0.5, dt_s=DT)
    return dense([[1.0]], neuron), events(540, (1,), [(t, 0, 1) for t in range(540)]), {}, "1", 516


def case_saturation() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """600 inhibitory spikes drive an IF to -600 thresholds in float; Loihi's v stops at -(2**23 - 1), about -516,
    so excitatory spikes make it fire again about 84 steps earlier."""
    on = [(t, 0, 1) for t in range(600)] + [(t, 1, 1) for t in range(600, 1300)]
    return dense([[-1.0, 1.0]], IF((1,), v_threshold=1.0, dt_s=DT)), events(1300, (2,), on), {}, "1", 1117


def case_speck_weight_zero() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """Speck: v = 1 + 0.001 > 1.0005 in float; 0.001 rounds to 0 at the scale that maps 1.0 to 127."""
    return conv1x1([[1.0, 0.001]], 1.0005), events(5, (2, 1, 1), [(1, 0, 1), (1, 1, 1)]), {}, "1", 1


def case_speck_spike_mode() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """Speck compiled with -O spike_mode=multi: two events on a threshold of 0.9 fire twice in one step."""
    return conv1x1([[1.0]], 0.9), events(5, (1, 1, 1), [(1, 0, 2)]), {"spike_mode": "multi"}, "1", 1


def case_speck_saturation() -> Tuple[Any, np.ndarray, Dict[str, Any], str, int]:
    """Speck's state stops at the 16-bit minimum -2**15 (about -258 thresholds here); the float IF goes to -300."""
    on = [(t, 0, 1) for t in range(300)] + [(t, 1, 1) for t in range(300, 700)]
    return conv1x1([[-1.0, 1.0]], 1.0), events(700, (2, 1, 1), on), {}, "1", 559


CASES: Dict[str, Tuple[str, Callable[[], Any]]] = {
    "binary_input": ("loihi", case_binary_input), "weight_zero": ("loihi", case_weight_zero),
    "dt_mismatch": ("loihi", case_dt_mismatch), "hop_delay": ("loihi", case_hop_delay),
    "decay_truncation": ("loihi", case_decay_truncation), "state_wrap": ("loihi", case_state_wrap),
    "saturation": ("loihi", case_saturation), "speck:weight_zero": ("speck", case_speck_weight_zero),
    "speck:spike_mode": ("speck", case_speck_spike_mode), "speck:saturation": ("speck", case_speck_saturation),
}


@pytest.mark.parametrize("cause", sorted(CASES))
def test_report_names_the_constructed_cause(cause: str) -> None:
    target, build = CASES[cause]
    model, x, kw, layer, step = build()
    art = snnc.compile(model, target=target, **kw)
    rep = snnc.diverge(model, art, x)
    by = {ly.name: ly for ly in rep.layers}
    first = by[layer].first
    assert first is not None, rep.format()
    assert first["cause"] == cause.split(":")[-1], rep.format()
    assert first["step"] == step and first["sample"] == 0, rep.format()
    assert first["inherited_from"] is None
    assert cause.split(":")[-1] in rep.ladder and set(by[layer].causes) == {cause.split(":")[-1]}, rep.format()
    assert first["cause_text"]
    json.dumps(rep.to_dict())  # the compile report section is JSON


def test_an_exactly_representable_model_has_no_divergence() -> None:
    """Control: weights +-1, an integer threshold, IF neurons and binary inputs are exact on Loihi: nothing diverges
    (so the cases above are not artefacts of the comparison)."""
    rng = np.random.default_rng(3)
    w1 = rng.choice([-1.0, 1.0, 1.0], size=(6, 8))
    lin1, lin2 = nn.Linear(8, 6, bias=False), nn.Linear(6, 3, bias=False)
    with torch.no_grad():
        lin1.weight.copy_(torch.as_tensor(w1))
        lin2.weight.copy_(torch.as_tensor(rng.choice([-1.0, 1.0, 1.0], size=(3, 6))))
    model = SequentialSNN((8,), lin1, IF((6,), v_threshold=2.0, dt_s=DT), lin2, IF((3,), v_threshold=1.0, dt_s=DT))
    x = (rng.random((4, 40, 8)) < 0.4).astype(np.float64)
    rep = snnc.diverge(model, snnc.compile(model, target="loihi"), x)
    assert all(ly.first is None and ly.agreement == 1.0 for ly in rep.layers), rep.format()
    assert sum(ly.float_spikes for ly in rep.layers) > 50  # and the comparison saw activity


def test_a_program_from_another_model_is_refused() -> None:
    m1, x, _, _, _ = case_binary_input()
    m2, _, _, _, _ = case_weight_zero()
    with pytest.raises(snnc.SnncError, match="not compiled from this model"):
        snnc.diverge(m1, snnc.compile(m2, target="loihi"), np.zeros((1, 3, 1)))


def test_snn_compile_diverge_option(tmp_path: Path) -> None:
    """The README's command: snn-compile CKPT --target loihi -O diverge=nmnist -O diverge_plot=...: the report
    section per layer, the printed summary, the picture; the count-trained one-step model departs by binary input."""
    from snnc.models.data.nmnist import nmnist_small_dir

    if not (nmnist_small_dir() / "labels.txt").is_file():
        pytest.skip(f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")
    ckpt = REPO / "snnc" / "models" / "checkpoints" / "minlatency_cnn.pt"
    png, rep_path = tmp_path / "div.png", tmp_path / "report.json"
    r = subprocess.run([str(BIN / "snn-compile"), str(ckpt), "--target", "loihi", "-o",
                        str(tmp_path / "m.snnc"), "-O", "diverge=nmnist", "-O", "diverge_samples=6", "-O",
                        f"diverge_plot={png}", "--report", str(rep_path), "-q"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "divergence: float model" in r.stdout and "cause: binary_input" in r.stdout
    assert png.stat().st_size > 1000
    div = json.loads(rep_path.read_text())["divergence"]
    assert div["samples"] == 6 and [ly["name"] for ly in div["layers"]] == ["1", "3", "6"]
    assert div["layers"][0]["first"]["cause"] == "binary_input"
    assert div["layers"][-1]["kind"] == "readout"
    bad = subprocess.run([str(BIN / "snn-compile"), str(ckpt), "--target", "loihi", "-o",
                          str(tmp_path / "n.snnc"), "-O", "diverge_samples=3"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert bad.returncode == 2 and "diverge=DATA" in bad.stderr and "Traceback" not in bad.stderr
