"""`POST /v1/listen`'s query parameters, with Deepgram's names, defaults and value forms.

Unknown parameters are ignored, as Deepgram ignores them; a known one with a value it can't take
is an `InvalidParameter` (400 in Deepgram's error shape). Model and language choices then go
through the same `resolve_options` as `POST /jobs`, so both endpoints accept the same models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from api_lambda.submission import SubmitForm
from shared.errors import InvalidParameter
from shared.jobs import CallbackTarget, ListenOptions
from shared.settings import Settings
from shared.url_policy import UrlFetchError, check_url

# Deepgram model families: served by DEFAULT_WHISPER_MODEL, and `metadata.model_info` says so.
# (`base` here is Deepgram's tier; Whisper's base model is `whisper-base` on this endpoint.)
DEEPGRAM_FAMILIES = ("nova-3", "nova-2", "nova", "enhanced", "base", "general", "whisper")
# Deepgram's hosted Whisper sizes → this service's Whisper names.
DEEPGRAM_WHISPER = {
    "whisper-tiny": "tiny",
    "whisper-base": "base",
    "whisper-small": "small",
    "whisper-medium": "medium",
    "whisper-large": "large-v3",
}
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
CALLBACK_METHODS = ("POST", "PUT")
_INTENSIFIER = re.compile(r":-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class ListenRequest:
    form: SubmitForm  # model and language, resolved like POST /jobs
    listen: ListenOptions
    callback: CallbackTarget | None


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
        if not number > 0:
            raise InvalidParameter(f"Invalid value for '{name}': {value!r}; use a positive number of seconds")
        return number


def _model(name: str | None) -> tuple[str | None, str | None]:
    """(Whisper model for resolve_options, Deepgram name it stands for); None: the default model."""
    if not name:
        return None, None
    lowered = name.lower()
    if lowered in DEEPGRAM_WHISPER:
        return DEEPGRAM_WHISPER[lowered], name
    if any(lowered == family or lowered.startswith(f"{family}-") for family in DEEPGRAM_FAMILIES):
        return None, name
    return name, None


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
    detect = p.flag("detect_language")
    model, requested = _model(p.one("model"))
    numerals = p.one("numerals")
    keyterms = [*p.all("keyterm"), *(_INTENSIFIER.sub("", k) for k in p.all("keywords"))]
    listen = ListenOptions(
        requested_model=requested,
        diarize=p.flag("diarize") or bool(p.one("diarize_model")),
        punctuate=p.flag("punctuate"),
        smart_format=p.flag("smart_format"),
        paragraphs=p.flag("paragraphs"),
        utterances=p.flag("utterances"),
        utt_split=p.number("utt_split", 0.8),
        detect_language=detect,
        multichannel=p.flag("multichannel"),
        keyterms=tuple(dict.fromkeys(k.strip() for k in keyterms if k.strip())),
        tags=tuple(p.all("tag")),
    )
    form = SubmitForm(
        whisper_model=model,
        language=_language(p, detect),
        # Whisper writes digits; `numerals=false`, said explicitly, spells numbers out instead.
        suppress_numerals=numerals is not None and not p.flag("numerals"),
    )
    return ListenRequest(form=form, listen=listen, callback=_callback(p, settings))
