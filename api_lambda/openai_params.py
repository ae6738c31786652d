"""The form fields of `POST /v1/audio/transcriptions` and `/translations`, with OpenAI's names.

Model and language go through the same `resolve_options` as `POST /jobs` and `/v1/listen`; the
rest becomes `OpenAIOptions` on the job, which the worker turns into pipeline options. Every
field OpenAI documents either works or is refused with a 400 naming the field (`param`); a field
OpenAI doesn't document is refused too, as OpenAI refuses it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from api_lambda.intake import SpeakerSample
from api_lambda.sniff import check_upload_head
from shared.errors import InvalidAudio, InvalidParameter
from shared.jobs import OpenAIOptions
from shared.languages import normalize_language
from shared.model_catalog import english_only
from shared.openai_format import DIARIZE_MODELS, OPENAI_MODELS, ResponseFormat
from shared.options import JobParameters
from shared.settings import Settings

MAX_SPEAKERS = 4  # OpenAI's limit for known_speaker_names[]
MAX_REFERENCE_BYTES = 2 * 1024 * 1024  # a 10 s reference is ~320 kB as 16 kHz WAV
MAX_PROMPT_CHARS = 4000  # Whisper keeps the last 223 tokens of a prompt anyway
TEMPERATURE_STEP = 0.2  # faster-whisper's fallback schedule: 0.0, 0.2, ... 1.0
STREAMABLE = frozenset({ResponseFormat.JSON, ResponseFormat.TEXT, ResponseFormat.DIARIZED_JSON})
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+/-]*)(?:;[\w=.-]+)*?;base64,(?P<data>.*)$", re.DOTALL)
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}

TRANSCRIPTION_FIELDS = frozenset(
    {
        "file", "model", "language", "languages", "prompt", "response_format", "temperature",
        "timestamp_granularities", "include", "stream", "chunking_strategy", "keywords",
        "known_speaker_names", "known_speaker_references",
    }
)  # fmt: skip
TRANSLATION_FIELDS = frozenset({"file", "model", "prompt", "response_format", "temperature"})


class OpenAIParamError(InvalidParameter):
    """A 400 naming the offending field, as OpenAI reports it."""

    def __init__(self, message: str, param: str | None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.openai_code = code


@dataclass(frozen=True)
class OpenAIRequest:
    form: JobParameters  # model and language, resolved like POST /jobs
    options: OpenAIOptions
    response_format: ResponseFormat
    words: bool = False
    segments: bool = False
    include_logprobs: bool = False
    references: tuple[SpeakerSample, ...] = field(default=())


def _base_name(name: str) -> str:
    """`timestamp_granularities[]` → `timestamp_granularities`; `chunking_strategy[type]` keeps its key."""
    return name.split("[", 1)[0]


class _Fields:
    """Text fields of a multipart form, multi-valued (`name[]` and `name` alike)."""

    def __init__(self, fields: Mapping[str, Sequence[str]]) -> None:
        self.fields = fields

    def all(self, name: str) -> list[str]:
        return [v for key in (name, f"{name}[]") for v in self.fields.get(key, [])]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        if len(values) > 1:
            raise OpenAIParamError(f"'{name}' was given {len(values)} times; send it once", name)
        return values[0].strip() if values and values[0].strip() else None

    def flag(self, name: str) -> bool:
        value = self.one(name)
        if value is None:
            return False
        if value.lower() not in BOOLEANS:
            raise OpenAIParamError(f"Invalid value for '{name}': {value!r}; use true or false", name)
        return BOOLEANS[value.lower()]


def check_fields(names: Sequence[str], allowed: frozenset[str]) -> None:
    for name in names:
        if _base_name(name) not in allowed:
            raise OpenAIParamError(
                f"Unrecognized request argument supplied: {name}", name, "unknown_parameter"
            )


def resolve_model(name: str | None, settings: Settings) -> tuple[str | None, str]:
    """(Whisper model for resolve_options — None: the default —, the name as requested)."""
    if not name:
        raise OpenAIParamError("you must provide a model parameter", "model", "missing_required_parameter")
    if name in OPENAI_MODELS:
        return settings.openai_models.get(name) or None, name
    return name, name


def _temperatures(value: str | None) -> tuple[float, ...]:
    """0 (or none): faster-whisper's fallback schedule from 0 up, as OpenAI describes; t > 0:
    start at t and fall back upwards from there."""
    if value is None:
        return ()
    try:
        temperature = float(value)
    except ValueError:
        temperature = float("nan")
    if not 0.0 <= temperature <= 1.0:
        raise OpenAIParamError(f"temperature must be between 0 and 1, got {value!r}", "temperature")
    if temperature == 0.0:
        return ()
    steps = int((1.0 - temperature) / TEMPERATURE_STEP + 1e-9)
    return tuple(round(temperature + TEMPERATURE_STEP * n, 3) for n in range(steps + 1))


def _chunking(fields: _Fields) -> dict[str, float | int | None]:
    """`auto` (VAD, always on here) or a `server_vad` object mapped to faster-whisper's VadOptions."""
    plain = fields.one("chunking_strategy")
    keys = {k for k in fields.fields if k.startswith("chunking_strategy[") and k != "chunking_strategy[]"}
    none: dict[str, float | int | None] = {}
    if plain is not None and not keys:
        if plain == "auto":
            return none
        raise OpenAIParamError(
            f"Invalid chunking_strategy {plain!r}: use 'auto' or a server_vad object", "chunking_strategy"
        )
    if not keys:
        return none
    values = {k[len("chunking_strategy[") : -1]: fields.fields[k][-1].strip() for k in keys}
    if values.pop("type", None) != "server_vad":
        raise OpenAIParamError("chunking_strategy[type] must be 'server_vad'", "chunking_strategy.type")
    unknown = set(values) - {"threshold", "prefix_padding_ms", "silence_duration_ms"}
    if unknown:
        raise OpenAIParamError(
            f"Unknown chunking_strategy field(s): {', '.join(sorted(unknown))}", "chunking_strategy"
        )
    try:
        threshold = float(values["threshold"]) if "threshold" in values else None
        pad = int(values["prefix_padding_ms"]) if "prefix_padding_ms" in values else None
        silence = int(values["silence_duration_ms"]) if "silence_duration_ms" in values else None
    except ValueError as error:
        raise OpenAIParamError(f"Invalid chunking_strategy value: {error}", "chunking_strategy") from error
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise OpenAIParamError("chunking_strategy threshold must be between 0 and 1", "chunking_strategy")
    if any(v is not None and v < 0 for v in (pad, silence)):
        raise OpenAIParamError("chunking_strategy durations must not be negative", "chunking_strategy")
    return {"vad_threshold": threshold, "vad_speech_pad_ms": pad, "vad_min_silence_ms": silence}


def _references(fields: _Fields) -> tuple[SpeakerSample, ...]:
    names = [n.strip() for n in fields.all("known_speaker_names")]
    urls = fields.all("known_speaker_references")
    if not names and not urls:
        return ()
    if len(names) != len(urls):
        raise OpenAIParamError(
            f"known_speaker_names[] ({len(names)}) and known_speaker_references[] ({len(urls)}) must pair up",
            "known_speaker_references",
        )
    if len(names) > MAX_SPEAKERS:
        raise OpenAIParamError(f"At most {MAX_SPEAKERS} known speakers are supported", "known_speaker_names")
    if not all(names) or len(set(names)) != len(names):
        raise OpenAIParamError("known_speaker_names[] must be distinct and non-empty", "known_speaker_names")
    references = []
    for index, (name, url) in enumerate(zip(names, urls, strict=True)):
        param = f"known_speaker_references[{index}]"
        match = _DATA_URL.match(url.strip())
        if match is None:
            raise OpenAIParamError(f"{param} must be a base64 data URL (data:audio/wav;base64,...)", param)
        try:
            audio = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise OpenAIParamError(f"{param} is not valid base64", param) from error
        if len(audio) > MAX_REFERENCE_BYTES:
            raise OpenAIParamError(
                f"{param} is {len(audio)} bytes; the limit is {MAX_REFERENCE_BYTES}",
                param,
            )
        try:
            check_upload_head(audio, param)
        except InvalidAudio as error:
            raise OpenAIParamError(error.message, param) from error
        references.append(SpeakerSample(name, audio, match["type"] or "application/octet-stream"))
    return tuple(references)


def _response_format(fields: _Fields) -> ResponseFormat:
    value = fields.one("response_format") or ResponseFormat.JSON.value
    try:
        return ResponseFormat(value)
    except ValueError as error:
        choices = ", ".join(f.value for f in ResponseFormat)
        raise OpenAIParamError(
            f"Invalid response_format {value!r}: use one of {choices}", "response_format"
        ) from error


def _language(fields: _Fields) -> str | None:
    language = fields.one("language")
    languages = [v.strip() for v in fields.all("languages") if v.strip()]
    if languages:
        if len(languages) > 1:
            raise OpenAIParamError(
                "Whisper takes one language or detects it: send one of languages[], or none", "languages"
            )
        if language is not None and normalize_language(language) != normalize_language(languages[0]):
            raise OpenAIParamError("language and languages[] disagree", "languages")
        language = languages[0]
    return language


def parse_transcription(fields: Mapping[str, Sequence[str]], settings: Settings) -> OpenAIRequest:
    """Validate a transcription request's text fields (the file is checked by the route)."""
    check_fields(list(fields), TRANSCRIPTION_FIELDS)
    f = _Fields(fields)
    whisper_model, requested = resolve_model(f.one("model"), settings)
    response_format = _response_format(f)
    granularities = [g.strip() for g in f.all("timestamp_granularities") if g.strip()]
    for granularity in granularities:
        if granularity not in ("word", "segment"):
            raise OpenAIParamError(
                f"Invalid timestamp granularity {granularity!r}: use word or segment",
                "timestamp_granularities",
            )
    if granularities and response_format is not ResponseFormat.VERBOSE_JSON:
        raise OpenAIParamError(
            "timestamp_granularities[] needs response_format=verbose_json", "timestamp_granularities"
        )
    include = [i.strip() for i in f.all("include") if i.strip()]
    for item in include:
        if item != "logprobs":
            raise OpenAIParamError(f"Invalid include {item!r}: only logprobs is supported", "include")
    logprobs = bool(include)
    if logprobs and response_format is not ResponseFormat.JSON:
        raise OpenAIParamError("include[]=logprobs needs response_format=json", "include")
    stream = f.flag("stream")
    if stream and response_format not in STREAMABLE:
        raise OpenAIParamError(
            f"stream=true answers with events, which have no {response_format.value} form: use json, "
            "text or diarized_json",
            "stream",
        )
    references = _references(f)
    if references and response_format is not ResponseFormat.DIARIZED_JSON:
        raise OpenAIParamError(
            "known_speaker_names[] needs response_format=diarized_json", "known_speaker_names"
        )
    prompt = f.one("prompt")
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise OpenAIParamError(f"prompt is longer than {MAX_PROMPT_CHARS} characters", "prompt")
    keywords = [k.strip() for k in f.all("keywords") if k.strip()]
    diarize = response_format is ResponseFormat.DIARIZED_JSON or requested in DIARIZE_MODELS
    options = OpenAIOptions(
        requested_model=requested,
        diarize=diarize,
        initial_prompt=prompt,
        hotwords=", ".join(dict.fromkeys(keywords)) or None,
        temperatures=_temperatures(f.one("temperature")),
        stream=stream,
        **_chunking(f),
    )
    return OpenAIRequest(
        form=JobParameters(whisper_model=whisper_model, language=_language(f), diarize=diarize),
        options=options,
        response_format=response_format,
        words="word" in granularities,
        segments="segment" in granularities or not granularities,
        include_logprobs=logprobs,
        references=references,
    )


def parse_translation(fields: Mapping[str, Sequence[str]], settings: Settings) -> OpenAIRequest:
    """A translation into English: Whisper's `translate` task, which .en models can't do."""
    check_fields(list(fields), TRANSLATION_FIELDS)
    f = _Fields(fields)
    whisper_model, requested = resolve_model(f.one("model"), settings)
    response_format = _response_format(f)
    if response_format is ResponseFormat.DIARIZED_JSON:
        raise OpenAIParamError("translations have no diarized_json format", "response_format")
    name = whisper_model or settings.default_whisper_model
    if english_only(name):
        raise OpenAIParamError(
            f"model '{requested}' is served by Whisper '{name}', which is English-only and can't translate; "
            f"use a multilingual model such as '{name.removesuffix('.en')}'",
            "model",
            "model_not_supported",
        )
    prompt = f.one("prompt")
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise OpenAIParamError(f"prompt is longer than {MAX_PROMPT_CHARS} characters", "prompt")
    options = OpenAIOptions(
        requested_model=requested,
        task="translate",
        initial_prompt=prompt,
        temperatures=_temperatures(f.one("temperature")),
    )
    return OpenAIRequest(
        form=JobParameters(whisper_model=whisper_model, diarize=options.diarize),
        options=options,
        response_format=response_format,
        segments=True,
    )
