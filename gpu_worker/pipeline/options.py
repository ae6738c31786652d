"""What a caller can ask of the pipeline: `shared.options.TranscriptionOptions` (the one options
definition, with its defaults and ranges) plus what only the pipeline's own callers set. Validated
once here, so every stage can trust it; a bad value is an `InvalidParameter`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator

from shared.options import DEFAULT_BATCH_SIZE, TranscriptionOptions, invalid_parameter

__all__ = ["DEFAULT_BATCH_SIZE", "PipelineOptions"]


class PipelineOptions(TranscriptionOptions):
    beam_size: int = 5
    known_speakers: tuple[tuple[str, Path], ...] = ()  # (name, reference sample) to name speakers by

    @model_validator(mode="wrap")
    @classmethod
    def _invalid_parameter(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as error:
            raise invalid_parameter(error) from None

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
