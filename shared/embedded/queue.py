"""Queues in SQLite with SQS's semantics: at-least-once delivery, a visibility timeout per
receive, receive counts, and a move to the dead-letter queue past `max_receive_count` receives.

A receive is one write transaction: it takes visible messages oldest first, hides them and
gives each delivery a fresh receipt (a stale receipt, from before a redelivery, does nothing, as
SQS's "might not be deleted"). Long polls poll the table: a cheap indexed read between writes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from shared.embedded.db import Database
from shared.ports import QueueMessage

POLL_SECONDS = 0.1  # between looks during a long poll


@dataclass(eq=False)
class SqliteQueue:
    """One named queue in `db`; `dead_letter` names the queue a message moves to."""

    db: Database
    name: str
    _: KW_ONLY
    dead_letter: str | None = None
    max_receive_count: int = 3
    clock: Callable[[], float] = time.time

    def send(self, body: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO messages (queue, body, sent_at, visible_at) VALUES (?, ?, ?, ?)",
                (self.name, body, now, now),
            )

    def _any_visible(self, now: float) -> bool:
        found = self.db.read().execute(
            "SELECT 1 FROM messages WHERE queue = ? AND visible_at <= ? LIMIT 1", (self.name, now)
        )
        return found.fetchone() is not None

    def _take(self, max_messages: int, visibility_seconds: int) -> list[QueueMessage]:
        now = self.clock()
        if not self._any_visible(now):
            return []
        taken: list[QueueMessage] = []
        with self.db.write() as conn:
            rows = conn.execute(
                "SELECT id, body, receive_count FROM messages WHERE queue = ? AND visible_at <= ? "
                "ORDER BY visible_at, id",
                (self.name, now),
            )
            for row in rows.fetchall():
                if len(taken) == max_messages:
                    break
                if self.dead_letter and row["receive_count"] >= self.max_receive_count:
                    conn.execute(  # as SQS's redrive policy: moved on the receive after the last
                        "UPDATE messages SET queue = ?, receive_count = 0, receipt = NULL, visible_at = ? "
                        "WHERE id = ?",
                        (self.dead_letter, now, row["id"]),
                    )
                    continue
                receipt = f"{row['id']}:{uuid.uuid4().hex}"
                count = row["receive_count"] + 1
                conn.execute(
                    "UPDATE messages SET receive_count = ?, receipt = ?, visible_at = ? WHERE id = ?",
                    (count, receipt, now + visibility_seconds, row["id"]),
                )
                taken.append(QueueMessage(str(row["id"]), row["body"], receipt, count))
        return taken

    def receive(
        self, *, max_messages: int = 1, wait_seconds: float = 0, visibility_seconds: int = 30
    ) -> list[QueueMessage]:
        deadline = time.monotonic() + wait_seconds
        while True:
            taken = self._take(max_messages, visibility_seconds)
            if taken or time.monotonic() >= deadline:
                return taken
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def ack(self, receipt: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM messages WHERE receipt = ?", (receipt,))

    def _hide(self, receipt: str, seconds: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE messages SET visible_at = ? WHERE receipt = ?", (self.clock() + seconds, receipt)
            )

    def extend(self, receipt: str, seconds: int) -> None:
        self._hide(receipt, seconds)

    def release(self, receipt: str, delay: int = 0) -> None:
        self._hide(receipt, delay)

    def depth(self) -> int:
        """Messages in the queue, visible or in flight."""
        found = self.db.read().execute("SELECT COUNT(*) FROM messages WHERE queue = ?", (self.name,))
        return int(found.fetchone()[0])


class AsyncSqliteQueue:
    """The API's side of a queue: each call in a worker thread."""

    def __init__(self, queue: SqliteQueue, *, visibility_seconds: int = 30) -> None:
        self.queue = queue
        self.visibility_seconds = visibility_seconds

    async def send(self, body: str) -> None:
        await asyncio.to_thread(self.queue.send, body)

    async def receive(
        self, *, max_messages: int, wait_seconds: float, visibility_seconds: int | None = None
    ) -> list[QueueMessage]:
        return await asyncio.to_thread(
            self.queue.receive,
            max_messages=max_messages,
            wait_seconds=wait_seconds,
            visibility_seconds=visibility_seconds or self.visibility_seconds,
        )

    async def ack(self, receipt: str) -> None:
        await asyncio.to_thread(self.queue.ack, receipt)

    async def extend(self, receipt: str, seconds: int) -> None:
        await asyncio.to_thread(self.queue.extend, receipt, seconds)

    async def release(self, receipt: str, delay: int = 0) -> None:
        await asyncio.to_thread(self.queue.release, receipt, delay)

    async def depth(self) -> int:
        return await asyncio.to_thread(self.queue.depth)
