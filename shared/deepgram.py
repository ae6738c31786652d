"""Deepgram pre-recorded response, as pydantic models.

Field names and nesting follow Deepgram's `/v1/listen` response and the seed API's example.
Optional parts (paragraphs, utterances, detected_language) are omitted from JSON when absent,
as Deepgram omits them when not requested.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Word(_Model):
    word: str
    start: float
    end: float
    confidence: float = Field(ge=0.0, le=1.0)
    speaker: int | None = None
    speaker_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    punctuated_word: str | None = None


class Sentence(_Model):
    text: str
    start: float
    end: float


class Paragraph(_Model):
    sentences: list[Sentence]
    speaker: int | None = None
    num_words: int
    start: float
    end: float


class Paragraphs(_Model):
    transcript: str
    paragraphs: list[Paragraph]


class Alternative(_Model):
    transcript: str
    confidence: float = Field(ge=0.0, le=1.0)
    words: list[Word]
    paragraphs: Paragraphs | None = None


class Channel(_Model):
    alternatives: list[Alternative]
    detected_language: str | None = None
    language_confidence: float | None = None


class Utterance(_Model):
    start: float
    end: float
    confidence: float = Field(ge=0.0, le=1.0)
    channel: int
    transcript: str
    words: list[Word]
    speaker: int | None = None
    id: str


class SpeakerTurn(_Model):
    """Added: one speaker's stretch of speech as the diarizer found it. Turns of different speakers
    may overlap in time, unlike `words`, where each word has one (the dominant) speaker."""

    speaker: int
    start: float
    end: float
    confidence: float = Field(ge=0.0, le=1.0)
    channel: int = 0


class Overlap(_Model):
    """Added: a stretch where two or more speakers talk at once, and who they are."""

    start: float
    end: float
    speakers: list[int]
    channel: int = 0


class Results(_Model):
    channels: list[Channel]
    utterances: list[Utterance] | None = None
    speaker_turns: list[SpeakerTurn] | None = None
    """Added (diarized requests): every speaker's own turns, overlapping where the speech does."""
    overlaps: list[Overlap] | None = None
    """Added (diarized requests): where speakers overlap; Deepgram clients ignore both fields."""


class Metadata(_Model):
    transaction_key: str = "deprecated"
    request_id: str
    sha256: str
    created: str
    duration: float = Field(ge=0.0)
    channels: int = Field(ge=1)
    models: list[str]
    model_info: dict[str, Any]


class DeepgramResponse(_Model):
    metadata: Metadata
    results: Results

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict without the optional parts that were not produced."""
        return self.model_dump(mode="json", exclude_none=True)
