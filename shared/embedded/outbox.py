"""The callback outbox on SQLite: the operations of shared.job_store.outbox.OutboxOps, one for one,
with the same conditions, each in one write transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.callback_outbox import OUTBOX_FAILED, OUTBOX_PENDING, OutboxEntry, OutboxRules, outbox_key
from shared.embedded.rows import LocalOp, Row, Rows, set_fields, update_row

_LEASE = ("lease_owner", "lease_expires_at")


def _entry(row: Row | None) -> OutboxEntry | None:
    return OutboxEntry.from_row(row) if row else None


class SqliteOutboxOps(OutboxRules):
    def put(self, entry: OutboxEntry) -> LocalOp[None]:
        return LocalOp(lambda rows: rows.put(entry.to_row()))

    def get(self, job_id: str) -> LocalOp[OutboxEntry | None]:
        return LocalOp(lambda rows: _entry(rows.get(outbox_key(job_id))), write=False)

    def due(self) -> LocalOp[list[OutboxEntry]]:
        def apply(rows: Rows) -> list[OutboxEntry]:
            found = [OutboxEntry.from_row(r) for r in rows.by_status(OUTBOX_PENDING) if self.is_due(r)]
            return sorted(found, key=lambda e: e.next_attempt_at)

        return LocalOp(apply, write=False)

    def claim(self, job_id: str, owner: str) -> LocalOp[OutboxEntry | None]:
        fields = {"lease_owner": owner, "lease_expires_at": self.clock() + self.lease_seconds}
        return update_row(outbox_key(job_id), self.is_due, set_fields(fields), _entry, lambda _: None)

    def _held(self, owner: str) -> Callable[[Row], bool]:
        return lambda row: row.get("status") == OUTBOX_PENDING and row.get("lease_owner") == owner

    def _release(self, job_id: str, owner: str, fields: dict[str, Any]) -> LocalOp[bool]:
        change = set_fields(fields, remove=_LEASE)
        return update_row(outbox_key(job_id), self._held(owner), change, lambda _: True, lambda _: False)

    def retry_at(self, job_id: str, owner: str, *, attempts: int, next_attempt_at: float) -> LocalOp[bool]:
        return self._release(job_id, owner, {"attempts": attempts, "next_attempt_at": next_attempt_at})

    def fail(self, job_id: str, owner: str, *, attempts: int, reason: str) -> LocalOp[bool]:
        return self._release(job_id, owner, {"attempts": attempts, "status": OUTBOX_FAILED, "reason": reason})

    def done(self, job_id: str, owner: str) -> LocalOp[bool]:
        def apply(rows: Rows) -> bool:
            row = rows.get(outbox_key(job_id))
            if row is None or not self._held(owner)(row):
                return False
            rows.delete(outbox_key(job_id))
            return True

        return LocalOp(apply)
