"""Deliver a finished job to its callback URL as Deepgram does: POST (or PUT) the JSON, retry any
non-2xx answer or unreachable receiver up to `CALLBACK_MAX_ATTEMPTS` times, `CALLBACK_RETRY_SECONDS`
apart, and report every attempt so the job records it. An address that can never be delivered
to (not public, or a host name that doesn't exist) is not retried.

The body is what `/v1/listen` would have answered: the Deepgram response, or Deepgram's error
shape when the job failed. As Deepgram, each request carries `dg-token`: the identifier of the
API key that submitted the job (never the key), for the receiver to check.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gpu_worker.url_fetch import send
from shared.deepgram_shape import error_body, listen_response
from shared.errors import ServiceError
from shared.jobs import CallbackAttempt, CallbackTarget, Job, ListenOptions, utc_now_iso
from shared.logging import get_logger
from shared.settings import Settings
from shared.url_policy import Undeliverable

log = get_logger(__name__)


@dataclass(frozen=True)
class CallbackPolicy:
    attempts: int
    interval: float
    timeout: float
    allow_private: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackPolicy:
        return cls(
            attempts=settings.callback_max_attempts,
            interval=settings.callback_retry_seconds,
            timeout=settings.callback_timeout_seconds,
            allow_private=settings.url_fetch_allow_private,
        )


def callback_body(job: Job, result: Mapping[str, Any] | None) -> bytes:
    """The JSON a job's callback receives: its result shaped as `/v1/listen` answers, or the error."""
    if result is not None:
        return json.dumps(listen_response(result, job.listen or ListenOptions())).encode()
    message = job.error or f"the job ended {job.status.value}"
    return json.dumps(error_body(400, message, job.job_id)).encode()


class Delivery:
    """One job's delivery, one attempt per `step()`: what `FairDispatcher` runs. An address that can
    never be delivered to (refused by the address policy, or a name that doesn't exist) ends it at
    once; any other failure is retried, `policy.interval` apart, until the attempts run out."""

    def __init__(
        self,
        target: CallbackTarget,
        body: bytes,
        policy: CallbackPolicy,
        *,
        on_attempt: Callable[[CallbackAttempt, str], None],
        stop: threading.Event | None = None,
    ) -> None:
        self.target, self.body, self.policy = target, body, policy
        self.on_attempt, self.stop = on_attempt, stop
        self.number = 0
        self.delivered = False

    def step(self) -> float | None:
        """One attempt; the seconds until the next one, or None when the delivery is over."""
        self.number += 1
        status_code: int | None = None
        error: str | None = None
        permanent = False
        try:
            status_code = send(
                self.target.method,
                self.target.url,
                self.body,
                content_type="application/json",
                timeout=self.policy.timeout,
                allow_private=self.policy.allow_private,
                headers={"dg-token": self.target.token} if self.target.token else None,
            )
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except Undeliverable as failure:
            error, permanent = failure.message, True
        except ServiceError as failure:
            error = failure.message
        except Exception as failure:  # a receiver's oddity must not kill the delivery thread
            error = f"{type(failure).__name__}: {failure}"
        self.delivered = error is None
        last = (
            self.delivered
            or permanent
            or self.number >= self.policy.attempts
            or (self.stop is not None and self.stop.is_set())
        )
        state = "delivered" if self.delivered else ("failed" if last else "retrying")
        self.on_attempt(
            CallbackAttempt(attempt=self.number, at=utc_now_iso(), status_code=status_code, error=error),
            state,
        )
        if not last:
            return self.policy.interval
        if not self.delivered:
            log.warning(
                "callback_failed", host=urlsplit(self.target.url).hostname, attempts=self.number, error=error
            )
        return None


def deliver(
    target: CallbackTarget,
    body: bytes,
    policy: CallbackPolicy,
    *,
    on_attempt: Callable[[CallbackAttempt, str], None],
    stop: threading.Event | None = None,
) -> bool:
    """Send until a 2xx answer or the attempts run out, on this thread; True when delivered.
    `on_attempt` gets each attempt and the delivery's status after it ("retrying", "delivered" or
    "failed"). `stop` cuts the waits between attempts short (shutdown)."""
    delivery = Delivery(target, body, policy, on_attempt=on_attempt, stop=stop)
    while (delay := delivery.step()) is not None:
        (stop or threading.Event()).wait(delay)
    return delivery.delivered
