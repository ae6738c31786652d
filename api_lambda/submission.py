"""Turn the form fields of `POST /jobs` into validated `JobOptions`, against the settings'
defaults and what the fleet can run. Every refusal names what to send instead."""

from __future__ import annotations

from pydantic import ValidationError

from shared.errors import InvalidParameter, ModelNotAvailable
from shared.fleet import FleetCapabilities
from shared.jobs import JobOptions, JobParameters
from shared.languages import WHISPER_LANGUAGES, normalize_language
from shared.model_catalog import KNOWN_MODELS, english_only, where_looked
from shared.settings import Settings, StemmingDefault

SEPARATION_MODEL = "htdemucs"


SubmitForm = JobParameters
"""The parameters as submitted (form, JSON or metadata), before `resolve_options`."""


def _model(form: SubmitForm, settings: Settings, fleet: FleetCapabilities) -> str:
    name = (form.whisper_model or "").strip() or settings.default_whisper_model
    if name not in KNOWN_MODELS and name not in fleet.models:
        choices = ", ".join(dict.fromkeys([*KNOWN_MODELS, *fleet.models]))
        raise InvalidParameter(f"Unknown whisper_model '{name}'. Choose one of: {choices}")
    if name not in fleet.models:
        raise ModelNotAvailable(name, fleet.where_looked or where_looked(settings, name))
    return name


def _language(form: SubmitForm, model: str) -> str | None:
    language = normalize_language(form.language)
    if language is not None and language not in WHISPER_LANGUAGES:
        raise InvalidParameter(
            f"Unknown language '{form.language}'. Use a Whisper language code "
            f"({', '.join(sorted(WHISPER_LANGUAGES))}) or leave it out to detect the language"
        )
    if language not in (None, "en") and english_only(model):
        raise InvalidParameter(
            f"whisper_model '{model}' only transcribes English, but language '{language}' was requested; "
            f"use a multilingual model such as '{model.removesuffix('.en')}'"
        )
    return language


def _stemming(form: SubmitForm, settings: Settings, fleet: FleetCapabilities) -> bool:
    if form.stemming is None:
        if settings.default_stemming is StemmingDefault.AUTO:
            return fleet.separation
        stemming = settings.default_stemming is StemmingDefault.TRUE
    else:
        stemming = form.stemming
    if stemming and not fleet.separation:
        raise ModelNotAvailable(SEPARATION_MODEL, fleet.separation_where_looked)
    return stemming


def resolve_options(form: SubmitForm, settings: Settings, fleet: FleetCapabilities) -> JobOptions:
    model = _model(form, settings, fleet)
    language = _language(form, model)
    stemming = _stemming(form, settings, fleet)
    try:
        return JobOptions(
            whisper_model=model,
            language=language,
            stemming=stemming,
            suppress_numerals=form.suppress_numerals,
            batch_size=settings.default_batch_size if form.batch_size is None else form.batch_size,
            num_speakers=form.num_speakers,
            min_speakers=form.min_speakers,
            max_speakers=form.max_speakers,
        )
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "options"
        raise InvalidParameter(f"{field}: {first['msg']} (got {first.get('input')!r})") from error
