"""`/jobs`: submit audio, poll a job, fetch its result, cancel or delete it."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import RedirectResponse, Response

from api_lambda import intake
from api_lambda.auth import Principal, PrincipalDep, visible_job
from api_lambda.aws import AwsClients
from api_lambda.deps import AwsDep, LambdaModeDep, SettingsDep
from api_lambda.intake import UploadStream
from api_lambda.schemas import ErrorBody, JobCreated, JobForm, JobFromS3, JobState, Message
from shared.deepgram import DeepgramResponse
from shared.errors import JobStateConflict
from shared.exporters import MEDIA_TYPES, ExportFormat, export
from shared.ingestion import well_formed_media_type
from shared.jobs import Job, JobStatus
from shared.resources import result_key

router = APIRouter(prefix="/jobs", tags=["jobs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
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
    aws: AwsDep,
    lambda_mode: LambdaModeDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="Audio or video (wav, mp3, webm, m4a, ...)")],
    params: Annotated[JobForm, Form()],
) -> JobCreated:
    """Queue a file for transcription and diarization. Nothing is stored unless all of it is."""
    source = UploadStream(
        read=file.read,
        filename=file.filename,
        content_type=well_formed_media_type(file.content_type),  # passed on to S3: never a raw header
        size=file.size,
    )
    job = await intake.submit(aws, source, params, principal, lambda_mode=lambda_mode)
    return JobCreated(job_id=job.job_id, position=await queue_position(aws, job, principal))


async def queue_position(aws: AwsClients, job: Job, principal: Principal) -> int:
    """How many of the caller's jobs are queued before this one."""
    ops = aws.store.ops
    return await aws.store.run(
        ops.count(JobStatus.QUEUED, created_before=job.created_at, project_id=principal.project_id)
    )


@router.get("/{job_id}", response_model=JobState, response_model_exclude_none=True, responses=_ERRORS)
async def get_job(job_id: str, aws: AwsDep, principal: PrincipalDep) -> JobState:
    job = await visible_job(aws, principal, job_id)
    state = JobState(job_id=job.job_id, status=job.status)
    if job.status is JobStatus.QUEUED:
        return state.model_copy(update={"position": await queue_position(aws, job, principal)})
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
