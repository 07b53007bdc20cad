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

from snnc.errors import EXIT_BAD_INPUT, EXIT_OK, InputError, SnncError
from snnc.targets.base import parse_option


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that every cleanup path Ctrl-C takes runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP end a command as cleanly as Ctrl-C (workers killed, temp files removed)."""
    import signal

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, _raise_terminated)


def _guard(prog: str, fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format=f"{prog}: %(levelname)s: %(message)s")
    install_signal_handlers()
    try:
        return fn(args)
    except SnncError as e:
        print(f"{prog}: error: {e.format()}", file=sys.stderr)
        return e.exit_code
    except Terminated as e:
        import signal

        print(f"{prog}: terminated by {signal.Signals(e.signum).name}; nothing written", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`): stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return 141


def _shape(text: str) -> List[int]:
    try:
        return [int(x) for x in text.replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad shape '{text}', expected e.g. 2,34,34") from None


def _options_help() -> str:
    """Return every target's ``-O`` keys with their help, for ``--help``."""
    from snnc.targets.base import get_target, target_names

    lines = []
    for name in target_names():
        tgt = get_target(name)
        if tgt.option_help:
            lines.append(f"  -O keys of --target {name}:")
            lines += [f"    {k:18s} {v}" for k, v in sorted(tgt.option_help.items())]
        else:
            lines.append(f"  --target {name} takes no -O options")
    from snnc.runtime.diverge import OPTION_HELP as DIVERGE_OPTIONS

    lines.append("  -O keys of --target loihi and speck, for the divergence report (snnc/runtime/diverge.py):")
    lines += [f"    {k:18s} {v}" for k, v in sorted(DIVERGE_OPTIONS.items())]
    return "\n".join(lines)


COMPILE_EXAMPLES = """examples:
  snn-compile snnc/models/checkpoints/speck_cnn.pt --target speck        # an snnc checkpoint: its own dt
  snn-compile model.pt --target loihi --input-shape 12                      # torch.save'd snnTorch/Norse/sinabs/... module
  snn-compile weights.pt --model nmnist_cnn --target loihi                  # a state_dict of a zoo model
  snn-compile weights.pt --factory mynets:build --input-shape 2,34,34       # a state_dict + your constructor
  snn-compile net.nir --framework sinabs --bin-us 1000 --target speck       # a sinabs export, 1 ms event bins
  snn-compile net.nir --dt 1e-3 --method euler --target cpu --report r.json
  snn-compile net.nir --target loihi --check                                # rules only, no artifact

time base: the step is the model's own (snnc checkpoint or neurons, a framework module's dt, NIR
metadata), else the --framework convention, else 1 ms (with a warning); --dt overrides (with a warning
when it differs from the model's). Events are cut into --bin-us bins (default: the model's training bins,
else dt; required where the model's step is one unit, as for sinabs and snnTorch).

exit codes: 0 ok, 2 bad input or rule violations, 3 target/device unavailable
"""


def compile_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``snn-compile``."""
    from snnc.compiler.frontends.conventions import framework_names
    from snnc.targets.base import target_names

    p = argparse.ArgumentParser(prog="snn-compile", description="Compile a spiking network (.pt or .nir) for a target.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=COMPILE_EXAMPLES + "\n" + _options_help())
    p.add_argument("model", help="model file: .nir (any framework) or .pt (snnc checkpoint, torch.save'd module of "
                                 "snnc/snnTorch/Norse/sinabs/SpikingJelly/Rockpool, or a state_dict with --model/--factory)")
    p.add_argument("--target", default="cpu", help=f"target name ({', '.join(target_names())}); default cpu")
    p.add_argument("-o", "--output", help="artifact path (default: MODEL stem + .<target>.snnc)")
    p.add_argument("--dt", type=float, default=None,
                   help="time step in seconds (default: the model's own, else the --framework convention, else 1e-3)")
    p.add_argument("--method", default=None, choices=["exact", "euler"],
                   help="integration of NIR's ODEs: exact exponential or forward Euler "
                        "(default: the model's, else the --framework convention, else exact)")
    p.add_argument("--bin-us", type=int, default=None, metavar="US",
                   help="width of the time bins event input is cut into, in microseconds (default: the model's "
                        "training bins, else dt)")
    p.add_argument("--framework", choices=list(framework_names()),
                   help="the framework that exported the NIR file: undo its exporter's quirks and use its "
                        "dt convention (see snnc/compiler/frontends/conventions.py)")
    p.add_argument("--model", dest="model_name", metavar="ZOO_NAME",
                   help="architecture of a state_dict file: a zoo model name (snn-train --help lists them)")
    p.add_argument("--factory", metavar="MODULE:FUNCTION",
                   help="architecture of a state_dict file: a function returning the torch module")
    p.add_argument("--input-shape", type=_shape, help="input shape without batch, e.g. 2,34,34 (torch models)")
    p.add_argument("--check", action="store_true", help="only check the rules; write no artifact")
    p.add_argument("--report", help="write the compile report (JSON) here")
    p.add_argument("--dump-ir", metavar="DIR", help="write the graph after each pass into DIR")
    p.add_argument("-O", "--option", action="append", type=parse_option, default=[], metavar="KEY=VALUE",
                   help="target-specific option (repeatable; keys below)")
    p.add_argument("--chip", help="chip variant (= -O chip=NAME): Speck speck2e, speck2f (default), dynapcnn; "
                                  "Xylo audio2 (default), imu")
    p.add_argument("-q", "--quiet", action="store_true", help="print no per-layer summary")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _print_summary(report: Dict[str, Any], out: Any) -> None:
    """Print the per-layer summary of a compile report (in the spirit of sinabs' memory_summary)."""
    rows = report.get("summary", [])
    if not rows:
        return
    tb = report.get("time_base") or {}
    width = max(len(r["label"]) for r in rows)
    print(f"{'layer':{width}s}  {'neurons':>8s}  {'weights':>8s}  {'synapses':>9s}  {'->0':>5s}  {'lat':>3s}  resource",
          file=out)
    for r in rows:
        lat = r.get("latency_steps")
        print(f"{r['label']:{width}s}  {r['neurons']:8d}  {r['weights']:8d}  {r['connections']:9d}  "
              f"{r.get('rounded_to_zero', '-')!s:>5s}  {'-' if lat is None else lat!s:>3s}  {r.get('resource', '')}",
              file=out)
    acc = report.get("accuracy")
    if isinstance(acc, dict):
        keys = [k for k in sorted(acc) if "accuracy" in k and isinstance(acc[k], (int, float))]
        print("accuracy: " + ", ".join(f"{k} {100 * acc[k]:.2f} %" for k in keys), file=out)
    del tb


def _compile(args: argparse.Namespace) -> int:
    import snnc

    art = snnc.compile(args.model, target=args.target, dt_s=args.dt, method=args.method,
                       input_shape=args.input_shape, dump_ir=args.dump_ir, framework=args.framework,
                       bin_us=args.bin_us, model_name=args.model_name, factory=args.factory,
                       **{**dict(args.option), **({"chip": args.chip} if args.chip else {})})
    if args.report:
        from snnc.files import write_text

        write_text(args.report, json.dumps({**art.report, "time_base": art.manifest.get("time_base")}, indent=1,
                                           sort_keys=True, default=str), "report")
    logged = int(art.report.get("time_base_warnings", 0))
    for w in art.report.get("warnings", [])[logged:]:
        print(f"snn-compile: warning: {w}", file=sys.stderr)
    tb = art.manifest.get("time_base", {})
    if not args.quiet:
        _print_summary(art.report, sys.stdout)
    div = art.report.get("divergence")
    if div:
        print(div["text"] + (f"\nwrote {div['plot']}" if div.get("plot") else ""))
    if args.check:
        print(f"ok: {args.model} fits target '{args.target}' (dt {tb.get('dt_s'):g} s from {tb.get('dt_source')})")
        return EXIT_OK
    out = args.output or os.path.splitext(args.model)[0] + f".{args.target}.snnc"
    art.save(out)
    notes = art.report.get("notes", [])
    bins = f"{tb.get('bin_us')} us event bins" if tb.get("bin_us") else "no event bin width (--bin-us)"
    print(f"wrote {out} (target {args.target}, dt {tb.get('dt_s'):g} s from {tb.get('dt_source')}, {bins}, "
          f"{os.path.getsize(out)} bytes, {len(notes)} note(s) in the report)")
    return EXIT_OK


def compile_main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``snn-compile``."""
    args = compile_parser().parse_args(argv)
    return _guard("snn-compile", _compile, args)


RUN_EXAMPLES = """examples:
  snn-run a.snnc --input ../shared/data/nmnist-small/train --limit 200      # a folder of N-MNIST .bin + labels.txt
  snn-run a.snnc --input 'recordings/*.wav' --json eval.json               # FSDD audio (labels from file names)
  snn-run a.snnc --input data/ --labels labels.txt --backend lava           # any labels file: '<file> <class>'
  snn-run a.snnc --input sample.bin --plot sample.png                       # one recording: rasters and traces
  snn-run a.snnc --input data/ --plot-eval eval.png                         # confusion matrix, firing rates

inputs: N-MNIST .bin, .npy/.npz (dense (T, ...) or (batch, T, ...) arrays, or t/x/y/p events), .wav (through
the artifact's audio encoder). Labels: --labels, a labels.txt beside the files, DIR/<class>/file, or FSDD names.
Events are binned with the artifact's bin width (one spike per bin where the target takes single spikes).

exit codes: 0 ok, 2 bad input, 3 backend or device unavailable, 130/143/129 interrupted (Ctrl-C/SIGTERM/SIGHUP)
"""


def run_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``snn-run``."""
    p = argparse.ArgumentParser(prog="snn-run", description="Run a compiled artifact on inputs; score a data set.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=RUN_EXAMPLES)
    p.add_argument("artifact")
    p.add_argument("--input", required=True, nargs="+", metavar="DIR|GLOB|FILE",
                   help="sample files, folders (searched recursively) or quoted globs")
    p.add_argument("--labels", help="labels file: lines '<file name, stem or sample id> <class>'")
    p.add_argument("--backend", default="sim", help="sim (reference simulator), lava, device")
    p.add_argument("--limit", type=int, help="evaluate only the first N files")
    p.add_argument("--batch-size", type=int, default=32, help="samples per batch (default 32)")
    p.add_argument("--steps", type=int, help="time steps per sample (default: the model's training steps)")
    p.add_argument("--bin-us", type=int, help="event bin width in microseconds (default: the artifact's)")
    p.add_argument("--json", metavar="FILE", help="write the evaluation (accuracy, confusion, activity) as JSON")
    p.add_argument("-o", "--output", help="write output spikes and counts to this .npz")
    p.add_argument("--plot", metavar="FILE", help="draw one sample: input, layer and output rasters, membrane "
                                                 "traces (format from the suffix: .png, .pdf, .svg)")
    p.add_argument("--sample", type=int, default=0, help="which sample --plot draws (default 0)")
    p.add_argument("--plot-eval", metavar="FILE", help="draw the confusion matrix and per-layer firing rates")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _run(args: argparse.Namespace) -> int:
    import snnc
    from snnc.runtime.datasets import expand_inputs, find_labels

    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size), ("--bin-us", args.bin_us)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be >= 1, found {value}")
    prog = snnc.load(args.artifact)
    files = expand_inputs(args.input)
    if args.limit is not None:
        if args.limit < 1:
            raise InputError(f"--limit must be >= 1, found {args.limit}")
        files = files[: args.limit]
    for path in (args.json, args.plot, args.plot_eval, args.output):
        if path:
            from snnc.files import check_output_path

            check_output_path(path)
    for path in (args.plot, args.plot_eval):
        if path:
            from snnc.runtime.plot import check_format

            check_format(path)
    labels, how = find_labels(files, args.labels)
    ev = prog.evaluate(files, labels, backend=args.backend, batch_size=args.batch_size, progress=args.progress,
                       steps=args.steps, bin_us=args.bin_us, keep_outputs=bool(args.output))
    if labels is not None:
        ev.notes.append(f"labels: {how}")
    single = len(ev.predictions) <= 10
    if single:
        for f, p in zip(files, ev.predictions):
            print(f"{f}: prediction {'none (no output spike)' if p < 0 else int(p)}")
    print(ev.format())
    if args.json:
        from snnc.files import write_text

        write_text(args.json, json.dumps(ev.to_dict(), indent=1, default=str), "evaluation")
        print(f"wrote {args.json}")
    if args.output:
        import io

        from snnc.files import write_bytes

        buf = io.BytesIO()
        np.savez(buf, output=ev.outputs, predictions=ev.predictions, files=np.asarray(files),
                 **{f"spike_counts/{k}": v for k, v in ev.spike_counts.items()})
        write_bytes(args.output, buf.getvalue(), "output")
        print(f"wrote {args.output}")
    if args.plot:
        if not 0 <= args.sample < len(ev.predictions):
            raise InputError(f"--sample {args.sample} is out of range: {len(ev.predictions)} sample(s)")
        reader = prog.reader(args.steps, args.bin_us)
        samples = [s for f in files for s in reader.read(f)]
        x = samples[args.sample][None]
        from snnc.runtime.evaluate import pad_latency
        from snnc.runtime.plot import plot_sample

        res = prog.run(pad_latency(x, prog.latency_steps), backend=args.backend, record=True)
        label = None if labels is None or len(labels) != len(samples) else labels[args.sample]
        plot_sample(res, x[0], args.plot, dt_s=float(prog.manifest["options"]["dt_s"]), label=label,
                    title=os.path.basename(files[min(args.sample, len(files) - 1)]))
        print(f"wrote {args.plot}")
    if args.plot_eval:
        from snnc.runtime.plot import plot_evaluation

        plot_evaluation(ev, args.plot_eval)
        print(f"wrote {args.plot_eval}")
    return EXIT_OK


def run_main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``snn-run``."""
    args = run_parser().parse_args(argv)
    return _guard("snn-run", _run, args)
