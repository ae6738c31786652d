"""`POST /v1/listen`: Deepgram's pre-recorded endpoint, on the same job queue as `/jobs`.

The body is the audio itself (any Content-Type) or JSON `{"url": ...}` that a worker fetches.
Without `callback` the request waits for its job, polling the table with backoff (an `await`,
never a blocked thread) for at most `LISTEN_MAX_WAIT_SECONDS`, then answers 504 with the
`request_id` (the job id: `GET /jobs/{request_id}/result` has it later). With `callback` it
answers `{"request_id"}` at once and the worker delivers the result.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api_lambda.auth import Principal, PrincipalDep
from api_lambda.aws import AwsClients
from api_lambda.deepgram_errors import deepgram_error, deepgram_response
from api_lambda.deepgram_params import ListenRequest, parse_listen_params
from api_lambda.deps import AwsDep, LambdaModeDep, SettingsDep
from api_lambda.enqueue import enqueue
from api_lambda.fleet import fleet_capabilities
from api_lambda.sniff import SNIFF_BYTES, check_upload_head
from api_lambda.submission import resolve_options
from api_lambda.upload_guard import upload_limit
from shared.deepgram_shape import listen_response
from shared.errors import InvalidParameter, ServiceError
from shared.jobs import Job, JobStatus, ListenOptions, new_job_id
from shared.resources import result_key, upload_key
from shared.settings import Settings
from shared.storage import upload_stream
from shared.url_policy import UrlFetchError, check_url

router = APIRouter(tags=["deepgram"])

MAX_JSON_BYTES = 64 * 1024
FIRST_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 2.0
RAW_NAME = "audio"  # a raw body has no file name


class _BodyReader:
    """`read(n)` over the request's body stream, for `upload_stream`."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = bytearray()
        self.done = False

    async def read(self, size: int) -> bytes:
        while len(self.buffer) < size and not self.done:
            try:
                self.buffer += await self.chunks.__anext__()
            except StopAsyncIteration:
                self.done = True
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


async def _json_url(request: Request, settings: Settings) -> str:
    body = await _BodyReader(request.stream()).read(MAX_JSON_BYTES + 1)
    try:
        url = json.loads(body)["url"] if len(body) <= MAX_JSON_BYTES else None
    except (ValueError, TypeError, KeyError):
        url = None
    if not isinstance(url, str) or not url.strip():
        raise InvalidParameter(
            'Content-type was application/json, but we could not process the JSON payload: send {"url": "https://..."}'
        )
    try:
        return check_url(url.strip(), allow_private=settings.url_fetch_allow_private)
    except UrlFetchError as error:
        raise InvalidParameter(f"Invalid 'url': {error.message}") from error


async def _submit(
    request: Request,
    settings: Settings,
    aws: AwsClients,
    lambda_mode: bool,
    principal: Principal,
    job_id: str,
    parsed: ListenRequest,
) -> Job:
    options = resolve_options(parsed.form, settings, await fleet_capabilities(aws, settings))
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower() or None
    async with AsyncExitStack() as undo:  # on any failure, remove what was written so far
        if content_type == "application/json":
            source_url: str | None = await _json_url(request, settings)
            key, size = "", 0
            filename = PurePosixPath(urlsplit(source_url).path).name or RAW_NAME
        else:
            source_url, filename = None, RAW_NAME
            limit, too_large = upload_limit(settings, lambda_mode)
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise too_large
            reader = _BodyReader(request.stream())
            head = await reader.read(SNIFF_BYTES)
            check_upload_head(head, "the request body")
            key = upload_key(job_id, filename)
            size = await upload_stream(
                aws.s3,
                settings.bucket_name,
                key,
                reader.read,
                first_chunk=head,
                limit=limit,
                too_large=lambda: too_large,
                content_type=content_type,
            )
            undo.push_async_callback(aws.s3.delete_object, Bucket=settings.bucket_name, Key=key)
        job = aws.store.ops.queued_job(
            job_id, options, upload_key=key, filename=filename, size_bytes=size, content_type=content_type
        ).model_copy(
            update={
                "project_id": principal.project_id,
                "source_url": source_url,
                "listen": parsed.listen,
                "callback": parsed.callback,
            }
        )
        await enqueue(aws, settings, job, undo)
        undo.pop_all()
    return job


async def _wait_finished(request: Request, aws: AwsClients, job_id: str, max_wait: float) -> Job | None:
    """Poll the job with backoff until it finishes; None after `max_wait` s or when the client left."""
    deadline = time.monotonic() + max_wait
    delay = FIRST_POLL_SECONDS
    while True:
        job = await aws.store.get(job_id)
        remaining = deadline - time.monotonic()
        if job.status.finished or remaining <= 0 or await request.is_disconnected():
            return job if job.status.finished else None
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, MAX_POLL_SECONDS)


async def _result(settings: Settings, aws: AwsClients, job: Job) -> dict[str, Any]:
    s3_object = await aws.s3.get_object(Bucket=settings.bucket_name, Key=result_key(job.job_id))
    async with s3_object["Body"] as body:
        stored = json.loads(await body.read())
    return listen_response(stored, job.listen or ListenOptions())


@router.post(
    "/v1/listen",
    responses={
        200: {"description": "Deepgram's pre-recorded response, or `{request_id}` with a callback"},
        400: {"description": "Invalid parameter or body (Deepgram's error shape)"},
        401: {"description": "Missing or invalid API key"},
        504: {"description": "Still running after LISTEN_MAX_WAIT_SECONDS; fetch /jobs/{request_id}"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["url"],
                        "properties": {"url": {"type": "string"}},
                    }
                },
            },
        }
    },
)
async def listen(
    request: Request,
    settings: SettingsDep,
    aws: AwsDep,
    lambda_mode: LambdaModeDep,
    principal: PrincipalDep,
) -> Response:
    """Transcribe audio sent as the body, or JSON `{"url"}`, with Deepgram's query parameters."""
    job_id = new_job_id()
    try:
        query = {name: request.query_params.getlist(name) for name in request.query_params}
        parsed = parse_listen_params(query, settings)
        await _submit(request, settings, aws, lambda_mode, principal, job_id, parsed)
        if parsed.callback is not None:
            return JSONResponse({"request_id": job_id})
        job = await _wait_finished(request, aws, job_id, settings.listen_max_wait_seconds)
        if job is None:
            return deepgram_response(
                504,
                f"Transcription is still running after {settings.listen_max_wait_seconds:g} s; get it from "
                f"GET /jobs/{job_id}/result once GET /jobs/{job_id} says completed, or send a callback URL",
                job_id,
            )
        if job.status is JobStatus.COMPLETED:
            return JSONResponse(await _result(settings, aws, job))
        if job.status is JobStatus.FAILED:
            return deepgram_response(400, job.error or "transcription failed", job_id)
        return deepgram_response(409, f"Job {job_id} was {job.status.value}", job_id)
    except ServiceError as error:
        return deepgram_error(error, job_id)
