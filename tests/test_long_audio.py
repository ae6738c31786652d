"""Long-file transcription in bounded memory (`gpu_worker.pipeline.long_audio`) gives what
faster-whisper gives: the same log-mel, the same speech chunks, the same words at the same times.
Real voices (a LibriSpeech conversation from `evaluation`), the real VAD and tiny.en; the blocks are
made small here so 40 s of a conversation spans several of them."""

from __future__ import annotations

import difflib
from itertools import pairwise

import numpy as np
import pytest

from evaluation.conditions import by_name
from evaluation.conversations import build
from evaluation.metrics import normalise_text, wer
from gpu_worker.pipeline import long_audio, transcribe
from gpu_worker.pipeline.models import get_whisper
from gpu_worker.pipeline.options import PipelineOptions
from gpu_worker.pipeline.types import SAMPLE_RATE, DecodedAudio
from shared.settings import Settings

SPEECH_S = 40
"""Seconds of the conversation used: three blocks of `small_blocks`, and each is transcribed twice."""


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    (spec,) = [s for s in by_name("clean").specs if s.name == "clean-3spk-a"]
    return build(spec).samples[: SPEECH_S * SAMPLE_RATE].astype(np.float32)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(long_audio, "VAD_BLOCK_S", 15.0)
    monkeypatch.setattr(long_audio, "EDGE_SEARCH_S", 5.0)


def _library_extractor():
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor()


def test_block_log_mel_equals_the_library_s(speech: np.ndarray) -> None:
    library = _library_extractor()
    ours = long_audio.block_feature_extractor(library)
    for length in (speech.size, 31 * SAMPLE_RATE + 123, 10 * SAMPLE_RATE):
        expected, got = library(speech[:length], chunk_length=30), ours(speech[:length], chunk_length=30)
        assert got.shape == expected.shape
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)  # float32 rounding of the matmul
    assert (ours.n_samples, ours.nb_max_frames) == (library.n_samples, library.nb_max_frames)


def test_one_block_gives_the_library_s_chunks(speech: np.ndarray) -> None:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    assert speech.size < long_audio.VAD_BLOCK_S * SAMPLE_RATE
    vad = VadOptions(min_silence_duration_ms=500)
    assert long_audio.speech_chunks(speech, vad) == get_speech_timestamps(speech, vad)


def test_chunks_found_block_by_block_cover_the_same_speech(speech: np.ndarray, small_blocks) -> None:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions()
    whole, blocked = get_speech_timestamps(speech, vad), long_audio.speech_chunks(speech, vad)
    assert speech.size > 2 * long_audio.VAD_BLOCK_S * SAMPLE_RATE  # several blocks
    assert all(a["end"] <= b["start"] for a, b in pairwise(blocked))

    def mask(chunks: list[dict[str, int]]) -> np.ndarray:
        covered = np.zeros(speech.size, bool)
        for chunk in chunks:
            covered[chunk["start"] : chunk["end"]] = True
        return covered

    expected, got = mask(whole), mask(blocked)
    assert np.count_nonzero(expected != got) <= 0.03 * np.count_nonzero(expected)


def test_gather_puts_the_chunks_back_to_back(speech: np.ndarray) -> None:
    chunks = [{"start": 100, "end": 5000}, {"start": 9000, "end": 9001}, {"start": 20_000, "end": 40_000}]
    expected = np.concatenate([speech[c["start"] : c["end"]] for c in chunks])
    np.testing.assert_array_equal(long_audio.gather(speech, chunks), expected)
    assert long_audio.gather(speech, []).size == 0


def test_sequential_transcription_gives_faster_whisper_s_words(speech: np.ndarray, small_blocks) -> None:
    from bench.bare import library_features

    whisper = get_whisper("tiny.en", Settings(device="cpu"))
    audio = DecodedAudio(samples=speech, duration=speech.size / SAMPLE_RATE, sha256="x", source_channels=1)
    ours = [w for s in transcribe.run(audio, whisper, PipelineOptions()).segments for w in s.words]
    with library_features(whisper.model):
        segments, _ = whisper.model.transcribe(
            speech, language="en", beam_size=5, word_timestamps=True, vad_filter=True
        )
        library = [w for s in segments for w in s.words or ()]
    texts = [normalise_text(w.text) for w in ours], [normalise_text(w.word) for w in library]
    assert wer(" ".join(texts[1]), " ".join(texts[0])) <= 0.05
    matcher = difflib.SequenceMatcher(a=texts[0], b=texts[1], autojunk=False)
    pairs = [(ours[i + k], library[j + k]) for i, j, n in matcher.get_matching_blocks() for k in range(n)]
    assert len(pairs) >= 0.9 * len(library)
    late = [abs(a.start - b.start) for a, b in pairs if abs(a.start - b.start) > 0.2]
    assert len(late) <= 0.05 * len(pairs)  # re-timed onto the file, not onto the gathered speech
