"""The worker's one door to callbacks: the outbox entry a finishing job writes together with its
final state (gpu_worker.callbacks.outbox_entry), and the deliverer that attempts it
(gpu_worker.deliverer: off the consumer threads, fairly across tenants, by whichever worker is
alive). A finish is `entry = notifier.completed(...)` or `.failed(...)`, the store's conditional
write with `callback=entry`, then `notifier.kick(entry)` once that write won."""

from __future__ import annotations

from typing import Any

from gpu_worker.callbacks import CallbackPolicy, outbox_entry
from gpu_worker.deliverer import Deliverer
from shared.callback_outbox import OutboxEntry
from shared.jobs import Job
from shared.ports import BlobStore
from shared.settings import Settings

CALLBACK_THREADS = 4


class Notifier:
    def __init__(self, store: Any, blobs: BlobStore, settings: Settings, *, owner: str) -> None:
        self.store = store
        self.blobs = blobs
        self.callbacks = Deliverer(
            store,
            blobs,
            CallbackPolicy.from_settings(settings),
            owner=owner,
            threads=CALLBACK_THREADS,
            poll_seconds=settings.callback_poll_seconds,
        )

    def completed(self, job: Job, result: dict[str, Any]) -> OutboxEntry | None:
        """The entry of a job completing with `result` (None: it has no callback)."""
        return outbox_entry(self.store, self.blobs, job, result)

    def failed(self, job: Job, error: str) -> OutboxEntry | None:
        """The entry of a job failing with `error` (None: it has no callback)."""
        return outbox_entry(self.store, self.blobs, job, None, error=error)

    def kick(self, entry: OutboxEntry | None) -> None:
        """Attempt a just-written entry now, rather than at the next outbox poll."""
        self.callbacks.kick(entry)

    def start(self) -> None:
        self.callbacks.start()

    def close(self) -> None:
        """Attempts due now are made; later retries stay in the outbox for any worker."""
        self.callbacks.close()
