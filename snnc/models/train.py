"""``snn-train``: train a zoo model on N-MNIST-small, noise-padded N-MNIST or FSDD spikes.

Usage::

    snn-train MODEL --data nmnist|nmnist-noise|fsdd --epochs N --out ckpt.pt
              [--seed S] [--resume] [--batch-size B] [--lr LR] [--stage K] [--init ckpt.pt]

Defaults (data, time step, steps, epochs, batch size, learning rate, loss) come from the model's
recipe (:func:`snnc.models.zoo.recipe`); flags override them. The time step ``dt_us`` and the
number of steps are those of the binned data, and the model is built with ``dt_s = dt_us * 1e-6``:
compile and run it with the same ``dt_s``.

* Data: ``nmnist`` = the 1,000 N-MNIST-small recordings binned (count mode) and cached; the
  validation set is the stratified 20 % split with seed 0 (``NMNISTSmall().split(0.2, 0)``).
  ``nmnist-noise`` = SkipSNN's noise-padded sequences built on the same split (fresh noise and
  offsets every training epoch, fixed noise seed 0 for validation). ``fsdd`` = FSDD through the
  64-channel mel cochlea (10 ms steps), validation = recording indices 5..9; ``fsdd16`` the same
  through a 16-channel cochlea with up to 4 spikes per channel and step (Xylo's 16 inputs).
* Seeds: ``--seed`` fixes initialisation, shuffling and augmentation (the data split has its
  own fixed seed, ``--split-seed``). The same command gives the same checkpoint on the same
  machine and torch build (bitwise only on CPU with the same thread count).
* Checkpoints: after every epoch ``--out`` holds an snnc checkpoint of the model (rebuilt from the
  zoo by ``snnc.compile``/``snn-compile``) and ``<out>.resume`` the optimiser state;
  ``--resume`` continues from it. The ``.resume`` file is deleted when training completes
  (``--keep-resume`` keeps it).
* Devices: CUDA when present (``--device``), else CPU with ``--threads`` threads (default 1:
  on the shared 2-core build machine, under load, two threads made a batch 10-15x slower).
* Distributed: started by ``torchrun --nproc_per_node K -m snnc.models.train ...`` (``WORLD_SIZE``
  set), ``torch.distributed`` is initialised (NCCL on GPUs, gloo on CPU), every rank reads its
  ``DistributedSampler`` shard and gradients are averaged by ``DistributedDataParallel``; rank 0
  writes the checkpoints. The effective batch is ``K x --batch-size``.

Models may customise training through optional methods: ``forward_sequence(x) -> (out, aux)``,
``loss(out, aux, y) -> (loss, logs)`` (recipe ``loss="model"``), ``predict(out, aux)``,
``set_stage(k)`` (multi-stage training, e.g. SkipSNN) and ``on_epoch_start(epoch, epochs)``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from snnc.errors import InputError, SnncError
from snnc.models.training_data import (  # noqa: F401 (re-exported: snnc.models.train.load_data)
    DATASETS, FSDD16_COCHLEA, Split, load_data, random_shift)

log = logging.getLogger(__name__)

RESUME_SUFFIX = ".resume"


def _sequence_runner(model: Any) -> Any:
    """Wrap ``model`` in a module whose forward runs a whole sequence (one call per batch)."""
    from torch import nn

    from snnc.models.neurons import run_sequence

    class SequenceRunner(nn.Module):
        """Runs the wrapped model over time: (B, T, ...) -> (out (B, T, ...), aux dict)."""

        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Tuple[Any, Dict[str, Any]]:
            if hasattr(self.inner, "forward_sequence"):
                return self.inner.forward_sequence(x)
            return run_sequence(self.inner, x), {}

    return SequenceRunner(model)


def _loss(model: Any, kind: str, out: Any, aux: Dict[str, Any], y: Any, count_scale: float) -> Tuple[Any, Dict[str, float]]:
    import torch.nn.functional as F

    if kind == "model":
        return model.loss(out, aux, y)
    if kind == "ce_count":
        counts = out.reshape(out.shape[0], out.shape[1], -1).sum(1)
        return F.cross_entropy(count_scale * counts, y), {}
    raise InputError(f"unknown loss '{kind}'", hint="use ce_count or model")


def _predict(model: Any, out: Any, aux: Dict[str, Any]) -> np.ndarray:
    from snnc.models.metrics import count_predictions

    if hasattr(model, "predict"):
        return np.asarray(model.predict(out, aux))
    return count_predictions(out)


# --------------------------------------------------------------------------- distributed
@dataclass
class Dist:
    """Process-group facts: ``rank``, ``world`` size, ``local_rank`` and whether it is active."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    active: bool = False


def init_distributed(device_kind: str) -> Dist:
    """Initialise ``torch.distributed`` when ``WORLD_SIZE`` is set (torchrun); else a single process."""
    import torch.distributed as td

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and "WORLD_SIZE" not in os.environ:
        return Dist()
    if not td.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        td.init_process_group(backend=backend)
    return Dist(rank=td.get_rank(), world=td.get_world_size(),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")), active=True)


def _all_sum(values: List[float], dist: Dist, device: Any) -> List[float]:
    if not dist.active:
        return values
    import torch
    import torch.distributed as td

    t = torch.tensor(values, dtype=torch.float64, device=device)
    td.all_reduce(t)
    return t.tolist()


# --------------------------------------------------------------------------- evaluation
def evaluate(model: Any, split: Split, batch_size: int = 64, device: Any = "cpu",
             dist: Optional[Dist] = None, measure_activity: bool = True) -> Dict[str, Any]:
    """Return accuracy, loss-free activity metrics (synops, NASFR, ...) of ``model`` on ``split``."""
    import torch

    from snnc.models.metrics import ActivityRecorder, ActivityStats, accuracy

    dist = dist or Dist()
    runner = _sequence_runner(model)
    model.eval()
    positions = np.arange(len(split))[dist.rank::dist.world]
    correct = 0.0
    stats = ActivityStats()
    preds_all: List[np.ndarray] = []
    aux_sums: Dict[str, float] = {}
    with torch.no_grad():
        for a in range(0, positions.size, batch_size):
            pos = positions[a:a + batch_size]
            x, y = split.batch(pos)
            xt = torch.from_numpy(x).to(device)
            if measure_activity:
                with ActivityRecorder(model) as rec:
                    out, aux = runner(xt)
                stats.merge(rec.stats(samples=x.shape[0], steps=x.shape[1]))
            else:
                out, aux = runner(xt)
            p = _predict(model, out, aux)
            preds_all.append(p)
            correct += float((p == y).sum())
            for k, v in aux.items():
                if k.startswith("metric_"):
                    aux_sums[k[7:]] = aux_sums.get(k[7:], 0.0) + float(v) * x.shape[0]
    keys = sorted(aux_sums)
    totals = _all_sum([correct, float(positions.size)] + [aux_sums[k] for k in keys], dist, device)
    res: Dict[str, Any] = {"accuracy": totals[0] / max(totals[1], 1.0), "n": int(totals[1])}
    res.update({k: v / max(totals[1], 1.0) for k, v in zip(keys, totals[2:])})
    if measure_activity and stats.samples:
        s = stats.summary()
        res.update({k: s[k] for k in ("synops", "acs", "macs", "mflops", "nasfr", "activation_sparsity", "spikes")})
    if not dist.active:
        res["accuracy"] = accuracy(np.concatenate(preds_all), split.labels[split.indices]) if preds_all else float("nan")
    return res


def evaluate_checkpoint(path: str, limit_val: Optional[int] = None, compiled: bool = False,
                        batch_size: int = 50, deploy_target: Optional[str] = None) -> Dict[str, Any]:
    """Evaluate an snnc checkpoint on the validation split it was trained with.

    Returns the float model's accuracy and activity metrics (see :func:`evaluate`) and, with
    ``compiled=True``, the accuracy and metrics of the model compiled for the cpu target with
    the checkpoint's ``dt_s`` (run in float64) plus the fraction of validation samples whose
    output spike trains equal the float64 torch model's exactly. With ``deploy_target`` (e.g.
    ``"loihi"``, ``"speck"``) also the accuracy on that target's reference simulator (inputs
    clipped to one spike per bin where the target takes binary spikes, padded with the reported
    ``latency_steps``) and the fraction of predictions equal to the float model's.
    """
    import torch

    from snnc.models.checkpoint import load_torch_file
    from snnc.models.metrics import result_metrics

    obj = torch.load(path, map_location="cpu", weights_only=True)
    extra = obj.get("extra", {})
    data = extra.get("data", {})
    rec = extra.get("recipe", {})
    model, _ = load_torch_file(path)
    _, val, _ = load_data(data.get("data", rec.get("data", "nmnist")), int(data.get("dt_us", rec.get("dt_us"))),
                          int(data.get("n_steps", rec.get("n_steps"))), float(data.get("val_fraction", 0.2)),
                          int(data.get("split_seed", 0)), 0, limit_val)
    out: Dict[str, Any] = {"model": obj.get("model"), "float": evaluate(model, val, batch_size)}
    if compiled:
        from snnc.runtime import api as snnc  # compile, Program: the runtime below this layer

        dt_s = float(extra.get("dt_s", 1e-3))
        prog = snnc.Program(snnc.compile(model, target="cpu", dt_s=dt_s))
        model64 = model.double()
        runner = _sequence_runner(model64)
        preds, equal, mets = [], 0, []
        for a in range(0, len(val), batch_size):
            x, y = val.batch(np.arange(a, min(a + batch_size, len(val))))
            res = prog.run(x.astype(np.float64))
            with torch.no_grad():
                ref = runner(torch.from_numpy(x).double())[0].numpy()
            equal += int(np.all(res.output.reshape(len(y), -1) == ref.reshape(len(y), -1), axis=1).sum())
            preds.append(res.predictions())
            mets.append((len(y), result_metrics(res, y)))
        n = sum(k for k, _ in mets)
        agg = {key: sum(k * m[key] for k, m in mets) / n for key in ("accuracy", "synops", "nasfr", "spikes")}
        agg["mflops"] = agg["synops"] / 1e6
        agg["equal_to_torch_float64"] = equal / n
        out["compiled_cpu"] = agg
    if deploy_target:
        out["deployed"] = _evaluate_deployed(model, val, float(extra.get("dt_s", 1e-3)), deploy_target, batch_size)
    return out


def _evaluate_deployed(model: Any, val: Any, dt_s: float, target: str, batch_size: int) -> Dict[str, Any]:
    """Return accuracy on ``target``'s reference simulator and agreement of predictions with the float model.

    The deployed side is :meth:`snnc.Program.evaluate` (the evaluation ``snn-run`` prints): binary
    inputs where the target takes single spikes, latency padding, no-output samples counted wrong.
    """
    import torch

    from snnc.runtime import api as snnc  # compile, Program: the runtime below this layer
    from snnc.models.metrics import count_predictions

    prog = snnc.Program(snnc.compile(model, target=target, dt_s=dt_s))
    runner = _sequence_runner(model.double())
    xs, ys, pf = [], [], []
    for a in range(0, len(val), batch_size):
        x, y = val.batch(np.arange(a, min(a + batch_size, len(val))))
        xs.append(x)
        ys.append(np.asarray(y))
        with torch.no_grad():
            pf.append(count_predictions(runner(torch.from_numpy(np.asarray(x, dtype=np.float64)))[0].numpy()))
    ev = prog.evaluate(np.concatenate(xs), np.concatenate(ys), batch_size=batch_size)
    same = float(np.mean(ev.predictions == np.concatenate(pf)))
    return {"target": target, "accuracy": ev.accuracy, "predictions_equal_float": same,
            "latency_steps": ev.latency_steps, "n": ev.n, "silent": ev.silent}


# --------------------------------------------------------------------------- training
def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """Return the learning rate of ``epoch`` (0-based) of ``epochs``: cosine from ``base_lr`` towards 0."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))


def build_parser() -> argparse.ArgumentParser:
    """Return the ``snn-train`` argument parser."""
    from snnc.models.zoo import names, recipe

    zoo = "\n".join(f"  {n:24s} data {recipe(n)['data']}, {recipe(n)['dt_us'] / 1000:g} ms x {recipe(n)['n_steps']} steps"
                    for n in names())
    p = argparse.ArgumentParser(
        prog="snn-train", description="Train an snnc zoo model and write an snnc checkpoint.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  snn-train nmnist_cnn --out nmnist_cnn.pt                 # the recipe: data, dt, steps, epochs\n"
               "  snn-train speck_cnn --epochs 3 --limit-train 200 --out quick.pt\n"
               "  torchrun --nproc_per_node 2 -m snnc.models.train nmnist_mlp --out mlp.pt   # data-parallel\n"
               "  snn-compile nmnist_cnn.pt --target loihi                 # then compile: the checkpoint's dt\n\n"
               "zoo models (recipe):\n" + zoo)
    p.add_argument("model", help="zoo model name (listed below)")
    p.add_argument("--data", choices=DATASETS, default=None, help="data set (default: the model's recipe)")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs (total, also when resuming)")
    p.add_argument("--out", required=True, help="checkpoint path (.pt), rewritten after every epoch")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and augmentation")
    p.add_argument("--resume", action="store_true", help="continue from <out>.resume")
    p.add_argument("--keep-resume", action="store_true", help="keep <out>.resume after the last epoch")
    p.add_argument("--batch-size", type=int, default=None, help="samples per batch and process")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (cosine-annealed)")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--dt-us", type=int, default=None, help="time step of the binned data in microseconds")
    p.add_argument("--steps", type=int, default=None, help="time steps per sample")
    p.add_argument("--kwargs", default=None, help="JSON object of model constructor arguments")
    p.add_argument("--count-scale", type=float, default=None, help="logit scale of output spike counts (ce_count)")
    p.add_argument("--shift-px", type=int, default=None, help="random translation augmentation in pixels")
    p.add_argument("--train-window", type=int, default=None, help="train on random windows of this many steps")
    p.add_argument("--stage", type=int, default=None, help="training stage of multi-stage models (SkipSNN: 1, 2)")
    p.add_argument("--init", default=None, help="initialise weights from this snnc checkpoint")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--limit-val", type=int, default=None, help="use only the first N validation samples")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process (default 1: on a shared 2-core machine 2 threads ran 10x slower)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--finetune-for", choices=("loihi", "speck"), default=None,
                   help="fine-tune through this chip's integer arithmetic (snnc.models.finetune), starting from "
                        "--init (default: the shipped checkpoint of MODEL); writes MODEL_ft_TARGET")
    p.add_argument("-O", "--option", action="append", type=_target_option, default=[], metavar="KEY=VALUE",
                   help="with --finetune-for: a target option, as snn-compile -O (e.g. spike_mode=single)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _target_option(text: str) -> Tuple[str, Any]:
    from snnc.targets.base import parse_option

    return parse_option(text)


def _resolve(args: argparse.Namespace) -> Dict[str, Any]:
    from snnc.models.zoo import recipe

    r = recipe(args.model)
    for key, attr in (("data", "data"), ("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                      ("weight_decay", "weight_decay"), ("dt_us", "dt_us"), ("n_steps", "steps"),
                      ("count_scale", "count_scale"), ("shift_px", "shift_px"), ("train_window", "train_window")):
        v = getattr(args, attr)
        if v is not None:
            r[key] = v
    if args.kwargs:
        try:
            kw = json.loads(args.kwargs)
        except json.JSONDecodeError as e:
            raise InputError(f"--kwargs is not JSON ({e})") from None
        if not isinstance(kw, dict):
            raise InputError("--kwargs must be a JSON object")
        r["kwargs"].update(kw)
    r["kwargs"]["dt_s"] = float(r["dt_us"]) * 1e-6
    return r


def _build_model(name: str, kwargs: Dict[str, Any]) -> Any:
    import inspect

    from snnc.models.zoo import _ZOO, build, names

    names()
    fn = _ZOO.get(name)
    kw = dict(kwargs)
    if fn is not None and "dt_s" in kw:
        params = inspect.signature(fn).parameters
        if "dt_s" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            kw.pop("dt_s")
    return build(name, **kw), kw


def _load_weights(model: Any, path: str) -> Dict[str, Any]:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as e:
        raise InputError(f"cannot read checkpoint ({e})", file=path) from None
    state = obj.get("state_dict", obj.get("model")) if isinstance(obj, dict) else None
    if state is None:
        raise InputError("not an snnc checkpoint or resume file", file=path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise InputError(f"checkpoint has weights the model lacks: {unexpected[:5]}", file=path)
    if missing:
        log.info("initialised from %s; %d tensors keep their fresh values: %s", path, len(missing), missing[:5])
    return obj


def train(args: argparse.Namespace) -> Dict[str, Any]:
    """Train as described by parsed ``snn-train`` arguments; return the final metrics."""
    import torch
    from torch.utils.data import DistributedSampler
    from tqdm.auto import tqdm

    from snnc.files import atomic_target, check_output_path
    from snnc.models.checkpoint import save_checkpoint

    check_output_path(args.out, "checkpoint")  # before any training: a bad --out fails now, not after an hour
    torch.set_num_threads(max(1, int(args.threads)))
    if args.device == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        kind = args.device
    dist = init_distributed(kind)
    device = torch.device(f"cuda:{dist.local_rank}" if kind == "cuda" else "cpu")
    if kind == "cuda":
        torch.cuda.set_device(device)
    rec = _resolve(args)
    if rec["data"] not in DATASETS:
        raise InputError(f"unknown data set '{rec['data']}'", hint=f"use one of {', '.join(DATASETS)}")
    train_split, val_split, data_desc = load_data(
        rec["data"], rec["dt_us"], rec["n_steps"], args.val_fraction, args.split_seed,
        args.limit_train, args.limit_val)

    torch.manual_seed(args.seed)
    model, kwargs = _build_model(args.model, rec["kwargs"])
    if tuple(getattr(model, "input_shape", train_split.input_shape)) != tuple(train_split.input_shape):
        raise InputError(f"model '{args.model}' takes input {tuple(model.input_shape)}, data '{rec['data']}' "
                         f"gives {train_split.input_shape}", hint="pick the matching --data")
    init_facts: Dict[str, Any] = {}
    if args.init:
        init_extra = _load_weights(model, args.init).get("extra", {})
        # the earlier stage's training travels with the checkpoint (its curve, time and command)
        init_facts = {"init": args.init, "init_command": init_extra.get("command"),
                      "init_history": init_extra.get("history", []),
                      "init_train_seconds": init_extra.get("train_seconds")}
    stage = args.stage
    if stage is not None:
        if not hasattr(model, "set_stage"):
            raise InputError(f"model '{args.model}' has no training stages", hint="drop --stage")
        model.set_stage(int(stage))
    model.to(device)

    resume_path = args.out + RESUME_SUFFIX
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=rec["lr"], weight_decay=rec["weight_decay"])
    start_epoch, history, train_seconds = 0, [], 0.0
    if args.resume:
        if os.path.exists(resume_path):
            state = torch.load(resume_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            start_epoch, history = int(state["epoch"]), list(state["history"])
            train_seconds = float(state.get("train_seconds", 0.0))
            torch.set_rng_state(state["torch_rng"])
            if dist.rank == 0:
                log.info("resumed from %s at epoch %d", resume_path, start_epoch)
        elif os.path.exists(args.out):
            obj = _load_weights(model, args.out)
            start_epoch = int(obj.get("extra", {}).get("epoch", 0))
            history = list(obj.get("extra", {}).get("history", []))
            log.warning("no %s: continuing from the weights in %s (epoch %d) with a fresh optimiser",
                        resume_path, args.out, start_epoch)
        else:
            raise InputError("nothing to resume from", file=resume_path, hint="run without --resume first")

    runner = _sequence_runner(model)
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        runner = DDP(runner, device_ids=[device.index] if kind == "cuda" else None)
    sampler = DistributedSampler(range(len(train_split)), num_replicas=dist.world, rank=dist.rank,
                                 shuffle=True, seed=args.seed, drop_last=False)
    command = "snn-train " + " ".join(shlex.quote(a) for a in (args.argv or []))
    metrics: Dict[str, Any] = history[-1] if history else {}
    for epoch in range(start_epoch, int(rec["epochs"])):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        order = np.asarray(list(iter(sampler)), dtype=np.int64)
        aug_rng = np.random.default_rng([args.seed, epoch, dist.rank])
        for group in opt.param_groups:  # cosine schedule over the (possibly extended) total
            group["lr"] = cosine_lr(float(rec["lr"]), epoch, int(rec["epochs"]))
        if hasattr(model, "on_epoch_start"):
            model.on_epoch_start(epoch, int(rec["epochs"]))
        model.train()
        n_batches = math.ceil(order.size / rec["batch_size"])
        bar = tqdm(range(n_batches), disable=args.quiet or dist.rank != 0, desc=f"epoch {epoch + 1}/{rec['epochs']}",
                   unit="batch", leave=False)
        tot_loss = tot_correct = tot_n = 0.0
        for b in bar:
            pos = order[b * rec["batch_size"]:(b + 1) * rec["batch_size"]]
            x, y = train_split.batch(pos, epoch)
            xt = torch.from_numpy(x).to(device)
            yt = torch.from_numpy(y).to(device)
            xt = random_shift(xt, int(rec.get("shift_px", 0)), aug_rng)
            win = int(rec.get("train_window", 0))
            if 0 < win < xt.shape[1]:
                t0w = int(aug_rng.integers(0, xt.shape[1] - win + 1))
                xt = xt[:, t0w:t0w + win]
            out, aux = runner(xt)
            loss, logs = _loss(model, rec["loss"], out, aux, yt, float(rec["count_scale"]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            p = _predict(model, out.detach(), aux)
            tot_loss += float(loss.detach()) * len(pos)
            tot_correct += float((p == y).sum())
            tot_n += len(pos)
            bar.set_postfix(loss=f"{tot_loss / tot_n:.3f}", acc=f"{tot_correct / tot_n:.3f}")
        tot_loss, tot_correct, tot_n = _all_sum([tot_loss, tot_correct, tot_n], dist, device)
        ev = evaluate(model, val_split, batch_size=max(rec["batch_size"], 64), device=device, dist=dist)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        metrics = {"epoch": epoch + 1, "train_loss": tot_loss / max(tot_n, 1), "train_accuracy": tot_correct / max(tot_n, 1),
                   "val_accuracy": ev["accuracy"], "seconds": seconds,
                   **{f"val_{k}": v for k, v in ev.items() if k not in ("accuracy", "n")}}
        history.append(metrics)
        if dist.rank == 0:
            log.info("epoch %d/%d: loss %.4f train acc %.4f val acc %.4f (%.1f s)", epoch + 1, rec["epochs"],
                     metrics["train_loss"], metrics["train_accuracy"], metrics["val_accuracy"], seconds)
            extra = {"epoch": epoch + 1, "epochs": int(rec["epochs"]), "stage": stage, "seed": args.seed,
                     "dt_s": float(rec["dt_us"]) * 1e-6, "n_steps": int(rec["n_steps"]), "data": data_desc,
                     "recipe": {k: v for k, v in rec.items() if k != "kwargs"}, "history": history,
                     "val_accuracy": ev["accuracy"], "train_seconds": train_seconds, "world_size": dist.world,
                     "command": command, "torch": str(torch.__version__), "device": str(device), **init_facts}
            model_cpu_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            save_checkpoint(args.out, args.model, kwargs, model, extra)
            with atomic_target(resume_path, "resume file") as tmp:
                torch.save({"model": model_cpu_state, "optimizer": opt.state_dict(),
                            "epoch": epoch + 1, "history": history, "train_seconds": train_seconds,
                            "torch_rng": torch.get_rng_state()}, tmp)
    if dist.rank == 0 and not args.keep_resume and os.path.exists(resume_path):
        os.remove(resume_path)
    if dist.active:
        import torch.distributed as td

        td.barrier()
        td.destroy_process_group()
    return metrics


#: What ``snn-train MODEL --finetune-for TARGET`` runs: :func:`snnc.models.finetune.train_from_args`, set when the
#: zoo loads its plugins (fine-tuning is one; it uses this module's loss and evaluation, so this module does not
#: import it).
finetune_runner: Optional[Callable[[argparse.Namespace], Dict[str, Any]]] = None


def _finetune(args: argparse.Namespace) -> Dict[str, Any]:
    import snnc.models.train as this  # not this file's globals: under ``python -m`` they are __main__'s
    from snnc.models.zoo import names

    names()  # loads the zoo's plugins: snnc.models.finetune sets finetune_runner
    if this.finetune_runner is None:
        raise SnncError("fine-tuning is not available (snnc.models.finetune was not loaded by the zoo)")
    return this.finetune_runner(args)


def _is_finetune_variant(name: str) -> bool:
    from snnc.models.zoo import recipe

    try:
        return bool(recipe(name).get("finetune"))
    except SnncError:
        return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point of ``snn-train``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.finetune_for or _is_finetune_variant(args.model):
            metrics = _finetune(args)
        else:
            metrics = train(args)
    except SnncError as e:
        print(f"snn-train: error: {e.format()}", file=sys.stderr)
        return e.exit_code
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
