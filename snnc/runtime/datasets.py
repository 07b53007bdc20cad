"""Reading a data set for a compiled program: files, their labels, and inputs shaped for the model.

``snn-run ARTIFACT --input DIR|GLOB|FILE...`` takes N-MNIST ``.bin`` recordings, ``.npy``/``.npz``
(dense arrays or event lists, as tonic-style folders hold them) and ``.wav`` audio (encoded with the
audio encoder recorded in the artifact, e.g. ``fsdd_mlp``'s cochlea). Labels come from, in this
order: ``--labels FILE`` (lines ``<file name, stem or sample id> <class>``, tab, space or comma
separated, ``#`` comments: N-MNIST's ``labels.txt`` is one), a ``labels.txt`` beside the files, the
folder layout ``DIR/<class>/file``, or FSDD file names ``{digit}_{speaker}_{index}.wav``.

Inputs are shaped for the model (:func:`shape_sample`): events are binned with the program's
``bin_us`` into the steps the model was trained with, one spike per bin where the target takes
single spikes (with a note), and flattened for a model with a flat input.
"""
from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from snnc.errors import InputError

log = logging.getLogger(__name__)

#: File suffixes ``snn-run`` reads as samples.
SAMPLE_SUFFIXES = (".bin", ".npy", ".npz", ".wav")
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def _natural(path: str) -> List[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def expand_inputs(specs: Sequence[str]) -> List[str]:
    """Return the sample files named by ``specs`` (folders searched recursively, globs expanded), sorted."""
    files: List[str] = []
    for spec in specs:
        if os.path.isdir(spec):
            found = [os.path.join(d, f) for d, _, fs in os.walk(spec) for f in fs
                     if os.path.splitext(f)[1].lower() in SAMPLE_SUFFIXES]
            if not found:
                raise InputError(f"no {'/'.join(SAMPLE_SUFFIXES)} files in the folder", file=spec)
            files += sorted(found, key=_natural)
        elif any(c in spec for c in "*?["):
            found = sorted((f for f in glob.glob(spec, recursive=True) if os.path.isfile(f)), key=_natural)
            if not found:
                raise InputError("the pattern matches no file", file=spec)
            files += found
        elif os.path.isfile(spec):
            files.append(spec)
        else:
            raise InputError("input not found", file=spec, hint="give files, folders or a quoted glob")
    return files


def _read_label_table(path: str) -> Dict[str, int]:
    table: Dict[str, int] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = re.split(r"[\t ,;]+", line)
                if len(parts) < 2:
                    raise InputError(f"line {n} has no label: {line!r}", file=path,
                                     hint="lines are '<file name, stem or sample id> <class>'")
                try:
                    table[parts[0]] = int(parts[-1])
                except ValueError:
                    raise InputError(f"line {n}: class {parts[-1]!r} is not an integer", file=path) from None
    except OSError as e:
        raise InputError(f"cannot read labels ({e.strerror})", file=path) from None
    if not table:
        raise InputError("the labels file holds no label", file=path)
    return table


def _lookup(table: Dict[str, int], path: str) -> Optional[int]:
    name = os.path.basename(path)
    stem = os.path.splitext(name)[0]
    for key in (name, stem, path):
        if key in table:
            return table[key]
    if stem.isdigit() and str(int(stem)) in table:
        return table[str(int(stem))]
    return None


def find_labels(files: Sequence[str], labels_file: Optional[str] = None) -> Tuple[Optional[List[int]], str]:
    """Return ``(labels or None, how they were found)`` for ``files`` (see the module doc)."""
    if labels_file is not None:
        table = _read_label_table(labels_file)
        labels = [_lookup(table, f) for f in files]
        missing = [f for f, y in zip(files, labels) if y is None]
        if missing:
            raise InputError(f"{len(missing)} input file(s) have no label, e.g. {missing[0]}", file=labels_file,
                             hint="each line: '<file name, stem or sample id> <class>'")
        return [int(y) for y in labels], f"labels file {labels_file}"  # type: ignore[arg-type]
    dirs = sorted({os.path.dirname(os.path.abspath(f)) for f in files})
    beside = [os.path.join(d, "labels.txt") for d in dirs]
    if all(os.path.isfile(b) for b in beside):
        tables = {d: _read_label_table(b) for d, b in zip(dirs, beside)}
        labels = [_lookup(tables[os.path.dirname(os.path.abspath(f))], f) for f in files]
        if all(y is not None for y in labels):
            return [int(y) for y in labels], "labels.txt beside the files"  # type: ignore[arg-type]
    if files and all(_FSDD_NAME.match(os.path.basename(f)) for f in files):
        return [int(os.path.basename(f)[0]) for f in files], "FSDD file names ({digit}_{speaker}_{index}.wav)"
    parents = [os.path.basename(os.path.dirname(os.path.abspath(f))) for f in files]
    if files and all(p.isdigit() for p in parents) and len(set(parents)) > 1:
        return [int(p) for p in parents], "folder layout DIR/<class>/file"
    return None, "none found"


# ----------------------------------------------------------------------------- reading and shaping
def _events_shape(input_shape: Tuple[int, ...]) -> Tuple[Tuple[int, int, int], bool]:
    """Return the (polarity, H, W) to bin events into, and whether the model takes them flattened."""
    if len(input_shape) == 3:
        return (int(input_shape[0]), int(input_shape[1]), int(input_shape[2])), False
    n = int(np.prod(input_shape))
    k = int(round((n / 2) ** 0.5))
    if len(input_shape) == 1 and 2 * k * k == n:
        return (2, k, k), True
    raise InputError(f"event input cannot be shaped for a model taking {tuple(input_shape)}",
                     hint="feed dense arrays (.npy) instead")


@dataclass
class SampleReader:
    """Reads sample files for one program: binning, audio encoding, shaping; collects notes."""

    input_shape: Tuple[int, ...]
    bin_us: Optional[int]
    binary: bool
    steps: Optional[int] = None
    encoder: Optional[Dict[str, Any]] = None
    notes: List[str] = field(default_factory=list)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def read(self, path: str) -> List[np.ndarray]:
        """Return the sample(s) in ``path``, each a float32 array (T, *input_shape)."""
        ext = os.path.splitext(path)[1].lower()
        if ext == ".wav":
            return [self._audio(path)]
        from snnc.runtime.inputs import is_event_array, load_input_file

        obj = load_input_file(path)
        if is_event_array(obj):
            return [self._events(obj, path)]
        a = np.asarray(obj)
        if a.dtype.kind not in "biuf":
            raise InputError(f"holds dtype {a.dtype}, not numbers or events", file=path)
        if a.ndim == len(self.input_shape) + 1:
            a = a[None]
        return [self._dense(x, path) for x in a]

    def _events(self, ev: np.ndarray, path: str) -> np.ndarray:
        from snnc.formats.events import events_to_dense

        if ev.size == 0:
            raise InputError("the recording holds no event", file=path, hint="leave empty recordings out")
        if self.bin_us is None:
            raise InputError("event input needs a bin width and this program has none", file=path,
                             hint="compile with --bin-us MICROSECONDS, or give snn-run --bin-us")
        chw, flat = _events_shape(self.input_shape)
        mode = "binary" if self.binary else "count"
        x = events_to_dense(ev, int(self.bin_us), chw, self.steps, mode=mode, dtype=np.float32)
        if self.binary:
            self._note("events binned one spike per bin (the target takes single spikes)")
        if flat:
            self._note(f"events binned as {chw[0]}x{chw[1]}x{chw[2]} frames and flattened for the model's "
                       f"input of {int(np.prod(self.input_shape))}")
        return x.reshape((x.shape[0],) + tuple(self.input_shape))

    def _audio(self, path: str) -> np.ndarray:
        from snnc.formats.audio import CochleaSpec, encode_audio, read_wav

        enc = self.encoder or {}
        if enc.get("kind") != "cochlea":
            raise InputError("a .wav input needs an audio encoder, and this program records none", file=path,
                             hint="compile an snnc checkpoint trained on audio (e.g. fsdd_mlp), or encode the audio "
                                  "yourself and give .npy spike arrays")
        spec = CochleaSpec(**{k: v for k, v in enc.items() if k != "kind"})
        x, rate = read_wav(path)
        counts, _ = encode_audio(x, rate, spec)
        self._note(f"audio encoded with the artifact's cochlea ({spec.n_channels} channels, {spec.n_steps} steps)")
        return self._dense(counts.astype(np.float32), path)

    def _dense(self, x: np.ndarray, path: str) -> np.ndarray:
        shape = tuple(self.input_shape)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim < 1 or x.shape[0] == 0:
            raise InputError("the sample has zero time steps", file=path)
        if tuple(x.shape[1:]) != shape:
            if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
                raise InputError(f"sample of shape {x.shape}; the model takes (T, {', '.join(map(str, shape))})",
                                 file=path)
            x = x.reshape((x.shape[0],) + shape)
        if not np.all(np.isfinite(x)):
            raise InputError("the sample contains NaN or inf", file=path)
        if self.binary and np.any((x != 0) & (x != 1)):
            x = (x > 0).astype(np.float32)
            self._note("count inputs clipped to one spike per step (the target takes single spikes)")
        if self.steps is not None and x.shape[0] != self.steps:
            x = x[: self.steps] if x.shape[0] > self.steps else np.concatenate(
                [x, np.zeros((self.steps - x.shape[0],) + shape, np.float32)])
        return x


def batch_samples(samples: Sequence[np.ndarray], batch_size: int) -> List[np.ndarray]:
    """Stack samples into batches of at most ``batch_size``, padding shorter ones with zero steps."""
    out = []
    for a in range(0, len(samples), max(1, int(batch_size))):
        part = samples[a:a + batch_size]
        t = max(s.shape[0] for s in part)
        b = np.zeros((len(part), t) + part[0].shape[1:], dtype=np.float32)
        for i, s in enumerate(part):
            b[i, : s.shape[0]] = s
        out.append(b)
    return out
