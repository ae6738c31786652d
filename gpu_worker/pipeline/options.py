"""What a caller can ask of the pipeline. Validated once here, so every stage can trust it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.errors import InvalidParameter

DEFAULT_BATCH_SIZE = 1
"""Sequential decoding by default, on every device: batching is a speed option that costs accuracy.

Measured with tiny.en on the real-voice corpus (15 clean and overlapping LibriSpeech conversations,
`evaluation.conditions`): mean WER 0.198 sequential, 0.260 batched at 8 as faster-whisper does by
default, 0.243 with timestamp tokens (the per-segment clips transcribe.run now uses were not measured
on that set). Batched decoding drops the
previous-text conditioning and decodes each 30 s window on its own. On 2 CPU cores it also gained
little time; on a GPU it is several times faster, so a deployment that wants throughput over
accuracy sets DEFAULT_BATCH_SIZE (or a request sets batch_size).
"""


TASKS = ("transcribe", "translate")


@dataclass(frozen=True)
class PipelineOptions:
    whisper_model: str = "tiny.en"
    language: str | None = None
    stemming: bool = False
    suppress_numerals: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    diarize: bool = True
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    utt_split: float = 0.8
    initial_prompt: str | None = None
    hotwords: str | None = None
    beam_size: int = 5
    task: str = "transcribe"  # or "translate" (Whisper translates into English)
    temperatures: tuple[float, ...] = ()  # empty: faster-whisper's fallback schedule 0.0, 0.2, ... 1.0
    vad_threshold: float | None = None  # faster-whisper VadOptions overrides; None: its defaults
    vad_speech_pad_ms: int | None = None
    vad_min_silence_ms: int | None = None
    known_speakers: tuple[tuple[str, Path], ...] = ()  # (name, reference sample) to name speakers by

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidParameter(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if any(not 0.0 <= t <= 1.0 for t in self.temperatures):
            raise InvalidParameter(f"temperatures must be between 0 and 1, got {self.temperatures}")
        if not 1 <= self.batch_size <= 64:
            raise InvalidParameter(f"batch_size must be between 1 and 64, got {self.batch_size}")
        if self.utt_split <= 0:
            raise InvalidParameter(f"utt_split must be positive, got {self.utt_split}")
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 32:
                raise InvalidParameter(f"{name} must be between 1 and 32, got {value}")
        if (
            self.min_speakers is not None
            and self.max_speakers is not None
            and self.min_speakers > self.max_speakers
        ):
            raise InvalidParameter(
                f"min_speakers ({self.min_speakers}) is greater than max_speakers ({self.max_speakers})"
            )

    @property
    def vad_parameters(self) -> dict[str, float | int] | None:
        """faster-whisper's `vad_parameters` for the overrides given; None keeps its defaults."""
        given = {
            "threshold": self.vad_threshold,
            "speech_pad_ms": self.vad_speech_pad_ms,
            "min_silence_duration_ms": self.vad_min_silence_ms,
        }
        chosen = {name: value for name, value in given.items() if value is not None}
        return chosen or None
