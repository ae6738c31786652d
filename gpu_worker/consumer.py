"""The consumer threads: long-poll the job queue and claim each job in the table before handing it
to the runner.

A claim is a conditional update with an owner and a lease, so two workers can't both run a job.
Redelivery of a finished (deleted, cancelled, completed) job is acknowledged and skipped; a job
another worker holds is looked at again once its lease has run out; a message this worker can't
read goes back for other workers (a newer one may read it), and past MAX_RECEIVE_COUNT receives to
the dead-letter queue.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from gpu_worker.hooks import NO_HOOKS, WorkerHooks
from gpu_worker.runner import JobRunner
from shared.logging import get_logger
from shared.ports import Queue, QueueMessage
from shared.queue import JobMessage, UnreadableMessage
from shared.settings import Settings

log = get_logger(__name__)

MAX_HIDE_SECONDS = 43200  # SQS's longest visibility timeout


@dataclass
class Consumer:
    settings: Settings
    store: Any
    queue: Queue
    runner: JobRunner
    stopping: threading.Event  # take no new jobs
    hooks: WorkerHooks = NO_HOOKS

    def consume(self, owner: str) -> None:
        """One consumer thread's loop, until `stopping` is set; `owner` names it on the jobs it claims."""
        while not self.stopping.is_set():
            try:
                messages = self.queue.receive(
                    max_messages=1,
                    wait_seconds=self.settings.poll_wait_seconds,
                    visibility_seconds=self.settings.visibility_timeout_seconds,
                )
            except Exception as error:
                log.warning("receive_failed", error=str(error))
                self.stopping.wait(1.0)
                continue
            for message in messages:
                if self.stopping.is_set():  # received during shutdown: let another worker have it
                    self.queue.release(message.receipt)
                    continue
                try:
                    self.handle(message, owner)
                except Exception:  # never let one message kill a consumer thread
                    log.exception("message_handling_failed", message_id=message.message_id)

    def handle(self, message: QueueMessage, owner: str) -> None:
        receipt, receives = message.receipt, message.receive_count
        try:
            job_message = JobMessage.from_body(message.body)
        except UnreadableMessage as error:
            # Perhaps a newer API's message: give other workers a chance, then the DLQ keeps it.
            log.error("unreadable_message", error=str(error), receives=receives)
            self.queue.release(receipt)
            return
        job_id = job_message.job_id
        ops = self.store.ops
        claim = self.store.run(ops.claim(job_id, owner))
        if not claim.won:
            if claim.job is None or claim.job.status.finished:  # deleted, cancelled, or already done
                log.info("skipping_finished_job", job_id=job_id, status=claim.job and claim.job.status)
                self.queue.ack(receipt)
            else:  # another worker holds it (duplicate delivery): look again after its lease
                remaining = (claim.job.lease_expires_at or time.time()) - time.time()
                self.queue.release(receipt, max(1, min(int(remaining) + 1, MAX_HIDE_SECONDS)))
            return
        job = claim.job
        assert job is not None
        if job.cancel_requested:  # cancelled while its previous worker was dying
            if self.store.run(ops.cancel_owned(job_id, owner)):
                self.queue.ack(receipt)
            return
        self.hooks.after_claim(job)
        log.info("job_claimed", job_id=job_id, owner=owner, attempt=job.attempts, receives=receives)
        self.runner.run(job, message, owner)
