"""OpenAI's audio API: `POST /v1/audio/transcriptions`, `POST /v1/audio/translations`, `GET /v1/models`.

The same queue and workers as `/jobs` and `/v1/listen`: the file goes to S3, the job to the table
and the queue (`api_lambda.intake`), and the request waits for it as `/v1/listen` does, for at most
`OPENAI_MAX_WAIT_SECONDS` (then a 504 naming the job, which `GET /jobs/{id}/result` serves later).
With `stream=true` the answer is server-sent events, made from the segments the worker publishes
to S3 as it decodes them (`results/{id}.segments.json`), so they work on AWS and on one machine.
Every error is OpenAI's shape with `x-should-retry: false` (see `api_lambda.openai_errors`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from api_lambda import intake
from api_lambda.auth import PrincipalDep
from api_lambda.aws import AwsClients
from api_lambda.deps import AwsDep, SettingsDep
from api_lambda.fleet import fleet_capabilities
from api_lambda.intake import JobExtras, UploadStream
from api_lambda.openai_errors import openai_error, openai_response
from api_lambda.openai_params import (
    MAX_REFERENCE_BYTES,
    MAX_SPEAKERS,
    OpenAIParamError,
    OpenAIRequest,
    parse_transcription,
    parse_translation,
)
from api_lambda.request_context import RequestContext, RequestContextDep
from api_lambda.waiting import FIRST_POLL_SECONDS, Backoff, wait_finished
from shared import openai_format as fmt
from shared.errors import InvalidParameter, JobNotFound, ModelNotAvailable, ServiceError
from shared.ingestion import well_formed_media_type
from shared.jobs import Job, JobStatus, new_job_id
from shared.openai_format import ResponseFormat, TranscriptRecord
from shared.resources import result_key, segments_key
from shared.settings import Settings

router = APIRouter(tags=["openai"])

MODELS_CREATED = 1_664_150_400  # 2022-09-26, Whisper's release: `created` of every listed model
OWNED_BY = "whisper-diarization"
MAX_FORM_PART_BYTES = MAX_REFERENCE_BYTES * 4 // 3 + 1024  # a base64 data URL of a reference
MAX_POLL_SECONDS = 1.0  # a stream's segments show up within a second of their publishing
KEEPALIVE_SECONDS = 15.0  # an SSE comment this often keeps proxies and read timeouts at bay
_FORM_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "model": {"type": "string"},
                        "response_format": {"type": "string"},
                    },
                }
            }
        },
    }
}


async def _form(request: Request) -> tuple[UploadFile, dict[str, list[str]]]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise OpenAIParamError("Send the request as multipart/form-data with a 'file' part", None)
    try:
        form = await request.form(max_files=1, max_fields=100, max_part_size=MAX_FORM_PART_BYTES)
    except MultiPartException as error:
        raise OpenAIParamError(f"Could not parse the multipart form: {error.message}", None) from error
    fields: dict[str, list[str]] = {}
    upload: UploadFile | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "file":
                raise OpenAIParamError(f"Unexpected file part '{name}'; send the audio as 'file'", name)
            upload = value
        else:
            fields.setdefault(name, []).append(value)
    if upload is None:
        raise OpenAIParamError("you must provide a file parameter", "file", "missing_required_parameter")
    return upload, fields


async def _submit(call: RequestContext, job_id: str, upload: UploadFile, parsed: OpenAIRequest) -> Job:
    """The file (and any speaker references) to S3, then the job to the table and queue. Refusals
    of the model or language name OpenAI's field."""
    source = UploadStream(
        read=upload.read,
        filename=upload.filename,
        content_type=well_formed_media_type(upload.content_type),
        size=upload.size,
    )
    extras = JobExtras(openai=parsed.options, known_speakers=parsed.references[:MAX_SPEAKERS])
    aws, principal = call.aws, call.principal
    try:
        return await intake.submit(
            aws, source, parsed.form, principal, lambda_mode=call.lambda_mode, extras=extras, job_id=job_id
        )
    except OpenAIParamError:
        raise
    except ModelNotAvailable as error:
        raise OpenAIParamError(error.message, "model", "model_not_found") from error
    except InvalidParameter as error:  # from resolving the model and language: nothing else raises it
        if error.message.startswith("Unknown whisper_model"):
            message = error.message.replace("whisper_model", "model", 1)
            message += f" (or an OpenAI model name: {', '.join(fmt.OPENAI_MODELS)})"
            raise OpenAIParamError(message, "model", "model_not_found") from error
        raise OpenAIParamError(error.message, "language") from error


async def _json_object(aws: AwsClients, settings: Settings, key: str) -> dict[str, Any] | None:
    data = await aws.blobs.get_optional(key)
    return None if data is None else json.loads(data)


async def _record(aws: AwsClients, settings: Settings, job_id: str) -> TranscriptRecord | None:
    stored = await _json_object(aws, settings, segments_key(job_id))
    return TranscriptRecord.model_validate(stored) if stored is not None else None


def _answer(parsed: OpenAIRequest, record: TranscriptRecord, result: dict[str, Any], job_id: str) -> Response:
    headers = {"x-request-id": job_id}
    task = parsed.options.task
    match parsed.response_format:
        case ResponseFormat.JSON:
            body = fmt.transcription(record, include_logprobs=parsed.include_logprobs)
            if task == "translate":
                body.pop("usage", None)  # `Translation` is only `text`
            return JSONResponse(body, headers=headers)
        case ResponseFormat.VERBOSE_JSON:
            body = fmt.verbose(record, result, words=parsed.words, segments=parsed.segments, task=task)
            return JSONResponse(body, headers=headers)
        case ResponseFormat.DIARIZED_JSON:
            return JSONResponse(fmt.diarized(record, result), headers=headers)
        case ResponseFormat.SRT:
            content = fmt.srt(record)
        case ResponseFormat.VTT:
            content = fmt.vtt(record)
        case _:
            content = fmt.text(record)
    return PlainTextResponse(content, media_type=fmt.MEDIA_TYPES[parsed.response_format], headers=headers)


async def _finished_answer(settings: Settings, aws: AwsClients, parsed: OpenAIRequest, job: Job) -> Response:
    if job.status is JobStatus.COMPLETED:
        record = await _record(aws, settings, job.job_id)
        result = await _json_object(aws, settings, result_key(job.job_id))
        if record is None or result is None:
            return openai_response(
                404, f"The result of job {job.job_id} is gone (expired or deleted)", request_id=job.job_id
            )
        return _answer(parsed, record, result, job.job_id)
    if job.status is JobStatus.FAILED:
        return openai_response(400, job.error or "transcription failed", request_id=job.job_id)
    return openai_response(409, f"Job {job.job_id} was {job.status.value}", request_id=job.job_id)


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


async def _events(
    request: Request, settings: Settings, aws: AwsClients, parsed: OpenAIRequest, job_id: str
) -> AsyncIterator[bytes]:
    """Deltas as the worker publishes segments; for diarized_json, the speaker segments (each with
    its delta) once diarization has named them; then `transcript.text.done`, or an error event."""
    diarized = parsed.response_format is ResponseFormat.DIARIZED_JSON
    logprobs = parsed.include_logprobs
    sent = 0
    backoff = Backoff(FIRST_POLL_SECONDS, MAX_POLL_SECONDS)
    last_write = time.monotonic()
    while True:
        try:
            job = await aws.store.get(job_id)
        except JobNotFound:
            yield _sse(fmt.error_body(f"Job {job_id} expired before it finished", type="server_error"))
            return
        record = await _record(aws, settings, job_id) if not diarized else None
        for segment in (record.segments if record else [])[sent:]:
            yield _sse(
                fmt.delta_event(
                    (" " if sent else "") + segment.text.strip(), words=segment.words if logprobs else None
                )
            )
            sent += 1
            last_write = time.monotonic()
        if job.status.finished:
            break
        if await request.is_disconnected():
            return
        if time.monotonic() - last_write > KEEPALIVE_SECONDS:
            yield b": keep-alive\n\n"
            last_write = time.monotonic()
        await backoff.sleep()
    if job.status is not JobStatus.COMPLETED:
        message = job.error or f"Job {job_id} was {job.status.value}"
        yield _sse(fmt.error_body(message, code=job.status.value))
        return
    record = await _record(aws, settings, job_id)
    result = await _json_object(aws, settings, result_key(job_id))
    if record is None or result is None:
        yield _sse(fmt.error_body(f"The result of job {job_id} is gone", type="server_error"))
        return
    if diarized:
        segments = fmt.diarized_segments(result, record.speakers)
        for index, piece in enumerate(segments):
            yield _sse(fmt.delta_event((" " if index else "") + piece["text"], segment_id=piece["id"]))
            yield _sse(piece)
        text = " ".join(s["text"] for s in segments)
    else:
        for segment in record.segments[sent:]:
            words = segment.words if logprobs else None
            yield _sse(fmt.delta_event((" " if sent else "") + segment.text.strip(), words=words))
            sent += 1
        text = fmt.full_text(record)
    all_words = [w for s in record.segments for w in s.words] if logprobs else None
    yield _sse(fmt.done_event(text, words=all_words))


async def _run(call: RequestContext, translate: bool) -> Response:
    request, settings, aws = call.request, call.settings, call.aws
    job_id = new_job_id()
    try:
        upload, fields = await _form(request)
        parsed = (parse_translation if translate else parse_transcription)(fields, settings)
        await _submit(call, job_id, upload, parsed)
    except ServiceError as error:
        return openai_error(error)
    if parsed.options.stream:
        headers = {"x-request-id": job_id, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            _events(request, settings, aws, parsed, job_id), media_type="text/event-stream", headers=headers
        )
    max_wait = settings.openai_max_wait_seconds
    job = await wait_finished(request, aws, job_id, max_wait)
    if job is None:
        return openai_response(
            504,
            f"Transcription is still running after {max_wait:g} s (OPENAI_MAX_WAIT_SECONDS). It was not "
            f"lost: GET /jobs/{job_id} tells when it is done and GET /jobs/{job_id}/result has it "
            "(Deepgram shape). Send long files with stream=true or through POST /jobs.",
            code="still_running",
            request_id=job_id,
        )
    return await _finished_answer(settings, aws, parsed, job)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "OpenAI's response in the requested format, or server-sent events with stream=true"},
    400: {"description": "Invalid parameter or file (OpenAI's error shape)"},
    401: {"description": "Missing or invalid API key"},
    504: {"description": "Still running after OPENAI_MAX_WAIT_SECONDS; the message names the job"},
}


@router.post("/v1/audio/transcriptions", responses=_RESPONSES, openapi_extra=_FORM_DOC)
async def transcriptions(call: RequestContextDep) -> Response:
    """Transcribe a file with OpenAI's form fields (docs/openai.md has which are honoured)."""
    return await _run(call, translate=False)


@router.post("/v1/audio/translations", responses=_RESPONSES, openapi_extra=_FORM_DOC)
async def translations(call: RequestContextDep) -> Response:
    """Translate speech into English (Whisper's translate task; needs a multilingual model)."""
    return await _run(call, translate=True)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": MODELS_CREATED, "owned_by": OWNED_BY}


async def _model_names(settings: Settings, aws: AwsClients) -> list[str]:
    fleet = await fleet_capabilities(aws, settings)
    return list(dict.fromkeys([*fmt.OPENAI_MODELS, *fleet.models]))


@router.get("/v1/models")
async def list_models(settings: SettingsDep, aws: AwsDep, _: PrincipalDep) -> JSONResponse:
    """OpenAI's model names this service answers to, then the Whisper models the fleet has."""
    names = await _model_names(settings, aws)
    return JSONResponse({"object": "list", "data": [_model(name) for name in names]})


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, settings: SettingsDep, aws: AwsDep, _: PrincipalDep) -> Response:
    if model_id not in await _model_names(settings, aws):
        return openai_response(
            404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
        )
    return JSONResponse(_model(model_id))
