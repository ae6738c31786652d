"""Refuse a request from inside `receive`, whatever the app was about to answer.

The ASGI middlewares that guard request bodies (`early_auth`, `body_limits`) decide when the app
asks for the body. They refuse by raising the error from `receive`; the app may turn that into
an answer of its own (FastAPI answers a body it could not parse with 400) or let it propagate.
Either way the client gets the refusal, rendered as every deliberate error is, with
`Connection: close`: the rest of the body is never read, so the connection can't be reused.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_lambda.error_responses import error_response
from shared.errors import ServiceError


class GuardedRequest:
    """One request's `receive` and `send`, as the app sees them. Subclasses override `receive`
    and call `refuse` to stop it."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope, self.inner_receive, self.inner_send = scope, receive, send
        self.refused: ServiceError | None = None
        self.answered = False

    def refuse(self, error: ServiceError) -> ServiceError:
        """Record the refusal; the caller raises what this returns."""
        self.refused = error
        return error

    async def receive(self) -> Message:
        if self.refused is not None:
            raise self.refused
        return await self.inner_receive()

    async def send(self, message: Message) -> None:
        if self.refused is None:
            if message["type"] == "http.response.start":
                self.answered = True
            await self.inner_send(message)
        elif not self.answered:  # the app's answer to a body it was refused: say why instead
            await self._answer_refusal()

    async def _answer_refusal(self) -> None:
        assert self.refused is not None
        self.answered = True
        response = error_response(self.scope["path"], self.refused, close=True)
        await response(self.scope, self.inner_receive, self.inner_send)

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except Exception:
            if self.refused is None or self.answered:
                raise
            await self._answer_refusal()
