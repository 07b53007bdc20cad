"""Free Spoken Digit Dataset (8 kHz wav) turned into spike trains by a mel filterbank cochlea.

Files are ``{digit}_{speaker}_{index}.wav`` (mono, 16-bit, 8 kHz), by default under
``<data>/fsdd/recordings``. Encoding of one recording (:func:`encode_audio`), all numpy:

1. samples / 32768, DC removed;
2. short-time power spectrum: Hann window of ``frame_len`` samples (32 ms), zero-padded to
   ``n_fft``, hop ``hop_len`` samples (10 ms) = one time step; frame ``k`` covers samples
   ``[k*hop, k*hop + frame_len)`` (the tail is zero-padded);
3. ``n_channels`` triangular filters equally spaced on the mel scale
   (``mel = 2595 log10(1 + f/700)``) between ``f_min_hz`` and ``f_max_hz``, peak 1 (HTK);
4. log compression and half-wave rectification relative to the recording's peak:
   ``L = max(0, (10 log10(E + 1e-12) - (peak_db - range_db)) / range_db)`` in ``[0, 1]``;
5. optional silence trimming: leading and trailing steps whose loudest channel is more than
   ``trim_db`` below the peak are removed (onset aligned to step 0);
6. spikes, per channel and step (counts, uint8):

   * ``rate``: an integrate-and-fire neuron (threshold 1, reset by subtraction) driven by
     ``max_rate * L``: ``n_t = floor(S_t) - floor(S_{t-1})``, ``S_t = sum_{k<=t} max_rate L_k``.
     With ``max_rate <= 1`` every count is 0 or 1. Output ``(T, n_channels)``.
   * ``delta``: level-crossing (delta) modulation with step ``delta``:
     ``q_t = floor(L_t / delta)``, ON count ``max(q_t - q_{t-1}, 0)``, OFF count
     ``max(q_{t-1} - q_t, 0)`` (``q_{-1} = 0``). Output ``(T, 2 n_channels)``: ON channels
     then OFF channels.

7. the step axis is cut or zero-padded to ``n_steps``; cut steps are counted in the report.

Splits: by index (default: indices 5..9 are validation; indices 0..4, the official test
split, are not in this copy) or by speaker.
"""
from __future__ import annotations

import logging
import os
import re
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from snnc.errors import InputError, ValueRangeError
from snnc.models.data.paths import (PathLike, cache_key, default_data_dir, dir_fingerprint,
                                    require_dir, require_file, resolve_cache_dir)
from snnc.models.data.splits import split_by_groups

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")
ENCODINGS = ("rate", "delta")
CACHE_FORMAT_VERSION = 1


def fsdd_dir() -> Path:
    """Return the default FSDD recordings folder: ``<data>/fsdd/recordings``."""
    return default_data_dir() / "fsdd" / "recordings"


def read_wav(path: PathLike) -> tuple[np.ndarray, int]:
    """Read a mono 16-bit PCM wav into float64 samples in [-1, 1) and its rate in Hz."""
    p = require_file(path, "wav file")
    try:
        with wave.open(str(p), "rb") as w:
            n_ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise InputError(f"unreadable wav ({exc})", file=str(p)) from exc
    if n_ch != 1 or width != 2:
        raise InputError(f"wav must be mono 16-bit PCM, found {n_ch} channel(s), "
                         f"{8 * width}-bit", file=str(p))
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    return x, int(rate)


def parse_fsdd_name(name: str) -> tuple[int, str, int]:
    """Parse ``{digit}_{speaker}_{index}.wav`` into (digit, speaker, index)."""
    m = _NAME_RE.match(name)
    if not m:
        raise InputError(f"file name {name!r} is not '{{digit}}_{{speaker}}_{{index}}.wav'")
    return int(m.group(1)), m.group(2), int(m.group(3))


@dataclass(frozen=True)
class CochleaSpec:
    """Parameters of the filterbank cochlea and spike encoder (see the module docstring)."""

    sample_rate_hz: int = 8000
    frame_len: int = 256
    n_fft: int = 512
    hop_len: int = 80
    n_channels: int = 64
    f_min_hz: float = 50.0
    f_max_hz: float = 4000.0
    range_db: float = 60.0
    trim_db: Optional[float] = 40.0
    encoding: str = "rate"
    max_rate: float = 1.0
    delta: float = 0.1
    n_steps: int = 100

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueRangeError(f"encoding must be one of {ENCODINGS}, found {self.encoding!r}")
        if not 0 < self.f_min_hz < self.f_max_hz <= self.sample_rate_hz / 2:
            raise ValueRangeError(f"need 0 < f_min_hz < f_max_hz <= Nyquist "
                                  f"({self.sample_rate_hz / 2}), found {self.f_min_hz}, {self.f_max_hz}")
        if self.frame_len > self.n_fft or self.hop_len < 1 or self.n_steps < 1:
            raise ValueRangeError("need frame_len <= n_fft, hop_len >= 1, n_steps >= 1")
        if self.range_db <= 0 or self.max_rate <= 0 or self.delta <= 0:
            raise ValueRangeError("range_db, max_rate and delta must be positive")

    @property
    def dt_s(self) -> float:
        """Return the time step in seconds (hop_len / sample_rate_hz)."""
        return self.hop_len / self.sample_rate_hz

    @property
    def n_out(self) -> int:
        """Return the number of output channels (doubled for delta's ON/OFF)."""
        return self.n_channels * (2 if self.encoding == "delta" else 1)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(spec: CochleaSpec) -> np.ndarray:
    """Return ``(n_channels, n_fft//2 + 1)`` triangular mel filters (peak 1)."""
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(spec.f_min_hz), _hz_to_mel(spec.f_max_hz),
                                      spec.n_channels + 2))
    freqs = np.arange(spec.n_fft // 2 + 1) * spec.sample_rate_hz / spec.n_fft
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    empty = np.flatnonzero(fb.sum(axis=1) == 0)
    if empty.size:
        raise ValueRangeError(f"mel filters {empty.tolist()} cover no FFT bin",
                              hint="increase n_fft or reduce n_channels")
    return fb


def _levels(x: np.ndarray, spec: CochleaSpec, fb: np.ndarray) -> np.ndarray:
    """Return rectified log levels ``(frames, n_channels)`` in [0, 1] for samples ``x``."""
    x = x - x.mean() if x.size else x
    n = max(x.size, spec.frame_len)
    n_frames = 1 + -(-(n - spec.frame_len) // spec.hop_len)
    padded = np.zeros((n_frames - 1) * spec.hop_len + spec.frame_len)
    padded[:x.size] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, spec.frame_len)[::spec.hop_len]
    window = np.hanning(spec.frame_len + 2)[1:-1]  # strictly positive Hann
    power = np.abs(np.fft.rfft(frames * window, n=spec.n_fft, axis=1)) ** 2
    db = 10.0 * np.log10(power @ fb.T + 1e-12)
    peak = db.max()
    return np.maximum(0.0, (db - (peak - spec.range_db)) / spec.range_db)


def encode_audio(x: np.ndarray, sample_rate_hz: int, spec: CochleaSpec,
                 fb: Optional[np.ndarray] = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Encode one recording into spike counts ``(n_steps, n_out)`` uint8 plus an info dict."""
    if sample_rate_hz != spec.sample_rate_hz:
        raise InputError(f"sample rate {sample_rate_hz} Hz, spec expects {spec.sample_rate_hz} Hz",
                         hint="resample first or change CochleaSpec.sample_rate_hz")
    fb = mel_filterbank(spec) if fb is None else fb
    lev = _levels(np.asarray(x, dtype=np.float64), spec, fb)
    info: dict[str, Any] = {"n_frames": int(lev.shape[0]), "n_trimmed": 0, "n_cut": 0}
    if spec.trim_db is not None:
        loud = lev.max(axis=1) > 1.0 - spec.trim_db / spec.range_db
        on = np.flatnonzero(loud)
        if on.size:
            info["n_trimmed"] = int(lev.shape[0] - (on[-1] + 1 - on[0]))
            lev = lev[on[0]:on[-1] + 1]
    if spec.encoding == "rate":
        s = np.floor(np.cumsum(spec.max_rate * lev, axis=0))
        counts = np.diff(s, axis=0, prepend=0.0)
    else:
        q = np.floor(lev / spec.delta)
        d = np.diff(q, axis=0, prepend=0.0)
        counts = np.concatenate([np.maximum(d, 0.0), np.maximum(-d, 0.0)], axis=1)
    t_len = counts.shape[0]
    info["n_cut"] = max(0, t_len - spec.n_steps)
    out = np.zeros((spec.n_steps, counts.shape[1]), dtype=np.uint8)
    keep = counts[:spec.n_steps]
    if keep.size and keep.max() > 255:
        raise ValueRangeError(f"spike count {keep.max()} per step exceeds uint8",
                              hint="lower max_rate or raise delta")
    out[:keep.shape[0]] = keep.astype(np.uint8)
    return out, info


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
