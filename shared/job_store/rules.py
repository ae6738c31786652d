"""What both job stores (DynamoDB here, SQLite in shared.embedded) share: the outcome of a claim,
the jobs' lifetimes, the ways an owner finishes a job, and the new rows the API builds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.callback_outbox import OutboxEntry
from shared.filenames import display_name
from shared.jobs import Job, JobOptions, JobStatus, utc_now_iso
from shared.resources import TTL_ATTRIBUTE
from shared.settings import Settings

FinishOp = TypeVar("FinishOp")


@dataclass(frozen=True)
class Claim:
    """Outcome of a claim: `won` says whether this worker now owns `job` (None: the job is gone)."""

    won: bool
    job: Job | None


class JobRules:
    """What both job stores (DynamoDB here, SQLite in shared.embedded) share: lifetimes, and the
    new rows the API builds before storing them. Time comes from `clock` so tests can move it."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.expiry_seconds = settings.job_expiry_seconds
        # An unfinished job lives as long as its queue message can, plus the usual expiry.
        self.active_expiry_seconds = settings.message_retention_seconds + settings.job_expiry_seconds
        self.lease_seconds = settings.visibility_timeout_seconds
        # A job awaiting its presigned upload: the URL's lifetime, then the usual expiry.
        self.upload_wait_seconds = settings.upload_url_expiry_seconds + settings.job_expiry_seconds
        self.clock = clock

    def _finish_fields(self, status: JobStatus, **extra: Any) -> dict[str, Any]:
        now = utc_now_iso()
        return {
            "status": status.value,
            "updated_at": now,
            "finished_at": now,
            TTL_ATTRIBUTE: int(self.clock()) + self.expiry_seconds,
            **extra,
        }

    def _upload_started_fields(self, size_bytes: int, content_type: str | None) -> dict[str, Any]:
        """awaiting_upload → queued: `created_at` becomes now, as queue positions count from when
        the job joined the queue; it lives as long as an unfinished job."""
        now = utc_now_iso()
        fields: dict[str, Any] = {
            "status": JobStatus.QUEUED.value,
            "created_at": now,
            "updated_at": now,
            "size_bytes": size_bytes,
            TTL_ATTRIBUTE: int(self.clock()) + self.active_expiry_seconds,
        }
        if content_type:
            fields["content_type"] = content_type
        return fields

    def queued_job(
        self,
        job_id: str,
        options: JobOptions,
        *,
        upload_key: str,
        filename: str,
        size_bytes: int,
        content_type: str | None,
    ) -> Job:
        now = utc_now_iso()
        return Job(
            job_id=job_id,
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            expires_at=int(self.clock()) + self.active_expiry_seconds,
            options=options,
            upload_key=upload_key,
            filename=display_name(filename),  # for display only: never a path
            size_bytes=size_bytes,
            content_type=content_type,
        )

    def awaiting_job(self, job_id: str, options: JobOptions, **fields: Any) -> Job:
        """A job for `POST /uploads`: no message until its object arrives; gone if it never does."""
        job = self.queued_job(job_id, options, **fields)
        expires_at = int(self.clock()) + self.upload_wait_seconds
        return job.model_copy(update={"status": JobStatus.AWAITING_UPLOAD, "expires_at": expires_at})

    def refused_job(self, job: Job, error: str) -> Job:
        """`job` as a failed one (an ingested object refused before any worker saw it)."""
        return Job.model_validate(job.model_dump() | self._finish_fields(JobStatus.FAILED, error=error))


class OwnedFinishes(Generic[FinishOp]):
    """The ways a worker finishes the job it owns, for both stores: which status each one sets is
    said here once; how a store writes it is its `_owned_finish` (`FinishOp`: its op of a bool,
    False when the job is no longer this owner's)."""

    def _owned_finish(
        self, job_id: str, owner: str, status: JobStatus, callback: OutboxEntry | None = None, **extra: Any
    ) -> FinishOp:
        raise NotImplementedError

    def complete(self, job_id: str, owner: str, *, callback: OutboxEntry | None = None) -> FinishOp:
        """processing → completed; with `callback`, its outbox entry is written with it."""
        return self._owned_finish(job_id, owner, JobStatus.COMPLETED, callback)

    def cancel_owned(self, job_id: str, owner: str) -> FinishOp:
        return self._owned_finish(job_id, owner, JobStatus.CANCELLED)

    def fail_owned(
        self, job_id: str, owner: str, error: str, *, callback: OutboxEntry | None = None
    ) -> FinishOp:
        return self._owned_finish(job_id, owner, JobStatus.FAILED, callback, error=error)
