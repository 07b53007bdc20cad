"""snnc benchmark suite: compile times, reference-simulator throughput and memory, peers, scaling.

    .venv/bin/python benchmarks/run_all.py [--quick] [--out benchmarks/results] [--no-lava] [--no-peers]

One command, one process (Lava runs in its own interpreter through snnc's worker). Sections:

* headline: the zoo's trained ``nmnist_cnn`` and ``nmnist_mlp`` checkpoints, compiled for Loihi with
  ``snnc.compile`` at their own dt, on 64 held-out N-MNIST-small recordings read and binned as
  ``Program.evaluate`` does; Loihi reference at batch 64 and batch 1 vs Lava 0.10 ``fixed_pt``, every
  layer's spikes of the timed runs compared with Lava's;
* (a) compile time of every zoo model for every target (``snnc.compile``), refusals as
  ``refused: <rule>``;
* (b) reference-simulator throughput (sample-steps/s) and peak memory for Loihi semantics
  (:class:`LoihiSimulator`), Speck semantics (:func:`snnc.targets.speck.simulator.simulate`) and the
  float ``cpu`` target (``Program.run``, float32) on MLPs and CNNs from ~1e3 to ~1e7 synapses
  (synapse = one (input neuron, output neuron) connection with a weight, i.e. conv kernels counted
  once per output position), batch 1 and 64, Bernoulli inputs at 2 % and 30 % density;
* (c) peers on the same inputs and step counts: Lava 0.10 ``fixed_pt`` (samples 0..n one after
  another, each ``run`` call timed by ``lava_timed.py``; call 0 includes Lava's compile and is not
  used), sinabs (Speck semantics, spikes compared on every timed call) and snnTorch (float32
  ``Leaky``; the ``cpu`` rows compile that very module); ratios = snnc rate / peer rate, this run;
* (d) dense matmul rate (GFLOP/s) of torch and numpy on this machine, and the ceiling derived from it;
* (e) growth of time and memory with synapses, steps and batch (log-log slope fitted);
* evaluate: a user's job, N held-out recordings end to end per target (``bench_evaluate.py``).

Statistic, the same for every peer: steps x batch / the median of ``n`` timed calls (``n`` = 3, 2
with ``--quick``) after one untimed warm-up call; batch 64 runs one 64-sample input ``n`` times, batch
1 runs samples 1..n one per call, Lava runs samples 0..n. Peers run interleaved call by call so
load bursts hit all alike.
Peak memory: the peak resident-set growth of this process during the first timed call, sampled every
1 ms by a thread after ``malloc_trim`` (captures numpy and torch allocations alike).
Results: ``<out>/results.json``, ``<out>/results.md`` (the printed tables), ``<out>/scaling.png``;
``speed_report.py`` renders the README's figures from the JSON.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_evaluate  # noqa: E402
import bench_speck  # noqa: E402
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork  # noqa: E402
from snnc.targets.loihi.simulator import LoihiSimulator  # noqa: E402
from snnc.targets.speck.network import Destination, SpeckLayer, SpeckNetwork  # noqa: E402
from snnc.targets.speck.simulator import simulate as speck_simulate  # noqa: E402

log = logging.getLogger("snnc.bench")

# ----------------------------------------------------------------------------- measurement helpers
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
try:
    _LIBC: Optional[ctypes.CDLL] = ctypes.CDLL("libc.so.6")
except OSError:  # pragma: no cover - not glibc
    _LIBC = None


def rss_bytes() -> int:
    """Return this process's resident set size in bytes (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


class PeakRSS:
    """Context manager: peak RSS growth (MiB) over the entry value, sampled every ``period_s``."""

    def __init__(self, period_s: float = 0.001) -> None:
        self.period_s = period_s
        self.peak_mib = 0.0

    def __enter__(self) -> "PeakRSS":
        if _LIBC is not None:
            _LIBC.malloc_trim(0)
        self._base = rss_bytes()
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_bytes())
            time.sleep(self.period_s)

    def __exit__(self, *exc: Any) -> None:
        self._peak = max(self._peak, rss_bytes())
        self._stop.set()
        self._thread.join()
        self.peak_mib = (self._peak - self._base) / 2 ** 20


def timed(fn: Callable[[], Any], repeat: int) -> Tuple[float, float, Any]:
    """Return (median seconds of ``repeat`` calls, peak MiB of the first, last result) of ``fn``."""
    times, peak, out = [], 0.0, None
    for r in range(repeat):
        if r == 0:
            with PeakRSS() as pk:
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
            peak = pk.peak_mib
        else:
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
    return float(np.median(times)), peak, out


class Engine:
    """One peer in a comparison: an untimed warm-up call, then its timed calls (one per round).

    ``calls[k]`` is the k-th timed call; ``keep(out)`` (optional) returns what to keep of each
    call's output (the rest is freed before the next round).
    """

    def __init__(self, name: str, warm: Callable[[], Any], calls: Sequence[Callable[[], Any]],
                 keep: Optional[Callable[[Any], Any]] = None) -> None:
        self.name, self.warm, self.calls, self.keep = name, warm, list(calls), keep
        self.times: List[float] = []
        self.peak_mib = 0.0
        self.kept: List[Any] = []

    @property
    def median_s(self) -> float:
        """Median seconds of the timed calls."""
        return float(np.median(self.times))


def measure(engines: Sequence[Engine], checks: Sequence[Callable[[Dict[str, Any]], bool]] = ()) -> bool:
    """Time every engine's calls, interleaved round by round (load bursts hit all alike); return the checks' AND.

    Each engine is warmed up once (untimed); round ``k`` then runs every engine's ``calls[k]``; after
    each round every check sees that round's outputs by engine name, so equality is checked on the
    timed runs themselves. Peak memory: the first timed call of each engine.
    """
    for e in engines:
        e.warm()
    ok = True
    for k in range(len(engines[0].calls)):
        outs: Dict[str, Any] = {}
        for e in engines:
            if k == 0:
                with PeakRSS() as pk:
                    t0 = time.perf_counter()
                    outs[e.name] = e.calls[k]()
                    e.times.append(time.perf_counter() - t0)
                e.peak_mib = pk.peak_mib
            else:
                t0 = time.perf_counter()
                outs[e.name] = e.calls[k]()
                e.times.append(time.perf_counter() - t0)
            if e.keep is not None:
                e.kept.append(e.keep(outs[e.name]))
        for check in checks:
            ok = bool(check(outs)) and ok
        del outs
    return ok


def timed_many(fns: Sequence[Callable[[], Any]], repeat: int) -> List[Tuple[float, float, Any]]:
    """(median seconds, peak MiB, last result) per function: :func:`measure` with ``repeat`` calls of the same input."""
    last: List[Any] = [None] * len(fns)

    def keeper(k: int) -> Callable[[Any], None]:
        def keep(out: Any) -> None:
            last[k] = out
        return keep
    engines = [Engine(str(k), fn, [fn] * repeat, keep=keeper(k)) for k, fn in enumerate(fns)]
    measure(engines)
    return [(e.median_s, e.peak_mib, last[k]) for k, e in enumerate(engines)]


def machine_info() -> Dict[str, Any]:
    """Return CPU, load and library versions."""
    try:
        up = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        up = ""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()), "uptime": up,
            "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


# ----------------------------------------------------------------------------- (d) matmul ceiling
def matmul_rates(n: int, repeat: int) -> Dict[str, float]:
    """Return GFLOP/s of an n x n x n matmul in torch and numpy, float32 and float64."""
    out = {}
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        a, b = rng.random((n, n)).astype(dt), rng.random((n, n)).astype(dt)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        for lib, fn in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb)):
            fn()
            best = min(_once(fn) for _ in range(repeat))
            out[f"{lib} {np.dtype(dt).name}"] = 2.0 * n ** 3 / best / 1e9
    return out


def _once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- (a) compile times
def compile_times(repeat: int) -> List[Dict[str, Any]]:
    """Compile every zoo model for every target; return rows (model, target, seconds or refusal)."""
    import snnc
    from snnc.errors import RuleViolationError, SnncError
    from snnc.models import zoo
    from snnc.targets.base import target_names

    rows = []
    for name in zoo.names():
        dt_s = zoo.recipe(name)["dt_us"] * 1e-6
        for tgt in target_names():
            torch.manual_seed(0)
            try:
                model = zoo.build(name)
            except Exception as exc:  # a zoo model that cannot be built is reported, not fatal
                rows.append({"model": name, "target": tgt, "status": f"build failed: {type(exc).__name__}"})
                continue
            best, status = float("inf"), "ok"
            for _ in range(repeat):
                t0 = time.perf_counter()
                try:
                    snnc.compile(model, tgt, dt_s=dt_s)
                except RuleViolationError as exc:
                    status = "refused: " + ", ".join(sorted({v.rule for v in exc.violations}))
                    break
                except SnncError as exc:
                    status = f"refused: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                    break
                except Exception as exc:  # report, keep going
                    status = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                    break
                best = min(best, time.perf_counter() - t0)
            rows.append({"model": name, "target": tgt, "status": status,
                         "compile_s": best if status == "ok" else None})
    return rows


# ----------------------------------------------------------------------------- networks
# A topology: input shape and layers ("conv", out_channels, kernel, stride) / ("dense", out)
Topo = Tuple[Tuple[int, ...], List[Tuple[Any, ...]]]

MLPS: Dict[str, Topo] = {
    "mlp 32-32-10": ((32,), [("dense", 32), ("dense", 10)]),
    "mlp 128-128-10": ((128,), [("dense", 128), ("dense", 10)]),
    "mlp 784-512-10": ((784,), [("dense", 512), ("dense", 10)]),
    "mlp 2312-1024-10": ((2312,), [("dense", 1024), ("dense", 10)]),
    "mlp 4096-2048-10": ((4096,), [("dense", 2048), ("dense", 10)]),
}
CNNS: Dict[str, Topo] = {
    "cnn 1x16x16 c4k3s2": ((1, 16, 16), [("conv", 4, 3, 2), ("dense", 10)]),
    "cnn 2x34x34 c12k5s2-c32k3s2 (nmnist_cnn shape)": ((2, 34, 34), [("conv", 12, 5, 2), ("conv", 32, 3, 2),
                                                                      ("dense", 10)]),
    "cnn 2x64x64 c32k5s2-c64k3s2": ((2, 64, 64), [("conv", 32, 5, 2), ("conv", 64, 3, 2), ("dense", 10)]),
}


def _shapes(topo: Topo) -> List[Tuple[Tuple[int, ...], Tuple[int, ...], int]]:
    """Return (input shape, output shape, fan-in) per layer; dense layers see a flat input."""
    shape = tuple(topo[0])
    out = []
    for spec in topo[1]:
        if spec[0] == "conv":
            _, f, k, s = spec
            oh, ow = (shape[1] - k) // s + 1, (shape[2] - k) // s + 1
            out.append((shape, (f, oh, ow), shape[0] * k * k))
            shape = (f, oh, ow)
        else:
            n_in = int(np.prod(shape))
            out.append((shape, (spec[1],), n_in))
            shape = (spec[1],)
    return out


def synapses(topo: Topo) -> int:
    """Number of (input, output) connections: sum over layers of output neurons x fan-in."""
    return int(sum(int(np.prod(o)) * fan for _, o, fan in _shapes(topo)))


def loihi_net(topo: Topo, seed: int = 0) -> LoihiNetwork:
    """Integer Loihi network of a topology: 8-bit even weights, CUBA LIF decays, fan-in-scaled thresholds."""
    rng = np.random.default_rng(seed)
    layers: List[LoihiLayer] = []
    for i, ((ins, outs, fan), spec) in enumerate(zip(_shapes(topo), topo[1])):
        vth = int(np.clip(40.0 * np.sqrt(fan * 0.1) * 2.0, 4, (1 << 17) - 1))
        if spec[0] == "conv":
            _, f, k, s = spec
            w = np.clip(np.rint(rng.normal(0, 40.0, (f, ins[0], k, k)) / 2) * 2, -256, 254).astype(np.int64)
            layers.append(LoihiLayer.conv(f"c{i}", w, ins, source=len(layers) - 1, stride=s, du=4096, dv=778,
                                          vth_mant=vth))
        else:
            if len(ins) > 1:
                layers.append(LoihiLayer.flatten(f"f{i}", ins, source=len(layers) - 1))
            w = np.clip(np.rint(rng.normal(0, 40.0, (spec[1], fan)) / 2) * 2, -256, 254).astype(np.int64)
            layers.append(LoihiLayer.dense(f"d{i}", w, source=len(layers) - 1, sign_mode="mixed", du=1024, dv=256,
                                           vth_mant=vth))
    return LoihiNetwork(tuple(topo[0]), layers)


def speck_net(topo: Topo, seed: int = 0) -> SpeckNetwork:
    """Integer Speck network of the same topology (dense = conv with a full kernel; MLP input as (N, 1, 1))."""
    rng = np.random.default_rng(seed)
    shape = tuple(topo[0]) if len(topo[0]) == 3 else (int(topo[0][0]), 1, 1)
    layers = []
    n = len(topo[1])
    for i, spec in enumerate(topo[1]):
        if spec[0] == "conv":
            _, f, k, s = spec
            wshape: Tuple[int, ...] = (f, shape[0], k, k)
        else:
            f, s = spec[1], 1
            wshape = (f, *shape)
        fan = int(np.prod(wshape[1:]))
        w = np.clip(np.rint(rng.normal(0, 20.0, wshape)), -128, 127).astype(np.int64)
        thr = int(np.clip(20.0 * np.sqrt(fan * 0.1) * 2.0, 2, 32767))
        lyr = SpeckLayer(f"l{i}", w, np.zeros(f, dtype=np.int64), thr, -thr, shape, stride=s,
                         destinations=[Destination(i + 1, (1, 1))] if i + 1 < n else [])
        layers.append(lyr)
        shape = lyr.neuron_shape
    return SpeckNetwork(layers, tuple(topo[0]) if len(topo[0]) == 3 else (int(topo[0][0]), 1, 1), [0])


#: Weight gain over torch's default init of the float peers' networks (snnTorch, Norse, snnc's cpu target).
SNNTORCH_GAIN = 4.0


def snntorch_model(topo: Topo) -> torch.nn.Module:
    """snnTorch float32 model of the topology: Linear/Conv2d (no bias) + ``snn.Leaky(beta=0.9)`` per layer.

    Reset to zero without delay (the reset NIR stores), so that snnc's ``cpu`` target compiles this
    very module (:func:`cpu_program`); weights: torch's default init, seed 0, times :data:`SNNTORCH_GAIN`.
    """
    import snntorch as snn

    torch.manual_seed(0)
    kw = dict(beta=0.9, threshold=1.0, init_hidden=True, reset_mechanism="zero", reset_delay=False)
    mods: List[torch.nn.Module] = []
    specs = topo[1]
    for i, ((ins, outs, fan), spec) in enumerate(zip(_shapes(topo), specs)):
        if spec[0] == "conv":
            _, f, k, s = spec
            mods.append(torch.nn.Conv2d(ins[0], f, k, stride=s, bias=False))
        else:
            if len(ins) > 1:
                mods.append(torch.nn.Flatten())
            mods.append(torch.nn.Linear(fan, spec[1], bias=False))
        mods.append(snn.Leaky(output=i == len(specs) - 1, **kw))
    model = torch.nn.Sequential(*mods).eval()
    with torch.no_grad():  # torch's default init leaves the readout silent; this gain makes every layer spike
        for m in model:
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(SNNTORCH_GAIN)
    return model


def snntorch_runner(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return a function running (B, T, *shape) float32 input through ``model``; output spikes (B, T, N)."""
    from snntorch import utils as snn_utils

    def run(x: torch.Tensor) -> torch.Tensor:
        """Reset the hidden states, step through time, stack the output spikes."""
        with torch.no_grad():
            snn_utils.reset(model)
            outs = []
            for t in range(x.shape[1]):
                spk, _ = model(x[:, t])
                outs.append(spk)
            return torch.stack(outs, 1)
    return run


def norse_runner(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return a Norse float32 model of ``model`` (the snnTorch module) and run (B, T, *shape) input through it.

    The same synapses with weights x10, each ``snn.Leaky`` replaced by Norse's ``LIFBoxCell`` with
    ``tau_mem_inv = 100`` at ``dt = 1 ms``: ``v' = v + 0.1 (10 W x - v)`` is snnTorch's ``0.9 v + W x``
    up to rounding; threshold 1, reset to 0 (Norse's own step). Output spikes (B, T, N).
    """
    import copy

    from norse.torch import LIFBoxCell, LIFBoxParameters

    par = LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(1.0), v_reset=torch.tensor(0.0))
    stages: List[Tuple[List[torch.nn.Module], torch.nn.Module]] = []
    syn: List[torch.nn.Module] = []
    for m in model:
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            m = copy.deepcopy(m)
            with torch.no_grad():
                m.weight.mul_(10.0)
            syn.append(m)
        elif isinstance(m, torch.nn.Flatten):
            syn.append(m)
        else:  # a snn.Leaky
            stages.append((syn, LIFBoxCell(par, dt=1e-3)))
            syn = []

    def run(x: torch.Tensor) -> torch.Tensor:
        """Step every stage through time with Norse's cells; stack the output spikes."""
        with torch.no_grad():
            states: List[Any] = [None] * len(stages)
            outs = []
            for t in range(x.shape[1]):
                z = x[:, t]
                for i, (mods, cell) in enumerate(stages):
                    for m in mods:
                        z = m(z)
                    z, states[i] = cell(z, states[i])
                outs.append(z)
            return torch.stack(outs, 1)
    return run


def cpu_program(model: torch.nn.Module, topo: Topo) -> Any:
    """Compile the snnTorch module for snnc's ``cpu`` target as a user would (snnTorch's dt, float32)."""
    import snnc

    return snnc.Program(snnc.compile(model, "cpu", input_shape=tuple(topo[0]), dtype="float32"))


def inputs(topo: Topo, batch: int, steps: int, density: float, seed: int = 1) -> np.ndarray:
    """Bernoulli binary input (batch, steps, *input shape)."""
    return np.random.default_rng(seed).random((batch, steps, *topo[0])) < density


# ----------------------------------------------------------------------------- Lava, timed per run call
def run_lava_timed(jobs: Sequence[Tuple[LoihiNetwork, np.ndarray]], timeout_s: float = 1800.0
                   ) -> List[Tuple[Any, np.ndarray]]:
    """Run jobs through snnc's Lava worker under ``lava_timed.py``; return (LavaResult, per-sample run seconds).

    The first sample's time includes Lava's compile and process start; later samples are steady state.
    """
    import signal
    import tempfile

    from snnc.targets.loihi import lava_backend as lb

    payload = lb._pack_jobs(jobs, False)
    with tempfile.TemporaryDirectory(prefix="snnc-bench-lava-") as tmp:
        inp, outp = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(inp, **payload)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        with open(os.path.join(tmp, "log.txt"), "wb") as err:
            proc = subprocess.Popen([str(lb.lava_python()), str(HERE / "lava_timed.py"), inp, outp], stdout=err,
                                    stderr=err, stdin=subprocess.DEVNULL, cwd=tmp, env=env, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout_s)
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # Lava's helper processes, if any are left
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        if rc != 0 or not os.path.exists(outp):
            with open(os.path.join(tmp, "log.txt"), "rb") as fh:
                tail = fh.read()[-3000:].decode("utf-8", "replace")
            raise RuntimeError(f"Lava timing worker failed (exit {rc}):\n{tail}")
        with np.load(outp, allow_pickle=False) as f:
            out = {k: f[k] for k in f.files}
    results = lb._unpack(out, jobs, False)
    return [(r, out[f"job{j}/run_calls_s"]) for j, r in enumerate(results)]


# ----------------------------------------------------------------------------- (b)+(c) sweep
def _same_spikes(a: Sequence[Optional[np.ndarray]], b: Sequence[Optional[np.ndarray]]) -> bool:
    """True when every layer that both hold has equal spikes (None: a layer without neurons)."""
    return all(x is None or y is None or np.array_equal(np.asarray(x) != 0, np.asarray(y) != 0) for x, y in zip(a, b))


def sweep(args: argparse.Namespace, lava_ok: bool) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Run every network x density at batch 64 and 1 on snnc (Loihi, Speck, cpu), sinabs, snnTorch; Lava at the end.

    Per configuration one input ``x`` (64 samples, ``steps`` steps) serves every peer: batch 64 runs
    ``x`` ``n`` times (``n`` = ``--calls``); batch 1 runs samples 1..n one call each, after a warm-up
    on sample 0, which is what Lava runs too (``x[:1 + n]``, its first call includes its compile).
    Every rate is steps x batch / the median of the ``n`` timed calls.
    """
    rows: List[Dict[str, Any]] = []
    lava_rows: List[Dict[str, Any]] = []
    n = args.calls
    lava_jobs: List[Tuple[str, float, LoihiNetwork, np.ndarray, Dict[int, List[np.ndarray]]]] = []
    try:
        import sinabs  # noqa: F401
        have_sinabs = not args.no_peers
    except ImportError:
        have_sinabs = False
    for name, topo in {**MLPS, **CNNS}.items():
        if args.networks and args.networks not in name:
            continue
        syn = synapses(topo)
        lnet, snet = loihi_net(topo), speck_net(topo)
        lsim = LoihiSimulator(lnet)
        sinabs_cache: Dict[int, Any] = {}
        tmodel = snntorch_model(topo) if (args.have_snntorch and not args.no_peers) else None
        trun = snntorch_runner(tmodel) if tmodel is not None else None
        cpu = cpu_program(tmodel, topo) if tmodel is not None else None
        nrun = norse_runner(tmodel) if (tmodel is not None and args.have_norse) else None
        for density in args.densities:
            steps = int(min(args.steps, max(args.min_steps, args.work / (max(args.batches) * syn))))
            x_all = inputs(topo, max(args.batches), steps, density)
            xs_all = x_all.reshape(x_all.shape[0], steps, *snet.input_shape).astype(np.int64)
            xf_all = x_all.astype(np.float32)
            xsf_all = xs_all.astype(np.float32)  # sinabs: the Speck network's (C, H, W) input
            lava_ref: Dict[int, List[np.ndarray]] = {}  # batch -> snnc Loihi spikes of samples 0..n, per layer
            for batch in args.batches:
                if batch == 1:
                    sel = [slice(k, k + 1) for k in range(1, n + 1)]
                    warm_sel = slice(0, 1)
                else:
                    sel = [slice(0, batch)] * n
                    warm_sel = slice(0, batch)

                def calls(fn: Callable[[slice], Any]) -> List[Callable[[], Any]]:
                    return [lambda s=s: fn(s) for s in sel]

                keep_l = (lambda r: [None if s is None else s[:1 + n].copy() for s in r.spikes])
                engines = [Engine("loihi", lambda: lsim.run(x_all[warm_sel]), calls(lambda s: lsim.run(x_all[s])),
                                  keep=keep_l),
                           Engine("speck", lambda: speck_simulate(snet, xs_all[warm_sel]),
                                  calls(lambda s: speck_simulate(snet, xs_all[s])))]
                checks: List[Callable[[Dict[str, Any]], bool]] = []
                if have_sinabs:
                    if batch not in sinabs_cache:
                        sinabs_cache[batch] = bench_speck.sinabs_layers(snet, [1] * len(snet.layers), batch)
                    sl = sinabs_cache[batch]
                    engines.append(Engine("sinabs", lambda: bench_speck.run_sinabs(sl, xsf_all[warm_sel]),
                                          calls(lambda s: bench_speck.run_sinabs(sl, xsf_all[s]))))
                    checks.append(lambda o: all(
                        np.array_equal(bench_speck.pooled(o["speck"].spikes[ly.name], 1), r.astype(np.int64))
                        for ly, r in zip(snet.layers, o["sinabs"])))
                if trun is not None and cpu is not None:
                    xt_all = torch.from_numpy(xf_all)
                    engines.append(Engine("snntorch", lambda: trun(xt_all[warm_sel]),
                                          calls(lambda s: trun(xt_all[s])), keep=lambda o: o.numpy().copy()))
                    engines.append(Engine("cpu", lambda: cpu.run(xf_all[warm_sel]),
                                          calls(lambda s: cpu.run(xf_all[s])), keep=lambda r: r.output.copy()))
                    if nrun is not None:
                        engines.append(Engine("norse", lambda: nrun(xt_all[warm_sel]),
                                              calls(lambda s: nrun(xt_all[s])), keep=lambda o: o.numpy().copy()))
                same = measure(engines, checks)
                by = {e.name: e for e in engines}
                row: Dict[str, Any] = {"network": name, "synapses": syn, "batch": batch, "steps": steps,
                                       "density": density, "timed_calls": n, "statistic": "median",
                                       "input_density": float(x_all.mean())}
                for e in engines:
                    row[f"{e.name}_rate"] = batch * steps / e.median_s
                    row[f"{e.name}_peak_mib"] = e.peak_mib
                    row[f"{e.name}_calls_s"] = e.times
                row["loihi_out_rate"] = float(np.mean(by["loihi"].kept[-1][-1]))  # samples 0..n (batch 64)
                if have_sinabs:
                    row["sinabs_equal"] = same
                if "cpu" in by:
                    a, b = np.stack(by["cpu"].kept), np.stack(by["snntorch"].kept)
                    row["cpu_equal_snntorch"] = float(np.mean(a.reshape(b.shape) == b))
                    row["cpu_out_rate"] = float(a.mean())
                    if "norse" in by:  # the same network up to float rounding (Norse's step scales the input)
                        row["norse_equal_snntorch"] = float(np.mean(np.stack(by["norse"].kept).reshape(b.shape) == b))
                lava_ref[batch] = ([None if z[0] is None else np.concatenate(z, 0) for z in zip(*by["loihi"].kept)]
                                   if batch == 1 else by["loihi"].kept[-1])
                rows.append(row)
                log.info("%s", {k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()
                                if not k.endswith("_calls_s")})
            if lava_ok:
                lava_jobs.append((name, density, lnet, x_all[:1 + n], lava_ref))
    if lava_jobs:
        t0 = time.perf_counter()
        results = run_lava_timed([(net, x) for _, _, net, x, _ in lava_jobs])
        wall = time.perf_counter() - t0
        for (name, density, net, x, ref), (lres, calls_s) in zip(lava_jobs, results):
            # snnc's timed runs: batch 64 holds samples 0..n, batch 1 samples 1..n (one per call)
            eq64 = _same_spikes(ref[max(args.batches)], lres.spikes) if max(args.batches) in ref else None
            eq1 = (_same_spikes(ref[1], [None if s is None else s[1:] for s in lres.spikes]) if 1 in ref else None)
            t_steps = int(x.shape[1])
            lava_rows.append({"network": name, "density": density, "steps": t_steps, "samples": int(x.shape[0]),
                              "timed_calls": len(calls_s) - 1, "statistic": "median",
                              "lava_rate": t_steps / float(np.median(calls_s[1:])),
                              "lava_first_run_s": float(calls_s[0]), "run_calls_s": calls_s.tolist(),
                              "equal_to_snnc_b64": eq64, "equal_to_snnc_b1": eq1,
                              "equal_to_snnc": bool(eq64 is not False and eq1 is not False)})
        log.info("Lava: %d jobs in %.1f s wall (incl. interpreter start)", len(lava_jobs), wall)
    return rows, lava_rows


# ----------------------------------------------------------------------------- (e) growth
def growth(args: argparse.Namespace, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Fit log-log slopes of time and memory against synapses (from the sweep), steps and batch."""
    out: Dict[str, Any] = {}

    def fit(xs: Sequence[float], ys: Sequence[float]) -> float:
        xs_, ys_ = np.log(np.asarray(xs, float)), np.log(np.maximum(np.asarray(ys, float), 1e-9))
        return float(np.polyfit(xs_, ys_, 1)[0]) if len(xs) >= 2 else float("nan")

    for sem in ("loihi", "speck"):
        sel = [r for r in rows if r["network"].startswith("mlp") and r["batch"] == max(args.batches)
               and r["density"] == min(args.densities)]
        if len(sel) >= 2:
            t_per_step = [r["batch"] * r["steps"] / r[f"{sem}_rate"] / r["steps"] for r in sel]
            out[f"{sem} time/step vs synapses (MLPs, batch {max(args.batches)})"] = {
                "x": [r["synapses"] for r in sel], "time_s": t_per_step,
                "peak_mib": [r[f"{sem}_peak_mib"] for r in sel],
                "slope_time": fit([r["synapses"] for r in sel], t_per_step),
                "slope_mem": fit([r["synapses"] for r in sel], [max(r[f"{sem}_peak_mib"], 0.1) for r in sel])}
    topo = MLPS["mlp 784-512-10"]
    lnet, snet = loihi_net(topo), speck_net(topo)
    lsim = LoihiSimulator(lnet)
    for what, values in (("steps", args.growth_steps), ("batch", args.growth_batches)):
        for sem in ("loihi", "speck"):
            ts, ms = [], []
            for v in values:
                b, t = (args.growth_batch, v) if what == "steps" else (v, args.growth_step)
                x = inputs(topo, b, t, 0.02)
                if sem == "loihi":
                    lsim.run(x[:1, :2])
                    dt, mem, _ = timed(lambda: lsim.run(x), args.repeat)
                else:
                    xs = x.reshape(b, t, 784, 1, 1).astype(np.int64)
                    speck_simulate(snet, xs[:1, :2])
                    dt, mem, _ = timed(lambda: speck_simulate(snet, xs), args.repeat)
                ts.append(dt)
                ms.append(mem)
            out[f"{sem} time vs {what} (mlp 784-512-10, 2 % input)"] = {
                "x": list(values), "time_s": ts, "peak_mib": ms, "slope_time": fit(values, ts),
                "slope_mem": fit(values, [max(m, 0.1) for m in ms])}
    return out


# ----------------------------------------------------------------------------- headline vs Lava
#: Trained zoo checkpoints the headline runs (each compiled for Loihi at its own dt, as a user would).
HEADLINE_MODELS = ("nmnist_cnn", "nmnist_mlp")
CKPT_DIR = HERE.parent / "snnc" / "models" / "checkpoints"


def _reader_batch(prog: Any, files: Sequence[str]) -> np.ndarray:
    """Read and bin ``files`` as ``Program.evaluate`` does (the program's bins and steps): (B, T, *shape)."""
    from snnc.runtime.datasets import batch_samples

    reader = prog.reader()
    samples: List[np.ndarray] = []
    for f in files:
        samples += reader.read(f)
    return batch_samples(samples, len(samples))[0]


def headline(args: argparse.Namespace, lava_ok: bool) -> List[Dict[str, Any]]:
    """Trained zoo checkpoints on held-out N-MNIST recordings, Loihi reference vs Lava, batch 64 and 1.

    Same statistic as the sweep: rate = steps x batch / median of ``--calls`` timed calls; Lava runs
    samples 0..n (its call 0 includes its compile), snnc batch 1 runs samples 1..n one per call,
    batch 64 the 64 recordings ``n`` times; every layer's spikes of these timed runs are compared
    with Lava's.
    """
    import snnc
    from snnc.targets.loihi.target import network_from_payload

    n = args.calls
    files, _, _ = bench_evaluate.held_out("nmnist", args.head_batch)  # the checkpoints' held-out split
    cases = []
    for name in HEADLINE_MODELS:
        ckpt = CKPT_DIR / f"{name}.pt"
        prog = snnc.Program(snnc.compile(str(ckpt), "loihi"))
        net, _ = network_from_payload(prog.artifact.payload)
        x = _reader_batch(prog, files).astype(bool)
        tb = prog.manifest["time_base"]
        cases.append((f"zoo {name} (trained checkpoint), {len(files)} held-out N-MNIST-small recordings, "
                      f"{tb['bin_us'] / 1000:g} ms bins x {x.shape[1]} steps", name, net, x))
    lava_res: List[Any] = [None] * len(cases)
    if lava_ok:
        lava_res = run_lava_timed([(net, x[:1 + n]) for _, _, net, x in cases])
    rows = []
    for (label, name, net, x), lpair in zip(cases, lava_res):
        b, t = x.shape[:2]
        sim, sim1 = LoihiSimulator(net), LoihiSimulator(net)
        keep = (lambda r: [None if s is None else s[:1 + n].copy() for s in r.spikes])
        e64 = Engine("b64", lambda: sim.run(x), [lambda: sim.run(x)] * n, keep=keep)
        e1 = Engine("b1", lambda: sim1.run(x[:1]), [lambda k=k: sim1.run(x[k:k + 1]) for k in range(1, n + 1)],
                    keep=keep)
        measure([e64, e1])
        last = e64.kept[-1]
        row: Dict[str, Any] = {"case": label, "checkpoint": f"snnc/models/checkpoints/{name}.pt", "batch": b,
                               "steps": t, "timed_calls": n, "statistic": "median",
                               "snnc_rate": b * t / e64.median_s, "snnc_calls_s": e64.times, "peak_mib": e64.peak_mib,
                               "snnc_rate_b1": t / e1.median_s, "snnc_calls_b1_s": e1.times,
                               "input_density": float(x.mean()),
                               "firing": [None if s is None else float(s.mean()) for s in last]}
        if lpair is not None:
            lres, calls = lpair
            row["lava_rate"] = t / float(np.median(calls[1:]))  # steady state: samples after the first
            row["lava_rate_incl_start"] = (1 + n) * t / float(np.sum(calls))
            row["lava_run_calls_s"] = calls.tolist()
            row["lava_samples"] = 1 + n
            b1 = [None if z[0] is None else np.concatenate(z, 0) for z in zip(*e1.kept)]
            mism = sorted({i for i, s in enumerate(lres.spikes) if s is not None and (
                not np.array_equal(last[i], s) or not np.array_equal(b1[i], s[1:]))})
            layers = sum(s is not None for s in lres.spikes)
            silent = [i for i, s in enumerate(lres.spikes) if s is not None and not s.any()]
            row["bit_exact"] = not mism
            row["silent_layers"] = silent
            row["bit_exact_detail"] = (
                f"all spikes of all {layers} neuron layers equal on the timed runs ({1 + n} samples x {t} steps at "
                f"batch 64, samples 1..{n} at batch 1)" + (f"; layers {silent} silent" if silent else "")
                if not mism else f"layers {mism} differ")
            row["ratio_b64"] = row["snnc_rate"] / row["lava_rate"]
            row["ratio_b1"] = row["snnc_rate_b1"] / row["lava_rate"]
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- report
def fmt(v: Optional[float], nd: int = 0) -> str:
    """Format a number with thousands separators, '-' for None."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:,.{nd}f}"


def report(res: Dict[str, Any]) -> str:
    """Return the markdown report of all sections."""
    m = res["machine"]
    lines = [f"# snnc benchmarks ({'quick' if res['quick'] else 'full'} run, {res['date']})", "",
             f"Machine: {m['cpu']}, {m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), "
             f"numpy {m['numpy']}, Python {m['python']}.", "",
             f"Load: `{m['uptime']}` at start; load average {res['load_end'][0]:.2f} at the end. "
             f"Total wall time {res['wall_s']:.0f} s.", ""]
    n = res.get("calls", "n")
    if res.get("headline"):
        lines += ["## Headline: trained checkpoints, Loihi reference simulator vs Lava 0.10 fixed_pt (same run)", "",
                  f"Every rate: steps x batch / the median of {n} timed calls. Lava runs samples 0..{n} one after "
                  "another in one process graph (its call 0 includes its compile and process start and is not "
                  f"timed); snnc batch 1 runs samples 1..{n}, one per call; batch 64 runs all 64 recordings, {n} "
                  "times. 'incl. start' divides all of Lava's steps by all its run calls.", "",
                  "| case | batch x steps | input density | snnc sample-steps/s (b=64) | snnc (b=1) | "
                  "Lava sample-steps/s | Lava incl. start | x Lava (b=64) | x Lava (b=1) | peak MiB | "
                  "bit-exact vs Lava |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in res["headline"]:
            lines.append(f"| {r['case']} | {r['batch']} x {r['steps']} | {r['input_density']:.3f} | "
                         f"{fmt(r['snnc_rate'])} | {fmt(r['snnc_rate_b1'])} | {fmt(r.get('lava_rate'), 1)} | "
                         f"{fmt(r.get('lava_rate_incl_start'), 1)} | "
                         f"{fmt(r.get('ratio_b64'))} | {fmt(r.get('ratio_b1'), 1)} | {fmt(r['peak_mib'], 1)} | "
                         f"{r.get('bit_exact_detail', 'not checked (no Lava)')} |")
        lines.append("")
    c = res.get("ceiling", {})
    lines += ["## (d) Dense matmul ceiling", "", "| library dtype | GFLOP/s |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in res["matmul"].items()]
    if c:
        lines += ["", f"Ceiling: {c['macs_per_s'] / 1e9:.1f} G multiply-accumulates/s ({c['definition']})."]
    lines += ["", "## (b)+(c) Throughput (sample-steps/s) and peak memory (MiB, RSS growth)", "",
              f"One input per network and density serves every peer: batch 64 runs it {n} times, batch 1 runs "
              f"samples 1..{n} one per call (after a warm-up on sample 0), Lava runs samples 0..{n} (its first call "
              "includes its compile). Every rate: steps x batch / the median of the timed calls; ratio = snnc / "
              "peer in this run; Lava's rate does not depend on the batch (it runs samples one after another). "
              "snnTorch: float32 `Leaky` neurons (reset to zero), the same topology; `cpu`: that very snnTorch "
              "module compiled by `snnc.compile(..., 'cpu', dtype='float32')` at snnTorch's dt, run by "
              "`Program.run`. sinabs: the same integer Speck network, spikes compared on every timed call.", "",
              "| network | synapses | batch | steps | density | Loihi sim | MiB | Lava | x Lava | "
              "Speck sim | MiB | sinabs | x sinabs | =sinabs | snnTorch | cpu | cpu x snnTorch | cpu = snnTorch | "
              "Speck x snnTorch |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    lava = {(r["network"], r["density"]): r for r in res.get("lava", [])}
    for r in res["sweep"]:  # noqa: B007
        lv = lava.get((r["network"], r["density"]))
        lr = lv["lava_rate"] if lv else None
        sr, tr, cr = r.get("sinabs_rate"), r.get("snntorch_rate"), r.get("cpu_rate")
        eq = r.get("cpu_equal_snntorch")
        lines.append(
            f"| {r['network']} | {r['synapses']:.2e} | {r['batch']} | {r['steps']} | {r['density']:.0%} | "
            f"{fmt(r['loihi_rate'])} | {fmt(r['loihi_peak_mib'], 1)} | {fmt(lr, 1)} | "
            f"{fmt(r['loihi_rate'] / lr if lr else None)} | {fmt(r['speck_rate'])} | {fmt(r['speck_peak_mib'], 1)} | "
            f"{fmt(sr)} | {fmt(r['speck_rate'] / sr if sr else None, 2)} | "
            f"{'yes' if r.get('sinabs_equal') else ('-' if sr is None else 'NO')} | {fmt(tr)} | {fmt(cr)} | "
            f"{fmt(cr / tr if (cr and tr) else None, 2)} | {'-' if eq is None else f'{eq:.2%}'} | "
            f"{fmt(r['speck_rate'] / tr if tr else None, 2)} |")
    if res.get("lava"):
        lines += ["", f"Lava jobs ({n} + 1 samples each, all in one Lava worker; the input of the sweep rows):", "",
                  "| network | density | steps | Lava sample-steps/s (median of calls 1..n) | first run incl. start (s) | "
                  "spikes equal to snnc's timed runs (b=64, b=1) |",
                  "|---|---:|---:|---:|---:|---|"]
        lines += [f"| {r['network']} | {r['density']:.0%} | {r['steps']} | {fmt(r['lava_rate'], 1)} | "
                  f"{r['lava_first_run_s']:.2f} | "
                  f"{'yes' if r['equal_to_snnc'] else 'NO'} |" for r in res["lava"]]
    if res.get("evaluate"):
        lines += ["", "## A user's job: evaluate N held-out recordings end to end", "",
                  "`snnc.compile(checkpoint, target)` then `Program.evaluate(files, labels)`: read, bin, run the "
                  "reference simulator, score; one timed pass after a warm-up on two files.", "",
                  "| target | checkpoint | recordings | N | steps | batch | samples/s | accuracy | compile (s) |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['target']} | {r['model']} | {r['data']} | {r['n']} | {r['steps']} | {r['batch_size']} | "
                  f"{fmt(r['samples_per_s'], 1)} | {fmt(100 * r['accuracy'], 1)} % | {r['compile_s']:.2f} |"
                  for r in res["evaluate"]]
    lines += ["", "## (e) Growth (log-log slope: time or memory ~ x^slope)", "",
              "| series | x values | time (s) | peak MiB | slope time | slope memory |", "|---|---|---|---|---:|---:|"]
    for k, g in res.get("growth", {}).items():
        lines.append(f"| {k} | {', '.join(f'{v:g}' for v in g['x'])} | {', '.join(f'{v:.3g}' for v in g['time_s'])} | "
                     f"{', '.join(f'{v:.1f}' for v in g['peak_mib'])} | {g['slope_time']:.2f} | {g['slope_mem']:.2f} |")
    lines += ["", "## (a) Compile time (`snnc.compile`, best of runs)", "", "| model | " +
              " | ".join(sorted({r['target'] for r in res['compile']})) + " |",
              "|---|" + "---|" * len({r['target'] for r in res['compile']})]
    targets = sorted({r["target"] for r in res["compile"]})
    by = {(r["model"], r["target"]): r for r in res["compile"]}
    for model in sorted({r["model"] for r in res["compile"]}):
        cells = []
        for t in targets:
            r = by[(model, t)]
            cells.append(f"{r['compile_s'] * 1e3:.0f} ms" if r["status"] == "ok" else r["status"])
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(res: Dict[str, Any], path: Path) -> None:
    """Save throughput and memory against synapses (batch 64) for every engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not res["sweep"]:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    bmax = max(r["batch"] for r in res["sweep"])
    lava = {(r["network"], r["density"]): r["lava_rate"] for r in res.get("lava", [])}
    for dens, ls in ((min(r["density"] for r in res["sweep"]), "-"), (max(r["density"] for r in res["sweep"]), "--")):
        for kind, mk in (("mlp", "o"), ("cnn", "s")):
            sel = sorted([r for r in res["sweep"] if r["batch"] == bmax and r["density"] == dens
                          and r["network"].startswith(kind)], key=lambda r: r["synapses"])
            if not sel:
                continue
            xs = [r["synapses"] for r in sel]
            for key, color in (("loihi", "C0"), ("speck", "C1"), ("sinabs", "C2"), ("snntorch", "C3"), ("cpu", "C5")):
                ys = [r.get(f"{key}_rate") for r in sel]
                if all(y is not None for y in ys):
                    axes[0].plot(xs, ys, ls, marker=mk, color=color, label=f"{key} {kind} {dens:.0%}")
                    ms = [r.get(f"{key}_peak_mib") for r in sel]
                    axes[1].plot(xs, np.maximum(ms, 0.1), ls, marker=mk, color=color, label=f"{key} {kind} {dens:.0%}")
            ys = [lava.get((r["network"], dens)) for r in sel]
            if all(y is not None for y in ys):
                axes[0].plot(xs, ys, ls, marker=mk, color="C4", label=f"Lava fixed_pt {kind} {dens:.0%}")
    for ax, yl in ((axes[0], f"sample-steps/s (batch {bmax}; Lava: 1 sample)"), (axes[1], "peak RSS growth (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("synapses (connections)")
        ax.set_ylabel(yl)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle(f"snnc reference simulators vs peers ({res['machine']['cpu']}, load {res['machine']['loadavg'][0]:.1f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the suite; print the markdown report; save JSON, markdown and PNG under ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats (~2-3 min)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--no-lava", action="store_true", help="skip Lava (and the bit-exactness check)")
    ap.add_argument("--no-peers", action="store_true", help="skip sinabs and snnTorch")
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--networks", default="", help="only sweep networks whose name contains this text (a partial run)")
    ap.add_argument("--sections", default="headline,sweep,evaluate,growth,compile",
                    help="comma-separated sections to run (a partial run; make bench runs all)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    q = args.quick
    args.repeat = 1 if q else 3  # growth series: median of this many calls
    args.calls = 2 if q else 3  # timed calls per peer (median), the same number for every peer
    args.steps, args.min_steps = (40, 5) if q else (100, 10)
    args.work = 2e9 if q else 6e9  # batch x steps x synapses per run at most (large nets get fewer steps)
    args.batches, args.densities = (1, 64), (0.02, 0.3)
    args.growth_steps = (10, 20, 40) if q else (25, 50, 100, 200)
    args.growth_batches = (1, 8, 64) if q else (1, 4, 16, 64, 256)
    args.growth_batch, args.growth_step = 16 if q else 64, 20 if q else 50
    args.head_batch = 64
    args.eval_n = 32 if q else 128  # held-out recordings per target in the "evaluate" section
    try:
        import snntorch  # noqa: F401

        args.have_snntorch = True
    except Exception as exc:  # snnTorch is optional
        log.warning("snnTorch unavailable (%s): skipped", exc)
        args.have_snntorch = False
    try:
        import norse  # noqa: F401

        args.have_norse = True
    except Exception as exc:  # Norse is optional
        log.warning("Norse unavailable (%s): skipped", exc)
        args.have_norse = False
    lava_ok = False
    if not args.no_lava:
        from snnc.targets.loihi.lava_backend import lava_status

        lava_ok, why = lava_status()
        if not lava_ok:
            log.warning("Lava unavailable: %s", why)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res: Dict[str, Any] = {"quick": q, "calls": args.calls, "statistic": "median", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "machine": machine_info(), "memory_method": "peak RSS growth, 1 ms sampling thread, "
                           "after malloc_trim"}
    log.info("machine: %s", res["machine"])
    res["matmul"] = matmul_rates(512 if q else 1024, 2 if q else 3)
    log.info("matmul: %s", res["matmul"])
    best32 = max(v for k, v in res["matmul"].items() if "float32" in k)
    res["ceiling"] = {"fp32_gflops_best": best32, "fraction": 0.5, "macs_per_s": 0.5 * best32 * 1e9,
                      "definition": "half the best measured fp32 matmul GFLOP/s, as multiply-accumulates per "
                                    "second; a sweep row's dense-equivalent rate is sample-steps/s x synapses"}
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    res["sections"] = sorted(sections)
    res["headline"] = headline(args, lava_ok) if "headline" in sections else []
    log.info("headline: %s", res["headline"])
    res["sweep"], res["lava"] = sweep(args, lava_ok) if "sweep" in sections else ([], [])
    for r in res["sweep"]:
        for k in ("loihi", "speck", "cpu"):
            if r.get(f"{k}_rate"):
                r[f"{k}_ceiling_fraction"] = r[f"{k}_rate"] * r["synapses"] / res["ceiling"]["macs_per_s"]
    res["evaluate"] = bench_evaluate.evaluate_jobs(args.eval_n, 32) if "evaluate" in sections else []
    res["growth"] = growth(args, res["sweep"]) if "growth" in sections else {}
    res["compile"] = [] if (args.skip_compile or "compile" not in sections) else compile_times(1 if q else 2)
    res["load_end"] = list(os.getloadavg())
    res["wall_s"] = time.perf_counter() - t0
    text = report(res)
    print(text)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str))
    plot(res, out / "scaling.png")
    log.info("wrote %s, %s, %s", out / "results.md", out / "results.json", out / "scaling.png")
    bad = [r for r in res["headline"] if r.get("bit_exact") is False] + \
          [r for r in res["lava"] if not r["equal_to_snnc"]] + \
          [r for r in res["sweep"] if r.get("sinabs_equal") is False]
    if bad:
        log.error("bit-exactness FAILED for %d case(s)", len(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
