"""What the fleet can run, as the API sees it: live workers' registrations, or this host's own
model catalog when no worker is live (the one-machine setup before its worker has started)."""

from __future__ import annotations

from api_lambda.aws import AwsClients
from shared.fleet import FleetCapabilities
from shared.model_catalog import available_models
from shared.settings import Settings


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
