"""Rows of the jobs table that aren't jobs (their own key prefix and status): small records of
other features, and the fleet registry (`worker#<id>` keys, status "worker")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.fleet import WORKER_STATUS, WorkerRecord, worker_key
from shared.job_store.codec import decode_item, encode_item, encode_value
from shared.job_store.ops import Op, TableOps
from shared.resources import JOB_PARTITION_KEY, STATUS_INDEX_NAME, TTL_ATTRIBUTE


class RowOps(TableOps):
    def put_row(
        self, item: Mapping[str, Any], *, if_absent: bool = False, if_equals: tuple[str, Any] | None = None
    ) -> Op[bool]:
        """Put a whole row; False when its condition (no row yet, or `attr == value`) fails."""
        request: dict[str, Any] = {"TableName": self.table, "Item": encode_item(item)}
        if if_absent:
            request["ConditionExpression"] = f"attribute_not_exists(#{JOB_PARTITION_KEY})"
            request["ExpressionAttributeNames"] = {f"#{JOB_PARTITION_KEY}": JOB_PARTITION_KEY}
        elif if_equals is not None:
            request["ConditionExpression"] = "#cond = :cond"
            request["ExpressionAttributeNames"] = {"#cond": if_equals[0]}
            request["ExpressionAttributeValues"] = {":cond": encode_value(if_equals[1])}
        return Op("put_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    def get_row(self, key: str) -> Op[dict[str, Any] | None]:
        request = {"TableName": self.table, "Key": self._key(key), "ConsistentRead": True}
        return Op("get_item", request, parse=lambda r: decode_item(r["Item"]) if r.get("Item") else None)

    def delete_row(self, key: str, *, if_equals: tuple[str, Any]) -> Op[bool]:
        return self._conditional_delete(key, f"#{if_equals[0]} = :expected", {"expected": if_equals[1]})

    def _status_query(self, status: str) -> dict[str, Any]:
        """The live rows of one status: a query on the status index, no scan."""
        return {
            "TableName": self.table,
            "IndexName": STATUS_INDEX_NAME,
            **self._expressions(
                {"status": status, "now": self.clock()},
                KeyConditionExpression="#status = :status",
                FilterExpression=f"#{TTL_ATTRIBUTE} > :now",
            ),
        }

    # -- fleet registry
    def register_worker(self, record: WorkerRecord) -> Op[None]:
        item = record.model_dump(mode="json") | {
            JOB_PARTITION_KEY: worker_key(record.worker_id),
            "status": WORKER_STATUS,
            "created_at": record.started_at,
        }
        return Op("put_item", {"TableName": self.table, "Item": encode_item(item)}, parse=lambda _: None)

    def deregister_worker(self, worker_id: str) -> Op[None]:
        request = {"TableName": self.table, "Key": self._key(worker_key(worker_id))}
        return Op("delete_item", request, parse=lambda _: None)

    def live_workers(self) -> Op[list[WorkerRecord]]:
        def parse(response: dict[str, Any]) -> list[WorkerRecord]:
            return [WorkerRecord.model_validate(decode_item(item)) for item in response.get("Items", [])]

        return Op("query", self._status_query(WORKER_STATUS), parse, paginate=True)
