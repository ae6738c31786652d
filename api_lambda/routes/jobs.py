"""`/jobs`: submit audio, poll a job, fetch its result, cancel or delete it."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import RedirectResponse, Response

from api_lambda.auth import PrincipalDep, visible_job
from api_lambda.deps import AwsDep, LambdaModeDep, SettingsDep
from api_lambda.enqueue import enqueue
from api_lambda.fleet import fleet_capabilities
from api_lambda.schemas import ErrorBody, JobCreated, JobFromS3, JobState, Message
from api_lambda.sniff import SNIFF_BYTES, check_upload_head
from api_lambda.submission import SubmitForm, resolve_options
from api_lambda.upload_guard import upload_limit
from shared.deepgram import DeepgramResponse
from shared.errors import JobStateConflict
from shared.exporters import MEDIA_TYPES, ExportFormat, export
from shared.filenames import display_name
from shared.ingestion import well_formed_media_type
from shared.jobs import JobStatus, new_job_id
from shared.resources import result_key, upload_key

router = APIRouter(prefix="/jobs", tags=["jobs"])

_ERRORS = {
    400: {"model": ErrorBody, "description": "Empty or clearly non-audio upload"},
    404: {"model": ErrorBody, "description": "Unknown (or expired) job"},
    409: {"model": ErrorBody, "description": "The job is not in a state that allows this"},
    413: {"model": ErrorBody, "description": "Upload larger than the limit"},
    422: {"model": ErrorBody, "description": "Invalid parameter, or a model this deployment lacks"},
}
DELETE_ATTEMPTS = 5  # re-reads when the job changes state under a DELETE


@router.post(
    "",
    status_code=201,
    response_model=JobCreated,
    responses=_ERRORS,
    # The JSON alternative is served by routes/uploads.py (`{"upload_id"}` or `{"s3_uri"}`).
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": JobFromS3.model_json_schema()}}}
    },
)
async def submit_job(
    settings: SettingsDep,
    aws: AwsDep,
    lambda_mode: LambdaModeDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="Audio or video (wav, mp3, webm, m4a, ...)")],
    whisper_model: Annotated[str | None, Form(description="Default: DEFAULT_WHISPER_MODEL")] = None,
    language: Annotated[str | None, Form(description="Whisper language code; empty: detect")] = None,
    stemming: Annotated[
        bool | None, Form(description="Separate vocals first (default: DEFAULT_STEMMING)")
    ] = None,
    suppress_numerals: Annotated[bool, Form()] = False,
    batch_size: Annotated[int | None, Form(description="1..64 (default: DEFAULT_BATCH_SIZE, 1)")] = None,
    num_speakers: Annotated[int | None, Form(description="Exact speaker count, if known")] = None,
    min_speakers: Annotated[int | None, Form()] = None,
    max_speakers: Annotated[int | None, Form()] = None,
) -> JobCreated:
    """Queue a file for transcription and diarization. Nothing is stored unless all of it is."""
    form = SubmitForm(
        whisper_model=whisper_model,
        language=language,
        stemming=stemming,
        suppress_numerals=suppress_numerals,
        batch_size=batch_size,
        num_speakers=num_speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
    )
    options = resolve_options(form, settings, await fleet_capabilities(aws, settings))
    limit, too_large = upload_limit(settings, lambda_mode)
    if file.size is not None and file.size > limit:
        raise too_large
    filename = display_name(file.filename)
    content_type = well_formed_media_type(file.content_type)  # passed on to S3: never a raw header
    head = await file.read(SNIFF_BYTES)
    check_upload_head(head, filename)

    job_id = new_job_id()
    key = upload_key(job_id, filename)
    ops = aws.store.ops
    async with AsyncExitStack() as undo:  # on any failure, remove what was written so far
        size = await aws.blobs.upload_stream(
            key,
            file.read,
            first_chunk=head,
            limit=limit,
            too_large=lambda: too_large,
            content_type=content_type,
        )
        undo.push_async_callback(aws.blobs.delete, key)
        job = ops.queued_job(
            job_id,
            options,
            upload_key=key,
            filename=filename,
            size_bytes=size,
            content_type=content_type,
        ).model_copy(update={"project_id": principal.project_id})
        await enqueue(aws, settings, job, undo)
        undo.pop_all()
    position = await aws.store.run(
        ops.count(JobStatus.QUEUED, created_before=job.created_at, project_id=principal.project_id)
    )
    return JobCreated(job_id=job_id, position=position)


@router.get("/{job_id}", response_model=JobState, response_model_exclude_none=True, responses=_ERRORS)
async def get_job(job_id: str, aws: AwsDep, principal: PrincipalDep) -> JobState:
    job = await visible_job(aws, principal, job_id)
    state = JobState(job_id=job.job_id, status=job.status)
    if job.status is JobStatus.QUEUED:
        position = await aws.store.run(
            aws.store.ops.count(
                JobStatus.QUEUED, created_before=job.created_at, project_id=principal.project_id
            )
        )
        return state.model_copy(update={"position": position})
    if job.status is JobStatus.PROCESSING:
        return state.model_copy(update={"progress": job.progress or job.first_stage})
    if job.status is JobStatus.FAILED:
        return state.model_copy(update={"error": job.error or "unknown error"})
    return state


@router.get(
    "/{job_id}/result",
    responses={
        **_ERRORS,
        200: {"description": "Deepgram-compatible JSON (or the `format` asked for)"},
        307: {"description": "Large result on Lambda: redirect to a presigned S3 URL"},
    },
)
async def get_result(
    job_id: str,
    settings: SettingsDep,
    aws: AwsDep,
    lambda_mode: LambdaModeDep,
    principal: PrincipalDep,
    format: Annotated[
        ExportFormat, Query(description="json (Deepgram), srt, vtt, txt or rttm")
    ] = ExportFormat.JSON,
) -> Response:
    job = await visible_job(aws, principal, job_id)
    if job.status is not JobStatus.COMPLETED:
        raise JobStateConflict(f"Job {job_id} has no result: it is {job.status.value}")
    key = result_key(job_id)
    if format is ExportFormat.JSON and lambda_mode:
        url = await aws.blobs.large_object_url(key, settings.max_lambda_response_bytes)
        if url is not None:
            return RedirectResponse(url, status_code=307)
    data = await aws.blobs.get(key)
    names = {int(k): v for k, v in (job.speaker_names or {}).items()}
    if format is ExportFormat.JSON:
        if names:  # an added field, the stored JSON otherwise as it is
            document = json.loads(data)
            document["results"]["speaker_names"] = {str(k): v for k, v in sorted(names.items())}
            data = json.dumps(document).encode()
        return Response(data, media_type=MEDIA_TYPES[format])
    text = export(DeepgramResponse.model_validate_json(data), format, names)
    return Response(text, media_type=MEDIA_TYPES[format])


@router.delete("/{job_id}", response_model=Message, responses=_ERRORS)
async def delete_job(job_id: str, settings: SettingsDep, aws: AwsDep, principal: PrincipalDep) -> Message:
    """Cancel a queued job, ask a processing one to stop at its next stage, or remove a finished
    job's audio, result and record."""
    ops = aws.store.ops
    for _ in range(DELETE_ATTEMPTS):
        job = await visible_job(aws, principal, job_id)
        if job.status in (JobStatus.QUEUED, JobStatus.AWAITING_UPLOAD):
            if await aws.store.run(ops.cancel_queued(job_id)) is not None:
                await aws.blobs.delete_job_objects(job_id)
                return Message(message="Job deleted")
        elif job.status is JobStatus.PROCESSING:
            if await aws.store.run(ops.request_cancel(job_id)) is not None:
                return Message(message="Job deleted")
        else:
            await aws.blobs.delete_job_objects(job_id)
            if await aws.store.run(ops.delete_finished(job_id)):
                return Message(message="Job deleted")
    raise JobStateConflict(f"Job {job_id} kept changing state; try the DELETE again")
