"""Errors on the Deepgram-compatible paths (`/v1/...`) in Deepgram's shape:
`{"err_code", "err_msg", "request_id"}`, so Deepgram clients and SDKs read them as they would
Deepgram's own. The seed's paths keep `{"detail": ...}`."""

from __future__ import annotations

import uuid

from fastapi.responses import JSONResponse

from shared.deepgram_shape import error_body
from shared.errors import ServiceError

DEEPGRAM_PATH_PREFIX = "/v1/"


def is_deepgram_path(path: str) -> bool:
    return path.startswith(DEEPGRAM_PATH_PREFIX)


def deepgram_status(error: ServiceError) -> int:
    """Deepgram answers every invalid option (ours say 422) with 400."""
    return 400 if error.status_code == 422 else error.status_code


def deepgram_response(status: int, message: str, request_id: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Token"} if status == 401 else None
    body = error_body(status, message, request_id or str(uuid.uuid4()))
    return JSONResponse(body, status_code=status, headers=headers)


def deepgram_error(error: ServiceError, request_id: str | None = None) -> JSONResponse:
    response = deepgram_response(deepgram_status(error), error.message, request_id)
    if error.retryable:
        response.headers["Retry-After"] = "5"
    return response
