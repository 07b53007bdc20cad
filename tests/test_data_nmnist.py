"""N-MNIST readers, splits, binning and cached loader (real nmnist-small files)."""
from __future__ import annotations

import numpy as np
import pytest

from snnc.errors import InputError
from snnc.models.data import paths
from snnc.models.data.events import BinSpec, events_to_dense
from snnc.models.data.nmnist import (NMNISTFolder, NMNISTSmall, decode_nmnist_bytes,
                                     encode_nmnist_events, load_nmnist_small_binned,
                                     nmnist_small_dir, read_nmnist_bin, write_nmnist_bin)

pytestmark = pytest.mark.skipif(
    not (nmnist_small_dir() / "labels.txt").is_file(),
    reason=f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")


@pytest.fixture(scope="module")
def ds() -> NMNISTSmall:
    return NMNISTSmall()


def test_decode_hand_made_bytes():
    raw = bytes([3, 4, 0x80 | 0x01, 0x02, 0x03,  33, 0, 0x7F, 0xFF, 0xFF])
    ev = decode_nmnist_bytes(raw)
    assert ev["x"].tolist() == [3, 33] and ev["y"].tolist() == [4, 0]
    assert ev["p"].tolist() == [1, 0]
    assert ev["t_us"].tolist() == [0x010203, (1 << 23) - 1]
    assert encode_nmnist_events(ev) == raw
    with pytest.raises(InputError, match="not a multiple of 5"):
        decode_nmnist_bytes(raw[:-1])


def test_read_sample_1(ds):
    ev = read_nmnist_bin(nmnist_small_dir() / "1.bin")
    assert ds.sample_ids[0] == 1 and ds.label(0) == 5  # labels.txt: "1<TAB>5"
    np.testing.assert_array_equal(ds.events(0), ev)
    assert 1000 < ev.size < 10000
    assert ev["x"].min() >= 0 and ev["x"].max() == 33
    assert ev["y"].min() >= 0 and ev["y"].max() == 33
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    assert 250_000 < int(ev["t_us"].max()) < 350_000  # about 300 ms
    assert np.all(np.diff(ev["t_us"]) >= 0)


def test_labels_and_split(ds):
    assert len(ds) == 1000
    assert set(np.unique(ds.labels).tolist()) == set(range(10))
    tr, va = ds.split(val_fraction=0.2, seed=0)
    tr2, va2 = ds.split(val_fraction=0.2, seed=0)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(va, va2)
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == 1000
    counts = np.bincount(ds.labels, minlength=10)
    np.testing.assert_array_equal(np.bincount(ds.labels[va], minlength=10),
                                  np.rint(counts * 0.2).astype(int))
    _, va3 = ds.split(val_fraction=0.2, seed=1)
    assert not np.array_equal(va, va3)


def test_cached_loader_bins_all_and_reuses_cache(tmp_path, monkeypatch, ds):
    monkeypatch.setenv(paths.ENV_CACHE, str(tmp_path))
    spec = BinSpec(dt_us=1000, n_steps=300, mode="count")
    b = load_nmnist_small_binned(spec)
    assert len(b) == 1000 and b.shape == (300, 2, 34, 34)
    np.testing.assert_array_equal(b.labels, ds.labels)
    np.testing.assert_array_equal(b.sample_ids, ds.sample_ids)
    assert b.meta["cache_path"].startswith(str(tmp_path))
    # every event is either binned or reported as late (recordings run up to ~315 ms)
    total = int(b.values.astype(np.int64).sum())
    assert total + b.report["n_dropped_after"] == b.report["n_events"]
    assert b.report["n_dropped_after"] > 0
    for i in (0, 517, 999):
        np.testing.assert_array_equal(
            b.dense(i), events_to_dense(ds.events(i), 1000, (2, 34, 34), 300))
    again = load_nmnist_small_binned(spec)
    np.testing.assert_array_equal(again.dense_batch([0, 1]), b.dense_batch([0, 1]))
    assert len(list(tmp_path.glob("nmnist-small-*.npz"))) == 1


def test_pool_and_crop_on_real_sample(ds):
    full = ds.frames(3, BinSpec(dt_us=10_000, n_steps=32))
    pooled = ds.frames(3, BinSpec(dt_us=10_000, n_steps=32, pool=2))
    assert pooled.shape == (32, 2, 17, 17)
    np.testing.assert_array_equal(
        pooled, full.reshape(32, 2, 17, 2, 17, 2).sum(axis=(3, 5)))
    crop = ds.frames(3, BinSpec(dt_us=10_000, n_steps=32, crop_yxhw=(1, 1, 32, 32)))
    np.testing.assert_array_equal(crop, full[:, :, 1:33, 1:33])


def test_missing_data_dir_is_clear(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    monkeypatch.setenv(paths.ENV_DATA, str(missing))
    with pytest.raises(InputError) as err:
        NMNISTSmall()
    msg = str(err.value)
    assert str(missing / "nmnist-small" / "train") in msg and "SNNC_DATA" in msg


def test_default_paths(monkeypatch):
    monkeypatch.delenv(paths.ENV_DATA, raising=False)
    monkeypatch.delenv(paths.ENV_CACHE, raising=False)
    root = paths.repo_root()
    assert (root / "snnc" / "models" / "data" / "paths.py").is_file()
    assert paths.default_data_dir() == (root.parent / "shared" / "data").resolve()
    assert paths.default_cache_dir() == root / ".cache"


def test_full_nmnist_folder_layout(tmp_path, ds):
    for split, ids in (("Train", [0, 1, 2]), ("Test", [3])):
        for i in ids:
            d = tmp_path / split / str(ds.label(i))
            d.mkdir(parents=True, exist_ok=True)
            write_nmnist_bin(d / f"{i:05d}.bin", ds.events(i))
    train = NMNISTFolder(tmp_path, "train")
    test = NMNISTFolder(tmp_path, "TEST")
    assert len(train) == 3 and len(test) == 1
    assert sorted(train.labels.tolist()) == sorted(ds.labels[:3].tolist())
    assert test.label(0) == ds.label(3)
    np.testing.assert_array_equal(test.events(0), ds.events(3))
    # bytes are identical to the original file
    assert (test.files[0]).read_bytes() == ds.path(3).read_bytes()
    with pytest.raises(InputError, match="not found"):
        NMNISTFolder(tmp_path / "absent")


def test_torch_wrappers(tmp_path, monkeypatch, ds):
    torch = pytest.importorskip("torch")
    from snnc.models.data import BinnedDataset, iterate_batches
    monkeypatch.setenv(paths.ENV_CACHE, str(tmp_path))
    b = load_nmnist_small_binned(BinSpec(dt_us=5000, n_steps=60, mode="binary"))
    tr, va = ds.split(0.1, seed=0)
    tds = BinnedDataset(b, va)
    x, y = tds[0]
    assert x.shape == (60, 2, 34, 34) and x.dtype == torch.float32 and y == ds.label(int(va[0]))
    assert float(x.max()) == 1.0
    loader = torch.utils.data.DataLoader(tds, batch_size=16)
    xb, yb = next(iter(loader))
    assert xb.shape == (16, 60, 2, 34, 34)
    batches = list(iterate_batches(b, tr, batch_size=128, shuffle=True, seed=0, flatten=True))
    assert sum(len(bb[1]) for bb in batches) == tr.size
    assert batches[0][0].shape == (128, 60, 2312)
    seen = torch.cat([bb[1] for bb in batches]).numpy()
    np.testing.assert_array_equal(np.sort(seen), np.sort(ds.labels[tr]))
