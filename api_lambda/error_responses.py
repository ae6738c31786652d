"""The one rendering of a deliberate error as an HTTP answer, shared by the app's exception handler
and the ASGI middlewares that answer before any route runs (`early_auth`, `body_limits`).

OpenAI's and Deepgram's paths get their error shapes; the others `{"detail": message}`.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from api_lambda.deepgram_errors import deepgram_error, is_deepgram_path
from api_lambda.openai_errors import is_openai_path, openai_error
from shared.errors import ServiceError


def error_response(path: str, error: ServiceError, *, close: bool = False) -> JSONResponse:
    """`close`: the request's body was not read, so the connection can't carry another request."""
    if is_openai_path(path):  # OpenAI's clients read OpenAI's error shape
        response = openai_error(error)
    elif is_deepgram_path(path):  # Deepgram's clients read Deepgram's error shape
        response = deepgram_error(error)
    else:
        headers = {"Retry-After": "5"} if error.retryable else {}
        if error.status_code == 401:
            headers["WWW-Authenticate"] = "Token"
        response = JSONResponse({"detail": error.message}, status_code=error.status_code, headers=headers)
    if close:
        response.headers["Connection"] = "close"
    return response
