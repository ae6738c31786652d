"""The service's storage ports: the queue and the blob store, as the code uses them.

Two implementations each: for AWS and its emulators `shared.sqs` (the queue) and
`shared.aws_adapters` (S3); for one machine `shared.embedded` (SQLite and a data directory).
The job store has its own two (`shared.job_store` for DynamoDB, `shared.embedded.job_store` for
SQLite) with the same methods.
Sync protocols serve the worker (threads), async ones the API (one event loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from shared.errors import PayloadTooLarge


@dataclass(frozen=True)
class QueueMessage:
    """One received message: `receipt` acts on this delivery only; `receive_count` counts this one."""

    message_id: str
    body: str
    receipt: str
    receive_count: int


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        """The object's name for display (its key's last part, made printable)."""
        from shared.filenames import display_name

        return display_name(PurePosixPath(self.key).name)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class PresignedUpload:
    """Where a client may write one object: a PUT URL (with the headers to send) and a form POST."""

    put_url: str
    put_headers: dict[str, str]
    post_url: str
    post_fields: dict[str, str]


@dataclass(frozen=True)
class UploadTerms:
    """What a presigned upload allows: the signed type (when given), exactly `size_bytes` (when
    given) or at most `limit` bytes, for `lifetime` s; `base_url` is this API's own address."""

    content_type: str | None
    size_bytes: int | None
    limit: int
    lifetime: int
    base_url: str

    @property
    def max_bytes(self) -> int:
        return self.size_bytes or self.limit


@dataclass(frozen=True)
class UploadBody:
    """A body on its way to the blob store, read `read(n)` at a time (never whole in memory).
    `first_chunk` is what the caller already read (to sniff the format); past `limit` bytes the
    upload stops with `too_large()` and leaves nothing behind."""

    read: Callable[[int], Awaitable[bytes]]
    limit: int
    too_large: Callable[[], PayloadTooLarge]
    first_chunk: bytes = b""
    content_type: str | None = None

    def check_size(self, size: int) -> None:
        """Raise `too_large()` once the `size` bytes arrived so far are over the limit."""
        if size > self.limit:
            raise self.too_large()


class Queue(Protocol):
    """At-least-once delivery: a received message is hidden for `visibility_seconds`, then comes
    back unless acknowledged; past MAX_RECEIVE_COUNT receives it moves to the dead-letter queue.
    A receipt acts on its own delivery only."""

    def send(self, body: str) -> None: ...

    def receive(
        self, *, max_messages: int, wait_seconds: float, visibility_seconds: int
    ) -> list[QueueMessage]: ...

    def ack(self, receipt: str) -> None:
        """Done with it: the message is deleted."""

    def extend(self, receipt: str, seconds: int) -> None:
        """Still working on it: hidden for `seconds` more, from now."""

    def release(self, receipt: str, delay: int = 0) -> None:
        """Not done: visible again after `delay` seconds (0: at once), for any receiver."""

    def depth(self) -> int:
        """Messages in the queue, visible or in flight (SQS: approximate)."""


class AsyncQueue(Protocol):
    """The same, for one event loop (the API, the emulator's ingest consumer)."""

    async def send(self, body: str) -> None: ...

    async def receive(
        self, *, max_messages: int, wait_seconds: float, visibility_seconds: int | None = None
    ) -> list[QueueMessage]: ...

    async def ack(self, receipt: str) -> None: ...

    async def extend(self, receipt: str, seconds: int) -> None: ...

    async def release(self, receipt: str, delay: int = 0) -> None: ...

    async def depth(self) -> int: ...


class BlobStore(Protocol):
    """The worker's side: fetch a job's audio, write its result (and a large callback body)."""

    def download(self, key: str, destination: Path) -> Path: ...

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None: ...

    def delete(self, key: str) -> None: ...


class AsyncBlobStore(Protocol):
    """The API's side: every object operation the routes and the ingestion make."""

    async def upload_stream(self, key: str, body: UploadBody) -> int:
        """Store the body at `key`; its size."""

    async def head(self, bucket: str, key: str) -> StoredObject | None: ...

    async def read_head(self, stored: StoredObject, size: int) -> bytes: ...

    async def get(self, key: str) -> bytes: ...

    async def get_optional(self, key: str) -> bytes | None: ...

    async def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None: ...

    async def large_object_url(self, key: str, max_bytes: int) -> str | None: ...

    async def delete(self, key: str) -> None: ...

    async def delete_job_objects(self, job_id: str) -> None: ...

    async def copy(self, source: StoredObject, key: str) -> None: ...

    async def presign_upload(self, key: str, terms: UploadTerms) -> PresignedUpload: ...
