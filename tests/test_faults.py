"""Faults: concurrent runs (threads, spawned processes) equal serial runs; interrupted artifact writes
leave nothing behind; a Lava worker killed mid-run gives a clear SnncError and no leftover process."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import List, Tuple

import numpy as np
import pytest

import snnc.files as files_mod
import snnc.runtime.api as api
from loihi_helpers import lava_missing_reason, lava_worker_pids
from snnc.artifact import Artifact
from snnc.errors import SnncError
from snnc.targets.loihi.lava_backend import run_lava
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork
from test_loihi_target import convnet, mlp

DT_S = 1e-3


def _inputs(seed: int, shape: Tuple[int, ...], steps: int = 12, batch: int = 2) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, steps) + shape) < 0.3).astype(np.float64)


def _programs() -> List[Tuple[str, api.Program]]:
    return [("cpu-mlp", api.Program(api.compile(mlp(), target="cpu", dt_s=DT_S))),
            ("loihi-mlp", api.Program(api.compile(mlp(), target="loihi", dt_s=DT_S, netx=False))),
            ("loihi-conv", api.Program(api.compile(convnet(), target="loihi", dt_s=DT_S, netx=False)))]


def _run_bytes(job: Tuple[bytes, np.ndarray]) -> np.ndarray:
    """Run a serialised artifact on inputs in a (spawned) worker process; return the output."""
    data, x = job
    return np.asarray(api.Program(Artifact.from_bytes(data)).run(x).output)


def test_concurrent_runs_equal_serial_runs() -> None:
    progs = _programs()
    jobs = [(name, prog, _inputs(k, prog.input_shape)) for k, (name, prog) in enumerate(progs * 4)]
    serial = [np.asarray(prog.run(x).output) for _, prog, x in jobs]
    assert all(np.asarray(o).sum() > 0 for o in serial[:len(progs)])  # outputs have spikes to disagree on
    barrier = threading.Barrier(8)

    def go(i: int) -> List[np.ndarray]:
        barrier.wait()  # start all threads together
        return [np.asarray(jobs[j][1].run(jobs[j][2]).output) for j in range(i, len(jobs), 8)]

    with ThreadPoolExecutor(8) as pool:
        per_thread = list(pool.map(go, range(8)))
    for i, outs in enumerate(per_thread):
        for j, out in zip(range(i, len(jobs), 8), outs):
            np.testing.assert_array_equal(out, serial[j], err_msg=jobs[j][0])
    # spawned processes get the artifact bytes and must give the same outputs
    pjobs = [(prog.artifact.to_bytes(), x) for _, prog, x in jobs[:len(progs)]]
    with ProcessPoolExecutor(3, mp_context=mp.get_context("spawn")) as pool:
        outs = list(pool.map(_run_bytes, pjobs))
    for j, out in enumerate(outs):
        np.testing.assert_array_equal(out, serial[j], err_msg=jobs[j][0])
    # forked processes too (Linux's default start method), after this process has run every target:
    # a simulator may not leave state behind (e.g. an OpenMP pool) that a forked child cannot use
    if "fork" in mp.get_all_start_methods():
        with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
            outs = list(pool.map(_run_bytes, pjobs, timeout=300))
        for j, out in enumerate(outs):
            np.testing.assert_array_equal(out, serial[j], err_msg=f"forked: {jobs[j][0]}")


# ----------------------------------------------------------------------------- interrupted writes
def _leftovers(d: str) -> List[str]:
    return [f for f in os.listdir(d) if f.startswith(".snnc-") and f.endswith(".part")]


@pytest.fixture(scope="module")
def small_artifact() -> Artifact:
    return api.compile(mlp(), target="cpu", dt_s=DT_S)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("where", ["replace", "write", "fsync-interrupt", "write-interrupt"])
@pytest.mark.parametrize("existing", [False, True])
def test_failed_artifact_write_leaves_no_partial_file(tmp_path, monkeypatch, small_artifact, where, existing) -> None:
    target = tmp_path / "model.snnc"
    old = b"previous artifact bytes"
    if existing:
        target.write_bytes(old)
    exc = KeyboardInterrupt if "interrupt" in where else _Boom
    if where == "replace":
        def bad_replace(src, dst):  # noqa: ANN001
            raise _Boom("disk full")
        monkeypatch.setattr(files_mod.os, "replace", bad_replace)
    elif where.startswith("fsync"):
        def bad_fsync(fd):  # noqa: ANN001
            raise KeyboardInterrupt
        monkeypatch.setattr(files_mod.os, "fsync", bad_fsync)
    else:
        real_open = open

        def half_open(path, mode="r", *a, **kw):  # noqa: ANN001
            fh = real_open(path, mode, *a, **kw)
            real_write = fh.write

            class Half:
                def __enter__(self):  # noqa: ANN204
                    return self

                def __exit__(self, *e):  # noqa: ANN002, ANN204
                    fh.close()

                def write(self, data):  # noqa: ANN001, ANN202
                    real_write(data[: len(data) // 2])
                    fh.flush()
                    raise exc()

                def __getattr__(self, name):  # noqa: ANN001, ANN204
                    return getattr(fh, name)
            return Half()
        monkeypatch.setattr(files_mod, "open", half_open, raising=False)  # the writer's only open()
    with pytest.raises(exc):
        small_artifact.save(str(target))
    if existing:
        assert target.read_bytes() == old
    else:
        assert not target.exists()
    assert _leftovers(str(tmp_path)) == []
    monkeypatch.undo()
    small_artifact.save(str(target))  # and a normal save afterwards works and reloads
    assert Artifact.load(str(target)).to_bytes() == small_artifact.to_bytes()
    assert _leftovers(str(tmp_path)) == []


def test_failed_nir_export_leaves_no_partial_file(tmp_path, monkeypatch, small_artifact) -> None:
    import nir

    from snnc.runtime.export import write_artifact_nir

    def bad_write(path, graph, *a, **kw):  # noqa: ANN001
        with open(path, "wb") as fh:
            fh.write(b"\x89HDF half")
        raise KeyboardInterrupt
    monkeypatch.setattr(nir, "write", bad_write)
    with pytest.raises(KeyboardInterrupt):
        write_artifact_nir(small_artifact, str(tmp_path / "x.nir"))
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- killed Lava worker
LAVA_MISSING = lava_missing_reason()


@pytest.mark.skipif(bool(LAVA_MISSING), reason=LAVA_MISSING or "lava present")
def test_killed_lava_worker_gives_snnc_error_and_no_leftovers() -> None:
    w = np.arange(12, dtype=np.int64).reshape(4, 3) - 6
    net = LoihiNetwork((3,), [LoihiLayer.dense("d", w, source=-1, du=100, dv=200, vth_mant=3)])
    x = np.random.default_rng(0).random((2, 2000, 3)) < 0.5
    before = set(lava_worker_pids())
    box: dict = {}

    def call() -> None:
        try:
            run_lava(net, x, mode="subprocess", timeout_s=120)
            box["result"] = "finished"
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            box["error"] = e

    th = threading.Thread(target=call)
    th.start()
    deadline = time.monotonic() + 30
    ours: List[int] = []
    while time.monotonic() < deadline and not ours:
        ours = sorted(set(lava_worker_pids()) - before)
        time.sleep(0.05)
    assert ours, "the Lava worker never started"
    time.sleep(1.0)  # let it get going (importing Lava / building)
    killed = False
    for pid in ours:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
            killed = True
            break
        except ProcessLookupError:
            continue
    th.join(60)
    assert not th.is_alive()
    assert killed and "error" in box, box
    err = box["error"]
    assert isinstance(err, SnncError) and "killed by signal 9" in str(err), repr(err)
    time.sleep(0.2)
    assert set(lava_worker_pids()) - before == set()
