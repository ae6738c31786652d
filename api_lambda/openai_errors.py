"""Errors on the OpenAI-compatible paths in OpenAI's shape, `{"error": {"message", "type",
"param", "code"}}`, always with `x-should-retry: false`: the openai SDK retries 408, 409, 429, 5xx
and dropped connections, and a retried transcription would be a second job for the same file."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from shared.errors import ServiceError
from shared.openai_format import error_body

OPENAI_PATH_PREFIXES = ("/v1/audio/", "/v1/models")
NO_RETRY = {"x-should-retry": "false"}


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PATH_PREFIXES)


def openai_response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error" if status != 504 else "timeout"
    headers = dict(NO_RETRY)
    if request_id:
        headers["x-request-id"] = request_id
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
        code = "invalid_api_key"  # what OpenAI answers for a missing or wrong key
    return JSONResponse(
        error_body(message, type=kind, param=param, code=code), status_code=status, headers=headers
    )


def openai_error(error: ServiceError, request_id: str | None = None) -> JSONResponse:
    """Any deliberate error; invalid options (ours say 422) are 400s, as OpenAI answers them."""
    status = 400 if error.status_code == 422 else error.status_code
    param = getattr(error, "param", None)
    code = getattr(error, "openai_code", None) or error.code
    return openai_response(status, error.message, param=param, code=code, request_id=request_id)
