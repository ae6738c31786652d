"""What the fleet can run, as the API sees it (live workers' registrations, or this host's own
model catalog when no worker is live: the one-machine setup before its worker has started), and a
request's `JobParameters` resolved against it into `JobOptions`. Every refusal names what to send
instead."""

from __future__ import annotations

from pydantic import ValidationError

from api_lambda.aws import AwsClients
from shared.errors import InvalidParameter, ModelNotAvailable
from shared.fleet import FleetCapabilities
from shared.languages import check_language
from shared.model_catalog import KNOWN_MODELS, available_models, where_looked
from shared.options import JobOptions, JobParameters, invalid_parameter
from shared.settings import Settings, StemmingDefault

SEPARATION_MODEL = "htdemucs"


def host_capabilities(settings: Settings) -> FleetCapabilities:
    # Vocal separation is only known from workers' registrations: the API never imports the
    # pipeline, and its host carries no separation model.
    return FleetCapabilities(
        models=tuple(sorted(available_models(settings))),
        separation=False,
        source="api_host",
        workers=0,
        where_looked=(),
        separation_where_looked=("no worker is registered to run vocal separation",),
    )


async def fleet_capabilities(aws: AwsClients, settings: Settings) -> FleetCapabilities:
    workers = await aws.store.run(aws.store.ops.live_workers())
    return FleetCapabilities.from_workers(workers) if workers else host_capabilities(settings)


def _model(params: JobParameters, settings: Settings, fleet: FleetCapabilities) -> str:
    name = (params.whisper_model or "").strip() or settings.default_whisper_model
    if name not in KNOWN_MODELS and name not in fleet.models:
        choices = ", ".join(dict.fromkeys([*KNOWN_MODELS, *fleet.models]))
        raise InvalidParameter(f"Unknown whisper_model '{name}'. Choose one of: {choices}")
    if name not in fleet.models:
        raise ModelNotAvailable(name, fleet.where_looked or where_looked(settings, name))
    return name


def _stemming(params: JobParameters, settings: Settings, fleet: FleetCapabilities) -> bool:
    if params.stemming is None:
        if settings.default_stemming is StemmingDefault.AUTO:
            return fleet.separation
        stemming = settings.default_stemming is StemmingDefault.TRUE
    else:
        stemming = params.stemming
    if stemming and not fleet.separation:
        raise ModelNotAvailable(SEPARATION_MODEL, fleet.separation_where_looked)
    return stemming


def resolve_options(params: JobParameters, settings: Settings, fleet: FleetCapabilities) -> JobOptions:
    """The options a request gets: its parameters, else the settings' defaults, checked against
    what the fleet can run and `JobOptions`' ranges."""
    model = _model(params, settings, fleet)
    language = check_language(params.language, model)
    stemming = _stemming(params, settings, fleet)
    batch_size = settings.default_batch_size if params.batch_size is None else params.batch_size
    fields = params.model_dump(
        include={"suppress_numerals", "diarize", "num_speakers", "min_speakers", "max_speakers"}
    )
    try:
        return JobOptions(
            whisper_model=model, language=language, stemming=stemming, batch_size=batch_size, **fields
        )
    except ValidationError as error:
        raise invalid_parameter(error) from error
