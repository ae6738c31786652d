"""Read every request body within limits: its size, counted on the bytes actually received
(chunked bodies have no Content-Length to trust), and its time.

A body for a JSON (or other small, in-memory) request may have at most `MAX_JSON_BODY_BYTES`;
any other body is an upload, limited to `MAX_UPLOAD_BYTES` (Lambda's cap in Lambda) plus the
multipart framing. A declared Content-Length over the limit is refused before anything is read.
Each chunk must arrive within `BODY_READ_TIMEOUT_SECONDS` and the whole body within
`BODY_READ_DEADLINE_SECONDS`, so a client that drips its body can't hold a connection forever.

The limits are enforced in `receive`: past one, the read raises, and whatever the app was about to
answer (a route's own error, or FastAPI's "error parsing the body") is replaced by the 413 or 408,
with `Connection: close` since the rest of the body is never read. Routes keep their exact limits
(`upload_stream`); this is the floor under every route, present or future, whatever its path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_lambda.error_responses import error_response
from api_lambda.refusals import GuardedRequest
from api_lambda.upload_guard import FORM_OVERHEAD_BYTES, upload_limit
from shared.errors import PayloadTooLarge, ServiceError
from shared.settings import Settings


class BodyReadTimeout(ServiceError, code="request_timeout", status_code=408): ...


def _media_type(scope: Scope) -> str:
    value = _header(scope, b"content-type") or b""
    return value.decode("latin-1").split(";", 1)[0].strip().lower()


def is_small_body(media_type: str) -> bool:
    """Bodies the app parses in memory: JSON, URL-encoded forms, text."""
    return (
        media_type in ("application/json", "application/x-www-form-urlencoded")
        or media_type.endswith("+json")
        or media_type.startswith("text/")
    )


def body_limit(scope: Scope, settings: Settings, lambda_mode: bool) -> tuple[int, PayloadTooLarge]:
    """The most bytes this request's body may have, and the error that says so."""
    media_type = _media_type(scope)
    if is_small_body(media_type):
        limit = settings.max_json_body_bytes
        return limit, PayloadTooLarge(
            f"Request body too large: a {media_type} body may have at most {limit} bytes "
            "(MAX_JSON_BODY_BYTES); send audio as a file upload instead"
        )
    limit, too_large = upload_limit(settings, lambda_mode)
    return limit + FORM_OVERHEAD_BYTES, too_large


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


class BodyLimits:
    def __init__(self, app: ASGIApp, *, lambda_mode: Callable[[], bool]) -> None:
        self.app = app
        self.lambda_mode = lambda_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings: Settings | None = (scope.get("state") or {}).get("settings")
        if scope["type"] != "http" or settings is None:
            await self.app(scope, receive, send)
            return
        limit, too_large = body_limit(scope, settings, self.lambda_mode())
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await error_response(scope["path"], too_large, close=True)(scope, receive, send)
            return
        await _LimitedRequest(scope, receive, send, settings, limit, too_large).run(self.app)


class _LimitedRequest(GuardedRequest):
    """One request's body reads, counted and timed."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        settings: Settings,
        limit: int,
        too_large: PayloadTooLarge,
    ) -> None:
        super().__init__(scope, receive, send)
        self.limit, self.too_large = limit, too_large
        self.chunk_timeout = settings.body_read_timeout_seconds
        self.deadline_seconds = settings.body_read_deadline_seconds
        self.deadline = time.monotonic() + self.deadline_seconds
        self.received = 0
        declared = _content_length(scope)
        chunked = _header(scope, b"transfer-encoding") is not None
        # A request without a body (no Content-Length, or 0, and not chunked) has nothing to read.
        self.complete = declared in (None, 0) and not chunked
        # Answered before its body was read: the server skips a small declared rest and keeps the
        # connection; a chunked or large one (perhaps endless) ends the connection instead.
        self.close_if_unread = chunked or (declared or 0) > settings.max_json_body_bytes

    async def receive(self) -> Message:
        if self.refused is not None or self.complete:
            return await super().receive()
        remaining = max(self.deadline - time.monotonic(), 0.0)
        try:
            message = await asyncio.wait_for(self.inner_receive(), min(self.chunk_timeout, remaining))
        except TimeoutError:
            raise self.refuse(
                BodyReadTimeout(
                    f"The request body did not arrive in time (each part within {self.chunk_timeout:g} s, "
                    f"all of it within {self.deadline_seconds:g} s)"
                )
            ) from None
        if message["type"] != "http.request":  # the client went away
            self.complete = True
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            raise self.refuse(self.too_large)
        if not message.get("more_body", False):
            self.complete = True
        return message

    async def send(self, message: Message) -> None:
        unread = not self.complete and self.close_if_unread
        if message["type"] == "http.response.start" and unread and self.refused is None:
            # Answered before its body was read to the end (a route that doesn't read bodies, or
            # refused one): the unread rest can't be skipped, so the connection ends here.
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await super().send(message)
