"""The worker process: its backend, its consumer threads and dead-letter sweep, and its lifecycle
(registration in the fleet, stale work folders, model preload, shutdown on signals).

What each part does: gpu_worker.consumer (long-poll the queue, claim each job), gpu_worker.runner
(process one job: fetch, pipeline, result, complete; retries), gpu_worker.dead_letters (fail the
jobs whose messages reached the dead-letter queue), gpu_worker.notify (callbacks),
gpu_worker.lease (keep a job ours while it runs).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import threading
import time
from typing import Any

from gpu_worker.consumer import Consumer
from gpu_worker.dead_letters import DeadLetterSweep
from gpu_worker.hooks import NO_HOOKS, WorkerHooks
from gpu_worker.notify import Notifier
from gpu_worker.registry import Registration
from gpu_worker.runner import JobRunner
from gpu_worker.task_protection import TaskProtection
from shared.backends import worker_backend
from shared.errors import JobNotFound, ServiceError
from shared.jobs import Job, JobStatus
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)

_JOB_FOLDER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Worker:
    def __init__(self, settings: Settings, *, session: Any = None, hooks: WorkerHooks = NO_HOOKS) -> None:
        """`session`: a boto3 session for BACKEND=aws (default: one for AWS_REGION); `hooks`: for
        the tests' fault injection (gpu_worker.hooks)."""
        self.settings = settings
        self.worker_id = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        backend = worker_backend(settings, session=session, pool=4 * settings.worker_concurrency + 8)
        self.store = backend.store
        self.blobs = backend.blobs
        self.stopping = threading.Event()  # take no new jobs; finish the current ones
        self.giving_back = threading.Event()  # hand current jobs back at their next stage boundary
        self._stop_requests = itertools.count()
        self.notifier = Notifier(self.store, self.blobs, settings, owner=self.worker_id)
        runner = JobRunner(
            settings,
            store=self.store,
            queue=backend.queue,
            blobs=self.blobs,
            notifier=self.notifier,
            giving_back=self.giving_back,
            protection=TaskProtection(),
            hooks=hooks,
        )
        self.consumer = Consumer(
            settings,
            store=self.store,
            queue=backend.queue,
            runner=runner,
            stopping=self.stopping,
            hooks=hooks,
        )
        self.dead_letters = DeadLetterSweep(
            settings,
            store=self.store,
            dead_letters=backend.dead_letters,
            notifier=self.notifier,
            stopping=self.stopping,
        )

    def stop(self) -> None:
        """First SIGTERM/SIGINT: finish the jobs in hand, then exit. A second one gives them back."""
        # A signal handler can be interrupted by the next signal: count first (one C call, atomic),
        # act, and only then log.
        if next(self._stop_requests) == 0:
            self.stopping.set()
            log.info("worker_stopping", worker_id=self.worker_id)
        else:
            self.giving_back.set()
            log.warning("worker_giving_back_jobs", worker_id=self.worker_id)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())

    def run(self) -> None:
        """Consume until stopped, with `worker_concurrency` consumer threads."""
        with Registration(self.store, self.settings, self.worker_id):
            self.clean_stale_workdirs()
            if self.settings.worker_preload:
                self._preload()
            threads = [
                threading.Thread(
                    target=self.consumer.consume, args=(f"{self.worker_id}/{n}",), name=f"consumer-{n}"
                )
                for n in range(self.settings.worker_concurrency)
            ]
            threads.append(threading.Thread(target=self.dead_letters.loop, name="dead-letters", daemon=True))
            for thread in threads:
                thread.start()
            self.notifier.start()
            log.info("worker_started", worker_id=self.worker_id, concurrency=self.settings.worker_concurrency)
            for thread in threads[:-1]:
                while thread.is_alive():  # join in slices so signal handlers run promptly
                    thread.join(timeout=0.5)
            self.notifier.close()
        log.info("worker_stopped", worker_id=self.worker_id)

    def clean_stale_workdirs(self) -> int:
        """Remove job folders a killed worker left in UPLOAD_DIR (`kill -9` runs no cleanup).

        Only folders named as job ids are touched, and not one whose job some live worker is still
        processing (several workers may share the folder). Returns how many were removed."""
        removed = 0
        folders = self.settings.upload_dir.iterdir() if self.settings.upload_dir.is_dir() else ()
        for folder in folders:
            if not folder.is_dir() or not _JOB_FOLDER.fullmatch(folder.name):
                continue
            try:
                job: Job | None = self.store.get(folder.name)
            except JobNotFound:
                job = None
            busy = (
                job is not None
                and job.status is JobStatus.PROCESSING
                and (job.lease_expires_at or 0) > time.time()
            )
            if not busy:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        if removed:
            log.info("stale_workdirs_removed", count=removed, upload_dir=str(self.settings.upload_dir))
        return removed

    def _preload(self) -> None:
        from gpu_worker.pipeline.run import warm_up

        try:
            warm_up(self.settings.default_whisper_model, self.settings)
        except ServiceError as error:  # the worker can still run the models it has
            log.warning("preload_failed", model=self.settings.default_whisper_model, error=str(error))
