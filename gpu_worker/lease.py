"""Keep a claimed job ours while the pipeline runs, and tell the pipeline when to stop.

A background thread extends the queue message's visibility and the job's lease in the table
together, every third of the visibility timeout: while the worker lives, no other worker sees
the message; when it dies (kill -9, lost host), both run out and another worker takes over.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from shared.errors import JobNotFound, ServiceError
from shared.logging import get_logger
from shared.ports import Queue
from shared.stages import Stage

log = get_logger(__name__)


class Lease:
    def __init__(
        self,
        *,
        store: Any,
        queue: Queue,
        receipt_handle: str,
        job_id: str,
        owner: str,
        visibility_seconds: int,
        give_back: threading.Event,
    ) -> None:
        self.store = store
        self.queue = queue
        self.receipt_handle = receipt_handle
        self.job_id = job_id
        self.owner = owner
        self.visibility_seconds = visibility_seconds
        self.give_back = give_back  # set on a second shutdown signal: hand the job back
        self.lost = threading.Event()  # another worker holds the job now: touch nothing
        self._done = threading.Event()
        self._stage: Stage | None = None
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job_id[:8]}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = max(0.2, self.visibility_seconds / 3)
        while not self._done.wait(interval):
            try:
                self.queue.extend(self.receipt_handle, self.visibility_seconds)
                if self.store.run(self.store.ops.renew_lease(self.job_id, self.owner)) is None:
                    if not self._done.is_set():  # (not merely finished between two beats)
                        log.warning("lease_lost", job_id=self.job_id, owner=self.owner)
                        self.lost.set()
                    return
            except Exception as error:  # a missed beat is survivable; the next one retries
                if not self._done.is_set():
                    log.warning("lease_renewal_failed", job_id=self.job_id, error=str(error))

    def should_stop(self) -> bool:
        """Read at each stage boundary: cancelled by the user, claim lost, or shutting down."""
        if self.lost.is_set() or self.give_back.is_set():
            return True
        try:
            job = self.store.get(self.job_id)
        except JobNotFound:
            self.lost.set()
            return True
        except ServiceError:  # the table hiccupped: carry on, the next boundary asks again
            return False
        if job.owner != self.owner:
            self.lost.set()
            return True
        return job.cancel_requested

    def report(self, stage: Stage) -> None:
        """Write a new stage to the job (once per stage, not per fraction)."""
        if stage == self._stage:
            return
        self._stage = stage
        try:
            if self.store.run(self.store.ops.set_progress(self.job_id, self.owner, stage)) is None:
                self.lost.set()
        except ServiceError as error:  # progress is informative; never fail a job over it
            log.warning("progress_write_failed", job_id=self.job_id, error=str(error))
