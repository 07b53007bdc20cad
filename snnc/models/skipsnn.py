"""SkipSNN (Yin et al. 2024, arXiv 2411.05806): an SNN whose controller neuron gates its input.

Main net (paper): N-MNIST 2312 -> hidden LIF -> 10 LIF, ``u_t = beta u_{t-1} (1 - z_{t-1}) + W x``,
``z = H(u - V_th)``, beta = 0.1, V_th = 0.5 (snnc's LIF with reset to zero is exactly this).
The first layer sees the gated input ``a_{t-L} * x_t``. The controller is one LIF neuron
(beta 0.1, V_th 0.5) driven by the hidden spikes (gradient stopped) and by four pulse trains
``o_t = [1, t mod 2 == 0, t mod 10 == 0, t mod 100 == 0]`` (here one step earlier, see pulses;
its bias is the weight of the constant pulse). Readout: output spike count / (1 + awake steps); loss MSE to one-hot plus
``lam * mean(a)``; class = argmax of the output spike count (first index on ties).

What makes it compilable (:meth:`SkipSNN.to_graph`), all in NIR nodes:

* gate: for binary ``x`` and ``a``, ``a * x = H(x + a - 1.5)``: 2312 memoryless ``Threshold``
  neurons (threshold 1.5) summing ``x`` (direct edge) and ``a`` (broadcast by a 2312 x 1
  ``Linear`` of ones). Counts > 1 in ``x`` are gated to 1 (the float model does the same);
  SkipSNN's data are binary. In training the gate's backward is the product's (``d/da = x``).
* pulses: four ``IF`` neurons with ``v_reset = 0`` (all Loihi can do: Lava's CUBA LIF resets v
  to 0), a common threshold ``lcm(P) - 0.5`` = 99.5 and constant drives ``lcm(P) / P`` =
  [100, 50, 10, 1] per step (integers, so float64 sums are exact; one threshold and integer bias
  ratios also quantise exactly on Loihi, where a layer has one ``vth`` and one bias exponent).
  The drive is an ``Affine`` with zero weights and that bias, fed from the gate layer, so that the
  loop has a single entry, ``flatten -> gate``, and its one-step recurrent edge is always
  ``bcast -> gate`` whatever order a pass leaves the edges in. Neuron ``P`` fires every P steps
  at ``t = P-1, 2P-1, ...``, i.e. ``o_t = [1, (t+1) mod 2 == 0, (t+1) mod 10 == 0,
  (t+1) mod 100 == 0]``: the paper's trains shifted one step earlier (``o_t = o^paper_{t+1}``;
  the constant pulse is unchanged). Firing at t = 0 (the paper's phase) is impossible with reset
  to 0 and a constant drive from the zero state; the controller is trained with the shifted
  trains. On Loihi the pulse layer lags the float model by 2 steps, so the lowering switches its
  bias (the drive) on after 2 steps (``bias_onset_step``, a host-side register write), and the
  pulses keep their phase exactly.
* delays: the loop gate -> hidden -> controller -> gate has ``loop_delay`` = L steps: one from
  the recurrent edge plus a ``Delay`` of ``L - 1`` steps, so the gate at ``t`` uses
  ``a_{t-L}``. The paper's model is ``L = 1``. On Loihi every synaptic hop takes one step, so
  the loop's three hops (gate -> hidden, hidden -> controller, controller -> gate) need
  ``L >= 3``: with ``L = 3`` (the default) the Loihi lowering finds consistent per-layer lags
  (gate 1, hidden 2, output and controller 3 steps) and reproduces the loop step for step, up
  to quantisation; with ``L = 1`` it cannot. The model is trained with the delays it is
  deployed with. The delay is stored in seconds (``(L-1) * dt_s``): compile with the same dt.
* start-up: the delay line starts empty, so the gate is closed for the first L steps (the paper
  assumes ``a_{-1} = 1``); an exact "awake at start" would need L extra one-shot neurons.

Speck has only non-leaky IF neurons and no memoryless threshold: no exact gate there.

Training (``snn-train``): stage 1 trains the main net with the gate forced open and a
rectangular surrogate (``--stage 1``, lam ignored); stage 2 freezes it and trains the controller
with ``lam > 0`` and a sigmoid surrogate whose width shrinks x0.9 every ``anneal_every`` epochs
(``--stage 2 --init stage1.pt``). Reproduce the claim's checkpoint (``scripts/train_zoo.sh``)::

    snn-train skipsnn --stage 1 --out runs/skipsnn_s1.pt
    snn-train skipsnn --stage 2 --epochs 4 --lr 0.005 --kwargs '{"anneal_every": 1}' \
        --init runs/skipsnn_s1.pt --out snnc/models/checkpoints/claims/skipsnn.pt

(the zoo's ``skipsnn.pt`` is the earlier hidden-256 model without shift augmentation; stage 2
records stage 1's command, curve and time in its checkpoint: ``init_command``, ``init_history``.)

(data ``nmnist-noise``: 300 steps of 1 ms, the 50-step signal at a random offset, fresh noise and
offsets every epoch, random shifts of up to 2 pixels; hidden = 800 as in the paper; ``lam`` =
0.05; the paper anneals every 10 epochs of a long run, here every epoch of a 4-epoch stage 2.)
Stage 2 leaves the main net's weights as stage 1 left them, so the checkpoint loaded with
``gate=False, stage=1`` *is* the plain SNN of the claim: the same trained network without its
gate. The comparison (float and on the Loihi simulator: accuracy, synaptic operations with and
without the gate's own, awake fraction, controller spikes on chip vs float) is in README.md
("The papers' claims on our data", ``results/claims/skipsnn.json``, ``scripts/paper_claims.py``).

On Loihi (``target="loihi"``, output lag 3 steps) the gate is exact: ``gate(t) = x(t-1) *
a(t-1)`` in Loihi steps; the float and chip runs differ through 8-bit weights (small fc1
weights round to 0) and Loihi's truncating decays. The same architecture with integer weights
and non-leaky neurons is equal to its float model spike for spike on Loihi, pulses and
controller included (tests/test_zoo_skipsnn_loihi.py). The compiled graph also counts the
gate's synapses: one per input event into the gate neurons and 2312 (one per pixel) per
controller spike, the broadcast that opens the gate.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from snnc.compiler import graph as g
from snnc.dynamics import heaviside
from snnc.models.neurons import IF, LIF, run_sequence, surrogate
from snnc.models.zoo import register


class _GateFn(torch.autograd.Function):
    """Forward ``H(x + a - 1.5)`` (== ``a * x`` for binary inputs); backward of the product."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, a)
        return heaviside((x + a) - 1.5)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        x, a = ctx.saved_tensors
        ga = (grad * x).sum(dim=tuple(range(1, grad.dim())), keepdim=True) if a.shape != x.shape else grad * x
        return grad * a.expand_as(x), ga.reshape(a.shape)


def pulse_drives(periods: Sequence[int]) -> Tuple[np.ndarray, float]:
    """Return (per-step drives ``lcm / P``, common threshold ``lcm - 0.5``): IF ``P`` fires at t = P-1, 2P-1, ..."""
    lcm = int(np.lcm.reduce(np.asarray(periods, dtype=np.int64)))
    return np.asarray([lcm // int(p) for p in periods], dtype=np.float64), lcm - 0.5


class SkipSNN(nn.Module):
    """SkipSNN with an exactly compilable gate, pulse generators and loop delay (see module doc)."""

    def __init__(self, hidden: int = 800, beta: float = 0.1, v_threshold: float = 0.5,
                 ctrl_beta: float = 0.1, ctrl_threshold: float = 0.5, loop_delay: int = 3,
                 pulse_periods: Sequence[int] = (1, 2, 10, 100), gate: bool = True, lam: float = 0.05,
                 surrogate_width: float = 1.0, anneal_every: int = 10, dt_s: float = 1e-3,
                 input_shape: tuple = (2, 34, 34), classes: int = 10, init_gain: float = 6.0,
                 stage: int = 2) -> None:
        super().__init__()
        if loop_delay < 1:
            raise ValueError(f"loop_delay must be >= 1 step, found {loop_delay}")
        self.input_shape = tuple(int(s) for s in input_shape)
        n_in = int(np.prod(self.input_shape))
        self.n_in, self.hidden, self.classes = n_in, int(hidden), int(classes)
        self.gate_enabled, self.loop_delay = bool(gate), int(loop_delay)
        self.lam, self.width0, self.anneal_every = float(lam), float(surrogate_width), int(anneal_every)
        self.periods = tuple(int(p) for p in pulse_periods)
        self.dt_s = float(dt_s)
        rect = surrogate("rect", surrogate_width)
        self.fc1 = nn.Linear(n_in, hidden, bias=False)
        self.lif1 = LIF.from_beta((hidden,), beta=beta, v_threshold=v_threshold, dt_s=dt_s, spike_fn=rect)
        self.fc2 = nn.Linear(hidden, classes, bias=False)
        self.lif2 = LIF.from_beta((classes,), beta=beta, v_threshold=v_threshold, dt_s=dt_s, spike_fn=rect)
        with torch.no_grad():
            self.fc1.weight.mul_(init_gain)
            self.fc2.weight.mul_(init_gain / 2)
        self.ctrl_z = nn.Linear(hidden, 1, bias=False)
        self.ctrl_o = nn.Linear(len(self.periods), 1, bias=False)
        with torch.no_grad():  # awake at first: the constant pulse alone crosses the threshold
            self.ctrl_z.weight.zero_()
            self.ctrl_o.weight.zero_()
            self.ctrl_o.weight[0, 0] = ctrl_threshold + 0.1
        self.ctrl = LIF.from_beta((1,), beta=ctrl_beta, v_threshold=ctrl_threshold, dt_s=dt_s,
                                  spike_fn=surrogate("sigmoid", surrogate_width))
        self.pulse_drive, pulse_th = pulse_drives(self.periods)
        self.pulses = IF((len(self.periods),), v_threshold=pulse_th, v_reset=0.0, dt_s=dt_s)
        self._a_hist: List[torch.Tensor] = []
        self._trace: Dict[str, List[torch.Tensor]] = {}
        self.stage = 0
        self.set_stage(stage)

    # ---------------------------------------------------------------- training hooks
    def set_stage(self, stage: int) -> None:
        """Stage 1: gate open, main net trainable (rect surrogate); 2: main frozen, controller trains."""
        if stage not in (1, 2):
            raise ValueError(f"SkipSNN has stages 1 and 2, found {stage}")
        self.stage = int(stage)
        main = (self.fc1, self.fc2)
        ctrl = (self.ctrl_z, self.ctrl_o)
        for m in main:
            m.weight.requires_grad_(stage == 1)
        for m in ctrl:
            m.weight.requires_grad_(stage == 2 and self.gate_enabled)
        kind = "rect" if stage == 1 else "sigmoid"
        for n in (self.lif1, self.lif2):
            n.spike_fn = surrogate(kind, self.width0)

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Anneal the sigmoid surrogate width: x0.9 every ``anneal_every`` epochs (stage 2)."""
        if self.stage == 2:
            w = self.width0 * 0.9 ** (epoch // max(self.anneal_every, 1))
            for n in (self.lif1, self.lif2, self.ctrl):
                n.spike_fn = surrogate("sigmoid", w)

    @property
    def gate_active(self) -> bool:
        """True when the controller gates the input (gate enabled and not in stage 1)."""
        return self.gate_enabled and self.stage != 1

    # ---------------------------------------------------------------- dynamics
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Advance one step with input ``x`` (batch, *input_shape); return output spikes (batch, classes)."""
        b = x.shape[0]
        xf = x.reshape(b, -1)
        if self.lif1.v is None:  # first step of a sequence (run_sequence reset the neurons)
            self._a_hist = []
            self._trace = {"awake": [], "a": []}
        if self.gate_active:
            hist = self._a_hist
            a_in = hist[-self.loop_delay] if len(hist) >= self.loop_delay else xf.new_zeros((b, 1))
            gx = _GateFn.apply(xf, a_in)
            self._trace["awake"].append(a_in.reshape(b))
        else:
            gx = xf
            self._trace["awake"].append(xf.new_ones(b))
        h = self.lif1(self.fc1(gx))
        o = self.lif2(self.fc2(h))
        if self.gate_active:
            p = self.pulses(torch.as_tensor(self.pulse_drive, dtype=xf.dtype).expand(b, -1))
            a = self.ctrl(self.ctrl_z(h.detach()) + self.ctrl_o(p))
            self._a_hist = (self._a_hist + [a])[-self.loop_delay:]
            self._trace["a"].append(a.reshape(b))
        return o

    def forward_sequence(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, Any]]:
        """Run a whole sequence (batch, T, ...); return (output spikes (batch, T, classes), aux)."""
        out = run_sequence(self, x)
        awake = torch.stack(self._trace["awake"], 1)
        aux: Dict[str, Any] = {"awake": awake, "metric_awake_ratio": float(awake.detach().mean())}
        if self._trace["a"]:
            aux["a"] = torch.stack(self._trace["a"], 1)
        return out, aux

    def loss(self, out: torch.Tensor, aux: Dict[str, Any], y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        """MSE of count / (1 + awake steps) to one-hot, plus ``lam * mean(a)`` when the gate is active."""
        rate = out.sum(1) / (1.0 + aux["awake"].sum(1, keepdim=True))
        target = torch.nn.functional.one_hot(y, self.classes).to(out.dtype)
        loss = torch.nn.functional.mse_loss(rate, target)
        if self.gate_active and "a" in aux:
            loss = loss + self.lam * aux["a"].mean()
        return loss, {}

    # ---------------------------------------------------------------- export
    def to_graph(self, input_shape: Optional[Sequence[int]] = None) -> g.Graph:
        """Return the NIR-semantics graph: gate Threshold neurons, pulse IFs, loop Delay (module doc)."""
        shape = tuple(int(s) for s in (input_shape or self.input_shape))
        w = lambda m: m.weight.detach().cpu().double().numpy().copy()  # noqa: E731
        gr = g.Graph()
        gr.nodes["input"] = g.Input(shape=shape)
        gr.nodes["flatten"] = g.Flatten(start_dim=0, end_dim=-1)
        gr.edges.append(("input", "flatten"))
        first = "flatten"
        if self.gate_active:
            gr.nodes["gate"] = g.Threshold(threshold=np.full(self.n_in, 1.5))
            gr.edges.append(("flatten", "gate"))
            first = "gate"
        gr.nodes["fc1"] = g.Linear(weight=w(self.fc1))
        gr.nodes["lif1"] = self.lif1.to_node()
        gr.nodes["fc2"] = g.Linear(weight=w(self.fc2))
        gr.nodes["lif2"] = self.lif2.to_node()
        gr.nodes["output"] = g.Output()
        gr.edges += [(first, "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
        if self.gate_active:
            gr.nodes["ctrl_z"] = g.Linear(weight=w(self.ctrl_z))
            gr.nodes["ctrl"] = self.ctrl.to_node()
            gr.edges += [("lif1", "ctrl_z"), ("ctrl_z", "ctrl")]
            src = "ctrl"
            if self.loop_delay > 1:
                gr.nodes["delay"] = g.Delay(delay=np.array([(self.loop_delay - 1) * self.dt_s]))
                gr.edges.append(("ctrl", "delay"))
                src = "delay"
            gr.nodes["bcast"] = g.Linear(weight=np.ones((self.n_in, 1)))
            gr.edges += [(src, "bcast"), ("bcast", "gate")]
            k = len(self.periods)
            gr.nodes["pulse_drive"] = g.Affine(weight=np.zeros((k, self.n_in)), bias=self.pulse_drive.copy())
            gr.nodes["pulses"] = self.pulses.to_node()
            gr.nodes["ctrl_o"] = g.Linear(weight=w(self.ctrl_o))
            # fed from the gate (zero weights): the loop's only entry is then flatten -> gate, so
            # every DFS closes it at bcast -> gate whatever the edge order after fusion
            gr.edges += [("gate", "pulse_drive"), ("pulse_drive", "pulses"), ("pulses", "ctrl_o"),
                         ("ctrl_o", "ctrl")]
            gr.notes.append(f"SkipSNN gate: a*x = H(x + a - 1.5); loop delay {self.loop_delay} step(s) "
                            f"of dt {self.dt_s} s")
        return gr


def skipsnn_report(model: SkipSNN, x: torch.Tensor, y: Sequence[int]) -> Dict[str, Any]:
    """Return accuracy, paper-style MFLOPs (effective ACs of fc1, fc2 and the controller) and awake ratio."""
    from snnc.models.metrics import ActivityRecorder, accuracy, count_predictions

    with torch.no_grad(), ActivityRecorder(model) as rec:
        out, aux = model.forward_sequence(x)
    st = rec.stats(samples=x.shape[0], steps=x.shape[1]).summary()
    return {"accuracy": accuracy(count_predictions(out), y), "mflops": st["mflops"],
            "synops_per_layer": st["synops_per_layer"], "awake_ratio": aux["metric_awake_ratio"],
            "nasfr": st["nasfr"]}


_RECIPE = dict(data="nmnist-noise", dt_us=1000, n_steps=300, epochs=12, batch_size=32, lr=4e-3, loss="model",
               shift_px=2)


@register("skipsnn", **_RECIPE, kwargs={"hidden": 800})
def skipsnn(**kwargs: Any) -> nn.Module:
    """SkipSNN with the deployable loop delay (3 steps), gate as Threshold neurons; see module doc."""
    return SkipSNN(**kwargs)


@register("skipsnn_plain", **_RECIPE, kwargs={"hidden": 800, "gate": False, "stage": 1})
def skipsnn_plain(**kwargs: Any) -> nn.Module:
    """SkipSNN's main net without the gate (the paper's 'plain SNN' baseline)."""
    kwargs.setdefault("gate", False)
    kwargs.setdefault("stage", 1)
    return SkipSNN(**kwargs)
