"""The callback outbox: one row per callback still to deliver, in the job store, on both backends.

A worker that finishes a job with a callback writes the job's final state and its outbox entry in
one transaction, so a finished job's callback can't be lost between the two. Any worker's
deliverer (gpu_worker.deliverer) then delivers it: it claims a due entry with a conditional write
and a lease, makes one attempt, and records the outcome. A worker killed mid-attempt leaves a
lease that lapses; another worker takes the entry over. Delivered entries are deleted; an entry
that can never be delivered is marked failed with its reason and is never tried again.

Rows live in the jobs table, as workers and API keys do: `callback#<job id>` keys, with the
status `callback_pending` (due entries are a query on the status index, no scan) or
`callback_failed`. A body too large for a row (DynamoDB items hold 400 KB; results can be MBs) is
kept in the blob store at `results/<job id>.callback.json` and the row points at it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from shared.jobs import CallbackTarget, utc_now_iso
from shared.resources import JOB_PARTITION_KEY, TTL_ATTRIBUTE
from shared.settings import Settings

OUTBOX_KEY_PREFIX = "callback#"
OUTBOX_PENDING = "callback_pending"
OUTBOX_FAILED = "callback_failed"
INLINE_BODY_LIMIT = 64 * 1024  # bytes of body kept in the row itself; larger ones go to the blob store


def outbox_key(job_id: str) -> str:
    return f"{OUTBOX_KEY_PREFIX}{job_id}"


class OutboxEntry(BaseModel):
    """One pending (or failed) delivery. `body` is the JSON text itself, or None when it is in the
    blob store at `body_key`."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    project_id: str | None = None
    target: CallbackTarget
    body: str | None = None
    body_key: str | None = None
    attempts: int = 0  # attempts made so far
    next_attempt_at: float  # epoch seconds: not tried before this
    failed: bool = False  # True: never tried again (`reason` says why)
    reason: str | None = None
    lease_owner: str | None = None  # the worker making an attempt now
    lease_expires_at: float | None = None  # epoch seconds; after it, another worker may take over
    created_at: str
    expires_at: int  # epoch seconds (TTL): a delivery nobody could make is dropped with its job

    @property
    def tenant(self) -> str:
        """Whose turn this is in the fair dispatch: the project, or the receiving host without auth."""
        return self.project_id or urlsplit(self.target.url).hostname or ""

    def to_row(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"job_id", "failed"})
        return data | {
            JOB_PARTITION_KEY: outbox_key(self.job_id),
            "callback_job_id": self.job_id,
            "status": OUTBOX_FAILED if self.failed else OUTBOX_PENDING,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxEntry:
        fields = {k: v for k, v in row.items() if k not in (JOB_PARTITION_KEY, "callback_job_id", "status")}
        return cls(job_id=row["callback_job_id"], failed=row["status"] == OUTBOX_FAILED, **fields)


class OutboxRules:
    """What both backends' outbox operations share: the lease and the new entries' lifetimes."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        # One attempt is one HTTP request (connect and answer, each within the timeout): an
        # entry whose lease outlives that twice over was left by a worker that died.
        self.lease_seconds = 2 * settings.callback_timeout_seconds + 10
        self.expiry_seconds = settings.job_expiry_seconds
        self.clock = clock

    def new_entry(
        self,
        job_id: str,
        target: CallbackTarget,
        *,
        project_id: str | None,
        body: bytes | None = None,
        body_key: str | None = None,
    ) -> OutboxEntry:
        """An entry due now, living as long as its finished job does."""
        now = self.clock()
        return OutboxEntry(
            job_id=job_id,
            project_id=project_id,
            target=target,
            body=body.decode() if body is not None else None,
            body_key=body_key,
            next_attempt_at=now,
            created_at=utc_now_iso(),
            expires_at=int(now) + self.expiry_seconds,
        )

    def is_due(self, row: Mapping[str, Any]) -> bool:
        """A pending entry whose time has come and that no live lease holds."""
        now = self.clock()
        lease = row.get("lease_expires_at")
        return (
            row.get("status") == OUTBOX_PENDING
            and row.get("next_attempt_at", 0) <= now
            and (lease is None or lease < now)
            and row.get(TTL_ATTRIBUTE, 0) > now
        )
