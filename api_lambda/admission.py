"""Admit an object in S3 as a job's audio: a presigned upload (its job `awaiting_upload`), a file
dropped under `incoming/`, or an `s3_uri` named in `POST /jobs`.

Neither the emulator nor a presigned PUT enforces a size or type limit, so every object is checked
here: its size (HeadObject) against the limit, its content type, and its first bytes (the same
sniff as `POST /jobs`; the worker's decoder gives the final word). Starts are conditional writes,
so any number of events or requests for one object queue its job once.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from api_lambda.aws import AwsClients
from api_lambda.enqueue import enqueue
from api_lambda.fleet import fleet_capabilities
from api_lambda.sniff import SNIFF_BYTES, check_upload_head
from api_lambda.submission import SubmitForm, resolve_options
from shared.errors import (
    InvalidAudio,
    InvalidParameter,
    JobNotFound,
    JobStateConflict,
    ModelNotAvailable,
    PayloadTooLarge,
    ServiceError,
)
from shared.ingestion import (
    COPY_LIMIT_BYTES,
    SourceNotAllowed,
    UnsupportedMediaType,
    check_media_type,
    drop_job_id,
    drop_parameters,
    drop_project,
    drop_result_key,
    parse_s3_uri,
    valid_key,
)
from shared.jobs import Job, JobOptions, JobStatus, new_job_id
from shared.logging import get_logger
from shared.ports import StoredObject
from shared.queue import JobMessage
from shared.resources import INCOMING_PREFIX, upload_key

log = get_logger(__name__)

# What makes an object (or its parameters) unacceptable for good: the job fails with the message.
REFUSALS = (InvalidAudio, PayloadTooLarge, InvalidParameter, ModelNotAvailable)


class SourceNotFound(ServiceError):
    """An `s3_uri` with no object, or one the caller's project may not read (the same answer)."""

    status_code = 404
    code = "source_not_found"


class UploadNotReceived(JobStateConflict):
    """`POST /jobs {"upload_id"}` before the file was uploaded."""


async def head_object(aws: AwsClients, bucket: str, key: str) -> StoredObject | None:
    """The object's size, ETag, type and metadata; None when there is no such object."""
    return await aws.blobs.head(bucket, key)


async def _first_bytes(aws: AwsClients, stored: StoredObject) -> bytes:
    return await aws.blobs.read_head(stored, SNIFF_BYTES)


async def check_object(
    aws: AwsClients,
    stored: StoredObject,
    *,
    limit: int,
    limit_reason: str = "the limit",
    expected_type: str | None = None,
    name: str | None = None,
) -> None:
    """Raise one of REFUSALS unless the object may be audio within the limits. `name`: what the
    messages call it (the user's file name; by default the key's last part)."""
    name = name or stored.filename
    if stored.size > limit:
        raise PayloadTooLarge(
            f"File too large: '{name}' is {stored.size} bytes, more than {limit_reason} ({limit} bytes)"
        )
    if expected_type and stored.content_type != expected_type:
        raise UnsupportedMediaType(
            f"'{name}' was uploaded as '{stored.content_type or 'no content type'}', but "
            f"the upload was created for '{expected_type}'"
        )
    check_media_type(stored.content_type)
    check_upload_head(await _first_bytes(aws, stored), name)


async def send_job(aws: AwsClients, job: Job) -> None:
    message = JobMessage(
        job_id=job.job_id,
        bucket=aws.settings.bucket_name,
        upload_key=job.upload_key,
        created_at=job.created_at,
    )
    await aws.queue.send(message.to_body())


async def live_job(aws: AwsClients, job_id: str) -> Job | None:
    try:
        return await aws.store.get(job_id)
    except JobNotFound:
        return None


# --- presigned uploads ---------------------------------------------------------------------------------
async def start_upload(aws: AwsClients, job: Job) -> Job | None:
    """Queue an `awaiting_upload` job whose object has arrived and passes the checks.

    Returns the queued job, or None when another event or request started (or refused) it first.
    A refused object fails the job and is deleted, then the refusal is raised; UploadNotReceived
    when there is no object yet.
    """
    bucket, ops = aws.settings.bucket_name, aws.store.ops
    stored = await head_object(aws, bucket, job.upload_key)
    if stored is None:
        raise UploadNotReceived(
            f"Job {job.job_id} has no upload yet: PUT the file to its upload URL (or POST the form) first"
        )
    declared = job.size_bytes or None
    try:
        await check_object(
            aws,
            stored,
            limit=declared or aws.settings.max_upload_bytes,
            limit_reason="the size declared for this upload" if declared else "the limit",
            expected_type=job.content_type,
            name=job.filename,
        )
    except REFUSALS as refusal:
        if await aws.store.run(ops.fail_upload(job.job_id, refusal.message)):
            await aws.blobs.delete(job.upload_key)
            log.info("upload_refused", job_id=job.job_id, key=job.upload_key, error=refusal.message)
        raise
    started = await aws.store.run(ops.start_upload(job.job_id, stored.size, stored.content_type))
    if started is None:
        return None
    try:
        await send_job(aws, started)
    except BaseException:
        await aws.store.run(ops.unstart_upload(job.job_id))  # a retried event can start it again
        raise
    log.info("upload_queued", job_id=job.job_id, key=job.upload_key, size=stored.size)
    return started


# --- the drop folder -------------------------------------------------------------------------------------
async def admit_drop(aws: AwsClients, stored: StoredObject) -> Job | None:
    """A job for an object dropped under incoming/: queued, or failed with the reason. None when
    this very object already has a live job (a repeated event). The object is left alone either
    way (the drop folder is the user's; a lifecycle rule expires it): a refused one stays, so
    `GET /jobs?source_key=` finds its failed job and the reason."""
    settings, ops = aws.settings, aws.store.ops
    job_id = drop_job_id(stored.bucket, stored.key, stored.etag, stored.metadata)
    if await live_job(aws, job_id) is not None:
        return None
    fields = {
        "upload_key": stored.key,
        "filename": stored.filename,
        "size_bytes": stored.size,
        "content_type": stored.content_type,
    }
    project = {"project_id": drop_project(stored.key, settings.drop_folder_prefixes)}
    options = JobOptions(whisper_model=settings.default_whisper_model)  # kept only if refused early
    try:
        form = SubmitForm(**drop_parameters(stored.metadata))
        options = resolve_options(form, settings, await fleet_capabilities(aws, settings))
        await check_object(aws, stored, limit=settings.max_upload_bytes)
    except REFUSALS as refusal:
        job = ops.refused_job(ops.queued_job(job_id, options, **fields), refusal.message).model_copy(
            update=project
        )
        try:
            await aws.store.run(ops.create(job, replace_expired=True))
        except JobStateConflict:
            return None
        log.info("drop_refused", job_id=job_id, key=stored.key, error=refusal.message)
        return job
    job = ops.queued_job(job_id, options, **fields).model_copy(
        update={"result_copy_key": drop_result_key(stored.key), **project}
    )
    try:
        await aws.store.run(ops.create(job, replace_expired=True))
    except JobStateConflict:
        return None
    try:
        await send_job(aws, job)
    except BaseException:
        await aws.store.run(ops.forget_unsent(job_id))  # a retried event can create it again
        raise
    log.info("drop_queued", job_id=job_id, key=stored.key, result=job.result_copy_key)
    return job


def may_use_drop_key(aws: AwsClients, key: str, project_id: str | None) -> bool:
    """Whether a caller of `project_id` (None: auth is off) may see the drop-folder file at `key`."""
    return project_id is None or drop_project(key, aws.settings.drop_folder_prefixes) == project_id


async def drop_job(aws: AwsClients, key: str, project_id: str | None = None) -> Job:
    """The job of the object now at `key` under incoming/ (`GET /jobs?source_key=`). One answer,
    JobNotFound for the key, whether there is no object, no job, or it is another project's."""
    not_found = JobNotFound(f"for {key}")
    if (
        not key.startswith(INCOMING_PREFIX)
        or not valid_key(key)
        or not may_use_drop_key(aws, key, project_id)
    ):
        raise not_found
    stored = await head_object(aws, aws.settings.bucket_name, key)
    if stored is None:
        raise not_found
    try:
        job = await aws.store.get(drop_job_id(stored.bucket, stored.key, stored.etag, stored.metadata))
    except JobNotFound:
        raise not_found from None
    if project_id is not None and job.project_id != project_id:
        raise not_found
    return job


# --- s3_uri sources ---------------------------------------------------------------------------------------
def _allowed_source(aws: AwsClients, bucket: str, key: str) -> None:
    settings = aws.settings
    if bucket not in settings.source_buckets:
        raise SourceNotAllowed(
            f"s3_uri bucket '{bucket}' is not one this service may read; allowed: "
            f"{', '.join(sorted(settings.source_buckets))} (S3_URI_ALLOWED_BUCKETS)"
        )
    if bucket == settings.bucket_name and not key.startswith(INCOMING_PREFIX):
        raise SourceNotAllowed(
            f"s3_uri may name objects of the service's own bucket under {INCOMING_PREFIX} only, "
            "not its job data"
        )


async def submit_s3_object(
    aws: AwsClients, uri: str, form: SubmitForm, *, project_id: str | None = None
) -> Job:
    """A queued job for an object already in S3: checked, then copied to uploads/{job_id}/ (a
    snapshot the job owns, read and deleted like any upload). Nothing stays behind on failure."""
    settings, ops = aws.settings, aws.store.ops
    bucket, key = parse_s3_uri(uri)
    _allowed_source(aws, bucket, key)
    options = resolve_options(form, settings, await fleet_capabilities(aws, settings))
    # Another project's dropped file reads as a missing one: the answer must not tell it exists.
    not_found = SourceNotFound(f"s3_uri: there is no object at {uri} that this key may read")
    if bucket == settings.bucket_name and not may_use_drop_key(aws, key, project_id):
        raise not_found
    try:
        stored = await head_object(aws, bucket, key)
    except Exception as error:  # botocore's ClientError, on AWS
        if _error_code(error) in ("403", "AccessDenied"):
            raise SourceNotAllowed(f"this service is not allowed to read {uri}") from error
        raise
    if stored is None:
        raise not_found
    await check_object(aws, stored, limit=min(settings.max_upload_bytes, COPY_LIMIT_BYTES))

    job_id = new_job_id()
    target = upload_key(job_id, stored.filename)
    async with AsyncExitStack() as undo:  # on any failure, remove what was written so far
        await aws.blobs.copy(stored, target)
        undo.push_async_callback(aws.blobs.delete, target)
        job = ops.queued_job(
            job_id,
            options,
            upload_key=target,
            filename=stored.filename,
            size_bytes=stored.size,
            content_type=stored.content_type,
        ).model_copy(update={"project_id": project_id})
        await enqueue(aws, settings, job, undo)
        undo.pop_all()
    return job


def _error_code(error: BaseException) -> str:
    response: Any = getattr(error, "response", None)
    return response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""


def job_status_conflict(job: Job) -> JobStateConflict:
    reason = f": {job.error}" if job.status is JobStatus.FAILED and job.error else ""
    return JobStateConflict(f"Job {job.job_id} can't be started: it is {job.status.value}{reason}")
