"""The job store on SQLite, with the same public methods as shared.job_store: `store.run(
store.ops.claim(job_id, owner))`, `store.get`, `store.create`, `store.keys` (API keys).

Every row is a JSON document (the job, worker or key record, as DynamoDB holds it) in `items`,
with its status, created_at and expires_at copied into indexed columns. An operation is a
function run in one transaction: conditional transitions read the row, test the same condition
as the DynamoDB expression, and write, all under `BEGIN IMMEDIATE`, so two workers can't both win
a claim. A new field of `Job` is stored with no change here (it is part of the document).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.api_keys import API_KEY_PREFIX, API_KEY_STATUS, ApiKey, hash_key, new_key
from shared.embedded.db import Database
from shared.errors import JobNotFound, JobStateConflict, TransientError
from shared.fleet import WORKER_KEY_PREFIX, WORKER_STATUS, WorkerRecord, worker_key
from shared.job_store import Claim, JobRules
from shared.jobs import FINISHED, CallbackAttempt, Job, JobStatus, utc_now_iso
from shared.resources import JOB_PARTITION_KEY, TTL_ATTRIBUTE
from shared.settings import Settings
from shared.stages import Stage

T = TypeVar("T")
Row = dict[str, Any]
_JOB_STATUSES = frozenset(status.value for status in JobStatus)
_QUEUED, _PROCESSING, _AWAITING = (
    s.value for s in (JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.AWAITING_UPLOAD)
)
_FINISHED = frozenset(status.value for status in FINISHED)


def _clean(value: Any) -> Any:
    """Drop None members as DynamoDB's item encoding does, so both stores hold the same rows."""
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class Rows:
    """The `items` table inside one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, key: str) -> Row | None:
        found = self.conn.execute("SELECT data FROM items WHERE key = ?", (key,)).fetchone()
        return json.loads(found[0]) if found else None

    def put(self, row: Row) -> None:
        row = _clean(row)
        self.conn.execute(
            "INSERT OR REPLACE INTO items (key, status, created_at, expires_at, data) VALUES (?, ?, ?, ?, ?)",
            (
                row[JOB_PARTITION_KEY],
                row.get("status", ""),
                row.get("created_at", ""),
                row.get(TTL_ATTRIBUTE),
                json.dumps(row, separators=(",", ":")),
            ),
        )

    def delete(self, key: str) -> None:
        self.conn.execute("DELETE FROM items WHERE key = ?", (key,))

    def by_status(self, status: str, *, live_at: float | None = None) -> list[Row]:
        """Rows of a status, oldest first (the status index); `live_at`: only unexpired ones."""
        sql, args = "SELECT data FROM items WHERE status = ?", [status]
        if live_at is not None:
            sql += " AND expires_at > ?"
            args.append(live_at)
        return [json.loads(r[0]) for r in self.conn.execute(sql + " ORDER BY created_at", args)]

    def count(
        self, status: str, *, live_at: float, created_before: str | None, project_id: str | None = None
    ) -> int:
        """An index range count: the rows ahead of a job (of one project, when given), never the
        whole table."""
        sql, args = "SELECT COUNT(*) FROM items WHERE status = ? AND expires_at > ?", [status, live_at]
        if created_before is not None:
            sql += " AND created_at < ?"
            args.append(created_before)
        if project_id is not None:
            sql += " AND json_extract(data, '$.project_id') = ?"
            args.append(project_id)
        return int(self.conn.execute(sql, args).fetchone()[0])


@dataclass(frozen=True)
class LocalOp(Generic[T]):
    """One operation: `apply` runs in a write transaction (or a plain read when `write` is False)."""

    apply: Callable[[Rows], T]
    write: bool = True


def _update(
    key: str,
    condition: Callable[[Row], bool],
    change: Callable[[Row], Row],
    parse: Callable[[Row], T],
    on_conflict: Callable[[Row | None], T],
) -> LocalOp[T]:
    """A conditional update of an existing row (a missing row fails every condition)."""

    def apply(rows: Rows) -> T:
        row = rows.get(key)
        if row is None or not condition(row):
            return on_conflict(row)
        new = _clean(change(dict(row)))
        rows.put(new)
        return parse(new)

    return LocalOp(apply)


def _set(fields: Mapping[str, Any], remove: tuple[str, ...] = ()) -> Callable[[Row], Row]:
    def change(row: Row) -> Row:
        for name in remove:
            row.pop(name, None)
        return row | dict(fields)

    return change


class SqliteJobOps(JobRules):
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
        return _update(
            job_id,
            lambda row: row.get("status") in (_QUEUED, _AWAITING),
            _set(self._finish_fields(JobStatus.CANCELLED), remove=("progress",)),
            self._returned(job_id),
            lambda _: None,
        )

    def request_cancel(self, job_id: str) -> LocalOp[Job | None]:
        return _update(
            job_id,
            lambda row: row.get("status") == _PROCESSING,
            _set({"cancel_requested": True, "updated_at": utc_now_iso()}),
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
        now = utc_now_iso()
        fields: dict[str, Any] = {
            "status": _QUEUED,
            "created_at": now,
            "updated_at": now,
            "size_bytes": size_bytes,
            TTL_ATTRIBUTE: int(self.clock()) + self.active_expiry_seconds,
        }
        if content_type:
            fields["content_type"] = content_type
        return _update(
            job_id,
            lambda row: row.get("status") == _AWAITING and self._unexpired(row),
            _set(fields),
            self._returned(job_id),
            lambda _: None,
        )

    def unstart_upload(self, job_id: str) -> LocalOp[bool]:
        return _update(
            job_id,
            lambda row: row.get("status") == _QUEUED and "owner" not in row,
            _set({"status": _AWAITING, "updated_at": utc_now_iso()}),
            lambda _: True,
            lambda _: False,
        )

    def fail_upload(self, job_id: str, error: str) -> LocalOp[bool]:
        return _update(
            job_id,
            lambda row: row.get("status") == _AWAITING,
            _set(self._finish_fields(JobStatus.FAILED, error=error)),
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
        return _update(
            job_id,
            lambda row: row.get("status") == JobStatus.COMPLETED.value and self._unexpired(row),
            _set(fields, remove=() if stored else ("speaker_names",)),
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

        return _update(
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
        return _update(job_id, self._owned(owner), _set(fields), self._returned(job_id), lambda _: None)

    def set_progress(self, job_id: str, owner: str, stage: Stage) -> LocalOp[Job | None]:
        fields = {"progress": stage.value, "updated_at": utc_now_iso()}
        return _update(job_id, self._owned(owner), _set(fields), self._returned(job_id), lambda _: None)

    def _owned_finish(self, job_id: str, owner: str, status: JobStatus, **extra: Any) -> LocalOp[bool]:
        change = _set(self._finish_fields(status, **extra), remove=("lease_expires_at", "progress"))
        return _update(job_id, self._owned(owner), change, lambda _: True, lambda _: False)

    def complete(self, job_id: str, owner: str) -> LocalOp[bool]:
        return self._owned_finish(job_id, owner, JobStatus.COMPLETED)

    def cancel_owned(self, job_id: str, owner: str) -> LocalOp[bool]:
        return self._owned_finish(job_id, owner, JobStatus.CANCELLED)

    def fail_owned(self, job_id: str, owner: str, error: str) -> LocalOp[bool]:
        return self._owned_finish(job_id, owner, JobStatus.FAILED, error=error)

    def fail_abandoned(self, job_id: str, error: str) -> LocalOp[bool]:
        now = self.clock()

        def abandoned(row: Row) -> bool:
            lease = row.get("lease_expires_at")
            return row.get("status") == _QUEUED or (
                row.get("status") == _PROCESSING and (lease is None or lease < now)
            )

        change = _set(
            self._finish_fields(JobStatus.FAILED, error=error), remove=("lease_expires_at", "progress")
        )
        return _update(job_id, abandoned, change, lambda _: True, lambda _: False)

    def release(self, job_id: str, owner: str, *, last_error: str | None = None) -> LocalOp[bool]:
        fields: dict[str, Any] = {"status": _QUEUED, "updated_at": utc_now_iso()}
        if last_error is not None:
            fields["last_error"] = last_error
        change = _set(fields, remove=("owner", "lease_expires_at", "progress"))
        return _update(job_id, self._owned(owner), change, lambda _: True, lambda _: False)

    def record_callback(self, job_id: str, attempt: CallbackAttempt, status: str) -> LocalOp[bool]:
        def change(row: Row) -> Row:
            attempts = [*row.get("callback_attempts", []), attempt.model_dump(mode="json")]
            return row | {"callback_status": status, "callback_attempts": attempts}

        return _update(job_id, lambda _: True, change, lambda _: True, lambda _: False)

    # -- other rows (their own key prefix and status): as JobOps.put_row, get_row, delete_row
    def put_row(
        self, item: Mapping[str, Any], *, if_absent: bool = False, if_equals: tuple[str, Any] | None = None
    ) -> LocalOp[bool]:
        def apply(rows: Rows) -> bool:
            old = rows.get(item[JOB_PARTITION_KEY])
            if if_absent and old is not None:
                return False
            if if_equals is not None and (old is None or old.get(if_equals[0]) != if_equals[1]):
                return False
            rows.put(dict(item))
            return True

        return LocalOp(apply)

    def get_row(self, key: str) -> LocalOp[Row | None]:
        return LocalOp(lambda rows: rows.get(key), write=False)

    def delete_row(self, key: str, *, if_equals: tuple[str, Any]) -> LocalOp[bool]:
        def apply(rows: Rows) -> bool:
            old = rows.get(key)
            if old is None or old.get(if_equals[0]) != if_equals[1]:
                return False
            rows.delete(key)
            return True

        return LocalOp(apply)

    # -- fleet registry (`worker#<id>` rows, status "worker")
    def register_worker(self, record: WorkerRecord) -> LocalOp[None]:
        row = record.model_dump(mode="json") | {
            JOB_PARTITION_KEY: worker_key(record.worker_id),
            "status": WORKER_STATUS,
            "created_at": record.started_at,
        }
        return LocalOp(lambda rows: rows.put(row))

    def deregister_worker(self, worker_id: str) -> LocalOp[None]:
        return LocalOp(lambda rows: rows.delete(worker_key(worker_id)))

    def live_workers(self) -> LocalOp[list[WorkerRecord]]:
        def apply(rows: Rows) -> list[WorkerRecord]:
            found = rows.by_status(WORKER_STATUS, live_at=self.clock())
            return [WorkerRecord.model_validate(row) for row in found]

        return LocalOp(apply, write=False)


class SqliteKeyOps:
    """The operations of shared.api_keys.KeyOps on the same rows."""

    def create(self, project_id: str, comment: str | None = None) -> tuple[str, LocalOp[ApiKey]]:
        secret, record, row = new_key(project_id, comment)

        def apply(rows: Rows) -> ApiKey:
            if rows.get(row[JOB_PARTITION_KEY]) is not None:
                raise JobStateConflict("that key exists already")
            rows.put(row)
            return record

        return secret, LocalOp(apply)

    def lookup(self, secret: str) -> LocalOp[ApiKey | None]:
        def apply(rows: Rows) -> ApiKey | None:
            row = rows.get(f"{API_KEY_PREFIX}{hash_key(secret)}")
            return ApiKey.model_validate(row) if row and row.get("status") == API_KEY_STATUS else None

        return LocalOp(apply, write=False)

    def list_keys(self) -> LocalOp[list[tuple[str, ApiKey]]]:
        def apply(rows: Rows) -> list[tuple[str, ApiKey]]:
            found = rows.by_status(API_KEY_STATUS)
            return [(row[JOB_PARTITION_KEY], ApiKey.model_validate(row)) for row in found]

        return LocalOp(apply, write=False)

    def revoke(self, row_key: str) -> LocalOp[bool]:
        def change(row: Row) -> Row:
            return row if row.get("revoked_at") else row | {"revoked_at": utc_now_iso()}

        return _update(
            row_key, lambda row: row.get("status") == API_KEY_STATUS, change, lambda _: True, lambda _: False
        )


def _run(db: Database, op: LocalOp[T]) -> T:
    try:
        if not op.write:
            return op.apply(Rows(db.read()))
        with db.write() as conn:
            return op.apply(Rows(conn))
    except sqlite3.OperationalError as error:  # locked or busy past the timeout: retry later
        raise TransientError(f"SQLite: {error}") from error


class SqliteJobStore:
    """The worker's (and the CLI's) store: runs `SqliteJobOps` on the calling thread."""

    def __init__(self, db: Database, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.ops = SqliteJobOps(settings, clock=clock)
        self.keys = SqliteKeyOps()

    def run(self, op: LocalOp[T]) -> T:
        return _run(self.db, op)

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

    async def run(self, op: LocalOp[T]) -> T:
        if not op.write:
            return _run(self.db, op)
        return await asyncio.to_thread(_run, self.db, op)

    async def get(self, job_id: str) -> Job:
        return await self.run(self.ops.get(job_id))
