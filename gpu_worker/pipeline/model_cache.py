"""Loaded models, once per worker process: one cache and one lock that every stage loads through.

A key names what was loaded (model kind, where from, device, and whatever else changes the loaded
object); the loader runs only on a miss. The lock is re-entrant because one loader may load another
model (a diarizer's encoder), and it is held while loading so two threads of a worker never read
the same weights twice. Models are few and large, and a worker keeps what it has loaded: nothing is
evicted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_LOCK = threading.RLock()
_LOADED: dict[Hashable, Any] = {}


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """The model stored under `key`, loaded by `load()` the first time it is asked for."""
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]


def loaded_kinds() -> list[str]:
    """The first element of each key (the model kind), for warm-up checks and logs."""
    with _LOCK:
        return [str(key[0]) if isinstance(key, tuple) else str(key) for key in _LOADED]


def clear() -> None:
    """Forget every loaded model (tests; a worker never needs it)."""
    with _LOCK:
        _LOADED.clear()
