"""The FastAPI application: routers, the one error mapping, and AWS clients for its lifetime.

`uvicorn api_lambda.app:app` serves it; `api_lambda.handler.handler` wraps it for Lambda.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.session import get_session
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api_lambda.aws import open_clients
from api_lambda.body_limits import BodyLimits
from api_lambda.deepgram_errors import RequestIdHeader, http_error
from api_lambda.deps import in_lambda
from api_lambda.early_auth import EarlyAuth
from api_lambda.error_responses import error_response
from api_lambda.routes import console, jobs, listen, local_uploads, openai_audio, service, speakers, uploads
from shared.errors import ServiceError
from shared.logging import configure_logging, get_logger
from shared.settings import Settings, get_settings

log = get_logger(__name__)


async def service_error(request: Request, error: Exception) -> JSONResponse:
    """Every deliberate error: its HTTP status and `{"detail": message}`."""
    assert isinstance(error, ServiceError)
    if error.status_code >= 500 or error.internal_detail:
        log.warning(
            "service_error", code=error.code, detail=error.message, internal=error.internal_detail,
            path=request.url.path,
        )  # fmt: skip
    return error_response(request.url.path, error)


def create_app(settings: Settings | None = None, *, session: Any | None = None) -> FastAPI:
    """`settings=None` reads the environment at start-up (each Lambda invocation, or uvicorn's
    start), not at import; tests pass their own. `session` (an aiobotocore session) lets a caller
    that makes many apps, such as the tests, share one set of parsed service models."""
    session = session or get_session()  # kept across Lambda invocations: it caches the service models

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        current = settings or get_settings()
        configure_logging(current)
        async with open_clients(session, current) as aws:
            yield {"aws": aws, "settings": current}

    app = FastAPI(
        title="Whisper Diarization API",
        description="Deepgram-compatible transcription with speaker diarization, as an async job queue.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # Both guard `receive`, whatever the route: the key is checked before the first byte of a body
    # is read (EarlyAuth, innermost), and no body is read past its size or time limits.
    app.add_middleware(EarlyAuth)
    app.add_middleware(BodyLimits, lambda_mode=in_lambda)
    app.add_middleware(RequestIdHeader)
    app.include_router(uploads.router)  # first: its JSON `POST /jobs` lets multipart fall through
    app.include_router(local_uploads.router)  # the signed upload URLs of BACKEND=local
    app.include_router(jobs.router)
    app.include_router(speakers.router)
    app.include_router(service.router)
    app.include_router(listen.router)
    app.include_router(openai_audio.router)
    console.mount(app)
    return app


app = create_app()
