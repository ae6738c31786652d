"""Rows of the `items` table that aren't jobs (their own key prefix and status): small records
of other features, and the fleet registry (`worker#<id>` rows, status "worker")."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from shared.embedded.rows import LocalOp, Row, Rows
from shared.fleet import WORKER_STATUS, WorkerRecord, worker_key
from shared.resources import JOB_PARTITION_KEY


class SqliteRowOps:
    """As shared.job_store.rows.RowOps."""

    clock: Callable[[], float] = time.time

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
