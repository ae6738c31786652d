"""`POST /uploads` (presigned S3 uploads), `POST /jobs` with a JSON body (start an upload's job, or
transcribe an object already in S3) and `GET /jobs?source_key=` (the job of a dropped file).

Large files go straight to S3: Lambda's 6 MB payload cap never applies. The object's
ObjectCreated event starts its job (`api_lambda/ingest.py`); `POST /jobs {"upload_id"}` does the
same on request, for clients that want the answer (or the refusal) at once.

This router must be included before `routes.jobs`: its JSON `POST /jobs` only matches JSON
requests and lets the multipart form fall through to the original route.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from api_lambda import intake
from api_lambda.auth import PrincipalDep, visible_job
from api_lambda.deps import AwsDep, SettingsDep
from api_lambda.ingest import drop_job
from api_lambda.intake import PresignedUpload, S3Object, job_status_conflict, upload_arrived
from api_lambda.routes.jobs import queue_position
from api_lambda.schemas import (
    DropJob,
    ErrorBody,
    JobCreated,
    JobFromS3,
    PresignedPost,
    PresignedPut,
    UploadCreated,
    UploadRequest,
)
from shared.errors import InvalidParameter
from shared.jobs import JobStatus
from shared.ports import UploadTerms
from shared.resources import INCOMING_PREFIX

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The object is empty or clearly not audio"},
    403: {"model": ErrorBody, "description": "s3_uri names a bucket or prefix the service may not read"},
    404: {
        "model": ErrorBody,
        "description": "Unknown (or expired) job, or no object at s3_uri this key may read",
    },
    409: {"model": ErrorBody, "description": "The upload has not arrived, or the job already left"},
    413: {"model": ErrorBody, "description": "Larger than the limit (or than the declared size)"},
    415: {"model": ErrorBody, "description": "A content type that is not audio or video"},
    422: {"model": ErrorBody, "description": "Invalid parameter, or a model this deployment lacks"},
}


class JsonBodyRoute(APIRoute):
    """Matches only requests with a JSON body, so one path can take JSON and multipart."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        if match is not Match.NONE and not content_type.split(b";")[0].strip().endswith(b"json"):
            return Match.NONE, {}
        return match, child


router = APIRouter(tags=["uploads"])


@router.post("/uploads", status_code=201, response_model=UploadCreated, responses=_ERRORS)
async def create_upload(
    request: UploadRequest, http: Request, settings: SettingsDep, aws: AwsDep, principal: PrincipalDep
) -> UploadCreated:
    """A job waiting for its file, and where to put the file: a presigned PUT URL, and a presigned
    POST form for browsers. The upload starts the job; one that never comes expires with it."""
    source = PresignedUpload(request.filename, request.content_type, request.size_bytes)
    job = await intake.submit(aws, source, request.parameters(), principal)
    terms = UploadTerms(
        content_type=request.content_type,
        size_bytes=request.size_bytes,
        limit=settings.max_upload_bytes,
        lifetime=settings.upload_url_expiry_seconds,
        base_url=str(http.base_url),
    )
    presigned = await aws.blobs.presign_upload(job.upload_key, terms)
    return UploadCreated(
        job_id=job.job_id,
        upload_id=job.job_id,
        key=job.upload_key,
        max_bytes=terms.max_bytes,
        expires_at=(datetime.now(UTC) + timedelta(seconds=terms.lifetime)).isoformat(timespec="seconds"),
        put=PresignedPut(url=presigned.put_url, headers=presigned.put_headers),
        post=PresignedPost(url=presigned.post_url, fields=presigned.post_fields),
    )


async def submit_job_from_s3(
    body: JobFromS3, settings: SettingsDep, aws: AwsDep, principal: PrincipalDep
) -> JobCreated:
    """`POST /jobs` with JSON: `{"upload_id"}` starts a presigned upload's job (as its S3 event
    would); `{"s3_uri", ...parameters}` queues an object already in an allowed bucket."""
    if body.upload_id is not None:
        if body.parameters_given():
            raise InvalidParameter(
                'an upload\'s parameters are set by POST /uploads; send only {"upload_id"} here '
                f"(got {', '.join(sorted(body.parameters_given()))})"
            )
        job = await visible_job(aws, principal, body.upload_id)
        if job.status is JobStatus.AWAITING_UPLOAD:
            await upload_arrived(aws, job)
            job = await aws.store.get(job.job_id)
        if job.status is not JobStatus.QUEUED:
            raise job_status_conflict(job)
    else:
        assert body.s3_uri is not None
        job = await intake.submit(aws, S3Object(body.s3_uri), body.parameters(), principal)
    return JobCreated(job_id=job.job_id, position=await queue_position(aws, job, principal))


router.add_api_route(
    "/jobs",
    submit_job_from_s3,
    methods=["POST"],
    status_code=201,
    response_model=JobCreated,
    responses=_ERRORS,
    route_class_override=JsonBodyRoute,
    include_in_schema=False,  # documented on the multipart route, which owns POST /jobs in OpenAPI
)


@router.get("/jobs", response_model=DropJob, response_model_exclude_none=True, responses=_ERRORS)
async def find_drop_job(
    source_key: Annotated[str, Query(description=f"Key of a file dropped under {INCOMING_PREFIX}")],
    aws: AwsDep,
    principal: PrincipalDep,
) -> DropJob:
    """The job of the file now at `source_key` (its id is derived from the object, so a file
    dropped again with other bytes or parameters is another job)."""
    job = await drop_job(aws, source_key, principal.project_id)
    return DropJob(
        job_id=job.job_id,
        status=job.status,
        source_key=source_key,
        result_key=job.result_copy_key,
        error=job.error if job.status is JobStatus.FAILED else None,
    )
