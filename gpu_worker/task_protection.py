"""ECS task scale-in protection while the worker holds jobs.

When the fleet scales in, ECS stops tasks; a protected task is left alone. The worker turns
protection on when it takes its first job and off when it holds none, through the ECS agent's
endpoint (`$ECS_AGENT_URI/task-protection/v1/state`). Outside ECS (no ECS_AGENT_URI) it does
nothing. A failed call is logged, never fatal: the worst case is a redelivered job.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from shared.logging import get_logger

log = get_logger(__name__)

MAX_PROTECTION_MINUTES = 2880  # ECS's maximum (48 h); renewed with every new job


class TaskProtection:
    def __init__(self, agent_uri: str | None = None) -> None:
        self.agent_uri = agent_uri if agent_uri is not None else os.environ.get("ECS_AGENT_URI")
        self._lock = threading.Lock()
        self._busy = 0

    def _set(self, enabled: bool) -> None:
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = MAX_PROTECTION_MINUTES
        request = urllib.request.Request(
            f"{self.agent_uri}/task-protection/v1/state",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        try:
            with urllib.request.urlopen(request, timeout=5):
                pass
        except OSError as error:
            log.warning("task_protection_failed", enabled=enabled, error=str(error))

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Protected while any thread is inside."""
        if not self.agent_uri:
            yield
            return
        with self._lock:
            self._busy += 1
            if self._busy == 1:
                self._set(True)
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                if self._busy == 0:
                    self._set(False)
