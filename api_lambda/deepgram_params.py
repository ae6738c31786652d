"""`POST /v1/listen`'s query parameters, with Deepgram's names, defaults and value forms.

Unknown parameters are ignored, as Deepgram ignores them; a known one with a value it can't take
is an `InvalidParameter` (400 in Deepgram's error shape), and a documented one this deployment
can't honour gets a `metadata.warnings` entry (api_lambda.deepgram_features). Model and language
choices then go through the same `resolve_options` as `POST /jobs`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from api_lambda.deepgram_features import PARTIAL, parse_features, warning
from api_lambda.raw_audio import RawAudio, parse_raw_audio
from shared.deepgram_models import accepted_names, explicit_whisper, is_family
from shared.errors import InvalidParameter
from shared.fleet import FleetCapabilities
from shared.jobs import CallbackTarget, ListenOptions
from shared.model_catalog import KNOWN_MODELS
from shared.options import DEFAULT_UTT_SPLIT, MAX_SECONDS, JobParameters
from shared.settings import Settings
from shared.url_policy import UrlFetchError, check_url

BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
CALLBACK_METHODS = ("POST", "PUT")
DIARIZE_MODELS = ("latest", "v1", "v2")
_INTENSIFIER = re.compile(r":-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class ListenRequest:
    form: JobParameters  # model and language, resolved like POST /jobs
    listen: ListenOptions
    callback: CallbackTarget | None
    raw_audio: RawAudio | None = None  # `encoding` (+ `sample_rate`, `channels`) of a headerless body
    whisper_name: str | None = None  # `model=` was neither a Deepgram name nor unset

    def check_model(self, fleet: FleetCapabilities) -> None:
        """An unknown `model` is refused with the names /v1/listen takes (Deepgram's, then Whisper's)."""
        name = self.whisper_name
        if name is not None and name not in KNOWN_MODELS and name not in fleet.models:
            whisper = ", ".join(dict.fromkeys([*KNOWN_MODELS, *fleet.models]))
            raise InvalidParameter(
                f"Unknown model '{name}'. This deployment accepts the Deepgram names {accepted_names()}, "
                f"or a Whisper model name: {whisper}"
            )


class _Params:
    """Multi-valued query parameters; the last value of a single-valued one wins."""

    def __init__(self, params: Mapping[str, Sequence[str]]) -> None:
        self.params = params

    def all(self, name: str) -> list[str]:
        return [v for v in self.params.get(name, []) if v.strip()]

    def one(self, name: str) -> str | None:
        values = self.params.get(name, [])
        return values[-1].strip() if values else None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.one(name)
        if value is None:
            return default
        if value.lower() not in BOOLEANS:
            raise InvalidParameter(f"Invalid value for '{name}': {value!r}; use true or false")
        return BOOLEANS[value.lower()]

    def number(self, name: str, default: float) -> float:
        value = self.one(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not 0 < number <= MAX_SECONDS:  # also refuses nan and inf
            raise InvalidParameter(
                f"Invalid value for '{name}': {value!r}; use a positive number of seconds "
                f"(at most {MAX_SECONDS:g})"
            )
        return number


def _model(name: str | None) -> tuple[str | None, str | None]:
    """(Whisper model for resolve_options, Deepgram name it stands for); None: the default model."""
    if not name:
        return None, None
    if explicit_whisper(name):
        return explicit_whisper(name), name
    if is_family(name):
        return None, name
    return name, None


def _diarize(params: _Params) -> tuple[bool, list]:
    """`diarize_model` (latest, v1, v2) turns diarization on; `diarize` still works (deprecated)."""
    model = params.one("diarize_model")
    if model is not None and model.lower() not in DIARIZE_MODELS:
        raise InvalidParameter(f"Invalid value for 'diarize_model': {model!r}; use latest, v1 or v2")
    warnings = []
    if model and model.lower() != "latest":
        warnings.append(
            warning("diarize_model", PARTIAL, "every diarize_model is served by this deployment's diarizer")
        )
    return bool(model) or params.flag("diarize"), warnings


def _detect(params: _Params) -> tuple[bool, list]:
    """`detect_language=true`, or a list of languages to choose from (detection is then unrestricted)."""
    values = [v.lower() for v in params.all("detect_language")]
    if not values:
        return False, []
    if all(v in BOOLEANS for v in values):
        return params.flag("detect_language"), []
    note = "any language is detected; the list of candidates is not used"
    return True, [warning("detect_language", PARTIAL, note)]


def _language(params: _Params, detect: bool) -> str:
    """Deepgram's default is English; `multi` and `detect_language=true` mean detect (empty)."""
    language = params.one("language")
    if detect or (language or "").lower() == "multi":
        return ""
    return language or "en"


def _callback(params: _Params, settings: Settings) -> CallbackTarget | None:
    url = params.one("callback")
    method = (params.one("callback_method") or "POST").upper()
    if method not in CALLBACK_METHODS:
        raise InvalidParameter(f"Invalid value for 'callback_method': {method.lower()!r}; use post or put")
    if not url:
        return None
    try:
        check_url(url, allow_private=settings.url_fetch_allow_private)
    except UrlFetchError as error:
        raise InvalidParameter(f"Invalid 'callback': {error.message}") from error
    return CallbackTarget(url=url, method=method)


def parse_listen_params(params: Mapping[str, Sequence[str]], settings: Settings) -> ListenRequest:
    """Validate the query parameters of a `/v1/listen` request (names and values as Deepgram's)."""
    p = _Params(params)
    detect, detect_warnings = _detect(p)
    diarize, diarize_warnings = _diarize(p)
    model, requested = _model(p.one("model"))
    keyterms = [*p.all("keyterm"), *(_INTENSIFIER.sub("", k) for k in p.all("keywords"))]
    features, warnings = parse_features(p.all, p.one, p.flag)
    smart_format = p.flag("smart_format")
    listen = ListenOptions(
        requested_model=requested,
        diarize=diarize,
        punctuate=p.flag("punctuate"),
        smart_format=smart_format,
        paragraphs=p.flag("paragraphs"),
        utterances=p.flag("utterances"),
        utt_split=p.number("utt_split", DEFAULT_UTT_SPLIT),
        detect_language=detect,
        multichannel=p.flag("multichannel"),
        keyterms=tuple(dict.fromkeys(k.strip() for k in keyterms if k.strip())),
        tags=tuple(p.all("tag")),
        # Deepgram writes numbers as words unless `numerals` or `smart_format` asks for digits.
        numerals=p.flag("numerals", default=smart_format),
        warnings=(*detect_warnings, *diarize_warnings, *warnings),
        **features,
    )
    form = JobParameters(whisper_model=model, language=_language(p, detect), diarize=diarize)
    return ListenRequest(
        form=form,
        listen=listen,
        callback=_callback(p, settings),
        raw_audio=parse_raw_audio(p.one("encoding"), p.one("sample_rate"), p.one("channels")),
        whisper_name=model if requested is None else None,
    )
