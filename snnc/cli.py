"""Command-line tools ``snn-compile`` and ``snn-run``.

Exit codes: 0 ok; 2 bad input or rule violations; 3 target, backend or device unavailable;
130 interrupted. Errors are printed as one short message, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from snnc.errors import EXIT_BAD_INPUT, EXIT_OK, SnncError


def _guard(prog: str, fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format=f"{prog}: %(levelname)s: %(message)s")
    try:
        return fn(args)
    except SnncError as e:
        print(f"{prog}: error: {e.format()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _shape(text: str) -> List[int]:
    try:
        return [int(x) for x in text.replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad shape '{text}', expected e.g. 2,34,34") from None


def _option(text: str) -> tuple:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"bad option '{text}', expected KEY=VALUE")
    k, v = text.split("=", 1)
    try:
        return k, json.loads(v)
    except ValueError:
        return k, v


def compile_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``snn-compile``."""
    from snnc.targets.base import target_names

    p = argparse.ArgumentParser(prog="snn-compile", description="Compile a spiking network (.pt or .nir) for a target.",
                                epilog="exit codes: 0 ok, 2 bad input or rule violations, 3 target/device unavailable")
    p.add_argument("model", help="model file: .nir (any framework) or .pt (snnc checkpoint or torch.save'd module)")
    p.add_argument("--target", default="cpu", help=f"target name ({', '.join(target_names())})")
    p.add_argument("-o", "--output", help="artifact path (default: MODEL stem + .<target>.snnc)")
    from snnc.compiler.frontends.conventions import framework_names

    p.add_argument("--dt", type=float, default=None,
                   help="time step in seconds (default: the --framework convention, else 1e-3)")
    p.add_argument("--method", default=None, choices=["exact", "euler"],
                   help="integration of NIR's ODEs: exact exponential or forward Euler "
                        "(default: the --framework convention, else exact)")
    p.add_argument("--framework", choices=list(framework_names()),
                   help="the framework that exported the NIR file: undo its exporter's quirks and use its "
                        "dt convention (see snnc/compiler/frontends/conventions.py)")
    p.add_argument("--input-shape", type=_shape, help="input shape without batch, e.g. 2,34,34 (torch models)")
    p.add_argument("--check", action="store_true", help="only check the rules; write no artifact")
    p.add_argument("--report", help="write the compile report (JSON) here")
    p.add_argument("--dump-ir", metavar="DIR", help="write the graph after each pass into DIR")
    p.add_argument("-O", "--option", action="append", type=_option, default=[], metavar="KEY=VALUE",
                   help="target-specific option (repeatable)")
    p.add_argument("--chip", help="Speck chip variant: speck2e, speck2f (default), dynapcnn (= -O chip=NAME)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _compile(args: argparse.Namespace) -> int:
    import snnc

    art = snnc.compile(args.model, target=args.target, dt_s=args.dt, method=args.method,
                       input_shape=args.input_shape, dump_ir=args.dump_ir, framework=args.framework,
                       **{**dict(args.option), **({"chip": args.chip} if args.chip else {})})
    if args.report:
        with open(args.report, "w") as fh:
            json.dump(art.report, fh, indent=1, sort_keys=True, default=str)
    if args.check:
        print(f"ok: {args.model} fits target '{args.target}'")
        return EXIT_OK
    out = args.output or os.path.splitext(args.model)[0] + f".{args.target}.snnc"
    art.save(out)
    notes = art.report.get("notes", [])
    print(f"wrote {out} (target {args.target}, {os.path.getsize(out)} bytes, {len(notes)} note(s) in the report)")
    for w in art.report.get("warnings", []):
        print(f"warning: {w}")
    return EXIT_OK


def compile_main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``snn-compile``."""
    args = compile_parser().parse_args(argv)
    return _guard("snn-compile", _compile, args)


def run_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``snn-run``."""
    p = argparse.ArgumentParser(prog="snn-run", description="Run a compiled artifact on inputs.",
                                epilog="exit codes: 0 ok, 2 bad input, 3 backend or device unavailable")
    p.add_argument("artifact")
    p.add_argument("--input", required=True,
                   help=".npy dense (batch,T,...) array, .npz with x or t/x/y/p events, or an N-MNIST .bin")
    p.add_argument("--backend", default="sim", help="sim (reference simulator), lava, device")
    p.add_argument("--steps", type=int, help="number of time steps for event inputs")
    p.add_argument("--record", action="store_true", help="record neuron states")
    p.add_argument("-o", "--output", help="write output spikes and counts to this .npz")
    p.add_argument("--plot", help="draw a spike raster and per-layer firing rates to this PNG")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _run(args: argparse.Namespace) -> int:
    import snnc
    from snnc.runtime.inputs import load_input_file

    prog = snnc.load(args.artifact)
    res = prog.run(load_input_file(args.input), backend=args.backend, record=args.record, steps=args.steps)
    counts = res.output.reshape(res.output.shape[0], res.output.shape[1], -1).sum(axis=1)
    for b in range(counts.shape[0]):
        print(f"sample {b}: prediction {int(res.predictions()[b])}, output spike counts {counts[b].astype(int).tolist()}")
    for layer, c in res.spike_counts.items():
        print(f"layer {layer}: {float(np.mean(c)):.1f} spikes/sample, {float(np.mean(res.synops.get(layer, 0))):.0f} synops/sample")
    if args.output:
        np.savez(args.output, output=res.output, predictions=res.predictions(),
                 **{f"spike_counts/{k}": v for k, v in res.spike_counts.items()})
    if args.plot:
        from snnc.runtime.plot import plot_result

        plot_result(res, args.plot)
        print(f"wrote {args.plot}")
    return EXIT_OK


def run_main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``snn-run``."""
    args = run_parser().parse_args(argv)
    return _guard("snn-run", _run, args)
