"""The windows' speaker embeddings on real LibriSpeech speech: the batched path (one filterbank
product for all windows, one LSTM pass per batch) gives what resemblyzer's own functions give
window by window, and the diarizer's CPU thread limit restores the process settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from resemblyzer.audio import wav_to_mel_spectrogram

from evaluation.librispeech import by_speaker
from gpu_worker.pipeline.cpu_threads import limited_cpu_threads
from gpu_worker.pipeline.diarization.embeddings import (
    Window,
    embed_windows,
    load_encoder,
    mel_frames,
    normalize_volume,
)
from gpu_worker.pipeline.types import SAMPLE_RATE


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Two real voices one after the other (test-other speakers of both sexes)."""
    speakers = list(by_speaker("test-other").values())
    return np.concatenate([speakers[0][0].samples(), speakers[1][0].samples()]).astype(np.float32)


def test_mel_frames_equal_resemblyzers_for_every_clip_length(speech: np.ndarray) -> None:
    clips = [
        speech[start : start + length]
        for start, length in [(0, 24000), (8000, 24000), (500, 1600), (0, 23999)]
    ]
    for ours, theirs in zip(mel_frames(clips), [wav_to_mel_spectrogram(c) for c in clips], strict=True):
        assert ours.shape == theirs.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * float(theirs.max()))


def test_batched_window_embeddings_equal_the_encoders_own(speech: np.ndarray) -> None:
    size = int(1.5 * SAMPLE_RATE)
    windows = [Window(start, start + size) for start in range(0, speech.size - size, SAMPLE_RATE // 2)][:40]
    windows.append(Window(1000, 1000 + SAMPLE_RATE // 2))  # a shorter one, batched with the rest
    ours = embed_windows(speech, windows)
    encoder = load_encoder("cpu")
    for row, window in enumerate(windows):
        mel = wav_to_mel_spectrogram(normalize_volume(speech[window.start : window.end]))
        with torch.no_grad():
            theirs = encoder(torch.from_numpy(mel[None]))[0].numpy()  # VoiceEncoder.forward
        assert float(ours[row] @ theirs) > 0.9999, row


def test_the_thread_limit_is_restored() -> None:
    from threadpoolctl import threadpool_info

    torch_before = torch.get_num_threads()
    blas_before = [pool["num_threads"] for pool in threadpool_info()]
    with limited_cpu_threads(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == torch_before
    assert [pool["num_threads"] for pool in threadpool_info()] == blas_before
