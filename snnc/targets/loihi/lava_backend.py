"""Run a :class:`LoihiNetwork` on Lava's bit-accurate CPU model, from any Python.

Lava (lava-nc 0.10) needs Python 3.10 and numpy < 2, so it normally lives in its own virtual
environment. This module serialises the network and the input spikes to a temporary ``.npz``,
starts ``lava_worker.py`` with the Lava interpreter in a new process group, waits with a timeout,
and reads the results back. The interpreter is ``$SNNC_LAVA_PYTHON``, else
``<repo>/.lava-venv/bin/python``. When the current interpreter itself can import Lava, the worker
runs in-process instead (``mode="auto"``). Whatever happens, no worker process is left running.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from snnc.errors import BackendUnavailableError, SnncError
from snnc.targets.loihi.network import LoihiNetwork

log = logging.getLogger(__name__)

#: Environment variable naming the Lava interpreter.
ENV_LAVA_PYTHON = "SNNC_LAVA_PYTHON"
WORKER_PATH = Path(__file__).with_name("lava_worker.py")
_EXIT_NO_LAVA = 3


@dataclass
class LavaResult:
    """Lava's outputs for one network: per-layer spikes, optional u and v, and timings (seconds).

    Lists are indexed like ``network.layers``; flatten layers hold None.
    """

    spikes: List[Optional[np.ndarray]]
    u: List[Optional[np.ndarray]]
    v: List[Optional[np.ndarray]]
    build_s: float
    run_s: float
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> np.ndarray:
        """Spikes of the last layer, (B, T, *output_shape)."""
        out = self.spikes[-1]
        assert out is not None
        return out


def repo_root() -> Path:
    """Return the repository root (three levels above ``snnc/targets/loihi``)."""
    return Path(__file__).resolve().parents[3]


def lava_python() -> Path:
    """Return the Lava interpreter path: ``$SNNC_LAVA_PYTHON`` or ``<repo>/.lava-venv/bin/python``."""
    env = os.environ.get(ENV_LAVA_PYTHON)
    return Path(env) if env else repo_root() / ".lava-venv" / "bin" / "python"


def lava_in_process() -> bool:
    """True when the current interpreter can import Lava itself."""
    try:
        return importlib.util.find_spec("lava") is not None and importlib.util.find_spec("lava.proc") is not None
    except (ImportError, ValueError):
        return False


def lava_status() -> Tuple[bool, str]:
    """Return ``(available, reason)`` without running anything heavy (an interpreter check only)."""
    if lava_in_process():
        return True, f"lava importable in this interpreter ({sys.executable})"
    py = lava_python()
    if not py.exists():
        return False, (f"no Lava interpreter at {py} (set ${ENV_LAVA_PYTHON} to a Python with lava-nc 0.10, "
                       "or create .lava-venv)")
    return True, f"Lava interpreter {py}"


def _pack_jobs(jobs: Sequence[Tuple[LoihiNetwork, np.ndarray]], record_states: bool) -> Dict[str, np.ndarray]:
    d: Dict[str, np.ndarray] = {"num_jobs": np.array(len(jobs), dtype=np.int64)}
    for j, (net, spikes) in enumerate(jobs):
        x = np.asarray(spikes)
        if x.ndim != 2 + len(net.input_shape) or tuple(x.shape[2:]) != net.input_shape:
            raise SnncError(f"input spikes of shape {x.shape} do not fit the network input {net.input_shape}")
        d.update({f"job{j}/net/{k}": v for k, v in net.to_dict().items()})
        d[f"job{j}/spikes"] = (x != 0).astype(np.uint8)
        d[f"job{j}/record_states"] = np.array(bool(record_states))
    return d


def _unpack(out: Dict[str, np.ndarray], jobs: Sequence[Tuple[LoihiNetwork, np.ndarray]],
            record_states: bool) -> List[LavaResult]:
    results = []
    for j, (net, _) in enumerate(jobs):
        p = f"job{j}/"
        spikes: List[Optional[np.ndarray]] = []
        us: List[Optional[np.ndarray]] = []
        vs: List[Optional[np.ndarray]] = []
        for i, ly in enumerate(net.layers):
            if not ly.has_neurons:
                spikes.append(None)
                us.append(None)
                vs.append(None)
                continue
            key = f"{p}spikes/{i}"
            if key not in out:
                raise SnncError(f"Lava worker returned no spikes for layer {i} ('{ly.name}')")
            spikes.append(out[key].astype(bool))
            us.append(out.get(f"{p}u/{i}"))  # present when recorded, and always for readout layers
            vs.append(out.get(f"{p}v/{i}"))
        results.append(LavaResult(spikes, us, vs, float(out[p + "build_s"]), float(out[p + "run_s"]),
                                  meta={"lava_version": str(out.get("lava_version", "unknown"))}))
    return results


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """Kill the worker's whole process group (Lava forks helper processes) and reap the leader."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
        log.warning("Lava worker %d did not exit after SIGKILL", proc.pid)


def default_timeout_s(jobs: Sequence[Tuple[LoihiNetwork, np.ndarray]]) -> float:
    """Return a generous timeout: 120 s plus 20 ms per sample-step per layer (Lava runs ~1e3 steps/s)."""
    work = sum(int(np.asarray(x).shape[0]) * int(np.asarray(x).shape[1]) * len(n.layers) for n, x in jobs)
    return 120.0 + 0.02 * work


def run_lava_many(jobs: Sequence[Tuple[LoihiNetwork, np.ndarray]], record_states: bool = False,
                  timeout_s: Optional[float] = None, mode: str = "auto") -> List[LavaResult]:
    """Run several (network, spikes) jobs on Lava's fixed_pt CPU models in one worker; keep their order.

    ``mode``: ``"auto"`` (in-process when Lava imports here, else subprocess), ``"subprocess"`` or
    ``"inprocess"``. Raises :class:`BackendUnavailableError` when Lava cannot be found or imported,
    :class:`SnncError` when the worker fails, crashes or exceeds ``timeout_s``.
    """
    if not jobs:
        return []
    payload = _pack_jobs(jobs, record_states)
    return _unpack(_execute(payload, timeout_s or default_timeout_s(jobs), mode), jobs, record_states)


@dataclass
class NetxResult:
    """What lava-dl netx built from one ``.net`` file and how it ran; lists are indexed by netx block.

    netx makes one block (a synapse process and a LIF) per dense or conv layer of the file and none for
    a flatten; ``readback[k]`` holds the process types and parameters netx gave block ``k``
    (see ``lava_worker.netx_readback``).
    """

    spikes: List[np.ndarray]
    u: List[Optional[np.ndarray]]
    v: List[Optional[np.ndarray]]
    readback: List[Dict[str, Any]]
    build_s: float
    run_s: float


def run_netx_many(jobs: Sequence[Tuple[Union[str, "os.PathLike[str]"], np.ndarray]], record_states: bool = False,
                  timeout_s: Optional[float] = None, mode: str = "auto") -> List[NetxResult]:
    """Load each ``.net`` file with lava-dl netx and run its spikes (B, T, *input_shape) in one Lava worker.

    The worker calls ``lava.lib.dl.netx.hdf5.Network(net_config=path)`` and runs the network netx
    built on ``Loihi2SimCfg(select_tag="fixed_pt")``, samples one after another with every state
    zeroed in between. Errors as :func:`run_lava_many`.
    """
    if not jobs:
        return []
    payload: Dict[str, np.ndarray] = {"num_jobs": np.array(len(jobs), dtype=np.int64)}
    work = 0
    for j, (path, spikes) in enumerate(jobs):
        path = Path(path)
        if not path.is_file():
            raise SnncError(f"netx file not found: {path}")
        x = np.asarray(spikes)
        payload[f"job{j}/netx_path"] = np.array(str(path.resolve()))
        payload[f"job{j}/spikes"] = (x != 0).astype(np.uint8)
        payload[f"job{j}/record_states"] = np.array(bool(record_states))
        work += int(x.shape[0]) * int(x.shape[1]) * 8
    out = _execute(payload, timeout_s or 900.0 + 0.05 * work, mode)  # netx builds big conv nets slowly
    results = []
    for j in range(len(jobs)):
        p = f"job{j}/"
        n = int(out[p + "num_blocks"])
        readback = []
        for k in range(n):
            q = f"{p}netx/{k}/"
            readback.append({key[len(q):]: (str(val) if val.dtype.kind == "U" else val)
                             for key, val in out.items() if key.startswith(q)})
        results.append(NetxResult(spikes=[out[f"{p}spikes/{k}"].astype(bool) for k in range(n)],
                                  u=[out.get(f"{p}u/{k}") for k in range(n)],
                                  v=[out.get(f"{p}v/{k}") for k in range(n)],
                                  readback=readback, build_s=float(out[p + "build_s"]),
                                  run_s=float(out[p + "run_s"])))
    return results


def _execute(payload: Dict[str, np.ndarray], timeout_s: float, mode: str) -> Dict[str, np.ndarray]:
    """Run a worker payload in-process or in the Lava interpreter (see :func:`run_lava_many`)."""
    if mode not in ("auto", "subprocess", "inprocess"):
        raise SnncError(f"unknown Lava run mode '{mode}'", hint="use auto, subprocess or inprocess")
    if mode == "inprocess" or (mode == "auto" and lava_in_process()):
        if not lava_in_process():
            raise BackendUnavailableError("Lava (package 'lava', lava-nc 0.10) is not importable here",
                                          hint="pip install lava-nc==0.10.0 under Python 3.10")
        from snnc.targets.loihi import lava_worker

        try:
            return lava_worker.run_jobs(payload)
        except Exception as exc:
            raise SnncError(f"Lava run failed in-process: {type(exc).__name__}: {exc}") from exc
    return _run_subprocess(payload, timeout_s)


def _run_subprocess(payload: Dict[str, np.ndarray], timeout_s: float) -> Dict[str, np.ndarray]:
    py = lava_python()
    if not py.exists():
        raise BackendUnavailableError(
            f"Lava interpreter not found at {py}",
            hint=f"set ${ENV_LAVA_PYTHON} to a Python 3.10 with lava-nc==0.10.0, or create <repo>/.lava-venv")
    with tempfile.TemporaryDirectory(prefix="snnc-lava-") as tmp:
        inp, outp = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        errp = os.path.join(tmp, "stderr.txt")
        np.savez(inp, **payload)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.pop("PYTHONPATH", None)  # keep this interpreter's packages out of Lava's
        t0 = time.perf_counter()
        with open(errp, "wb") as err:
            proc = subprocess.Popen([str(py), str(WORKER_PATH), inp, outp], stdout=err, stderr=err,
                                    stdin=subprocess.DEVNULL, cwd=tmp, env=env, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise SnncError(f"Lava worker exceeded its timeout of {timeout_s:.0f} s and was killed",
                                hint="pass a larger timeout_s, or fewer samples/steps")
            except BaseException:
                _kill_group(proc)
                raise
            finally:
                _kill_group(proc)  # Lava's helper processes, if any outlived the leader
        log.debug("Lava worker finished in %.2f s with exit code %d", time.perf_counter() - t0, rc)
        with open(errp, "rb") as fh:
            tail = fh.read()[-4000:].decode("utf-8", "replace").strip()
        if rc == _EXIT_NO_LAVA:
            raise BackendUnavailableError(f"{py} cannot import Lava: {tail.splitlines()[-1] if tail else ''}",
                                          hint="pip install lava-nc==0.10.0 into that environment")
        if rc != 0:
            how = f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
            raise SnncError(f"Lava worker {how}:\n{tail}")
        if not os.path.exists(outp):
            raise SnncError(f"Lava worker exited normally but wrote no results:\n{tail}")
        with np.load(outp, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}


def run_lava(net: LoihiNetwork, spikes: np.ndarray, record_states: bool = False,
             timeout_s: Optional[float] = None, mode: str = "auto") -> LavaResult:
    """Run one network on Lava's fixed_pt CPU models; see :func:`run_lava_many`."""
    return run_lava_many([(net, spikes)], record_states=record_states, timeout_s=timeout_s, mode=mode)[0]
