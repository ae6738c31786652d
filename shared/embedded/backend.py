"""The embedded backend's parts for one data directory, as the worker and the API use them."""

from __future__ import annotations

from dataclasses import dataclass

from shared.embedded.blobs import AsyncFileBlobs, FileBlobs
from shared.embedded.db import Database
from shared.embedded.job_store import AsyncSqliteJobStore, SqliteJobStore
from shared.embedded.queue import AsyncSqliteQueue, SqliteQueue
from shared.embedded.signing import UploadSigner, load_or_create_secret
from shared.settings import Settings


@dataclass
class LocalParts:
    db: Database
    store: SqliteJobStore
    queue: SqliteQueue
    dead_letters: SqliteQueue
    blobs: FileBlobs


def local_parts(settings: Settings) -> LocalParts:
    db = Database.in_dir(settings.data_dir)
    queue = SqliteQueue(
        db, settings.queue_name, dead_letter=settings.dlq_name, max_receive_count=settings.max_receive_count
    )
    return LocalParts(
        db=db,
        store=SqliteJobStore(db, settings),
        queue=queue,
        dead_letters=SqliteQueue(db, settings.dlq_name),
        blobs=FileBlobs(settings.data_dir, db, settings.bucket_name),
    )


@dataclass
class AsyncLocalParts:
    store: AsyncSqliteJobStore
    queue: AsyncSqliteQueue
    blobs: AsyncFileBlobs


def async_local_parts(settings: Settings) -> AsyncLocalParts:
    parts = local_parts(settings)
    signer = UploadSigner(load_or_create_secret(settings.data_dir))
    return AsyncLocalParts(
        store=AsyncSqliteJobStore(parts.db, settings),
        queue=AsyncSqliteQueue(parts.queue, visibility_seconds=settings.visibility_timeout_seconds),
        blobs=AsyncFileBlobs(parts.blobs, signer),
    )
