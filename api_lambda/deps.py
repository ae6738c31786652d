"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import Depends, Request

from api_lambda.aws import AwsClients
from shared.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """The settings the app started with (lifespan state)."""
    return request.state.settings


def get_aws(request: Request) -> AwsClients:
    return request.state.aws


def in_lambda() -> bool:
    """Lambda sets AWS_LAMBDA_FUNCTION_NAME; payloads are capped at 6 MB there."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
AwsDep = Annotated[AwsClients, Depends(get_aws)]
LambdaModeDep = Annotated[bool, Depends(in_lambda)]
