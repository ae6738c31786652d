"""Speech regions: where the windows diarizer looks for voices.

faster-whisper's bundled Silero VAD (ONNX, offline) with a short minimum silence, so that the
pause at a turn change usually splits a region and a window seldom spans two speakers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpu_worker.pipeline.types import SAMPLE_RATE


@dataclass(frozen=True)
class VadParams:
    """Silero VAD settings for diarization: tighter than faster-whisper's defaults for transcription
    (2000 ms of silence ends a region, 400 ms of padding), which keep whole exchanges in one region."""

    threshold: float = 0.5
    """Speech probability (0–1) above which a frame is speech: Silero's and faster-whisper's default,
    the one transcription uses unless a request sets its own."""
    min_silence_ms: int = 200
    """Milliseconds of silence that end a region: short enough that the pause at a turn change
    usually splits it, so that a window seldom spans two speakers."""
    speech_pad_ms: int = 50
    """Milliseconds added at each end of a region: under half of `min_silence_ms`, so that the padding
    of two neighbours never closes the pause that split them (speech_regions would join them)."""
    min_speech_ms: int = 100
    """Milliseconds below which a burst (a click, a breath) is not a speech region (faster-whisper's
    default is 0: every burst counts)."""


@dataclass(frozen=True)
class Region:
    """A stretch of audio in samples (end exclusive): a speech region, or a window cut from one."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def speech_regions(samples: np.ndarray, params: VadParams = VadParams()) -> list[Region]:
    """Sorted, non-overlapping speech regions of 16 kHz mono float32 samples."""
    if samples.size == 0:
        return []
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=params.threshold,
        min_silence_duration_ms=params.min_silence_ms,
        speech_pad_ms=params.speech_pad_ms,
        min_speech_duration_ms=params.min_speech_ms,
    )
    stamps = get_speech_timestamps(samples.astype(np.float32, copy=False), options, SAMPLE_RATE)
    regions: list[Region] = []
    for stamp in stamps:
        start, end = max(0, int(stamp["start"])), min(samples.size, int(stamp["end"]))
        if regions and start <= regions[-1].end:  # padding can make neighbours touch
            regions[-1] = Region(regions[-1].start, max(end, regions[-1].end))
        elif end > start:
            regions.append(Region(start, end))
    return regions
