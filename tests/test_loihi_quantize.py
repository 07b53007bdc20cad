"""Loihi quantisation: decays, scale choice, exponents and the report (nothing dropped silently)."""
from __future__ import annotations

import numpy as np
import pytest

from snnc.errors import ValueRangeError
from snnc.targets.loihi.quantize import decay_to_int, quantize_layer


def test_decays_are_rounded_12_bit_fractions() -> None:
    for tau_steps in (1.0, 3.0, 20.0, 1000.0):
        a = np.exp(-1.0 / tau_steps)
        assert decay_to_int(a, "d", "n") == round(4096 * (1 - a))
    assert decay_to_int(1.0, "d", "n") == 0 and decay_to_int(0.0, "d", "n") == 4096
    with pytest.raises(ValueRangeError):
        decay_to_int(np.array([0.9, 0.8]), "d", "n")


def test_weights_fill_8_bits_at_exponent_zero_and_thresholds_scale() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.2, (16, 32))
    q = quantize_layer("l", w, a_v=0.9, g_v=0.5, c_v=0.0, theta=1.0)
    assert q.weight_exp == 0 and q.sign_mode == "mixed" and q.du == 4096 and q.dv == 410
    assert np.abs(q.weights).max() == 254 and np.all(q.weights % 2 == 0)  # mixed: Lava drops the low bit
    k = q.vth_mant * 64
    np.testing.assert_allclose(q.weights, k * 0.5 * w / 64, atol=1.0 + 1e-9)  # round to even: |err| <= 1
    assert q.report.weights_clipped == 0 and q.report.limited_by == "weights at exponent 0"


def test_tiny_weights_use_a_negative_exponent_and_report_zeros() -> None:
    w = np.array([[1e-4, -2e-4, 3e-9]])
    q = quantize_layer("l", w, a_v=0.5, g_v=1.0, c_v=0.0, theta=1.0)
    assert q.report.limited_by == "threshold"
    assert q.weight_exp < 0 and np.abs(q.weights).max() > 64
    assert q.report.weights_rounded_to_zero == 1
    q0 = quantize_layer("l", w, a_v=0.5, g_v=1.0, c_v=0.0, theta=1.0, allow_negative_exp=False)
    assert q0.weight_exp == 0 and q0.report.weight_bits_used < 6


def test_current_bias_is_an_approximation_in_the_report() -> None:
    q = quantize_layer("l", np.ones((2, 3)), a_v=0.9, g_v=0.1, c_v=0.0, theta=1.0, a_i=0.8, g_i=0.2,
                       bias=np.array([0.5, -0.5]))
    assert q.report.bias_approximated and q.report.notes
    assert q.du == round(4096 * 0.2)
    assert q.bias_mant[0] == -q.bias_mant[1] != 0


def test_per_neuron_thresholds_fold_into_the_weights() -> None:
    w = np.array([[0.5, 0.5], [0.5, 0.5]])
    q = quantize_layer("l", w, a_v=0.0, g_v=1.0, c_v=0.0, theta=np.array([1.0, 2.0]))
    assert q.weights[0, 0] == pytest.approx(2 * q.weights[1, 0], abs=2)


def test_non_positive_threshold_is_refused() -> None:
    with pytest.raises(ValueRangeError, match="threshold"):
        quantize_layer("l", np.ones((1, 1)), a_v=0.5, g_v=1.0, c_v=0.0, theta=0.0)
