"""Free Spoken Digit Dataset (8 kHz wav) turned into spike trains by a mel filterbank cochlea.

Files are ``{digit}_{speaker}_{index}.wav`` (mono, 16-bit, 8 kHz), by default under
``<data>/fsdd/recordings``. The wav reader and the cochlea (:class:`CochleaSpec`,
:func:`encode_audio`) are formats: :mod:`snnc.formats.audio` says how a recording is encoded.

Splits: by index (default: indices 5..9 are validation; indices 0..4, the official test
split, are not in this copy) or by speaker.
"""
from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from snnc.errors import InputError, ValueRangeError
from snnc.formats.audio import (ENCODINGS, CochleaSpec, _hz_to_mel, _mel_to_hz,  # noqa: F401
                                encode_audio, mel_filterbank, read_wav)
from snnc.models.data.paths import (PathLike, cache_key, default_data_dir, dir_fingerprint,
                                    require_dir, resolve_cache_dir)
from snnc.models.data.splits import split_by_groups

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")
CACHE_FORMAT_VERSION = 1


def fsdd_dir() -> Path:
    """Return the default FSDD recordings folder: ``<data>/fsdd/recordings``."""
    return default_data_dir() / "fsdd" / "recordings"


def parse_fsdd_name(name: str) -> tuple[int, str, int]:
    """Parse ``{digit}_{speaker}_{index}.wav`` into (digit, speaker, index)."""
    m = _NAME_RE.match(name)
    if not m:
        raise InputError(f"file name {name!r} is not '{{digit}}_{{speaker}}_{{index}}.wav'")
    return int(m.group(1)), m.group(2), int(m.group(3))


class FSDD:
    """The FSDD recordings folder: file list with digit, speaker and index of each file."""

    n_classes = 10

    def __init__(self, root: Optional[PathLike] = None) -> None:
        """Index ``root`` (default ``<data>/fsdd/recordings``)."""
        self.root = require_dir(root if root is not None else fsdd_dir(), "FSDD recordings folder")
        files = sorted(p for p in self.root.iterdir() if p.suffix == ".wav")
        if not files:
            raise InputError("no .wav files", file=str(self.root))
        parsed = [parse_fsdd_name(p.name) for p in files]
        self.files = files
        self.labels = np.asarray([d for d, _, _ in parsed], dtype=np.int64)
        self.speakers = np.asarray([s for _, s, _ in parsed])
        self.indices = np.asarray([i for _, _, i in parsed], dtype=np.int64)

    def __len__(self) -> int:
        """Return the number of recordings."""
        return len(self.files)

    def audio(self, i: int) -> tuple[np.ndarray, int]:
        """Return (samples in [-1, 1), sample rate in Hz) of recording ``i``."""
        return read_wav(self.files[i])

    def label(self, i: int) -> int:
        """Return the digit of recording ``i``."""
        return int(self.labels[i])


@dataclass
class FSDDSpikes:
    """Encoded FSDD: ``spikes`` (N, T, C) uint8 with labels, speakers, indices and names."""

    spikes: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    indices: np.ndarray
    names: np.ndarray
    spec: CochleaSpec
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        """Return the number of recordings."""
        return int(self.labels.size)

    def split(self, by: str = "index", val_indices: Sequence[int] = tuple(range(5, 10)),
              val_speakers: Sequence[str] = ("theo",)) -> tuple[np.ndarray, np.ndarray]:
        """Return (train, val) positions: ``by='index'`` (recording index) or ``'speaker'``."""
        if by == "index":
            return split_by_groups(self.indices, list(val_indices))
        if by == "speaker":
            return split_by_groups(self.speakers, list(val_speakers))
        raise ValueRangeError(f"split by must be 'index' or 'speaker', found {by!r}")


def encode_fsdd(ds: FSDD, spec: CochleaSpec, positions: Optional[Sequence[int]] = None
                ) -> FSDDSpikes:
    """Encode recordings of ``ds`` (all, or ``positions``) with ``spec``."""
    pos = np.arange(len(ds)) if positions is None else np.asarray(positions, dtype=np.int64)
    fb = mel_filterbank(spec)
    spikes = np.zeros((pos.size, spec.n_steps, spec.n_out), dtype=np.uint8)
    n_cut_rec = n_cut_steps = 0
    t0 = time.perf_counter()
    for k, i in enumerate(pos):  # loop over recordings (files)
        x, sr = ds.audio(int(i))
        spikes[k], info = encode_audio(x, sr, spec, fb)
        n_cut_rec += int(info["n_cut"] > 0)
        n_cut_steps += int(info["n_cut"])
    report = {"n_recordings": int(pos.size), "n_recordings_cut": n_cut_rec,
              "n_steps_cut": n_cut_steps, "mean_spikes_per_recording":
              float(spikes.reshape(pos.size, -1).sum(axis=1).mean()) if pos.size else 0.0,
              "seconds": round(time.perf_counter() - t0, 3)}
    if n_cut_rec:
        log.info("FSDD: %d recording(s) longer than %d steps were cut (%d steps in all)",
                 n_cut_rec, spec.n_steps, n_cut_steps)
    return FSDDSpikes(spikes, ds.labels[pos], ds.speakers[pos], ds.indices[pos],
                      np.asarray([ds.files[int(i)].name for i in pos]), spec, report)


def load_fsdd_spikes(spec: Optional[CochleaSpec] = None, root: Optional[PathLike] = None,
                     cache_dir: Optional[PathLike] = None, refresh: bool = False) -> FSDDSpikes:
    """Encode all FSDD recordings with ``spec`` once and cache them as .npz."""
    import json

    spec = spec or CochleaSpec()
    ds = FSDD(root)
    params = {"dataset": "fsdd", "spec": asdict(spec), "cache_format": CACHE_FORMAT_VERSION,
              "data": dict(dir_fingerprint(ds.files), root=str(ds.root.resolve()))}
    path = resolve_cache_dir(cache_dir) / f"fsdd-{cache_key(params)}.npz"
    if path.is_file() and not refresh:
        try:
            with np.load(path, allow_pickle=False) as z:
                if json.loads(str(z["params"])) == json.loads(json.dumps(params, default=str)):
                    return FSDDSpikes(z["spikes"], z["labels"], z["speakers"], z["indices"],
                                      z["names"], spec, json.loads(str(z["report"])))
        except (OSError, KeyError, ValueError) as exc:
            log.warning("unreadable FSDD cache %s (%s); rebuilding", path, exc)
    out = encode_fsdd(ds, spec)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, spikes=out.spikes, labels=out.labels, speakers=out.speakers,
                 indices=out.indices, names=out.names,
                 params=np.asarray(json.dumps(params, sort_keys=True, default=str)),
                 report=np.asarray(json.dumps(out.report, sort_keys=True)))
    os.replace(tmp, path)
    return out
