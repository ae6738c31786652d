"""Every way a new job comes in takes one path: `submit(aws, source, params, principal)`.

Routes parse a request into a source and `JobParameters` and shape the answer; this module
resolves the options against the fleet, checks and stores the audio, writes the job's row and
sends its queue message (in that order), and on any failure removes what it had written. Sources:
- `UploadStream`: a body streamed to S3 (the `POST /jobs` form, `/v1/listen`, `/v1/audio/...`);
- `UrlSource`: audio that a worker fetches (`/v1/listen` with `{"url"}`);
- `S3Object`: an object in an allowed bucket, copied to the job's folder (`POST /jobs {"s3_uri"}`);
- `PresignedUpload`: a job that waits for its file (`POST /uploads`). `upload_arrived` queues it
  once the object is there (its S3 event, `POST /jobs {"upload_id"}`, the local upload route);
- `DroppedFile`: an object under `incoming/` (`api_lambda.ingest`: its S3 event, the drop-folder
  watcher), checked where it lies; a refusal is kept as the job's `failed` state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from api_lambda.auth import Principal
from api_lambda.aws import AwsClients
from api_lambda.fleet import fleet_capabilities, resolve_options
from api_lambda.object_checks import REFUSALS, allowed_source, check_object, head_object, source_object
from api_lambda.sniff import SNIFF_BYTES, check_upload_head
from api_lambda.upload_guard import upload_limit
from shared.errors import JobNotFound, JobStateConflict, PayloadTooLarge, ServiceError
from shared.filenames import display_name
from shared.fleet import FleetCapabilities
from shared.ingestion import check_media_type, presigned_upload_key
from shared.jobs import (
    CallbackTarget,
    Job,
    JobOptions,
    JobStatus,
    KnownSpeaker,
    ListenOptions,
    OpenAIOptions,
    new_job_id,
)
from shared.logging import get_logger
from shared.options import JobParameters
from shared.ports import StoredObject, UploadBody
from shared.queue import JobMessage
from shared.resources import known_speaker_key, upload_key

log = get_logger(__name__)


@dataclass(frozen=True)
class UploadStream:
    """A body to stream to S3. `read(n)` gives its next bytes (b"" at the end)."""

    read: Callable[[int], Awaitable[bytes]]
    filename: str | None = None  # the user's name for it (display only)
    content_type: str | None = None  # stored with the object: a well-formed media type, or None
    size: int | None = None  # as declared (Content-Length, the part's size): over the limit is refused
    head: bytes = b""  # its first bytes, when the route has already read them
    frame: Callable[[bytes], bytes] | None = None  # a header for headerless audio, from its first bytes
    described_as: str | None = None  # what messages call it (default: its file name)


@dataclass(frozen=True)
class UrlSource:
    url: str  # already checked against the URL policy
    filename: str


@dataclass(frozen=True)
class S3Object:
    uri: str  # s3://bucket/key


@dataclass(frozen=True)
class PresignedUpload:
    filename: str
    content_type: str | None = None  # the upload must carry exactly this type
    size_bytes: int | None = None  # the upload is signed for it


@dataclass(frozen=True)
class DroppedFile:
    """An object dropped under incoming/. It stays where it is and is never deleted (the folder is
    the user's); its result is also written to `result_copy_key`."""

    stored: StoredObject
    result_copy_key: str


Source = UploadStream | UrlSource | S3Object | PresignedUpload | DroppedFile


@dataclass(frozen=True)
class SpeakerSample:
    """A known speaker's reference recording, stored beside the job's audio."""

    name: str
    audio: bytes
    content_type: str


@dataclass(frozen=True)
class JobExtras:
    """What an endpoint adds to a job beyond its options: how to shape and deliver the answer."""

    listen: ListenOptions | None = None
    openai: OpenAIOptions | None = None
    callback: CallbackTarget | None = None
    known_speakers: tuple[SpeakerSample, ...] = ()


class Dedup(Protocol):
    """One job per distinct request (`api_lambda.listen_dedup`): `source` names the audio."""

    async def claim(self, source: str, job_id: str) -> str | None: ...
    async def release(self, source: str, job_id: str) -> None: ...


@dataclass(frozen=True)
class Attached:
    """An identical request's live job, which this request joins instead of queueing its own."""

    job_id: str


class UploadNotReceived(JobStateConflict):
    """`POST /jobs {"upload_id"}` before the file was uploaded."""


@dataclass(frozen=True)
class _Stored:
    fields: dict[str, Any]  # the job's audio: upload_key, filename, size_bytes, content_type
    identity: str | None  # the audio's identity for dedup (its sha256, or its URL)
    source_url: str | None = None  # audio a worker fetches (then there is no upload_key)


async def submit(
    aws: AwsClients,
    source: Source,
    params: JobParameters,
    principal: Principal,
    *,
    lambda_mode: bool = False,
    extras: JobExtras = JobExtras(),
    check_fleet: Callable[[FleetCapabilities], None] | None = None,
    job_id: str | None = None,
) -> Job:
    """A new job for `source`, queued (a presigned upload's waits for its file). Nothing stays
    behind when it is refused or any step fails. `check_fleet`: an endpoint's own model check."""
    job = await submit_once(
        aws, source, params, principal, None, lambda_mode=lambda_mode, extras=extras,
        check_fleet=check_fleet, job_id=job_id,
    )  # fmt: skip
    assert isinstance(job, Job)
    return job


async def submit_once(
    aws: AwsClients,
    source: Source,
    params: JobParameters,
    principal: Principal,
    dedup: Dedup | None,
    *,
    lambda_mode: bool = False,
    extras: JobExtras = JobExtras(),
    check_fleet: Callable[[FleetCapabilities], None] | None = None,
    job_id: str | None = None,
) -> Job | Attached:
    """`submit`, or with `dedup` the live job of an identical earlier request (`Attached`)."""
    job_id = job_id or new_job_id()
    if isinstance(source, DroppedFile):
        return await _dropped(aws, job_id, source, params, principal)
    s3_source = allowed_source(aws, source.uri) if isinstance(source, S3Object) else None
    options = await _options(aws, params, check_fleet)
    if isinstance(source, PresignedUpload):
        return await _awaiting_upload(aws, job_id, options, source, principal)
    async with AsyncExitStack() as undo:  # on any failure, remove what was written so far
        if isinstance(source, UploadStream):
            stored = await _stream(aws, job_id, source, lambda_mode, undo)
        elif isinstance(source, UrlSource):
            fields = {"upload_key": "", "filename": display_name(source.filename)}
            stored = _Stored(fields, f"url:{source.url}", source.url)
        else:
            assert s3_source is not None
            stored = await _copy(aws, job_id, source.uri, *s3_source, principal, undo)
        if dedup is not None and stored.identity is not None:
            existing = await dedup.claim(stored.identity, job_id)
            if existing is not None:
                return Attached(existing)  # leaving the block deletes this request's copy of the audio
            undo.push_async_callback(dedup.release, stored.identity, job_id)
        openai = extras.openai
        if openai is not None and extras.known_speakers:
            speakers = await _store_samples(aws, job_id, extras.known_speakers, undo)
            openai = openai.model_copy(update={"known_speakers": speakers})
        audio = {"size_bytes": 0, "content_type": None, **stored.fields}
        job = aws.store.ops.queued_job(job_id, options, **audio).model_copy(
            update={
                "project_id": principal.project_id,
                "source_url": stored.source_url,
                "listen": extras.listen,
                "openai": openai,
                "callback": extras.callback,
            }
        )
        await _queue(aws, job, undo)
        undo.pop_all()
    return job


async def _options(
    aws: AwsClients, params: JobParameters, check_fleet: Callable[[FleetCapabilities], None] | None
) -> JobOptions:
    """`params` resolved against what the fleet can run."""
    fleet = await fleet_capabilities(aws, aws.settings)
    if check_fleet is not None:
        check_fleet(fleet)
    return resolve_options(params, aws.settings, fleet)


async def _dropped(
    aws: AwsClients, job_id: str, source: DroppedFile, params: JobParameters, principal: Principal
) -> Job:
    """A dropped object's job, queued; or failed with the reason when the object is refused. Its id
    derives from the object, so an expired row of the same id is replaced; JobStateConflict when a
    live one exists."""
    options = default_options(aws)  # what a refusal before the resolution keeps
    try:
        options = await _options(aws, params, None)
        await check_object(aws, source.stored, limit=aws.settings.max_upload_bytes)
    except REFUSALS as refusal:
        return await keep_refusal(aws, job_id, source, principal, refusal, options)
    audio = _object_fields(source.stored.key, source.stored)
    job = aws.store.ops.queued_job(job_id, options, **audio).model_copy(
        update={"result_copy_key": source.result_copy_key, "project_id": principal.project_id}
    )
    async with AsyncExitStack() as undo:
        await _queue(aws, job, undo, replace_expired=True)
        undo.pop_all()
    return job


def default_options(aws: AwsClients) -> JobOptions:
    return JobOptions(whisper_model=aws.settings.default_whisper_model)


async def keep_refusal(
    aws: AwsClients,
    job_id: str,
    source: DroppedFile,
    principal: Principal,
    refusal: ServiceError,
    options: JobOptions,
) -> Job:
    """A dropped object's job, written as failed with the reason: no one waits for an answer, and
    `GET /jobs?source_key=` finds it. JobStateConflict when a live one exists."""
    ops = aws.store.ops
    queued = ops.queued_job(job_id, options, **_object_fields(source.stored.key, source.stored))
    job = ops.refused_job(queued, refusal.message).model_copy(update={"project_id": principal.project_id})
    await aws.store.run(ops.create(job, replace_expired=True))
    return job


def _object_fields(key: str, stored: StoredObject) -> dict[str, Any]:
    """A job's audio fields for `stored`, now at `key`."""
    return {
        "upload_key": key,
        "filename": stored.filename,
        "size_bytes": stored.size,
        "content_type": stored.content_type,
    }


async def _stream(
    aws: AwsClients, job_id: str, source: UploadStream, lambda_mode: bool, undo: AsyncExitStack
) -> _Stored:
    """Check the body's size and first bytes, then stream it to the job's folder in S3."""
    limit, too_large = upload_limit(aws.settings, lambda_mode)
    if source.size is not None and source.size > limit:
        raise too_large
    filename = display_name(source.filename)
    head = source.head or await source.read(SNIFF_BYTES)
    prefix = source.frame(head) if source.frame is not None else b""
    check_upload_head(prefix + head, source.described_as or filename)
    digest = hashlib.sha256(head)  # of the body as sent, without any header put before it

    async def read(size: int) -> bytes:
        chunk = await source.read(size)
        digest.update(chunk)
        return chunk

    key = upload_key(job_id, filename)
    body = UploadBody(read, limit, lambda: too_large, prefix + head, source.content_type)
    size = await aws.blobs.upload_stream(key, body)
    undo.push_async_callback(aws.blobs.delete, key)
    fields = {
        "upload_key": key,
        "filename": filename,
        "size_bytes": size,
        "content_type": source.content_type,
    }
    return _Stored(fields, f"sha256:{digest.hexdigest()}")


async def _copy(
    aws: AwsClients, job_id: str, uri: str, bucket: str, key: str, principal: Principal, undo: AsyncExitStack
) -> _Stored:
    """A checked `s3_uri` object copied to uploads/{job_id}/: a snapshot the job owns, read and
    deleted like any upload."""
    stored = await source_object(aws, uri, bucket, key, principal.project_id)
    target = upload_key(job_id, stored.filename)
    await aws.blobs.copy(stored, target)
    undo.push_async_callback(aws.blobs.delete, target)
    return _Stored(_object_fields(target, stored), None)


async def _store_samples(
    aws: AwsClients, job_id: str, samples: tuple[SpeakerSample, ...], undo: AsyncExitStack
) -> tuple[KnownSpeaker, ...]:
    speakers = []
    for index, sample in enumerate(samples):
        key = known_speaker_key(job_id, index)
        await aws.blobs.put(key, sample.audio, content_type=sample.content_type)
        undo.push_async_callback(aws.blobs.delete, key)
        speakers.append(KnownSpeaker(name=sample.name, key=key))
    return tuple(speakers)


async def _awaiting_upload(
    aws: AwsClients, job_id: str, options: JobOptions, source: PresignedUpload, principal: Principal
) -> Job:
    limit = aws.settings.max_upload_bytes
    if source.size_bytes is not None and source.size_bytes > limit:
        raise PayloadTooLarge(f"File too large: the limit is {limit} bytes")
    check_media_type(source.content_type)
    ops = aws.store.ops
    job = ops.awaiting_job(
        job_id,
        options,
        upload_key=presigned_upload_key(job_id, source.filename),
        filename=source.filename,
        size_bytes=source.size_bytes or 0,
        content_type=source.content_type,
    ).model_copy(update={"project_id": principal.project_id})
    await aws.store.run(ops.create(job))
    return job


async def _queue(aws: AwsClients, job: Job, undo: AsyncExitStack, *, replace_expired: bool = False) -> None:
    """The job's row, then its queue message; the row's removal is pushed onto `undo`."""
    ops = aws.store.ops
    await aws.store.run(ops.create(job, replace_expired=replace_expired))
    undo.push_async_callback(aws.store.run, ops.forget_unsent(job.job_id))
    await send(aws, job)


async def send(aws: AwsClients, job: Job) -> None:
    """The queue message of a job whose row is written."""
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


async def upload_arrived(aws: AwsClients, job: Job) -> Job | None:
    """Queue an `awaiting_upload` job whose object has arrived and passes the checks.

    Returns the queued job, or None when another event or request started (or refused) it first.
    A refused object fails the job and is deleted, then the refusal is raised; UploadNotReceived
    when there is no object yet. Starts are conditional writes, so any number of events or
    requests for one object queue its job once.
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
        await send(aws, started)
    except BaseException:
        await aws.store.run(ops.unstart_upload(job.job_id))  # a retried event can start it again
        raise
    log.info("upload_queued", job_id=job.job_id, key=job.upload_key, size=stored.size)
    return started


def job_status_conflict(job: Job) -> JobStateConflict:
    reason = f": {job.error}" if job.status is JobStatus.FAILED and job.error else ""
    return JobStateConflict(f"Job {job.job_id} can't be started: it is {job.status.value}{reason}")
