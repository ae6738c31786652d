"""Errors on the Deepgram-compatible paths (`/v1/...`) in Deepgram's shape:
`{"err_code", "err_msg", "request_id"}`, so Deepgram clients and SDKs read them as they would
Deepgram's own. The seed's paths keep `{"detail": ...}`."""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_lambda.openai_errors import is_openai_path
from shared.deepgram_shape import error_body
from shared.errors import ServiceError

DEEPGRAM_PATH_PREFIX = "/v1/"
REQUEST_ID_HEADER = "dg-request-id"  # on every /v1 response, as Deepgram sends it


def is_deepgram_path(path: str) -> bool:
    """`/v1/...` but the OpenAI-compatible paths (`/v1/audio/...`, `/v1/models`): those keep OpenAI's ways."""
    return path.startswith(DEEPGRAM_PATH_PREFIX) and not is_openai_path(path)


def deepgram_status(error: ServiceError) -> int:
    """Deepgram answers every invalid option (ours say 422) with 400."""
    return 400 if error.status_code == 422 else error.status_code


def deepgram_response(status: int, message: str, request_id: str | None = None) -> JSONResponse:
    request_id = request_id or str(uuid.uuid4())
    headers = {REQUEST_ID_HEADER: request_id}
    if status == 401:
        headers["WWW-Authenticate"] = "Token"
    return JSONResponse(error_body(status, message, request_id), status_code=status, headers=headers)


def deepgram_error(error: ServiceError, request_id: str | None = None) -> JSONResponse:
    response = deepgram_response(deepgram_status(error), error.message, request_id)
    if error.retryable:
        response.headers["Retry-After"] = "5"
    return response


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's own errors (unknown path 404, wrong method 405) in Deepgram's shape on /v1/..."""
    assert isinstance(error, StarletteHTTPException)
    if not is_deepgram_path(request.url.path):
        return await http_exception_handler(request, error)
    message = {
        404: f"No such endpoint: {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }
    response = deepgram_response(error.status_code, message.get(error.status_code, str(error.detail)))
    response.headers.update(error.headers or {})
    return response


class RequestIdHeader:
    """Adds `dg-request-id` to every /v1 response that doesn't carry one yet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_deepgram_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers[REQUEST_ID_HEADER] = str(uuid.uuid4())
            await send(message)

        await self.app(scope, receive, send_with_id)
