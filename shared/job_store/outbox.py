"""The callback outbox on DynamoDB (shared.callback_outbox says what it is for): every change of
an entry is one conditional write, as a job's are; an attempt is made only under a lease."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.callback_outbox import OUTBOX_FAILED, OUTBOX_PENDING, OutboxEntry, OutboxRules, outbox_key
from shared.job_store.codec import decode_item, encode_item
from shared.job_store.ops import Op, TableOps
from shared.resources import STATUS_INDEX_NAME, TTL_ATTRIBUTE
from shared.settings import Settings

_LEASE_FREE = "(attribute_not_exists(#lease_expires_at) OR #lease_expires_at < :now)"
_DUE = f"#next_attempt_at <= :now AND #{TTL_ATTRIBUTE} > :now AND {_LEASE_FREE}"


def _entry(item: dict[str, Any] | None) -> OutboxEntry | None:
    return OutboxEntry.from_row(decode_item(item)) if item else None


class OutboxOps(OutboxRules, TableOps):
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, clock=clock)
        self.table = settings.table_name

    def put_request(self, entry: OutboxEntry) -> dict[str, Any]:
        """The PutItem of a new entry (also one item of the transaction that finishes its job)."""
        return {"TableName": self.table, "Item": encode_item(entry.to_row())}

    def put(self, entry: OutboxEntry) -> Op[None]:
        return Op("put_item", self.put_request(entry), parse=lambda _: None)

    def get(self, job_id: str) -> Op[OutboxEntry | None]:
        request = {"TableName": self.table, "Key": self._key(outbox_key(job_id)), "ConsistentRead": True}
        return Op("get_item", request, parse=lambda r: _entry(r.get("Item")))

    def due(self) -> Op[list[OutboxEntry]]:
        """Pending entries whose time has come and that no live lease holds, soonest first."""
        request = {
            "TableName": self.table,
            "IndexName": STATUS_INDEX_NAME,
            **self._expressions(
                {"status": OUTBOX_PENDING, "now": self.clock()},
                KeyConditionExpression="#status = :status",
                FilterExpression=_DUE,
            ),
        }

        def parse(response: dict[str, Any]) -> list[OutboxEntry]:
            entries = [OutboxEntry.from_row(decode_item(item)) for item in response.get("Items", [])]
            return sorted(entries, key=lambda e: e.next_attempt_at)

        return Op("query", request, parse, paginate=True)

    def claim(self, job_id: str, owner: str) -> Op[OutboxEntry | None]:
        """Take a due entry for one attempt; None when it isn't due, is held, or is gone."""
        request = self._update(
            outbox_key(job_id),
            set_={"lease_owner": owner, "lease_expires_at": self.clock() + self.lease_seconds},
            condition=f"#status = :pending AND {_DUE}",
            values={"pending": OUTBOX_PENDING},
        )
        return Op("update_item", request, lambda r: _entry(r.get("Attributes")), on_conflict=lambda _: None)

    def _held(self, job_id: str, owner: str, set_: dict[str, Any]) -> Op[bool]:
        request = self._update(
            outbox_key(job_id),
            set_=set_,
            remove=("lease_owner", "lease_expires_at"),
            condition="#status = :pending AND #lease_owner = :owner",
            values={"pending": OUTBOX_PENDING, "owner": owner},
        )
        return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    def retry_at(self, job_id: str, owner: str, *, attempts: int, next_attempt_at: float) -> Op[bool]:
        """After a failed attempt: due again at `next_attempt_at`; False when the lease was lost."""
        return self._held(job_id, owner, {"attempts": attempts, "next_attempt_at": next_attempt_at})

    def fail(self, job_id: str, owner: str, *, attempts: int, reason: str) -> Op[bool]:
        """Never to be tried again: kept, with its reason, until it expires."""
        return self._held(job_id, owner, {"attempts": attempts, "status": OUTBOX_FAILED, "reason": reason})

    def done(self, job_id: str, owner: str) -> Op[bool]:
        """Delivered: the entry goes."""
        return self._conditional_delete(
            outbox_key(job_id),
            "#status = :pending AND #lease_owner = :owner",
            {"pending": OUTBOX_PENDING, "owner": owner},
        )
