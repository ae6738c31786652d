"""The transcription options, defined once: names, defaults, ranges and the checks across fields.

Three stages of one set of options:
- `JobParameters`: what a request may ask for (the `POST /jobs` form, `POST /uploads` and
  `POST /jobs` JSON, drop-folder metadata, the client CLI's flags). Only types are checked, so
  a value out of range is refused later with a message that names it and the choices
  (`api_lambda.fleet.resolve_options`), not as a schema error.
- `JobOptions`: the request's options resolved against the deployment's defaults and fleet,
  stored with the job.
- `TranscriptionOptions`: everything the pipeline can be asked to do. A job's options plus what
  the Deepgram and OpenAI endpoints add (`shared.jobs.Job.transcription_options`); the pipeline's
  `PipelineOptions` adds only what no request sets.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.errors import InvalidParameter

DEFAULT_BATCH_SIZE = 1
"""Sequential decoding by default, on every device: batching is a speed option that costs accuracy.

Measured with tiny.en on the real-voice corpus (15 clean and overlapping LibriSpeech conversations,
`evaluation.conditions`): mean WER 0.198 sequential, 0.260 batched at 8 as faster-whisper does by
default, 0.243 with timestamp tokens (the per-segment clips transcribe.run now uses were not measured
on that set). Batched decoding drops the previous-text conditioning and decodes each 30 s window on
its own. On 2 CPU cores it also gained little time; on a GPU it is several times faster, so a
deployment that wants throughput over accuracy sets DEFAULT_BATCH_SIZE (or a request sets batch_size).
"""
MAX_BATCH_SIZE = 64
MAX_SPEAKERS = 32
MAX_SECONDS = 3600.0  # the largest duration an option in seconds (utt_split) may name
DEFAULT_UTT_SPLIT = 0.8  # Deepgram's default pause (s) that starts a new utterance

BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)]
SpeakerCount = Annotated[int, Field(ge=1, le=MAX_SPEAKERS)]
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
Temperature = Annotated[float, Field(ge=0.0, le=1.0)]
Task = Literal["transcribe", "translate"]  # translate: Whisper translates into English


def check_speaker_bounds(
    num_speakers: int | None = None, min_speakers: int | None = None, max_speakers: int | None = None
) -> None:
    """ValueError unless the counts are positive, min ≤ max, and a fixed count lies within them."""
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                        ("max_speakers", max_speakers)):  # fmt: skip
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise ValueError(f"min_speakers ({min_speakers}) is greater than max_speakers ({max_speakers})")
    too_low = num_speakers is not None and min_speakers is not None and num_speakers < min_speakers
    too_high = num_speakers is not None and max_speakers is not None and num_speakers > max_speakers
    if too_low or too_high:
        raise ValueError(f"num_speakers ({num_speakers}) is outside [min_speakers, max_speakers]")


def invalid_parameter(error: ValidationError) -> InvalidParameter:
    """The first problem of a validation error, as the message the API answers with."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "options"
    return InvalidParameter(f"{field}: {first['msg']} (got {first.get('input')!r})")


class JobParameters(BaseModel):
    """What a request may ask for, before defaults are applied (None: the deployment's default).

    A field not named here is refused (422 naming it), never dropped: a typo such as
    `num_speaker=2` would otherwise run a job the caller did not ask for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    whisper_model: str | None = Field(None, description="Default: DEFAULT_WHISPER_MODEL")
    language: str | None = Field(None, description="Whisper language code; empty: detect")
    stemming: bool | None = Field(None, description="Separate vocals first (default: DEFAULT_STEMMING)")
    suppress_numerals: bool = False
    diarize: bool = Field(True, description="Tell speakers apart; false: the transcript alone, faster")
    batch_size: int | None = Field(
        None, description=f"1..{MAX_BATCH_SIZE} (default: DEFAULT_BATCH_SIZE, {DEFAULT_BATCH_SIZE})"
    )
    num_speakers: int | None = Field(None, description="Exact speaker count, if known")
    min_speakers: int | None = None
    max_speakers: int | None = None

    def parameters_given(self) -> set[str]:
        """The parameters the request named (of these fields, not a subclass's)."""
        return self.model_fields_set & set(JobParameters.model_fields)

    def parameters(self) -> JobParameters:
        """These fields alone (a subclass adds others: a file name, a source)."""
        return JobParameters(**self.model_dump(include=set(JobParameters.model_fields)))


class JobOptions(BaseModel):
    """The request's pipeline options, validated by the API and resolved against its defaults.

    Stored with the job (not in the queue message) so the table is the one source of truth.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    whisper_model: str
    language: str | None = None
    stemming: bool = False
    suppress_numerals: bool = False
    diarize: bool = True
    """The seed's `POST /jobs` always diarized, so a stored job without the field is diarized.
    `/v1/listen` and `/v1/audio` jobs set it from their own parameters (`Job.transcription_options`)."""
    batch_size: BatchSize = DEFAULT_BATCH_SIZE
    num_speakers: SpeakerCount | None = None
    min_speakers: SpeakerCount | None = None
    max_speakers: SpeakerCount | None = None

    @model_validator(mode="after")
    def _speaker_bounds_agree(self) -> JobOptions:
        check_speaker_bounds(self.num_speakers, self.min_speakers, self.max_speakers)
        counts = ("num_speakers", "min_speakers", "max_speakers")
        given = [name for name in counts if getattr(self, name) is not None]
        if given and not self.diarize:
            raise ValueError(f"{given[0]} needs diarize=true: a transcript alone has no speakers")
        return self


class TranscriptionOptions(JobOptions):
    """Everything a request can ask of the pipeline: a job's options and the endpoints' extras."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # never read from storage: typos fail

    whisper_model: str = "tiny.en"
    utt_split: Seconds = DEFAULT_UTT_SPLIT
    initial_prompt: str | None = None
    hotwords: str | None = None
    task: Task = "transcribe"
    temperatures: tuple[Temperature, ...] = ()  # empty: faster-whisper's fallback schedule 0.0 .. 1.0
    vad_threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None  # faster-whisper VadOptions
    vad_speech_pad_ms: Annotated[int, Field(ge=0)] | None = None
    vad_min_silence_ms: Annotated[int, Field(ge=0)] | None = None
