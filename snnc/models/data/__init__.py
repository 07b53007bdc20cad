"""Data sets, event helpers and caches for training and evaluating the model zoo.

numpy-only modules: ``events`` (event lists, dense frames), ``binned`` (sparse store and
cache), ``nmnist``, ``skipsnn``, ``fsdd``, ``dvsgesture``, ``shd`` (h5py on use), ``splits``,
``paths``. ``torch_datasets`` imports torch and is loaded only when one of its names is used.
Nothing here downloads anything.
"""
from __future__ import annotations

from typing import Any

from snnc.models.data.binned import BinnedSet, bin_source, cached
from snnc.models.data.dvsgesture import (GESTURE_CLASSES, GESTURE_SENSOR_CHW, DVSGestureAedat,
                                         DVSGestureNpy, read_aedat31, read_gesture_labels_csv,
                                         read_gesture_npy)
from snnc.formats.events import (EVENT_DTYPE, BinSpec, as_events, crop_events,
                                     dense_to_events, events_to_dense, events_to_sparse,
                                     make_events, pool_events, sparse_to_dense)
from snnc.models.data.fsdd import (FSDD, CochleaSpec, FSDDSpikes, encode_audio, encode_fsdd,
                                   load_fsdd_spikes, mel_filterbank, read_wav)
from snnc.models.data.nmnist import (NMNIST_SENSOR_CHW, NMNISTFolder, NMNISTSmall,
                                     decode_nmnist_bytes, encode_nmnist_events,
                                     load_nmnist_small_binned, read_labels_txt, read_nmnist_bin,
                                     write_nmnist_bin)
from snnc.models.data.paths import default_cache_dir, default_data_dir, repo_root
from snnc.models.data.shd import SHD, SHD_SENSOR_CHW
from snnc.models.data.skipsnn import (SkipSNNNoiseSpec, SkipSNNNoisyNMNIST, load_skipsnn_nmnist,
                                      make_noise)
from snnc.models.data.splits import split_by_groups, stratified_split

_TORCH_NAMES = ("BinnedDataset", "ArrayDataset", "EventFramesDataset", "SkipSNNDataset",
                "iterate_batches")


def __getattr__(name: str) -> Any:
    """Load the torch wrappers lazily so the numpy parts import without torch."""
    if name in _TORCH_NAMES:
        from snnc.models.data import torch_datasets
        return getattr(torch_datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EVENT_DTYPE", "BinSpec", "as_events", "make_events", "crop_events", "pool_events",
    "events_to_dense", "events_to_sparse", "sparse_to_dense", "dense_to_events",
    "BinnedSet", "bin_source", "cached", "stratified_split", "split_by_groups",
    "NMNIST_SENSOR_CHW", "NMNISTSmall", "NMNISTFolder", "read_nmnist_bin", "write_nmnist_bin",
    "decode_nmnist_bytes", "encode_nmnist_events", "read_labels_txt", "load_nmnist_small_binned",
    "SkipSNNNoiseSpec", "SkipSNNNoisyNMNIST", "load_skipsnn_nmnist", "make_noise",
    "FSDD", "FSDDSpikes", "CochleaSpec", "encode_audio", "encode_fsdd", "load_fsdd_spikes",
    "mel_filterbank", "read_wav",
    "GESTURE_CLASSES", "GESTURE_SENSOR_CHW", "DVSGestureNpy", "DVSGestureAedat",
    "read_aedat31", "read_gesture_labels_csv", "read_gesture_npy",
    "SHD", "SHD_SENSOR_CHW", "default_data_dir", "default_cache_dir", "repo_root",
    *_TORCH_NAMES,
]
