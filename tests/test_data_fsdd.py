"""FSDD spoken digits -> spike trains (mel filterbank cochlea)."""
from __future__ import annotations

import wave

import numpy as np
import pytest

from snnc.errors import InputError, ValueRangeError
from snnc.models.data import paths
from snnc.models.data.fsdd import (FSDD, CochleaSpec, _hz_to_mel, _mel_to_hz, encode_audio,
                                   fsdd_dir, load_fsdd_spikes, mel_filterbank, parse_fsdd_name,
                                   read_wav)

HAVE_FSDD = fsdd_dir().is_dir()
needs_fsdd = pytest.mark.skipif(not HAVE_FSDD,
                                reason=f"FSDD not found at {fsdd_dir()} (set SNNC_DATA)")


def _write_wav(path, samples_i16: np.ndarray, rate: int = 8000, width: int = 2) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples_i16.tobytes())


def test_read_wav_roundtrip_and_rejects_8bit(tmp_path):
    s = (np.arange(-100, 100) * 100).astype("<i2")
    _write_wav(tmp_path / "a.wav", s)
    x, sr = read_wav(tmp_path / "a.wav")
    assert sr == 8000
    np.testing.assert_array_equal(np.rint(x * 32768).astype(np.int64), s.astype(np.int64))
    _write_wav(tmp_path / "b.wav", np.zeros(10, dtype=np.uint8), width=1)
    with pytest.raises(InputError, match="16-bit"):
        read_wav(tmp_path / "b.wav")


def test_filterbank_covers_every_channel():
    spec = CochleaSpec()
    fb = mel_filterbank(spec)
    assert fb.shape == (64, 257)
    assert np.all(fb.sum(axis=1) > 0) and fb.max() <= 1.0
    with pytest.raises(ValueRangeError, match="cover no FFT bin"):
        mel_filterbank(CochleaSpec(n_fft=256, n_channels=128))


@pytest.mark.parametrize("freq_hz", [300.0, 1000.0, 2500.0])
def test_pure_tone_drives_the_matching_channel(freq_hz):
    spec = CochleaSpec(trim_db=None)
    t = np.arange(8000) / 8000.0
    x = 0.5 * np.sin(2 * np.pi * freq_hz * t)
    spikes, info = encode_audio(x, 8000, spec)
    assert spikes.shape == (100, 64) and spikes.dtype == np.uint8
    assert spikes.max() == 1  # rate code with max_rate 1 is binary
    per_ch = spikes.sum(axis=0)
    centres = _mel_to_hz(np.linspace(_hz_to_mel(spec.f_min_hz), _hz_to_mel(spec.f_max_hz),
                                     66))[1:-1]
    best = int(np.argmax(per_ch))
    assert abs(centres[best] - freq_hz) < 0.1 * freq_hz
    assert per_ch[best] >= 95  # near-peak level fires almost every step
    # far-away channels are silent (beyond the 60 dB range below the peak)
    far = np.abs(centres - freq_hz) > 0.5 * freq_hz
    assert per_ch[far].max() < per_ch[best] // 2


def _enveloped_tone(freq_hz: float) -> np.ndarray:
    x = np.zeros(8000)
    x[2000:4000] = 0.5 * np.hanning(2000) * np.sin(2 * np.pi * freq_hz * np.arange(2000) / 8000)
    return x


def test_delta_encoding_on_then_off_and_balanced():
    spec = CochleaSpec(encoding="delta", delta=0.1, trim_db=None)
    spikes, info = encode_audio(_enveloped_tone(1000.0), 8000, spec)
    assert spikes.shape == (100, 128) and info["n_trimmed"] == 0
    on, off = spikes[:, :64].astype(np.int64), spikes[:, 64:].astype(np.int64)
    assert on.sum() >= 20  # a few channels around 1 kHz climb ~10 levels each
    # silence before and after: every channel climbs and returns to level 0
    np.testing.assert_array_equal(on.sum(axis=0), off.sum(axis=0))
    assert on[:22].sum() == 0 and off[:22].sum() == 0  # nothing before the tone (frame 22)
    peak = 3000 // 80  # envelope peak step
    assert on[:peak + 1].sum() >= 0.9 * on.sum()
    assert off[peak - 1:].sum() >= 0.9 * off.sum()
    centres = _mel_to_hz(np.linspace(_hz_to_mel(50.0), _hz_to_mel(4000.0), 66))[1:-1]
    assert abs(centres[int(np.argmax(on.sum(axis=0)))] - 1000.0) < 100.0


def test_silence_trimming_aligns_onset():
    spikes_t, info_t = encode_audio(_enveloped_tone(1000.0), 8000, CochleaSpec())
    spikes_u, info_u = encode_audio(_enveloped_tone(1000.0), 8000, CochleaSpec(trim_db=None))
    first_t = int(np.flatnonzero(spikes_t.sum(axis=1))[0])
    first_u = int(np.flatnonzero(spikes_u.sum(axis=1))[0])
    assert first_t <= 3 and first_u > 20  # IF needs a few steps to reach threshold
    assert info_t["n_trimmed"] > 50 and info_u["n_trimmed"] == 0


def test_sample_rate_mismatch():
    with pytest.raises(InputError, match="sample rate"):
        encode_audio(np.zeros(100), 16000, CochleaSpec())


def test_name_parsing():
    assert parse_fsdd_name("7_jackson_32.wav") == (7, "jackson", 32)
    with pytest.raises(InputError):
        parse_fsdd_name("x_jackson_32.wav")


@needs_fsdd
def test_real_fsdd_encode_cache_and_split(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ENV_CACHE, str(tmp_path))
    s = load_fsdd_spikes()
    assert s.spikes.shape == (2700, 100, 64) and len(s) == 2700
    assert set(np.unique(s.labels).tolist()) == set(range(10))
    assert s.indices.min() == 5 and s.indices.max() == 49
    for k in (0, 1234, 2699):
        d, spk, idx = parse_fsdd_name(str(s.names[k]))
        assert (d, spk, idx) == (s.labels[k], s.speakers[k], s.indices[k])
    assert s.spikes.max() == 1
    per_rec = s.spikes.reshape(2700, -1).sum(axis=1)
    assert per_rec.min() > 50
    assert s.report["n_recordings_cut"] >= 1  # a few recordings exceed 1 s even after trimming
    tr, va = s.split(by="index")
    assert va.size == 6 * 10 * 5 and np.isin(s.indices[va], range(5, 10)).all()
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == 2700
    tr_s, va_s = s.split(by="speaker", val_speakers=("theo",))
    assert set(s.speakers[va_s].tolist()) == {"theo"} and "theo" not in set(s.speakers[tr_s])
    assert len(list(tmp_path.glob("fsdd-*.npz"))) == 1
    again = load_fsdd_spikes()
    np.testing.assert_array_equal(again.spikes, s.spikes)
    np.testing.assert_array_equal(again.speakers, s.speakers)
    # a one-file check against the direct encoder
    ds = FSDD()
    x, sr = ds.audio(17)
    np.testing.assert_array_equal(encode_audio(x, sr, CochleaSpec())[0], s.spikes[17])


def test_missing_fsdd_dir(tmp_path):
    with pytest.raises(InputError, match="FSDD recordings folder not found"):
        FSDD(tmp_path / "missing")
