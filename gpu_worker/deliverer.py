"""The worker's callback deliverer: makes the attempts that the job store's outbox holds, whoever's
job it was (shared.callback_outbox).

Two ways in, one way through. A job this worker just finished is handed over at once (`kick`); a
poll every `CALLBACK_POLL_SECONDS` picks up every other due entry: retries whose worker died or
stopped, entries a killed worker left half-tried. Each attempt claims its entry under a lease
first, so two workers never attempt the same entry at once, then records the attempt on the job
and moves the entry on: deleted when delivered, failed with its reason when no retry can help,
due again later otherwise. The attempts run on `FairDispatcher` threads, round-robin across
tenants with one attempt in flight per tenant; a retry this worker scheduled waits in the
dispatcher's schedule (and in the outbox, for any other worker).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gpu_worker.callback_dispatch import FairDispatcher
from gpu_worker.callbacks import CallbackPolicy, Outcome, attempt
from shared.callback_outbox import OutboxEntry
from shared.jobs import CallbackAttempt, utc_now_iso
from shared.logging import get_logger
from shared.ports import BlobStore
from shared.storage import UploadMissing

log = get_logger(__name__)

_SCHEDULE_MARGIN = 0.05  # a local retry runs just after its entry is due by the store's clock


class Deliverer:
    def __init__(
        self,
        store: Any,
        blobs: BlobStore,
        policy: CallbackPolicy,
        *,
        owner: str,
        threads: int = 4,
        poll_seconds: float = 5.0,
        hurry: threading.Event | None = None,
    ) -> None:
        self.store, self.blobs, self.policy, self.owner = store, blobs, policy, owner
        self.poll_seconds = poll_seconds
        self.hurry = hurry or threading.Event()  # set: stop waiting for local retries (shutdown)
        self.dispatcher = FairDispatcher(threads, per_tenant=1, hurry=self.hurry)
        self._in_hand: set[str] = set()  # entries submitted or scheduled here: not submitted twice
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._poller = threading.Thread(target=self._poll_loop, name="callback-poll", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Make the attempts due now, then stop; later retries stay in the outbox for any worker."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        self._poll_once()
        self.hurry.set()
        self.dispatcher.shutdown(wait=True)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._poll_once()

    def _poll_once(self) -> None:
        try:
            entries = self.store.run(self.store.outbox.due())
        except Exception as error:  # the store may be briefly unreachable: look again next time
            log.warning("callback_poll_failed", error=str(error))
            return
        for entry in entries:
            self.kick(entry)

    # --- one entry ---------------------------------------------------------------------------
    def kick(self, entry: OutboxEntry | None) -> None:
        """Attempt `entry` as soon as its tenant's turn comes (nothing when None or in hand)."""
        if entry is None:
            return
        with self._lock:
            if entry.job_id in self._in_hand:
                return
            self._in_hand.add(entry.job_id)
        self.dispatcher.submit(entry.tenant, lambda: self._step(entry.job_id))

    def _step(self, job_id: str) -> float | None:
        """One attempt under a lease; the seconds until this worker tries again, or None."""
        delay = None
        try:
            delay = self._attempt(job_id)
        finally:
            if delay is None:
                with self._lock:
                    self._in_hand.discard(job_id)
        return None if delay is None or self.hurry.is_set() else delay + _SCHEDULE_MARGIN

    def _attempt(self, job_id: str) -> float | None:
        outbox = self.store.outbox
        entry = self.store.run(outbox.claim(job_id, self.owner))
        if entry is None:  # not due yet, another worker holds it, or it is over
            return None
        outcome = self._send(entry)
        number = entry.attempts + 1
        delay = None if outcome.delivered or outcome.permanent else self.policy.next_delay(number)
        state = "delivered" if outcome.delivered else ("retrying" if delay is not None else "failed")
        record = CallbackAttempt(
            attempt=number, at=utc_now_iso(), status_code=outcome.status_code, error=outcome.error
        )
        self.store.run(self.store.ops.record_callback(job_id, record, state))  # the job's record first
        if outcome.delivered:
            self.store.run(outbox.done(job_id, self.owner))
        elif delay is None:
            self.store.run(outbox.fail(job_id, self.owner, attempts=number, reason=outcome.error or ""))
            host = urlsplit(entry.target.url).hostname
            log.warning("callback_failed", job_id=job_id, host=host, attempts=number, error=outcome.error)
        else:
            due = time.time() + delay
            if self.store.run(outbox.retry_at(job_id, self.owner, attempts=number, next_attempt_at=due)):
                return delay
            return None
        if entry.body_key:
            self.blobs.delete(entry.body_key)
        return None

    def _send(self, entry: OutboxEntry) -> Outcome:
        if entry.body is not None:
            return attempt(entry.target, entry.body.encode(), self.policy)
        assert entry.body_key is not None
        with tempfile.TemporaryDirectory() as folder:
            try:
                body = self.blobs.download(entry.body_key, Path(folder) / "body.json").read_bytes()
            except UploadMissing:
                return Outcome(None, "the callback's body is gone (the job expired)", permanent=True)
        return attempt(entry.target, body, self.policy)
