"""Speck layer -> core mapping: matching, readable diagnostics for models that do not fit, core map PNG."""
from __future__ import annotations

import numpy as np
import pytest

from snnc.errors import RuleViolationError
from snnc.targets.speck import chip
from snnc.targets.speck.mapping import (assign_cores, draw_core_map, fit_hint, fitting_cores,
                                        layer_memory_need, mapping_violations, max_matching)
from snnc.targets.speck.network import Destination, SpeckLayer, SpeckNetwork


def conv(name, c, f, k, hw, stride=1, padding=0, dests=()):
    return SpeckLayer(name, np.zeros((f, c, k, k), dtype=np.int64), None, 1, -1, (c, hw, hw),
                      stride=stride, padding=padding, destinations=list(dests))


def test_memory_formulas():
    lyr = conv("a", c=3, f=20, k=3, hw=30)  # output 28x28
    need = layer_memory_need(lyr)
    assert need.kernel == 3 * 2 ** (4 + 5)          # ceil(log2 9)=4, ceil(log2 20)=5
    assert need.neuron == 20 * 2 ** (5 + 5)         # ceil(log2 28)=5 twice
    assert need.bias == 0
    assert chip.kernel_memory_entries(1, 1, 1, 1) == 1
    assert chip.neuron_memory_entries(4, 64, 64) == 4 * 4096
    assert fitting_cores(need) == [0, 1, 2, 3, 4]


def test_matching_uses_augmenting_paths():
    # layer 0 could take 0 or 1; layer 1 only 0: a greedy pick of 0 for layer 0 must be undone
    assert max_matching([[0, 1], [0]], n_cores=2) == [1, 0]
    assert max_matching([[0], [0]], n_cores=2)[1] is None


def test_too_large_layer_names_layer_memory_need_limits_and_fix():
    # 128 channels on a 64x64 map: neuron memory 128 * 2**12 = 524288 > 65536 on every core
    net = SpeckNetwork([conv("big_conv", c=2, f=128, k=3, hw=66)], (2, 66, 66), [0])
    with pytest.raises(RuleViolationError) as exc:
        assign_cores(net)
    msg = str(exc.value)
    assert "big_conv" in msg and "[speck.memory.neuron]" in msg
    assert "524288" in msg and "f=128 * 2**(ceil(log2(H=64))=6 + ceil(log2(W=64))=6)" in msg
    assert "65536 (cores 0,1,2)" in msg and "32768 (cores 3,4)" in msg and "16384 (cores 5,6,7,8)" in msg
    assert "output channels 128 -> <= 16" in msg
    assert "stride 1 -> 4" in msg and "sum pooling 4x4" in msg
    v = exc.value.violations[0]
    assert v.node == "big_conv" and v.rule == "speck.memory.neuron"


def test_kernel_memory_diagnostic():
    net = SpeckNetwork([conv("wide", c=256, f=256, k=3, hw=8)], (256, 8, 8), [0])
    _, violations = mapping_violations(net.layers)
    (v,) = violations
    assert v.rule == "speck.memory.kernel" and v.node == "wide"
    assert "1048576" in v.found and "c=256" in v.found
    assert "65536 (cores 5,6)" in v.limit
    assert "output channels 256 -> <= 16" in v.hint and "input channels 256 -> <= 16" in v.hint


def test_no_single_core_holds_both_memories():
    # kernel 64Ki (only cores 5, 6) and neuron 32Ki (only cores 0-4)
    lyr = conv("both", c=64, f=64, k=4, hw=35)  # output 32x32: neuron 64*1024 = 65536 -> cores 0-2
    need = layer_memory_need(lyr)
    assert need.kernel == 64 * 2 ** (4 + 6) and need.neuron == 65536
    _, violations = mapping_violations([lyr])
    (v,) = violations
    assert v.rule == "speck.memory.no_core" and "fits cores [5, 6]" in v.found and "fits cores [0, 1, 2]" in v.found
    assert v.hint.startswith("core ")


def test_cores_exhausted_names_competing_layers():
    # four layers whose neuron memory (> 32Ki) fits only cores 0, 1, 2
    layers = [conv(f"l{i}", c=2, f=16, k=1, hw=64) for i in range(4)]
    _, violations = mapping_violations(layers)
    (v,) = violations
    assert v.rule == "speck.memory.cores_exhausted"
    assert v.node == "l0, l1, l2, l3" and "compete for cores [0, 1, 2]" in v.found
    assert "make 'l0' fit core 3" in v.hint


def test_explicit_layer_to_core_checked():
    net = SpeckNetwork([conv("a", 2, 8, 3, 34, dests=[Destination(1)]), conv("b", 8, 8, 3, 32)], (2, 34, 34), [0])
    assert assign_cores(net, {"a": 7, "b": 2}) == [7, 2]
    assert [l.core for l in net.layers] == [7, 2]
    with pytest.raises(RuleViolationError, match=r"speck.cores.shared"):
        assign_cores(net, {"a": 2, "b": 2})
    big = SpeckNetwork([conv("n", 2, 32, 1, 64)], (2, 64, 64), [0])
    with pytest.raises(RuleViolationError, match=r"speck.memory.neuron.*core 5"):
        assign_cores(big, {"n": 5})


def test_fit_hint_is_sufficient():
    lyr = conv("x", c=8, f=64, k=3, hw=64)
    hint = fit_hint(lyr, "neuron", 16 * 1024)
    f_max = int(hint.split("output channels 64 -> <= ")[1].split(" ")[0])
    assert layer_memory_need(conv("x", 8, f_max, 3, 64)).neuron <= 16 * 1024
    assert layer_memory_need(conv("x", 8, f_max + 1, 3, 64)).neuron > 16 * 1024


def test_draw_core_map_png(tmp_path):
    net = SpeckNetwork([conv("a", 2, 8, 3, 34, dests=[Destination(1, (2, 2))]), conv("b", 8, 4, 3, 16)],
                       (2, 34, 34), [0])
    assign_cores(net)
    path = draw_core_map(net, tmp_path / "map" / "cores.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
