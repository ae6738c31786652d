"""One CPU thread for the diarizer's small models and matrices on CPU, torch and BLAS alike.

The diarizer's work is many small operations: LSTM time steps (the segmentation model and the
speaker encoder) and 300×300 eigendecompositions (NME-SC, about 30 per file). With two threads each
operation synchronises them, and on a busy 2-core host a thread that lost its core stalls the
other: measured here under load, one thread was 10–20x faster for the LSTMs and 10x faster for
scipy's `eigh` (OpenBLAS), and on an idle host two threads gained little.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def limited_cpu_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads and the BLAS pools (threadpoolctl) at `threads` inside the block,
    restored after it; None leaves both as they are."""
    if not threads:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
