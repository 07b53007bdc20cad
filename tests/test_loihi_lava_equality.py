"""The reference simulator against Lava's own fixed_pt CPU models (lava-nc 0.10), state for state.

Lava runs in its own interpreter (see snnc.targets.loihi.lava_backend); each Lava run costs
seconds, so one hypothesis example holds a dozen networks that go to Lava in one worker call.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from loihi_helpers import lava_missing_reason, random_conv_net, random_dense_chain, random_spikes
from snnc.targets.loihi.lava_backend import run_lava_many
from snnc.targets.loihi.simulator import V_MAX, simulate


LAVA_MISSING = lava_missing_reason()
pytestmark = pytest.mark.skipif(bool(LAVA_MISSING), reason=LAVA_MISSING or "lava present")

#: One slot per network in the Lava batch; regimes force u wrapping, v saturation, int32 overflow.
SLOTS = ["normal", "normal", "wrap_u", "saturate_v", "int32", "conv", "conv", "normal", "wrap_u",
         "saturate_v", "conv", "normal", "onset", "onset_conv"]
STEPS = 110
BATCH = 2


def _build(slot: str, seed: int, sizes: list) -> tuple:
    rng = np.random.default_rng(seed)
    if slot != "normal":  # big enough that the forced regime surely shows up
        sizes = [max(s, 4) for s in sizes]
    net = random_conv_net(rng) if slot.endswith("conv") else random_dense_chain(rng, sizes, slot.replace("onset", "normal"))
    if slot.startswith("onset"):  # biases switched on later (host-side schedule); first layer at its lag 1
        for i, ly in enumerate(net.layers):
            if ly.has_neurons:
                ly.bias_onset_step = 1 if i == 0 else int(rng.integers(0, 6))
                if not np.any(np.asarray(ly.bias_mant) != 0):
                    ly.bias_mant = np.asarray(int(rng.integers(1, 50)))
    return net, random_spikes(rng, net, BATCH, STEPS)


@settings(max_examples=1, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 2 ** 32 - 1), st.lists(st.integers(1, 40), min_size=2, max_size=4)),
                min_size=len(SLOTS), max_size=len(SLOTS)))
def test_reference_equals_lava_on_random_networks(draws: list) -> None:
    jobs = [_build(slot, seed, sizes) for slot, (seed, sizes) in zip(SLOTS, draws)]
    lava = run_lava_many(jobs, record_states=True)
    seen = set()
    for j, ((net, x), got) in enumerate(zip(jobs, lava)):
        ref = simulate(net, x, record_states=True)
        for i, ly in enumerate(net.layers):
            if not ly.has_neurons:
                continue
            where = f"network {j} ({SLOTS[j]}), layer {i} ({ly.kind}: du={ly.du} dv={ly.dv} vth={ly.vth_mant} " \
                    f"w_exp={ly.weight_exp} bits={ly.num_weight_bits} {ly.sign_mode})"
            np.testing.assert_array_equal(ref.spikes[i], got.spikes[i], err_msg=f"spikes differ in {where}")
            np.testing.assert_array_equal(ref.u[i], got.u[i], err_msg=f"u differs in {where}")
            np.testing.assert_array_equal(ref.v[i], got.v[i], err_msg=f"v differs in {where}")
            umax = int(np.abs(ref.u[i]).max())
            if umax > (1 << 23) // 2:
                seen.add("large u")
            if umax > (1 << 24):
                seen.add("int32 u")
            if int(ref.v[i].max()) == V_MAX or int(ref.v[i].min()) == -V_MAX:
                seen.add("saturated v")
            if ref.spikes[i].any():
                seen.add("spikes")
            if ly.du in (0, 4096) or ly.dv in (0, 4096):
                seen.add("extreme decay")
            if ly.delayed_bias:
                seen.add("bias onset")
    # The comparison must have covered the awkward regimes, or it proves little.
    assert {"large u", "int32 u", "saturated v", "spikes", "extreme decay", "bias onset"} <= seen, seen
