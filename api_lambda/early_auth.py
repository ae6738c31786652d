"""Check the API key before anything reads the request's body.

FastAPI parses a route's body (spooling a multipart upload to disk, holding JSON in memory, or
waiting on a body that drips forever) before it resolves the route's dependencies, the key check
among them. This ASGI middleware gates `receive`: the first time the app asks for the body, the
route has been chosen (`scope["route"]`); if that route asks for a key (its dependencies include
`auth.authenticate`, whatever its path), the key in the headers is checked then, before a byte is
read, and a missing or bad one is answered 401 with `Connection: close`. Routes that don't read a
body check the key in their dependency as before; the caller found here is left in the scope so
the dependency doesn't look it up twice.
"""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_lambda.auth import PRINCIPAL_SCOPE_KEY, authenticate, resolve_principal
from api_lambda.refusals import GuardedRequest
from shared.errors import ServiceError


def _asks_for_key(dependant: Dependant) -> bool:
    return any(d.call is authenticate or _asks_for_key(d) for d in dependant.dependencies)


def route_asks_for_key(route: object) -> bool:
    """Whether a route's dependencies check the API key (routes of other kinds never do)."""
    return isinstance(route, APIRoute) and _asks_for_key(route.dependant)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class _KeyFirst(GuardedRequest):
    def __init__(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]) -> None:
        super().__init__(scope, receive, send)
        self.state = state
        self.checked = False

    async def receive(self) -> Message:
        if not self.checked and self.refused is None:
            self.checked = True
            if route_asks_for_key(self.scope.get("route")) and PRINCIPAL_SCOPE_KEY not in self.scope:
                authorization = _header(self.scope, b"authorization")
                try:
                    principal = await resolve_principal(
                        self.state["settings"], self.state["aws"], authorization
                    )
                except ServiceError as error:  # 401, or 503 when the key table can't be read
                    raise self.refuse(error) from None
                self.scope[PRINCIPAL_SCOPE_KEY] = principal
        return await super().receive()


class EarlyAuth:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        settings = state.get("settings")
        if scope["type"] != "http" or settings is None or not settings.auth_required:
            await self.app(scope, receive, send)
            return
        await _KeyFirst(scope, receive, send, state).run(self.app)
