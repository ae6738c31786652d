"""The one dependency of the routes that queue a job from their own request and answer with its
result (`/v1/listen`, OpenAI's audio routes): the request and what serves it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api_lambda.auth import Principal, PrincipalDep
from api_lambda.aws import AwsClients
from api_lambda.deps import AwsDep, LambdaModeDep, SettingsDep
from shared.settings import Settings


@dataclass(frozen=True)
class RequestContext:
    request: Request
    settings: Settings
    aws: AwsClients
    lambda_mode: bool
    principal: Principal


async def request_context(
    request: Request,
    settings: SettingsDep,
    aws: AwsDep,
    lambda_mode: LambdaModeDep,
    principal: PrincipalDep,
) -> RequestContext:
    return RequestContext(request, settings, aws, lambda_mode, principal)


RequestContextDep = Annotated[RequestContext, Depends(request_context)]
