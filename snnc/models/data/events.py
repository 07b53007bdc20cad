"""Event lists and dense frames: :mod:`snnc.formats.events` (this name is kept for existing imports)."""
from snnc.formats.events import (EVENT_DTYPE, MODES, BinSpec, as_events, check_in_sensor, crop_events,
                                 dense_to_events, events_to_dense, events_to_sparse, make_events, pool_events,
                                 sparse_to_dense)

__all__ = ["EVENT_DTYPE", "MODES", "BinSpec", "as_events", "check_in_sensor", "crop_events", "dense_to_events",
           "events_to_dense", "events_to_sparse", "make_events", "pool_events", "sparse_to_dense"]
