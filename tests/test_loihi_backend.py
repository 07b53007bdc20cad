"""The Lava backend's process handling: missing Lava, worker failures, timeouts, no leftovers."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from snnc.errors import BackendUnavailableError, SnncError
from snnc.targets.loihi import lava_backend
from snnc.targets.loihi.lava_backend import lava_status, run_lava
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork
from loihi_helpers import lava_missing_reason, lava_worker_pids

LAVA_MISSING = lava_missing_reason()


def _net() -> LoihiNetwork:
    w = np.arange(12, dtype=np.int64).reshape(4, 3) - 6
    return LoihiNetwork((3,), [LoihiLayer.dense("d", w, source=-1, du=100, dv=200, vth_mant=3)])


def test_missing_interpreter_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(lava_backend, "lava_in_process", lambda: False)
    monkeypatch.setenv("SNNC_LAVA_PYTHON", str(tmp_path / "no-such-python"))
    ok, why = lava_status()
    assert not ok and "no-such-python" in why
    with pytest.raises(BackendUnavailableError, match="not found"):
        run_lava(_net(), np.zeros((1, 3, 3), dtype=bool))


def test_interpreter_without_lava_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    if lava_backend.lava_in_process():
        pytest.skip("this interpreter has Lava")
    monkeypatch.setenv("SNNC_LAVA_PYTHON", sys.executable)
    with pytest.raises(BackendUnavailableError, match="cannot import Lava") as info:
        run_lava(_net(), np.zeros((1, 3, 3), dtype=bool), mode="subprocess")
    assert info.value.exit_code == 3


@pytest.mark.skipif(bool(LAVA_MISSING), reason=LAVA_MISSING or "lava present")
def test_worker_error_becomes_snnc_error_with_traceback() -> None:
    before = set(lava_worker_pids())  # other sessions' workers are not ours to judge
    payload = lava_backend._pack_jobs([(_net(), np.zeros((1, 3, 3), dtype=bool))], False)
    payload["job0/net/version"] = np.array(99)
    with pytest.raises(SnncError, match="exited with code 1") as info:
        lava_backend._run_subprocess(payload, 120)
    assert "unsupported network dict" in str(info.value)
    assert set(lava_worker_pids()) - before == set()


@pytest.mark.skipif(bool(LAVA_MISSING), reason=LAVA_MISSING or "lava present")
def test_timeout_kills_the_worker_and_its_helpers() -> None:
    x = np.ones((1, 20000, 3), dtype=bool)  # ~20 s of Lava time
    before = set(lava_worker_pids())
    t0 = time.perf_counter()
    with pytest.raises(SnncError, match="timeout"):
        run_lava(_net(), x, timeout_s=4, mode="subprocess")
    assert time.perf_counter() - t0 < 30
    time.sleep(0.5)
    assert set(lava_worker_pids()) - before == set()


@pytest.mark.skipif(bool(LAVA_MISSING), reason=LAVA_MISSING or "lava present")
def test_run_lava_returns_per_layer_arrays() -> None:
    net = LoihiNetwork.chain((3, 4, 4), [LoihiLayer.flatten("f", (3, 4, 4), source=-1),
                                         LoihiLayer.dense("d", np.full((2, 48), 9, dtype=np.int64), source=0,
                                                          vth_mant=5)])
    x = np.random.default_rng(0).random((2, 6, 3, 4, 4)) < 0.5
    res = run_lava(net, x, record_states=True, mode="subprocess")
    assert res.spikes[0] is None and res.u[0] is None
    assert res.spikes[1].shape == (2, 6, 2) and res.u[1].dtype == np.int32
    assert res.build_s >= 0 and res.run_s > 0
