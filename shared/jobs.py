"""The job model: what a submitted transcription is, and the states it moves through.

States only move forward: `queued` → `processing` → `completed` | `failed` | `cancelled`
(a job whose worker gives it back returns to `queued`). A job made by `POST /uploads` starts
`awaiting_upload` and becomes `queued` (or `failed`) when its object arrives. The store
enforces this with conditional writes; this module only describes the data.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from shared.options import DEFAULT_UTT_SPLIT, Seconds, Task, Temperature, TranscriptionOptions
from shared.options import JobOptions as JobOptions  # re-exported: a job's options travel with it
from shared.stages import Stage


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED: frozenset[JobStatus] = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class ListenWarning(BaseModel):
    """One entry of Deepgram's `metadata.warnings`: a parameter this deployment didn't fully honour."""

    model_config = ConfigDict(frozen=True)

    parameter: str
    type: str
    message: str


class ListenOptions(BaseModel):
    """What a `POST /v1/listen` asked for beyond `JobOptions`: pipeline extras the seed's form lacks,
    and how to shape the answer (Deepgram returns only the parts a request turns on)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    requested_model: str | None = None  # a Deepgram model name served by the default Whisper model
    diarize: bool = False
    punctuate: bool = False
    smart_format: bool = False
    paragraphs: bool = False
    utterances: bool = False
    utt_split: Seconds = DEFAULT_UTT_SPLIT
    detect_language: bool = False
    multichannel: bool = False
    keyterms: tuple[str, ...] = ()  # `keyterm` and `keywords`, given to Whisper as hotwords
    tags: tuple[str, ...] = ()
    # Text edits the worker applies to the result it stores (shared.listen_text), in Deepgram's way.
    numerals: bool = False  # digits; else numbers are spelled out (Deepgram's default)
    dictation: bool = False
    measurements: bool = False
    filler_words: bool = False
    profanity_filter: bool = False
    redact: tuple[str, ...] = ()  # numbers, pci, ssn (by rule; shared.redaction)
    replace: tuple[tuple[str, str], ...] = ()
    # Shaping of the answer only.
    search: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # echoed in metadata.extra
    warnings: tuple[ListenWarning, ...] = ()  # metadata.warnings: parameters not (fully) honoured


class KnownSpeaker(BaseModel):
    """A name and where its reference sample lies (`uploads/{job_id}/known-speaker-{n}`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    key: str


class OpenAIOptions(BaseModel):
    """What a `/v1/audio/...` request asked for beyond `JobOptions`: Whisper decoding options the
    seed's form lacks, and what the worker must publish for the answer (`shared.openai_format`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    requested_model: str  # the OpenAI-side name (`whisper-1`, `gpt-4o-transcribe-diarize`, `base`, ...)
    task: Task = "transcribe"
    diarize: bool = False
    initial_prompt: str | None = None
    hotwords: str | None = None  # `keywords[]`
    temperatures: tuple[Temperature, ...] = ()  # empty: faster-whisper's default fallback schedule
    vad_threshold: float | None = None  # chunking_strategy server_vad, as faster-whisper VadOptions
    vad_speech_pad_ms: int | None = None
    vad_min_silence_ms: int | None = None
    stream: bool = False  # publish the transcript segment by segment while decoding
    known_speakers: tuple[KnownSpeaker, ...] = ()


# OpenAIOptions fields that are pipeline options of the same names.
_OPENAI_PIPELINE_FIELDS = set(OpenAIOptions.model_fields) & set(TranscriptionOptions.model_fields)


class CallbackTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    method: str = "POST"
    token: str | None = None  # sent as `dg-token`: the identifier of the API key that submitted the job


class CallbackAttempt(BaseModel):
    """One delivery of a job's result to its callback URL."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    at: str
    status_code: int | None = None  # None: no HTTP answer (refused, timed out)
    error: str | None = None


class Job(BaseModel):
    """One row of the jobs table."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    status: JobStatus
    created_at: str  # ISO-8601 UTC with microseconds: the status index's range key, sorts by time
    updated_at: str
    expires_at: int  # epoch seconds; DynamoDB TTL. Past it, the job reads as gone.
    options: JobOptions
    upload_key: str
    filename: str
    size_bytes: int = 0  # while awaiting_upload: the declared size (0: none declared)
    content_type: str | None = None  # while awaiting_upload: the declared type the upload must have
    progress: Stage | None = None
    error: str | None = None  # why the job failed, for the user
    last_error: str | None = None  # why the last attempt gave the job back (retryable errors)
    owner: str | None = None  # worker thread holding the claim (or that finished the job)
    lease_expires_at: float | None = None  # epoch seconds; the claim is void after it
    attempts: int = 0  # claims so far: one per pipeline run
    cancel_requested: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    project_id: str | None = None  # the API key's project; None when submitted without auth
    source_url: str | None = None  # audio the worker fetches (then `upload_key` is empty)
    listen: ListenOptions | None = None  # set for `POST /v1/listen` jobs
    openai: OpenAIOptions | None = None  # set for `POST /v1/audio/...` jobs
    callback: CallbackTarget | None = None
    callback_attempts: tuple[CallbackAttempt, ...] = ()
    callback_status: str | None = None  # "retrying", then "delivered" or "failed"
    result_copy_key: str | None = None  # drop-folder jobs: the result is also written here
    # Names given to diarized speakers (`PUT /jobs/{id}/speakers`): Deepgram speaker id as a
    # string (DynamoDB map keys are strings) → display name, used by the exports.
    speaker_names: dict[str, str] | None = None

    def transcription_options(self) -> TranscriptionOptions:
        """What the pipeline is asked to do: the `POST /jobs` options (diarized unless asked not), or for a
        `/v1/listen` job Deepgram's diarize (default off), utt_split and key terms, or for a
        `/v1/audio` job Whisper's decoding options and diarize when asked."""
        common = self.options.model_dump()
        if self.openai is not None:
            extras = self.openai.model_dump(include=_OPENAI_PIPELINE_FIELDS)
            return TranscriptionOptions(**{**common, **extras})
        if self.listen is not None:
            listen = self.listen
            hotwords = ", ".join(listen.keyterms) if listen.keyterms else None
            listen_fields = {"diarize": listen.diarize, "utt_split": listen.utt_split, "hotwords": hotwords}
            return TranscriptionOptions(**{**common, **listen_fields})
        return TranscriptionOptions(**common)

    @property
    def first_stage(self) -> Stage:
        """The stage a just-claimed job is about to run (what `progress` shows until it reports)."""
        return Stage.SEPARATING_VOCALS if self.options.stemming else Stage.TRANSCRIBING


def new_job_id() -> str:
    return str(uuid.uuid4())


def utc_now_iso() -> str:
    """Fixed-width ISO-8601, so string order is time order (the status index sorts on it)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
