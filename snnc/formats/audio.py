"""Audio: mono 16-bit wav files and the mel filterbank cochlea that turns them into spike counts.

Encoding of one recording (:func:`encode_audio`), all numpy:

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

The FSDD data set built on these is :mod:`snnc.models.data.fsdd`.
"""
from __future__ import annotations

import wave
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from snnc.errors import InputError, ValueRangeError
from snnc.files import PathLike, require_file

#: Spike encodings of :class:`CochleaSpec`.
ENCODINGS = ("rate", "delta")


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
