"""Ingest: objects written to the bucket become jobs. The ingest Lambda's S3 ObjectCreated events
on uploads/ and incoming/, and the drop folder's jobs (also `GET /jobs?source_key=`).

`handler` is what AWS invokes (S3 → Lambda); the emulator's ingest consumer
(`onebox/ingest_consumer.py`) hands `process_event` the same event bodies from SQS. Per object:

- `uploads/{job_id}/presigned/{name}` (a `POST /uploads` upload): its `awaiting_upload` job is
  checked and queued, or failed with the reason and the object deleted. An object whose job is
  gone (expired, cancelled, deleted) or already finished is deleted: the upload came too late.
- `uploads/{job_id}/{name}` (the API's own uploads and copies): skipped, the API queued the job.
- `incoming/...` (the drop folder): a job with parameters from the object's metadata, whose result
  is also written to `results/...` under the same name.

Everything is idempotent (conditional writes, deterministic drop-folder ids): duplicate events,
the two a completed multipart upload emits, and retried invocations queue each job once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from aiobotocore.session import get_session

from api_lambda.auth import Principal
from api_lambda.aws import AwsClients, open_clients
from api_lambda.intake import DroppedFile, default_options, keep_refusal, live_job, submit, upload_arrived
from api_lambda.object_checks import REFUSALS, head_object, may_use_drop_key
from shared.errors import JobNotFound, JobStateConflict, ServiceError
from shared.ingestion import (
    ObjectCreated,
    drop_job_id,
    drop_parameters,
    drop_project,
    drop_result_key,
    is_drop_key,
    object_events,
    parse_upload_key,
    valid_key,
)
from shared.jobs import Job, JobStatus
from shared.logging import configure_logging, get_logger
from shared.options import JobParameters
from shared.ports import StoredObject
from shared.resources import INCOMING_PREFIX, UPLOADS_PREFIX
from shared.settings import get_settings

log = get_logger(__name__)
_session = get_session()  # kept across warm invocations: it caches the service models


class Outcome(StrEnum):
    QUEUED = "queued"  # a job was queued for the object
    REFUSED = "refused"  # its job failed with the reason (too large, wrong type, not audio, bad parameters)
    DUPLICATE = "duplicate"  # the object's job was already queued or further (a repeated event)
    TOO_LATE = "too_late"  # a presigned upload whose job is gone or finished: the object was deleted
    SKIPPED = "skipped"  # not for ingestion: the API's own upload, another bucket or prefix
    GONE = "gone"  # the object was deleted before its event was handled


async def _presigned_or_own(aws: AwsClients, created: ObjectCreated) -> Outcome:
    parsed = parse_upload_key(created.key)
    if parsed is None:
        log.warning("ingest_unknown_upload_key", key=created.key)
        return Outcome.SKIPPED
    if not parsed.presigned:  # the API wrote it; its row may not exist yet, and that is fine
        return Outcome.SKIPPED
    job = await live_job(aws, parsed.job_id)
    if job is None or job.upload_key != created.key or job.status.finished:
        await aws.blobs.delete(created.key)
        reason = "no live job" if job is None or job.upload_key != created.key else f"job {job.status}"
        log.warning("upload_too_late", key=created.key, job_id=parsed.job_id, reason=reason)
        return Outcome.TOO_LATE
    if job.status is not JobStatus.AWAITING_UPLOAD:
        return Outcome.DUPLICATE
    try:
        started = await upload_arrived(aws, job)
    except REFUSALS:
        return Outcome.REFUSED
    except ServiceError as error:
        if error.retryable:
            raise
        return Outcome.GONE  # UploadNotReceived: deleted since the event
    return Outcome.QUEUED if started is not None else Outcome.DUPLICATE


# --- the drop folder -------------------------------------------------------------------------------------
async def ingest_drop(aws: AwsClients, stored: StoredObject) -> Job | None:
    """A job for an object dropped under incoming/, through intake's `submit`: queued, or failed
    with the reason. None when this very object already has a live job (a repeated event). The
    object is left alone either way (the drop folder is the user's; a lifecycle rule expires it): a
    refused one stays, so `GET /jobs?source_key=` finds its failed job and the reason. Its id
    derives from the object, so repeated events create it once."""
    settings = aws.settings
    job_id = drop_job_id(stored.bucket, stored.key, stored.etag, stored.metadata)
    if await live_job(aws, job_id) is not None:
        return None
    source = DroppedFile(stored, result_copy_key=drop_result_key(stored.key))
    principal = Principal(project_id=drop_project(stored.key, settings.drop_folder_prefixes))
    try:
        try:
            params = JobParameters(**drop_parameters(stored.metadata))
        except REFUSALS as refusal:
            job = await keep_refusal(aws, job_id, source, principal, refusal, default_options(aws))
        else:
            job = await submit(aws, source, params, principal, job_id=job_id)
    except JobStateConflict:
        return None
    if job.status is JobStatus.FAILED:
        log.info("drop_refused", job_id=job_id, key=stored.key, error=job.error)
    else:
        log.info("drop_queued", job_id=job_id, key=stored.key, result=job.result_copy_key)
    return job


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


async def _dropped(aws: AwsClients, created: ObjectCreated) -> Outcome:
    stored = await head_object(aws, created.bucket, created.key)
    if stored is None:
        return Outcome.GONE
    job = await ingest_drop(aws, stored)
    if job is None:
        return Outcome.DUPLICATE
    return Outcome.REFUSED if job.status is JobStatus.FAILED else Outcome.QUEUED


async def process_object(aws: AwsClients, created: ObjectCreated) -> Outcome:
    if created.bucket != aws.settings.bucket_name:
        return Outcome.SKIPPED
    if created.key.startswith(UPLOADS_PREFIX):
        return await _presigned_or_own(aws, created)
    if is_drop_key(created.key):
        return await _dropped(aws, created)
    return Outcome.SKIPPED


async def process_event(aws: AwsClients, event: Mapping[str, Any]) -> list[tuple[str, Outcome]]:
    """Handle every ObjectCreated record of one S3 notification; `(key, outcome)` for each.

    Each record is handled on its own. A transient failure of any is raised after the others have
    run, so the whole event is retried (S3 → Lambda retries twice; the consumer's SQS message comes
    back): records already handled come out DUPLICATE the second time.
    """
    outcomes: list[tuple[str, Outcome]] = []
    failure: BaseException | None = None
    for created in object_events(event):
        try:
            outcome = await process_object(aws, created)
        except Exception as error:  # retried with the event
            log.exception("ingest_failed", bucket=created.bucket, key=created.key)
            failure = failure or error
            continue
        log.info("ingested", key=created.key, outcome=outcome.value, s3_event=created.event_name)
        outcomes.append((created.key, outcome))
    if failure is not None:
        raise failure
    return outcomes


async def _handle(event: Mapping[str, Any]) -> dict[str, Any]:
    settings = get_settings()
    configure_logging(settings)
    async with open_clients(_session, settings) as aws:
        outcomes = await process_event(aws, event)
    return {"outcomes": [{"key": key, "outcome": outcome.value} for key, outcome in outcomes]}


_loop: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    """One loop per process, reused by warm invocations. Unlike `asyncio.run`, it never unsets the
    thread's current loop, which Mangum's handler in the same process still asks for."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point for S3 event notifications (asynchronous invocation)."""
    return _event_loop().run_until_complete(_handle(event))
