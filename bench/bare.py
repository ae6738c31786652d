"""What "bare faster-whisper" means in the benchmarks: the library as shipped, on the pipeline's model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def library_features(model: Any) -> Iterator[None]:
    """The library's own log-mel on the shared model while the block is run: the pipeline installs
    a block-wise one (`gpu_worker.pipeline.long_audio`) that a bare run must not get."""
    from faster_whisper.feature_extractor import FeatureExtractor

    ours = model.feature_extractor
    model.feature_extractor = FeatureExtractor(
        feature_size=ours.mel_filters.shape[0],
        sampling_rate=ours.sampling_rate,
        hop_length=ours.hop_length,
        chunk_length=ours.chunk_length,
        n_fft=ours.n_fft,
    )
    try:
        yield
    finally:
        model.feature_extractor = ours
