"""The seed's progress stages, in the order the pipeline runs them."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    SEPARATING_VOCALS = "separating_vocals"
    TRANSCRIBING = "transcribing"
    ALIGNING = "aligning"
    DIARIZING = "diarizing"
    POST_PROCESSING = "post_processing"
    GENERATING_OUTPUT = "generating_output"


PIPELINE_STAGES: tuple[Stage, ...] = tuple(Stage)
