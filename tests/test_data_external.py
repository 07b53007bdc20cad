"""Bring-your-own-download readers: DVS Gesture (tonic .npy and AEDAT 3.1) and SHD (h5).

Each test writes a small file in the real format itself (independently of the reader).
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

from snnc.errors import InputError
from snnc.models.data.binned import bin_source
from snnc.models.data.dvsgesture import (DVSGestureAedat, DVSGestureNpy, read_aedat31,
                                         read_gesture_labels_csv, read_gesture_npy)
from snnc.models.data.events import BinSpec
from snnc.models.data.shd import SHD

# ---------------------------------------------------------------- AEDAT 3.1 writer (test-only)
HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
          b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def _packet(event_type: int, events: list[tuple[int, int, int, int, int]],
            ts_overflow: int = 0) -> bytes:
    """One packet; events are (x, y, p, valid, ts) for polarity, raw pairs otherwise."""
    n = len(events)
    head = struct.pack("<hhiiiiii", event_type, 1, 8, 4, ts_overflow, n, n,
                       sum(e[3] for e in events))
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | v, ts)
                    for x, y, p, v, ts in events)
    return head + body


def _write_aedat(path, packets: list[bytes]) -> None:
    path.write_bytes(HEADER + b"".join(packets))


def test_read_aedat31_polarity_invalid_special_and_overflow(tmp_path):
    f = tmp_path / "rec.aedat"
    _write_aedat(f, [
        _packet(1, [(0, 0, 1, 1, 10), (127, 5, 0, 1, 20), (3, 3, 1, 0, 25)]),
        _packet(0, [(0, 0, 0, 1, 30)]),  # a special-event packet: skipped
        _packet(1, [(64, 127, 1, 1, 7)], ts_overflow=1),
    ])
    ev, info = read_aedat31(f)
    assert ev["x"].tolist() == [0, 127, 64]
    assert ev["y"].tolist() == [0, 5, 127]
    assert ev["p"].tolist() == [1, 0, 1]
    assert ev["t_us"].tolist() == [10, 20, (1 << 31) | 7]
    assert info["n_packets"] == 3 and info["n_skipped_packets"] == 1 and info["n_invalid"] == 1
    assert info["header"][0] == "#!AER-DAT3.1"


def test_read_aedat31_rejects_bad_files(tmp_path):
    f = tmp_path / "bad.aedat"
    f.write_bytes(b"#!AER-DAT2.0\r\n")
    with pytest.raises(InputError, match="not an AEDAT 3.1 file"):
        read_aedat31(f)
    _write_aedat(f, [_packet(1, [(0, 0, 1, 1, 10)])[:-3]])
    with pytest.raises(InputError, match="truncated packet"):
        read_aedat31(f)
    with pytest.raises(InputError, match="not found"):
        read_aedat31(tmp_path / "absent.aedat")


def _gesture_folder(tmp_path):
    root = tmp_path / "DvsGesture"
    root.mkdir()
    # user01: two gestures (classes 1 and 11 in the csv -> 0 and 10)
    _write_aedat(root / "user01_fluorescent.aedat", [
        _packet(1, [(1, 1, 1, 1, 100), (2, 2, 0, 1, 1500), (3, 3, 1, 1, 2600)]),
        _packet(1, [(4, 4, 0, 1, 5000), (5, 5, 1, 1, 5100), (6, 6, 1, 1, 9000)]),
    ])
    (root / "user01_fluorescent_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n1,1000,3000\n11,5000,6000\n")
    _write_aedat(root / "user24_led.aedat", [_packet(1, [(9, 8, 1, 1, 50), (7, 6, 0, 1, 70)])])
    (root / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n4,0,60\n")
    return root


def test_gesture_aedat_dataset_by_user_split(tmp_path):
    root = _gesture_folder(tmp_path)
    train = DVSGestureAedat(root, "train")
    test = DVSGestureAedat(root, "test")
    assert len(train) == 2 and len(test) == 1
    assert train.labels.tolist() == [0, 10] and test.label(0) == 3
    e0 = train.events(0)  # [1000, 3000): events at 1500 and 2600, relative to 1000
    assert e0["t_us"].tolist() == [500, 1600] and e0["x"].tolist() == [2, 3]
    e1 = train.events(1)  # [5000, 6000): 5000 and 5100
    assert e1["t_us"].tolist() == [0, 100] and e1["p"].tolist() == [0, 1]
    assert test.events(0)["t_us"].tolist() == [50]
    frames = bin_source(train, BinSpec(dt_us=1000, n_steps=2)).dense(0)
    assert frames.shape == (2, 2, 128, 128)
    assert frames[0, 0, 2, 2] == 1 and frames[1, 1, 3, 3] == 1 and int(frames.sum()) == 2
    # trial lists, when present, decide the split
    (root / "trials_to_train.txt").write_text("user24_led.aedat\n")
    assert DVSGestureAedat(root, "train").labels.tolist() == [3]


def test_gesture_labels_csv_errors(tmp_path):
    f = tmp_path / "x_labels.csv"
    f.write_text("class,startTime_usec,endTime_usec\n1,2\n")
    with pytest.raises(InputError, match="line 2"):
        read_gesture_labels_csv(f)
    with pytest.raises(InputError, match="not found"):
        DVSGestureAedat(tmp_path / "nothing")


def test_gesture_npy_tonic_layout(tmp_path):
    folder = tmp_path / "ibmGestureTrain" / "user02_led"
    folder.mkdir(parents=True)
    # tonic layout: float columns x, y, p, t in milliseconds
    a = np.array([[10, 20, 1, 0.5], [127, 0, 0, 12.345], [0, 127, 1, 1000.001]])
    np.save(folder / "3.npy", a)
    np.save(folder / "10.npy", a[:1])
    ds = DVSGestureNpy(tmp_path, "train")
    assert len(ds) == 2 and ds.labels.tolist() == [3, 10]
    ev = ds.events(0)
    assert ev["t_us"].tolist() == [500, 12345, 1000001]
    assert ev["x"].tolist() == [10, 127, 0] and ev["y"].tolist() == [20, 0, 127]
    assert ev["p"].tolist() == [1, 0, 1]
    np.testing.assert_array_equal(read_gesture_npy(folder / "10.npy"), ev[:1])
    with pytest.raises(InputError, match="ibmGestureTest"):
        DVSGestureNpy(tmp_path, "test")
    np.save(folder / "4.npy", np.zeros((3, 3)))
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        read_gesture_npy(folder / "4.npy")


def test_shd_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    f = tmp_path / "shd_train.h5"
    times = [np.array([0.0, 0.0123, 0.5], dtype=np.float16), np.array([], dtype=np.float16),
             np.array([0.25], dtype=np.float16)]
    units = [np.array([0, 699, 5], dtype=np.uint16), np.array([], dtype=np.uint16),
             np.array([42], dtype=np.uint16)]
    with h5py.File(f, "w") as h:
        t_ds = h.create_dataset("spikes/times", (3,), dtype=h5py.vlen_dtype(np.float16))
        u_ds = h.create_dataset("spikes/units", (3,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(3):
            t_ds[i] = times[i]
            u_ds[i] = units[i]
        h.create_dataset("labels", data=np.array([3, 19, 0], dtype=np.uint16))
        h.create_dataset("extra/speaker", data=np.array([1, 2, 1], dtype=np.uint16))
        h.create_dataset("extra/keys", data=np.array([b"zero", b"one"]))
    ds = SHD(tmp_path, "train")
    assert len(ds) == 3 and ds.labels.tolist() == [3, 19, 0]
    assert ds.speakers.tolist() == [1, 2, 1]
    ev = ds.events(0)
    expected_t = np.rint(times[0].astype(np.float64) * 1e6).astype(np.int64)
    np.testing.assert_array_equal(ev["t_us"], expected_t)
    assert ev["x"].tolist() == [0, 699, 5] and ev["y"].tolist() == [0, 0, 0]
    assert ds.events(1).size == 0
    report: dict = {}
    fr = ds.frames(0, BinSpec(dt_us=10_000, n_steps=10), report=report)
    assert fr.shape == (10, 700)
    assert fr[0, 0] == 1 and fr[1, 699] == 1 and int(fr.sum()) == 2
    assert report["n_dropped_after"] == 1  # the spike at 0.5 s is beyond 100 ms
    ds.close()
    with pytest.raises(InputError, match="shd_test.h5"):
        SHD(tmp_path, "test")
    with h5py.File(tmp_path / "broken.h5", "w") as h:
        h.create_dataset("labels", data=np.zeros(2))
    with pytest.raises(InputError, match="spikes/times"):
        SHD(tmp_path / "broken.h5")
