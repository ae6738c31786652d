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
from api_lambda.deepgram_errors import RequestIdHeader, deepgram_error, http_error, is_deepgram_path
from api_lambda.deps import in_lambda
from api_lambda.openai_errors import is_openai_path, openai_error
from api_lambda.routes import console, jobs, listen, local_uploads, openai_audio, service, speakers, uploads
from api_lambda.upload_guard import UploadSizeGuard
from shared.errors import ServiceError
from shared.logging import configure_logging, get_logger
from shared.settings import Settings, get_settings

log = get_logger(__name__)


async def service_error(request: Request, error: Exception) -> JSONResponse:
    """Every deliberate error: its HTTP status and `{"detail": message}`."""
    assert isinstance(error, ServiceError)
    if error.status_code >= 500:
        log.warning("service_error", code=error.code, detail=error.message, path=request.url.path)
    if is_openai_path(request.url.path):  # OpenAI's clients read OpenAI's error shape
        return openai_error(error)
    if is_deepgram_path(request.url.path):  # Deepgram's clients read Deepgram's error shape
        return deepgram_error(error)
    headers = {"Retry-After": "5"} if error.retryable else {}
    if error.status_code == 401:
        headers["WWW-Authenticate"] = "Token"
    return JSONResponse({"detail": error.message}, status_code=error.status_code, headers=headers or None)


def create_app(settings: Settings | None = None) -> FastAPI:
    """`settings=None` reads the environment at start-up (each Lambda invocation, or uvicorn's
    start), not at import; tests pass their own."""
    session = get_session()  # kept across Lambda invocations: it caches the service models

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
    app.add_middleware(UploadSizeGuard, lambda_mode=in_lambda)
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
