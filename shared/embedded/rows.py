"""The `items` table inside one transaction, and an operation on it (`LocalOp`): the SQLite side's
counterpart of shared.job_store.ops. Every row is a JSON document, as DynamoDB holds it, with its
status, created_at and expires_at copied into indexed columns."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.embedded.db import Database
from shared.errors import TransientError
from shared.resources import JOB_PARTITION_KEY, TTL_ATTRIBUTE

T = TypeVar("T")
Row = dict[str, Any]


def clean(value: Any) -> Any:
    """Drop None members as DynamoDB's item encoding does, so both stores hold the same rows."""
    if isinstance(value, Mapping):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


class Rows:
    """The `items` table inside one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, key: str) -> Row | None:
        found = self.conn.execute("SELECT data FROM items WHERE key = ?", (key,)).fetchone()
        return json.loads(found[0]) if found else None

    def put(self, row: Row) -> None:
        row = clean(row)
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
        sql = "SELECT data FROM items WHERE status = ?"
        args: list[str | float] = [status]
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


def update_row(
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
        new = clean(change(dict(row)))
        rows.put(new)
        return parse(new)

    return LocalOp(apply)


def set_fields(fields: Mapping[str, Any], remove: tuple[str, ...] = ()) -> Callable[[Row], Row]:
    def change(row: Row) -> Row:
        for name in remove:
            row.pop(name, None)
        return row | dict(fields)

    return change


def run_op(db: Database, op: LocalOp[T]) -> T:
    try:
        if not op.write:
            return op.apply(Rows(db.read()))
        with db.write() as conn:
            return op.apply(Rows(conn))
    except sqlite3.OperationalError as error:  # locked or busy past the timeout: retry later
        raise TransientError(f"SQLite: {error}") from error
