"""The job store on SQLite, with the same public methods as shared.job_store: `store.run(
store.ops.claim(job_id, owner))`, `store.get`, `store.create`, `store.keys` (API keys),
`store.outbox` (callbacks still to deliver).

Every row is a JSON document (the job, worker or key record, as DynamoDB holds it) in `items`
(shared.embedded.rows). An operation is a function run in one transaction: conditional
transitions read the row, test the same condition as the DynamoDB expression, and write, all
under `BEGIN IMMEDIATE`, so two workers can't both win a claim. A new field of `Job` is stored
with no change here (it is part of the document).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from shared.callback_outbox import OutboxEntry
from shared.embedded.db import Database
from shared.embedded.keys import SqliteKeyOps
from shared.embedded.outbox import SqliteOutboxOps
from shared.embedded.row_ops import SqliteRowOps
from shared.embedded.rows import LocalOp, Row, Rows, run_op, set_fields, update_row
from shared.errors import JobNotFound, JobStateConflict
from shared.fleet import WORKER_KEY_PREFIX
from shared.job_store.rules import Claim, JobRules, OwnedFinishes
from shared.jobs import FINISHED, CallbackAttempt, Job, JobStatus, utc_now_iso
from shared.resources import TTL_ATTRIBUTE
from shared.settings import Settings
from shared.stages import Stage

T = TypeVar("T")
_JOB_STATUSES = frozenset(status.value for status in JobStatus)
_QUEUED, _PROCESSING, _AWAITING = (
    s.value for s in (JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.AWAITING_UPLOAD)
)
_FINISHED = frozenset(status.value for status in FINISHED)


def _with_callback(finish: LocalOp[bool], callback: OutboxEntry | None) -> LocalOp[bool]:
    """`finish`, and when it succeeds the put of its outbox entry, in the one transaction."""
    if callback is None:
        return finish

    def apply(rows: Rows) -> bool:
        if not finish.apply(rows):
            return False
        rows.put(callback.to_row())
        return True

    return LocalOp(apply)


class SqliteJobOps(JobRules, OwnedFinishes[LocalOp[bool]], SqliteRowOps):
    """The operations of shared.job_store.JobOps, one for one, with the same conditions."""

    def _live(self, job_id: str, row: Row | None) -> Job | None:
        if not row or job_id.startswith(WORKER_KEY_PREFIX):
            return None
        if row.get("status") not in _JOB_STATUSES or row.get(TTL_ATTRIBUTE, 0) <= self.clock():
            return None
        return Job.model_validate(row)

    def _expired(self, row: Row) -> bool:
        return row.get(TTL_ATTRIBUTE) is not None and row[TTL_ATTRIBUTE] <= self.clock()

    def _unexpired(self, row: Row) -> bool:
        return row.get(TTL_ATTRIBUTE) is not None and row[TTL_ATTRIBUTE] > self.clock()

    def _returned(self, job_id: str) -> Callable[[Row], Job | None]:
        return lambda row: self._live(job_id, row)

    # -- jobs: the API's side
    def create(self, job: Job, *, replace_expired: bool = False) -> LocalOp[Job]:
        def apply(rows: Rows) -> Job:
            old = rows.get(job.job_id)
            if old is not None and not (replace_expired and self._expired(old)):
                raise JobStateConflict(f"Job {job.job_id} already exists")
            rows.put(job.model_dump(mode="json"))
            return job

        return LocalOp(apply)

    def get(self, job_id: str) -> LocalOp[Job]:
        def apply(rows: Rows) -> Job:
            job = self._live(job_id, rows.get(job_id))
            if job is None:
                raise JobNotFound(job_id)
            return job

        return LocalOp(apply, write=False)

    def count(
        self, status: JobStatus, *, created_before: str | None = None, project_id: str | None = None
    ) -> LocalOp[int]:
        return LocalOp(
            lambda rows: rows.count(
                status.value, live_at=self.clock(), created_before=created_before, project_id=project_id
            ),
            write=False,
        )

    def cancel_queued(self, job_id: str) -> LocalOp[Job | None]:
        return update_row(
            job_id,
            lambda row: row.get("status") in (_QUEUED, _AWAITING),
            set_fields(self._finish_fields(JobStatus.CANCELLED), remove=("progress",)),
            self._returned(job_id),
            lambda _: None,
        )

    def request_cancel(self, job_id: str) -> LocalOp[Job | None]:
        return update_row(
            job_id,
            lambda row: row.get("status") == _PROCESSING,
            set_fields({"cancel_requested": True, "updated_at": utc_now_iso()}),
            self._returned(job_id),
            lambda _: None,
        )

    def delete_finished(self, job_id: str) -> LocalOp[bool]:
        def apply(rows: Rows) -> bool:
            row = rows.get(job_id)
            if row is None or row.get("status") not in _FINISHED:
                return False
            rows.delete(job_id)
            return True

        return LocalOp(apply)

    def start_upload(self, job_id: str, size_bytes: int, content_type: str | None) -> LocalOp[Job | None]:
        fields = self._upload_started_fields(size_bytes, content_type)
        return update_row(
            job_id,
            lambda row: row.get("status") == _AWAITING and self._unexpired(row),
            set_fields(fields),
            self._returned(job_id),
            lambda _: None,
        )

    def unstart_upload(self, job_id: str) -> LocalOp[bool]:
        return update_row(
            job_id,
            lambda row: row.get("status") == _QUEUED and "owner" not in row,
            set_fields({"status": _AWAITING, "updated_at": utc_now_iso()}),
            lambda _: True,
            lambda _: False,
        )

    def fail_upload(self, job_id: str, error: str) -> LocalOp[bool]:
        return update_row(
            job_id,
            lambda row: row.get("status") == _AWAITING,
            set_fields(self._finish_fields(JobStatus.FAILED, error=error)),
            lambda _: True,
            lambda _: False,
        )

    def forget_unsent(self, job_id: str) -> LocalOp[bool]:
        def apply(rows: Rows) -> bool:
            row = rows.get(job_id)
            if row is None or row.get("status") != _QUEUED:
                return False
            rows.delete(job_id)
            return True

        return LocalOp(apply)

    def set_speaker_names(self, job_id: str, names: Mapping[int, str]) -> LocalOp[Job | None]:
        """As JobOps.set_speaker_names: a completed, unexpired job only; {} removes the names."""
        stored = {str(speaker): name for speaker, name in sorted(names.items())}
        fields: dict[str, Any] = {
            "updated_at": utc_now_iso(),
            **({"speaker_names": stored} if stored else {}),
        }
        return update_row(
            job_id,
            lambda row: row.get("status") == JobStatus.COMPLETED.value and self._unexpired(row),
            set_fields(fields, remove=() if stored else ("speaker_names",)),
            self._returned(job_id),
            lambda _: None,
        )

    # -- jobs: the worker's side
    def claim(self, job_id: str, owner: str) -> LocalOp[Claim]:
        now, now_iso = self.clock(), utc_now_iso()

        def claimable(row: Row) -> bool:
            if not self._unexpired(row):
                return False
            lapsed = row.get("lease_expires_at") is not None and row["lease_expires_at"] < now
            return row.get("status") == _QUEUED or (row.get("status") == _PROCESSING and lapsed)

        def change(row: Row) -> Row:
            row.pop("progress", None)
            return row | {
                "status": _PROCESSING,
                "owner": owner,
                "lease_expires_at": now + self.lease_seconds,
                "started_at": now_iso,
                "updated_at": now_iso,
                "attempts": row.get("attempts", 0) + 1,
            }

        return update_row(
            job_id,
            claimable,
            change,
            lambda row: Claim(True, self._live(job_id, row)),
            lambda row: Claim(False, self._live(job_id, row)),
        )

    def _owned(self, owner: str) -> Callable[[Row], bool]:
        return lambda row: row.get("status") == _PROCESSING and row.get("owner") == owner

    def renew_lease(self, job_id: str, owner: str) -> LocalOp[Job | None]:
        fields = {"lease_expires_at": self.clock() + self.lease_seconds, "updated_at": utc_now_iso()}
        return update_row(
            job_id, self._owned(owner), set_fields(fields), self._returned(job_id), lambda _: None
        )

    def set_progress(self, job_id: str, owner: str, stage: Stage) -> LocalOp[Job | None]:
        fields = {"progress": stage.value, "updated_at": utc_now_iso()}
        return update_row(
            job_id, self._owned(owner), set_fields(fields), self._returned(job_id), lambda _: None
        )

    def _owned_finish(
        self, job_id: str, owner: str, status: JobStatus, callback: OutboxEntry | None = None, **extra: Any
    ) -> LocalOp[bool]:
        change = set_fields(self._finish_fields(status, **extra), remove=("lease_expires_at", "progress"))
        op = update_row(job_id, self._owned(owner), change, lambda _: True, lambda _: False)
        return _with_callback(op, callback)

    def fail_abandoned(
        self, job_id: str, error: str, *, callback: OutboxEntry | None = None
    ) -> LocalOp[bool]:
        now = self.clock()

        def abandoned(row: Row) -> bool:
            lease = row.get("lease_expires_at")
            return row.get("status") == _QUEUED or (
                row.get("status") == _PROCESSING and (lease is None or lease < now)
            )

        change = set_fields(
            self._finish_fields(JobStatus.FAILED, error=error), remove=("lease_expires_at", "progress")
        )
        return _with_callback(
            update_row(job_id, abandoned, change, lambda _: True, lambda _: False), callback
        )

    def release(self, job_id: str, owner: str, *, last_error: str | None = None) -> LocalOp[bool]:
        fields: dict[str, Any] = {"status": _QUEUED, "updated_at": utc_now_iso()}
        if last_error is not None:
            fields["last_error"] = last_error
        change = set_fields(fields, remove=("owner", "lease_expires_at", "progress"))
        return update_row(job_id, self._owned(owner), change, lambda _: True, lambda _: False)

    def record_callback(self, job_id: str, attempt: CallbackAttempt, status: str) -> LocalOp[bool]:
        def change(row: Row) -> Row:
            attempts = [*row.get("callback_attempts", []), attempt.model_dump(mode="json")]
            return row | {"callback_status": status, "callback_attempts": attempts}

        return update_row(job_id, lambda _: True, change, lambda _: True, lambda _: False)


class SqliteJobStore:
    """The worker's (and the CLI's) store: runs `SqliteJobOps` on the calling thread."""

    def __init__(self, db: Database, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.ops = SqliteJobOps(settings, clock=clock)
        self.keys = SqliteKeyOps()
        self.outbox = SqliteOutboxOps(settings, clock=clock)

    def run(self, op: LocalOp[T]) -> T:
        return run_op(self.db, op)

    def get(self, job_id: str) -> Job:
        return self.run(self.ops.get(job_id))

    def create(self, job: Job) -> Job:
        return self.run(self.ops.create(job))


class AsyncSqliteJobStore:
    """The API's store: the same operations. Writes run in a worker thread (one may wait for the
    write lock); reads run on the event loop itself: in WAL mode a read never waits for a writer,
    and a primary-key or index read costs less than the hop to a thread would (status polls)."""

    def __init__(self, db: Database, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.ops = SqliteJobOps(settings, clock=clock)
        self.keys = SqliteKeyOps()
        self.outbox = SqliteOutboxOps(settings, clock=clock)

    async def run(self, op: LocalOp[T]) -> T:
        if not op.write:
            return run_op(self.db, op)
        return await asyncio.to_thread(run_op, self.db, op)

    async def get(self, job_id: str) -> Job:
        return await self.run(self.ops.get(job_id))
