"""An operation as plain data (`Op`), and the request builders every DynamoDB operation uses."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.job_store.codec import encode_value
from shared.resources import JOB_PARTITION_KEY

T = TypeVar("T")


@dataclass(frozen=True)
class Op(Generic[T]):
    """One DynamoDB call: `parse` reads a successful response; `on_conflict` gets the item as it was
    (or None) when the condition failed; `paginate` sums Count and joins Items over all pages."""

    method: str
    request: dict[str, Any]
    parse: Callable[[dict[str, Any]], T]
    on_conflict: Callable[[dict[str, Any] | None], T] | None = None
    paginate: bool = False


def _placeholders(prefix: str, *expressions: str) -> set[str]:
    return set(re.findall(rf"{prefix}(\w+)", " ".join(expressions)))


class TableOps:
    """Request builders on one table; `clock` is the store's (tests move it)."""

    table: str
    clock: Callable[[], float]

    def _key(self, key: str) -> dict[str, Any]:
        return {JOB_PARTITION_KEY: {"S": key}}

    def _expressions(self, values: Mapping[str, Any], **expressions: str | None) -> dict[str, Any]:
        """Request fields for the given expressions, with only the names and values they use
        (DynamoDB rejects unused ones). `#attr` stands for the attribute `attr`."""
        used = [e for e in expressions.values() if e]
        request: dict[str, Any] = {k: v for k, v in expressions.items() if v}
        request["ExpressionAttributeNames"] = {f"#{a}": a for a in _placeholders("#", *used)}
        value_names = _placeholders(":", *used)
        if value_names:
            request["ExpressionAttributeValues"] = {f":{k}": encode_value(values[k]) for k in value_names}
        return request

    def _update(
        self,
        key: str,
        *,
        set_: Mapping[str, Any],
        condition: str,
        values: Mapping[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        raw_set: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """An UpdateItem request: `set_` assigned, `remove` removed, if `condition` holds (`:now` is
        the clock); the answer carries the new item, or the old one when the condition failed."""
        assignments = [f"#{attr} = :set_{attr}" for attr in set_] + list(raw_set)
        update = "SET " + ", ".join(assignments)
        if remove:
            update += " REMOVE " + ", ".join(f"#{attr}" for attr in remove)
        all_values = {f"set_{k}": v for k, v in set_.items()} | dict(values or {}) | {"now": self.clock()}
        return {
            "TableName": self.table,
            "Key": self._key(key),
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **self._expressions(all_values, UpdateExpression=update, ConditionExpression=condition),
        }

    def _conditional_delete(self, key: str, condition: str, values: Mapping[str, Any]) -> Op[bool]:
        request = {
            "TableName": self.table,
            "Key": self._key(key),
            **self._expressions(values, ConditionExpression=condition),
        }
        return Op("delete_item", request, parse=lambda _: True, on_conflict=lambda _: False)
