"""snnc benchmark suite: compile times, reference-simulator throughput and memory, peers, scaling.

    .venv/bin/python benchmarks/run_all.py [--quick] [--out benchmarks/results] [--no-lava] [--no-peers]

One command, one process (Lava runs in its own interpreter through snnc's worker). Sections:

* (a) compile time of every zoo model for every target (``snnc.compile``), refusals as
  ``refused: <rule>``;
* (b) reference-simulator throughput (sample-steps/s) and peak memory for Loihi semantics
  (:class:`LoihiSimulator`) and Speck semantics (:func:`snnc.targets.speck.simulator.simulate`)
  on MLPs and CNNs from ~1e3 to ~1e7 synapses (synapse = one (input neuron, output neuron)
  connection with a weight, i.e. conv kernels counted once per output position), batch 1 and 64,
  Bernoulli inputs at 2 % and 30 % density;
* (c) the same networks and inputs on Lava 0.10 ``fixed_pt`` (1 sample, few steps: Lava runs
  ~1e1-1e2 steps/s here; its rate does not depend on the batch since it runs samples one after the
  other; 2 samples per network, each Lava ``run`` call timed by ``lava_timed.py``, the rate taken
  from the second, because Lava's first run includes its compile and process start), sinabs (Speck semantics, bit-exact check) and snnTorch (float ``Leaky`` neurons, same
  topology: a speed peer only); ratios = snnc rate / peer rate, measured in this run;
* (d) dense matmul rate (GFLOP/s) of torch and numpy on this machine, as a ceiling;
* (e) growth of time and memory with synapses, steps and batch (log-log slope fitted);
* headline: 784-512-10 LIF MLP (digit-like rate-coded input) and the zoo's ``nmnist_cnn`` on real
  N-MNIST events at batch 64 vs Lava, with every layer's spikes checked equal to Lava's.

Peak memory: the peak resident-set growth of this process during one run, sampled every 1 ms by a
thread after ``malloc_trim`` (captures numpy and torch allocations alike; large arrays are mmapped
and returned on free). Timings: best of ``--repeat`` runs after a warm-up.
Results: ``<out>/results.json``, ``<out>/results.md`` (the printed tables), ``<out>/scaling.png``.
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

import bench_loihi  # noqa: E402
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
    """Return (best seconds, peak MiB of the first timed run, last result) of ``fn`` after a warm-up."""
    best, peak, out = float("inf"), 0.0, None
    for r in range(repeat):
        if r == 0:
            with PeakRSS() as pk:
                t0 = time.perf_counter()
                out = fn()
                dt = time.perf_counter() - t0
            peak = pk.peak_mib
        else:
            t0 = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t0
        best = min(best, dt)
    return best, peak, out


def timed_many(fns: Sequence[Callable[[], Any]], repeat: int) -> List[Tuple[float, float, Any]]:
    """:func:`timed` for several engines, interleaved round by round (so load bursts hit all alike)."""
    best = [float("inf")] * len(fns)
    peak = [0.0] * len(fns)
    outs: List[Any] = [None] * len(fns)
    for r in range(repeat):
        for k, fn in enumerate(fns):
            if r == 0:
                with PeakRSS() as pk:
                    t0 = time.perf_counter()
                    outs[k] = fn()
                    dt = time.perf_counter() - t0
                peak[k] = pk.peak_mib
            else:
                t0 = time.perf_counter()
                outs[k] = fn()
                dt = time.perf_counter() - t0
            best[k] = min(best[k], dt)
    return list(zip(best, peak, outs))


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


def snntorch_net(topo: Topo) -> Callable[[torch.Tensor], torch.Tensor]:
    """snnTorch float model of the topology (Linear/Conv2d + ``snn.Leaky(beta=0.9)``); returns a runner."""
    import snntorch as snn

    torch.manual_seed(0)
    mods: List[Tuple[torch.nn.Module, Any]] = []
    for (ins, outs, fan), spec in zip(_shapes(topo), topo[1]):
        if spec[0] == "conv":
            _, f, k, s = spec
            syn: torch.nn.Module = torch.nn.Conv2d(ins[0], f, k, stride=s, bias=False)
        else:
            syn = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(fan, spec[1], bias=False))
        mods.append((syn, snn.Leaky(beta=0.9, threshold=1.0)))

    def run(x: torch.Tensor) -> torch.Tensor:
        """Run (B, T, *shape) float input; return the output spikes (B, T, N)."""
        with torch.no_grad():
            mems = [lif.init_leaky() for _, lif in mods]
            outs = []
            for t in range(x.shape[1]):
                h = x[:, t]
                for j, (syn, lif) in enumerate(mods):
                    h, mems[j] = lif(syn(h), mems[j])
                outs.append(h)
            return torch.stack(outs, 1)
    return run


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
def sweep(args: argparse.Namespace, lava_ok: bool) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Run every network x batch x density on snnc (Loihi, Speck), sinabs, snnTorch; Lava jobs at the end."""
    rows: List[Dict[str, Any]] = []
    lava_rows: List[Dict[str, Any]] = []
    topos = {**MLPS, **CNNS}
    lava_jobs: List[Tuple[str, float, LoihiNetwork, np.ndarray]] = []
    for name, topo in topos.items():
        syn = synapses(topo)
        lnet, snet = loihi_net(topo), speck_net(topo)
        lsim = LoihiSimulator(lnet)
        s_shape = snet.input_shape
        try:
            sinabs_cache: Dict[int, Any] = {}
            import sinabs  # noqa: F401
            have_sinabs = not args.no_peers
        except ImportError:
            have_sinabs = False
        tnet = snntorch_net(topo) if (args.have_snntorch and not args.no_peers) else None
        for density in args.densities:
            for batch in args.batches:
                steps = int(min(args.steps, max(args.min_steps, args.work / (batch * syn))))
                x = inputs(topo, batch, steps, density)
                lsim.run(x[:1, :2])
                xs = x.reshape(batch, steps, *s_shape).astype(np.int64)
                speck_simulate(snet, xs[:1, :2])
                engines: List[Callable[[], Any]] = [lambda: lsim.run(x), lambda: speck_simulate(snet, xs)]
                if have_sinabs:
                    if batch not in sinabs_cache:
                        sinabs_cache[batch] = bench_speck.sinabs_layers(snet, [1] * len(snet.layers), batch)
                    sl = sinabs_cache[batch]
                    xf = xs.astype(np.float32)
                    bench_speck.run_sinabs(sl, xf[:, :2])
                    engines.append(lambda: bench_speck.run_sinabs(sl, xf))
                if tnet is not None:
                    xt = torch.from_numpy(x.astype(np.float32))
                    tnet(xt[:1, :2])
                    engines.append(lambda: tnet(xt))
                measured = timed_many(engines, args.repeat)
                (t_l, m_l, res_l), (t_s, m_s, res_s) = measured[:2]
                row = {"network": name, "synapses": syn, "batch": batch, "steps": steps, "density": density,
                       "loihi_rate": batch * steps / t_l, "loihi_peak_mib": m_l,
                       "speck_rate": batch * steps / t_s, "speck_peak_mib": m_s,
                       "loihi_out_rate": float(res_l.spikes[-1].mean())}
                if have_sinabs:
                    t_b, m_b, ref = measured[2]
                    same = all(np.array_equal(bench_speck.pooled(res_s.spikes[ly.name], 1), r.astype(np.int64))
                               for ly, r in zip(snet.layers, ref))
                    row.update(sinabs_rate=batch * steps / t_b, sinabs_peak_mib=m_b, sinabs_equal=same)
                if tnet is not None:
                    t_t, m_t, _ = measured[-1]
                    row.update(snntorch_rate=batch * steps / t_t, snntorch_peak_mib=m_t)
                rows.append(row)
                log.info("%s", {k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()})
            if lava_ok:
                lsteps = int(min(args.lava_steps, max(10, 1e8 / syn)))
                lava_jobs.append((name, density, lnet, inputs(topo, 2, lsteps, density, seed=7)))
    if lava_jobs:
        t0 = time.perf_counter()
        # 2 samples per job: the first run includes Lava's compile and start, the second is timed
        results = run_lava_timed([(n, x) for _, _, n, x in lava_jobs])
        wall = time.perf_counter() - t0
        for (name, density, net, x), (lres, calls) in zip(lava_jobs, results):
            ref = LoihiSimulator(net).run(x)
            equal = all(lres.spikes[i] is None or np.array_equal(ref.spikes[i], lres.spikes[i])
                        for i in range(len(net.layers)))
            t_steps = int(x.shape[1])
            lava_rows.append({"network": name, "density": density, "steps": t_steps, "samples": int(x.shape[0]),
                              "lava_rate": t_steps / float(np.median(calls[1:])),
                              "lava_first_run_s": float(calls[0]), "run_calls_s": calls.tolist(),
                              "equal_to_snnc": equal})
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
def headline(args: argparse.Namespace, lava_ok: bool) -> List[Dict[str, Any]]:
    """784-512-10 MLP and nmnist_cnn on real N-MNIST at batch 64 vs Lava, with a bit-exactness check."""
    import snnc
    from snnc.models import zoo
    from snnc.models.data.events import BinSpec
    from snnc.models.data.nmnist import load_nmnist_small_binned
    from snnc.targets.loihi.target import network_from_payload

    cases = []
    mlp = bench_loihi.build_network()
    cases.append(("784-512-10 LIF MLP, digit-like rate-coded input (bench_loihi)", mlp,
                  bench_loihi.digit_like_inputs(args.head_batch, args.head_steps_mlp)))
    torch.manual_seed(0)
    art = snnc.compile(zoo.build("nmnist_cnn"), "loihi", dt_s=2e-3)
    cnn, _ = network_from_payload(art.payload)
    data = load_nmnist_small_binned(BinSpec(dt_us=2000, n_steps=args.head_steps_cnn, mode="binary"))
    xc = data.dense_batch(list(range(args.head_batch))).astype(bool)
    cases.append((f"zoo nmnist_cnn (seed 0 init), N-MNIST-small events, 2 ms bins", cnn, xc))
    rows = []
    lava_res: List[Any] = [None] * len(cases)
    if lava_ok:
        lava_res = run_lava_timed([(net, x[:1 + args.lava_samples]) for _, net, x in cases])
    for (label, net, x), lpair in zip(cases, lava_res):
        sim = LoihiSimulator(net)
        sim.run(x[:2])
        b, t = x.shape[:2]
        dt, mem, res = timed(lambda: sim.run(x), args.repeat)
        row: Dict[str, Any] = {"case": label, "batch": b, "steps": t, "snnc_rate": b * t / dt, "peak_mib": mem,
                               "input_density": float(x.mean()),
                               "firing": [float(s.mean()) for s in res.spikes]}
        sim1 = LoihiSimulator(net)
        dt1, _, _ = timed(lambda: sim1.run(x[:1]), args.repeat)
        row["snnc_rate_b1"] = t / dt1
        if lpair is not None:
            lres, calls = lpair
            n = args.lava_samples + 1
            row["lava_rate"] = t / float(np.median(calls[1:]))  # steady state: samples after the first
            row["lava_rate_incl_start"] = n * t / float(np.sum(calls))
            row["lava_run_calls_s"] = calls.tolist()
            row["lava_samples"] = n
            mism = [i for i, s in enumerate(lres.spikes) if s is not None and not np.array_equal(res.spikes[i][:n], s)]
            row["bit_exact"] = not mism
            row["bit_exact_detail"] = (f"all spikes of all {sum(s is not None for s in lres.spikes)} neuron layers "
                                       f"equal on {n} samples x {t} steps" if not mism else f"layers {mism} differ")
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
    if res.get("headline"):
        lines += ["## Headline: Loihi reference simulator vs Lava 0.10 fixed_pt (same run)", "",
                  "Lava runs 1+n samples one after another in one process graph; its rate is steps / median "
                  "time of the `run` calls of samples 2..1+n (the first call includes Lava's compile and "
                  "process start); 'incl. start' divides all steps by all run calls.", "",
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
    lines += ["## (d) Dense matmul ceiling", "", "| library dtype | GFLOP/s |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in res["matmul"].items()]
    lines += ["", "## (b)+(c) Throughput (sample-steps/s) and peak memory (MiB, RSS growth)", "",
              "Lava: 2 samples of few steps, rate from the second sample's `run` call (the first includes Lava's "
              "compile/start; batch-independent as Lava runs samples one after another); ratio = snnc / peer in this run. snnTorch: float "
              "Leaky neurons, same topology (speed only). sinabs: same integer Speck network, spikes compared.", "",
              "| network | synapses | batch | steps | density | Loihi sim | MiB | Lava | x Lava | "
              "Speck sim | MiB | sinabs | x sinabs | =sinabs | snnTorch | Loihi x snnTorch | Speck x snnTorch |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    lava = {(r["network"], r["density"]): r for r in res.get("lava", [])}
    for r in res["sweep"]:  # noqa: B007
        lv = lava.get((r["network"], r["density"]))
        lr = lv["lava_rate"] if lv else None
        sr, tr = r.get("sinabs_rate"), r.get("snntorch_rate")
        lines.append(
            f"| {r['network']} | {r['synapses']:.2e} | {r['batch']} | {r['steps']} | {r['density']:.0%} | "
            f"{fmt(r['loihi_rate'])} | {fmt(r['loihi_peak_mib'], 1)} | {fmt(lr, 1)} | "
            f"{fmt(r['loihi_rate'] / lr if lr else None)} | {fmt(r['speck_rate'])} | {fmt(r['speck_peak_mib'], 1)} | "
            f"{fmt(sr)} | {fmt(r['speck_rate'] / sr if sr else None, 2)} | "
            f"{'yes' if r.get('sinabs_equal') else ('-' if sr is None else 'NO')} | {fmt(tr)} | "
            f"{fmt(r['loihi_rate'] / tr if tr else None, 2)} | {fmt(r['speck_rate'] / tr if tr else None, 2)} |")
    if res.get("lava"):
        lines += ["", "Lava jobs (2 samples each, all in one Lava worker):", "",
                  "| network | density | steps | Lava sample-steps/s (2nd sample) | first run incl. start (s) | "
                  "spikes equal to snnc (both samples) |",
                  "|---|---:|---:|---:|---:|---|"]
        lines += [f"| {r['network']} | {r['density']:.0%} | {r['steps']} | {fmt(r['lava_rate'], 1)} | "
                  f"{r['lava_first_run_s']:.2f} | "
                  f"{'yes' if r['equal_to_snnc'] else 'NO'} |" for r in res["lava"]]
    lines += ["", "## (e) Growth (log-log slope: time or memory ~ x^slope)", "",
              "| series | x values | time (s) | peak MiB | slope time | slope memory |", "|---|---|---|---|---:|---:|"]
    for k, g in res["growth"].items():
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
            for key, color in (("loihi", "C0"), ("speck", "C1"), ("sinabs", "C2"), ("snntorch", "C3")):
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
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    q = args.quick
    args.repeat = 1 if q else 3
    args.steps, args.min_steps = (40, 5) if q else (100, 10)
    args.work = 2e9 if q else 6e9  # batch x steps x synapses per run at most (large nets get fewer steps)
    args.batches, args.densities = (1, 64), (0.02, 0.3)
    args.lava_steps = 25 if q else 60
    args.growth_steps = (10, 20, 40) if q else (25, 50, 100, 200)
    args.growth_batches = (1, 8, 64) if q else (1, 4, 16, 64, 256)
    args.growth_batch, args.growth_step = 16 if q else 64, 20 if q else 50
    args.head_batch = 64
    args.head_steps_mlp, args.head_steps_cnn = (50, 100) if q else (100, 150)
    args.lava_samples = 1 if q else 2
    try:
        import snntorch  # noqa: F401

        args.have_snntorch = True
    except Exception as exc:  # snnTorch is optional
        log.warning("snnTorch unavailable (%s): skipped", exc)
        args.have_snntorch = False
    lava_ok = False
    if not args.no_lava:
        from snnc.targets.loihi.lava_backend import lava_status

        lava_ok, why = lava_status()
        if not lava_ok:
            log.warning("Lava unavailable: %s", why)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res: Dict[str, Any] = {"quick": q, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "machine": machine_info(), "memory_method": "peak RSS growth, 1 ms sampling thread, "
                           "after malloc_trim"}
    log.info("machine: %s", res["machine"])
    res["matmul"] = matmul_rates(512 if q else 1024, 2 if q else 3)
    log.info("matmul: %s", res["matmul"])
    res["headline"] = headline(args, lava_ok)
    log.info("headline: %s", res["headline"])
    res["sweep"], res["lava"] = sweep(args, lava_ok)
    res["growth"] = growth(args, res["sweep"])
    res["compile"] = [] if args.skip_compile else compile_times(1 if q else 2)
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
