"""`POST /v1/listen`: Deepgram's pre-recorded endpoint, on the same job queue as `/jobs`.

The body is the audio itself, whatever its Content-Type (its bytes say what it is), or JSON
`{"url": ...}` that a worker fetches; headerless audio is framed from `encoding` (raw_audio).
An identical request (same key, audio and parameters) attaches to the job the first one made
(listen_dedup), so SDK retries never queue the work twice. Without `callback` the request waits
for its job, polling the table with backoff (an `await`, never a blocked thread) for at most
`LISTEN_MAX_WAIT_SECONDS`, then answers `202 {"request_id"}`: a status no SDK retries, and the
job id that `GET /jobs/{request_id}/result` serves later. With `callback` it answers
`{"request_id"}` at once and the worker delivers the result.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api_lambda import intake
from api_lambda.auth import Principal, presented_key
from api_lambda.aws import AwsClients
from api_lambda.deepgram_errors import REQUEST_ID_HEADER, deepgram_error, deepgram_response
from api_lambda.deepgram_params import ListenRequest, parse_listen_params
from api_lambda.intake import JobExtras, UploadStream, UrlSource
from api_lambda.listen_dedup import Fingerprints, ListenDedup
from api_lambda.raw_audio import framing
from api_lambda.request_context import RequestContext, RequestContextDep
from api_lambda.sniff import SNIFF_BYTES
from api_lambda.waiting import wait_finished
from shared.api_keys import hash_key
from shared.deepgram_shape import listen_response
from shared.errors import InvalidParameter, ServiceError
from shared.ingestion import well_formed_media_type
from shared.jobs import Job, JobStatus, ListenOptions, new_job_id
from shared.resources import result_key
from shared.settings import Settings
from shared.url_policy import UrlFetchError, check_url

router = APIRouter(tags=["deepgram"])

MAX_JSON_BYTES = 64 * 1024
RAW_NAME = "audio"  # a raw body has no file name
# Content types a JSON `{"url"}` body may come with (curl's default included); any other is audio.
_JSON_TYPES = (None, "application/json", "application/x-www-form-urlencoded", "text/plain")
Query = dict[str, list[str]]


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


async def _json_url(head: bytes, reader: _BodyReader, settings: Settings) -> str:
    body = head + await reader.read(MAX_JSON_BYTES + 1 - len(head))
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


def _stored_type(content_type: str | None) -> str | None:
    """Keep a media type; drop any other (curl's form type would make S3 emulators parse the body)."""
    return content_type if content_type and content_type.startswith(("audio/", "video/")) else None


def api_key_id(principal: Principal, request: Request) -> str | None:
    """The key's identifier (as `keys_cli list` shows it): `dg-token` on callbacks, and the dedup scope."""
    if principal.key_id:
        return principal.key_id
    key = presented_key(request.headers.get("authorization"))
    return hash_key(key)[:16] if key else None


async def _submit(call: RequestContext, job_id: str, parsed: ListenRequest, query: Query) -> str:
    """Queue the request's job; the id to answer with (an identical request's job, if one is live)."""
    request, settings, aws, principal = call.request, call.settings, call.aws, call.principal
    content_type = well_formed_media_type(
        request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    )
    reader = _BodyReader(request.stream())
    head = await reader.read(SNIFF_BYTES)
    source: UploadStream | UrlSource
    if content_type in _JSON_TYPES and head.lstrip().startswith(b"{"):
        url = await _json_url(head, reader, settings)
        source = UrlSource(url, filename=PurePosixPath(urlsplit(url).path).name or RAW_NAME)
    else:
        length = request.headers.get("content-length", "")
        size = int(length) if length.isdigit() else None
        raw = parsed.raw_audio
        source = UploadStream(
            read=reader.read,
            filename=RAW_NAME,
            content_type=_stored_type(content_type),
            size=size,
            head=head,
            frame=(lambda first: framing(raw, first, size)) if raw else None,
            described_as="the request body",
        )
    key_id = api_key_id(principal, request)
    callback = parsed.callback.model_copy(update={"token": key_id}) if parsed.callback else None
    submitted = await intake.submit_once(
        aws,
        source,
        parsed.form,
        principal,
        ListenDedup(Fingerprints(aws, settings), principal.project_id, key_id, query),
        lambda_mode=call.lambda_mode,
        extras=JobExtras(listen=parsed.listen, callback=callback),
        check_fleet=parsed.check_model,
        job_id=job_id,
    )
    return submitted.job_id


async def _result(settings: Settings, aws: AwsClients, job: Job) -> dict[str, Any]:
    stored = json.loads(await aws.blobs.get(result_key(job.job_id)))
    return listen_response(stored, job.listen or ListenOptions())


@router.post(
    "/v1/listen",
    responses={
        200: {"description": "Deepgram's pre-recorded response, or `{request_id}` with a callback"},
        202: {"description": "`{request_id}`: still running after LISTEN_MAX_WAIT_SECONDS (GET /jobs/{id})"},
        400: {"description": "Invalid parameter or body (Deepgram's error shape)"},
        401: {"description": "Missing or invalid API key"},
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
async def listen(call: RequestContextDep) -> Response:
    """Transcribe audio sent as the body, or JSON `{"url"}`, with Deepgram's query parameters."""
    request, settings, aws = call.request, call.settings, call.aws
    job_id = new_job_id()
    try:
        query = {name: request.query_params.getlist(name) for name in request.query_params}
        parsed = parse_listen_params(query, settings)
        job_id = await _submit(call, job_id, parsed, query)
        headers = {REQUEST_ID_HEADER: job_id}
        if parsed.callback is not None:
            return JSONResponse({"request_id": job_id}, headers=headers)
        job = await wait_finished(request, aws, job_id, settings.listen_max_wait_seconds)
        if job is None:  # 202, not 504: SDKs retry a 5xx, which would wait (and once, queue) again
            headers["Location"] = f"/jobs/{job_id}"
            return JSONResponse({"request_id": job_id}, status_code=202, headers=headers)
        if job.status is JobStatus.COMPLETED:
            return JSONResponse(await _result(settings, aws, job), headers=headers)
        if job.status is JobStatus.FAILED:
            return deepgram_response(400, job.error or "transcription failed", job_id)
        return deepgram_response(400, f"Job {job_id} was {job.status.value}", job_id)
    except ServiceError as error:
        return deepgram_error(error, job_id)
