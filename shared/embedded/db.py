"""One SQLite database file shared by the API, the worker and the drop-folder watcher (separate
processes): WAL mode lets readers run beside the one writer; every write is a `BEGIN IMMEDIATE`
transaction, so a conditional update reads and writes with nobody in between."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import TransientError

BUSY_TIMEOUT_MS = 15_000
DB_FILENAME = "state.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT '',
    expires_at REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_status ON items (status, created_at);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt);
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT
);
CREATE TABLE IF NOT EXISTS drops (
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (key, etag)
);
"""


class Database:
    """Thread-local connections to one file (sqlite3 connections must stay on their thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.connection().executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, data_dir: Path) -> Database:
        return cls(data_dir / DB_FILENAME)

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a committed transition survives a power cut
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back on any error."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:  # locked past the busy timeout
            raise TransientError(f"the database is busy: {error}") from error
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(self) -> sqlite3.Connection:
        """For single statements (each is its own consistent snapshot)."""
        return self.connection()
