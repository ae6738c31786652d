"""The dead-letter sweep: fail the jobs whose messages the queue moved to the dead-letter queue
after MAX_RECEIVE_COUNT receives (their workers kept dying), with a reason; their callbacks go
through the outbox.

The messages stay in the DLQ for people to look at (hidden from the sweep for DLQ_HIDE_SECONDS);
a job some live worker still holds is looked at again once its lease has run out.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from gpu_worker.notify import Notifier
from shared.errors import JobNotFound
from shared.logging import get_logger
from shared.ports import Queue
from shared.queue import JobMessage, UnreadableMessage
from shared.settings import Settings

log = get_logger(__name__)

DLQ_HIDE_SECONDS = 12 * 3600  # a handled dead letter stays in the DLQ for people, out of our way


@dataclass
class DeadLetterSweep:
    settings: Settings
    store: Any
    dead_letters: Queue
    notifier: Notifier
    stopping: threading.Event

    def loop(self) -> None:
        """Sweep every DEAD_LETTER_POLL_SECONDS until `stopping` is set."""
        while not self.stopping.wait(self.settings.dead_letter_poll_seconds):
            try:
                self.sweep()
            except Exception as error:
                log.warning("dead_letter_sweep_failed", error=str(error))

    def sweep(self) -> int:
        """One look at the DLQ; returns how many jobs were failed."""
        failed = 0
        messages = self.dead_letters.receive(
            max_messages=10, wait_seconds=0, visibility_seconds=DLQ_HIDE_SECONDS
        )
        for message in messages:
            try:
                job = self.store.get(JobMessage.from_body(message.body).job_id)
            except (UnreadableMessage, JobNotFound):
                continue
            if job.status.finished:
                continue
            attempts = max(job.attempts, 1)
            reason = (
                f"gave up after {attempts} attempts; last error: {job.last_error}"
                if job.last_error
                else f"worker crashed {attempts} times while processing this job; giving up "
                f"(its message is in the dead-letter queue {self.settings.dlq_name})"
            )
            callback = self.notifier.failed(job, reason)
            if self.store.run(self.store.ops.fail_abandoned(job.job_id, reason, callback=callback)):
                failed += 1
                log.warning("dead_letter_job_failed", job_id=job.job_id, reason=reason)
                self.notifier.kick(callback)
            else:  # a worker still holds it: look again after its lease
                delay = max(1, int((job.lease_expires_at or 0) - time.time()) + 1)
                self.dead_letters.release(message.receipt, delay)
        return failed
