"""OpenAI's audio API shapes, built from what a `/v1/audio/...` job stores.

A job stores two objects: the Deepgram result of record (`results/{id}.json`: aligned words,
speakers, utterances) and Whisper's own segments (`results/{id}.segments.json`, a
`TranscriptRecord`: tokens, log-probabilities, temperature, the known speakers' names), which the
worker rewrites segment by segment while a streamed job decodes. Every shape here follows the
official `openai` package's types (`openai.types.audio.*`) field for field. Plain dicts in and
out, no torch: the API and the worker share this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.languages import language_name

OPENAI_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-transcribe",
    "gpt-4o-transcribe-diarize",
)
"""OpenAI's transcription model names this service answers to (each served by a Whisper model)."""
DIARIZE_MODELS = frozenset({"gpt-4o-transcribe-diarize"})


class ResponseFormat(StrEnum):
    JSON = "json"
    TEXT = "text"
    SRT = "srt"
    VERBOSE_JSON = "verbose_json"
    VTT = "vtt"
    DIARIZED_JSON = "diarized_json"


MEDIA_TYPES = {
    ResponseFormat.TEXT: "text/plain; charset=utf-8",
    ResponseFormat.SRT: "application/x-subrip; charset=utf-8",
    ResponseFormat.VTT: "text/vtt; charset=utf-8",
}


# --- what the worker stores ------------------------------------------------------------------------
class WordRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    word: str
    start: float
    end: float
    probability: float


class SegmentRecord(BaseModel):
    """One of Whisper's segments, with what `TranscriptionSegment` needs."""

    model_config = ConfigDict(frozen=True)

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[WordRecord] = []


class TranscriptRecord(BaseModel):
    """`results/{job_id}.segments.json`. `complete` is false while a streamed job is decoding."""

    model_config = ConfigDict(frozen=True)

    language: str
    duration: float
    segments: list[SegmentRecord]
    complete: bool = True
    speakers: dict[str, str] = {}  # diarized cluster ("0", "1", ...) -> known speaker name


# --- errors ----------------------------------------------------------------------------------------
def error_body(
    message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# --- helpers ---------------------------------------------------------------------------------------
def full_text(record: TranscriptRecord) -> str:
    return " ".join(segment.text.strip() for segment in record.segments if segment.text.strip())


def _usage(duration: float) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(duration, 3)}


def logprobs(words: Sequence[WordRecord]) -> list[dict[str, Any]]:
    """`Logprob` entries from Whisper's word probabilities (the word is the token)."""
    entries = []
    for index, word in enumerate(words):
        token = word.word if index == 0 else f" {word.word}"
        entries.append(
            {
                "token": token,
                "logprob": round(math.log(max(word.probability, 1e-12)), 6),
                "bytes": list(token.encode()),
            }
        )
    return entries


def _all_words(record: TranscriptRecord) -> list[WordRecord]:
    return [word for segment in record.segments for word in segment.words]


def speaker_label(speaker: int | None, names: Mapping[str, str]) -> str:
    """A known speaker's name, else `A`, `B`, ... in order of first speech (as OpenAI labels them)."""
    index = speaker or 0
    if str(index) in names:
        return names[str(index)]
    return chr(ord("A") + index) if index < 26 else f"S{index}"


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _segment(segment: SegmentRecord) -> dict[str, Any]:
    return {
        "id": segment.id,
        "seek": segment.seek,
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "tokens": segment.tokens,
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }


def _result_words(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    channels = result.get("results", {}).get("channels") or [{}]
    alternatives = channels[0].get("alternatives") or [{}]
    return list(alternatives[0].get("words", []))


# --- the answers ------------------------------------------------------------------------------------
def transcription(record: TranscriptRecord, *, include_logprobs: bool = False) -> dict[str, Any]:
    """`Transcription` (response_format=json); also `Translation` plus usage."""
    body: dict[str, Any] = {"text": full_text(record)}
    if include_logprobs:
        body["logprobs"] = logprobs(_all_words(record))
    body["usage"] = _usage(record.duration)
    return body


def verbose(
    record: TranscriptRecord,
    result: Mapping[str, Any],
    *,
    words: bool,
    segments: bool,
    task: str = "transcribe",
) -> dict[str, Any]:
    """`TranscriptionVerbose` (or `TranslationVerbose`). Words are the result of record's aligned
    words (the aligning stage's timings); segments are Whisper's."""
    body: dict[str, Any] = {
        "task": task,
        "language": "english" if task == "translate" else language_name(record.language),
        "duration": round(record.duration, 3),
        "text": full_text(record),
    }
    if segments:
        body["segments"] = [_segment(segment) for segment in record.segments]
    if words:
        body["words"] = [
            {"word": w.get("punctuated_word") or w["word"], "start": w["start"], "end": w["end"]}
            for w in _result_words(result)
        ]
    if task == "transcribe":
        body["usage"] = _usage(record.duration)
    return body


def diarized_segments(result: Mapping[str, Any], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """`TranscriptionDiarizedSegment`s: one per utterance (a run of one speaker's words)."""
    segments = []
    for index, utterance in enumerate(result.get("results", {}).get("utterances") or []):
        words = utterance.get("words") or []
        text = " ".join(str(w.get("punctuated_word") or w.get("word", "")) for w in words)
        segments.append(
            {
                "type": "transcript.text.segment",
                "id": f"seg_{index}",
                "start": utterance["start"],
                "end": utterance["end"],
                "text": text or utterance.get("transcript", ""),
                "speaker": speaker_label(utterance.get("speaker"), names),
            }
        )
    return segments


def diarized(record: TranscriptRecord, result: Mapping[str, Any]) -> dict[str, Any]:
    """`TranscriptionDiarized` (response_format=diarized_json)."""
    segments = diarized_segments(result, record.speakers)
    return {
        "task": "transcribe",
        "duration": round(record.duration, 3),
        "text": " ".join(s["text"] for s in segments) or full_text(record),
        "segments": segments,
        "usage": _usage(record.duration),
    }


def srt(record: TranscriptRecord) -> str:
    blocks = [
        f"{n}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for n, s in enumerate(record.segments, start=1)
    ]
    return "\n".join(blocks)


def vtt(record: TranscriptRecord) -> str:
    cues = [
        f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text.strip()}\n"
        for s in record.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def text(record: TranscriptRecord) -> str:
    return full_text(record) + "\n"


# --- streaming (server-sent events) ----------------------------------------------------------------
def delta_event(
    delta: str, *, words: Sequence[WordRecord] | None = None, segment_id: str | None = None
) -> dict[str, Any]:
    """`TranscriptionTextDeltaEvent`."""
    event: dict[str, Any] = {"type": "transcript.text.delta", "delta": delta}
    if words is not None:
        event["logprobs"] = logprobs(words)
    if segment_id is not None:
        event["segment_id"] = segment_id
    return event


def done_event(text: str, *, words: Sequence[WordRecord] | None = None) -> dict[str, Any]:
    """`TranscriptionTextDoneEvent` (its `usage` is token-based only, so it is left out)."""
    event: dict[str, Any] = {"type": "transcript.text.done", "text": text}
    if words is not None:
        event["logprobs"] = logprobs(words)
    return event
