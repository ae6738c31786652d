"""Refuse an oversized `POST /jobs` from its Content-Length, before the body is read.

FastAPI parses (and spools to disk) the whole multipart body before the route runs; this
stops a client from making the server store gigabytes only to be told no. The route still
enforces the exact limit while streaming to S3 (a chunked upload has no Content-Length).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import PayloadTooLarge
from shared.openai_format import error_body
from shared.settings import Settings

FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries, part headers and the small form fields
OPENAI_UPLOAD_PATHS = ("/v1/audio/transcriptions", "/v1/audio/translations")
NO_RETRY = {"x-should-retry": "false"}


def upload_limit(settings: Settings, lambda_mode: bool) -> tuple[int, PayloadTooLarge]:
    """The byte limit for a direct upload, and the error that explains it."""
    if lambda_mode and settings.max_lambda_upload_bytes < settings.max_upload_bytes:
        limit = settings.max_lambda_upload_bytes
        return limit, PayloadTooLarge(
            f"File too large for a direct upload through the Lambda API (limit {limit} bytes, "
            "Lambda's payload cap): upload larger files with a presigned S3 upload instead"
        )
    limit = settings.max_upload_bytes
    return limit, PayloadTooLarge(f"File too large: the limit is {limit} bytes")


class UploadSizeGuard:
    def __init__(self, app: ASGIApp, *, lambda_mode: Callable[[], bool]) -> None:
        self.app = app
        self.lambda_mode = lambda_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and (scope["path"].rstrip("/").endswith("/jobs") or scope["path"] in OPENAI_UPLOAD_PATHS)
        ):
            limit, too_large = upload_limit(scope["state"]["settings"], self.lambda_mode())
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > limit + FORM_OVERHEAD_BYTES:
                if scope["path"] in OPENAI_UPLOAD_PATHS:  # OpenAI's shape; never retried by its SDK
                    body, headers = error_body(too_large.message, code="payload_too_large"), NO_RETRY
                else:
                    body, headers = {"detail": too_large.message}, None
                await JSONResponse(body, status_code=413, headers=headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)
