"""`/health` and `/models`: the service's state and what the fleet can run."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from api_lambda.auth import PrincipalDep
from api_lambda.deps import AwsDep, SettingsDep
from api_lambda.fleet import fleet_capabilities, resolve_options
from api_lambda.schemas import Health, Models
from shared.errors import ServiceError
from shared.jobs import JobStatus
from shared.model_catalog import KNOWN_MODELS
from shared.options import JobParameters

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health)
async def health(aws: AwsDep) -> Health:
    """Job counts come from the table's status index (a count query each, never a scan)."""
    ops = aws.store.ops
    queued, processing = await asyncio.gather(
        aws.store.run(ops.count(JobStatus.QUEUED)), aws.store.run(ops.count(JobStatus.PROCESSING))
    )
    return Health(queued_jobs=queued, processing_jobs=processing)


@router.get("/models", response_model=Models)
async def models(settings: SettingsDep, aws: AwsDep, _: PrincipalDep) -> Models:
    """Union of live workers' models (or this host's, when no worker is registered); needs a key
    when AUTH_REQUIRED is on, like every endpoint but `/health` and the docs."""
    fleet = await fleet_capabilities(aws, settings)
    try:
        default_stemming = resolve_options(JobParameters(), settings, fleet).stemming
    except ServiceError:  # the configured defaults can't run here; requests must name options
        default_stemming = False
    return Models(
        models=list(fleet.models),
        default_whisper_model=settings.default_whisper_model,
        stemming_available=fleet.separation,
        default_stemming=default_stemming,
        source=fleet.source,
        workers=fleet.workers,
        known_models=list(KNOWN_MODELS),
    )
