"""Hand freed heap memory back to the OS after a step that churns through many mid-sized buffers.

glibc keeps freed blocks under its mmap threshold (which rises to 32 MiB as large blocks are freed)
in the process heap, so RSS stays up after the work is done. Measured: faster-whisper's Silero VAD
on a 10-minute block (onnxruntime, arena off) left 119 MiB resident after it returned; `malloc_trim`
gave back 88 MiB of it. Elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _malloc_trim() -> Any:  # the C function, or None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)


def release_freed_memory() -> None:
    """glibc's `malloc_trim(0)`: free pages of every arena go back to the OS."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
