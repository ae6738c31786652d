"""Register this worker in the fleet (what it can run) and keep the registration fresh.

The API unions live registrations to answer `/models` and to refuse a model no worker has.
A worker that stops beating drops out after a few intervals; a clean exit removes it at once.
Each successful beat also touches WORKER_HEARTBEAT_FILE, which the container health check reads.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from shared.fleet import STALE_AFTER_BEATS, WorkerRecord
from shared.jobs import utc_now_iso
from shared.logging import get_logger
from shared.model_catalog import available_models, search_places
from shared.settings import Settings

log = get_logger(__name__)


def capabilities_record(settings: Settings, worker_id: str, started_at: str) -> WorkerRecord:
    from gpu_worker.pipeline import separate  # filesystem checks only; no torch import

    now = utc_now_iso()
    return WorkerRecord(
        worker_id=worker_id,
        hostname=socket.gethostname(),
        models=tuple(sorted(available_models(settings))),
        separation=separate.is_available(settings),
        model_search=search_places(settings),
        separation_search=tuple(separate.where_looked(settings)),
        concurrency=settings.worker_concurrency,
        started_at=started_at,
        heartbeat_at=now,
        expires_at=int(time.time() + STALE_AFTER_BEATS * settings.worker_heartbeat_seconds),
    )


class Registration:
    """Context manager: registered (and beating) inside, deregistered on the way out."""

    def __init__(self, store: Any, settings: Settings, worker_id: str) -> None:
        self.store = store
        self.settings = settings
        self.worker_id = worker_id
        self.started_at = utc_now_iso()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="registration", daemon=True)

    def _register(self) -> None:
        # Re-read capabilities each beat: models installed while the worker runs show up.
        record = capabilities_record(self.settings, self.worker_id, self.started_at)
        self.store.run(self.store.ops.register_worker(record))
        if self.settings.worker_heartbeat_file is not None:  # the container health check reads it
            self.settings.worker_heartbeat_file.touch()

    def _beat(self) -> None:
        while not self._done.wait(self.settings.worker_heartbeat_seconds):
            try:
                self._register()
            except Exception as error:
                log.warning("registration_failed", worker_id=self.worker_id, error=str(error))

    def __enter__(self) -> Registration:
        self._register()
        self._thread.start()
        log.info("worker_registered", worker_id=self.worker_id, pid=os.getpid())
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        try:
            self.store.run(self.store.ops.deregister_worker(self.worker_id))
        except Exception as error:  # it drops out by itself after a few missed beats
            log.warning("deregistration_failed", worker_id=self.worker_id, error=str(error))
