"""Transcription of real recorded voices (LibriSpeech excerpt in tests/data) with default options.

The reference texts are Whisper-base transcripts of each isolated clean utterance (see
tests/data/librispeech/README.md), so WER here measures what the pipeline loses or garbles when
utterances are put together, not tiny.en's absolute accuracy.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from evaluation.librispeech import SAMPLE_RATE, by_speaker
from evaluation.metrics import wer as word_error_rate
from gpu_worker.pipeline.options import DEFAULT_BATCH_SIZE, PipelineOptions
from gpu_worker.pipeline.run import run_pipeline
from tests.speech_metrics import transcript


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def two_voices_after_a_pause(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A man, 1.2 s of silence, then a woman: about 12 s, the case where batched decoding used to
    stop after the first sentence."""
    speakers = by_speaker("test-other")
    first = next(u for u in speakers["1688"] if 4.0 <= u.duration <= 7.0)
    second = next(u for u in speakers["1998"] if 4.0 <= u.duration <= 7.0)
    pause = np.zeros(int(1.2 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([first.samples(), pause, second.samples()])
    path = _write_wav(tmp_path_factory.mktemp("voices") / "two_voices.wav", audio)
    return path, f"{first.text} {second.text}"


@pytest.mark.parametrize("batch_size", [1, 8])
def test_no_sentence_is_dropped_after_a_pause(two_voices_after_a_pause, batch_size: int) -> None:
    path, reference = two_voices_after_a_pause
    response = run_pipeline(path, PipelineOptions(batch_size=batch_size))
    hypothesis = transcript(response)
    # Dropping the second sentence alone costs about 50 % WER.
    assert word_error_rate(reference, hypothesis) <= 0.2, hypothesis
    assert response.results.channels[0].alternatives[0].words[-1].end > 8.0


def test_default_options_decode_sequentially(two_voices_after_a_pause) -> None:
    """No batch size asked for: sequential decoding, the same as bare faster-whisper at batch 1."""
    path, _ = two_voices_after_a_pause
    response = run_pipeline(path, PipelineOptions())
    assert response.metadata.model_info["batch_size"] == DEFAULT_BATCH_SIZE == 1
