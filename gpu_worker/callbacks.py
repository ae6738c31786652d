"""Deliver a finished job to its callback URL as Deepgram does: POST (or PUT) the JSON, retry any
non-2xx answer or unreachable receiver up to `CALLBACK_MAX_ATTEMPTS` times, `CALLBACK_RETRY_SECONDS`
apart, and record every attempt on the job. An address that can never be delivered to (not
public, a host name that doesn't exist) or a receiver that answers 410 Gone is not retried.

The body is what `/v1/listen` would have answered: the Deepgram response, or Deepgram's error
shape when the job failed. As Deepgram, each request carries `dg-token`: the identifier of the
API key that submitted the job (never the key), for the receiver to check.

Pending deliveries live in the job store's outbox (shared.callback_outbox), not in a worker's
memory: this module builds an entry when a job finishes and makes one attempt at a time;
gpu_worker.deliverer runs the attempts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenacity import RetryCallState, stop_after_attempt, wait_fixed
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from gpu_worker.url_fetch import send
from shared.callback_outbox import INLINE_BODY_LIMIT, OutboxEntry
from shared.deepgram_shape import error_body, listen_response
from shared.errors import ServiceError
from shared.jobs import CallbackTarget, Job, JobStatus, ListenOptions
from shared.ports import BlobStore
from shared.resources import callback_body_key
from shared.settings import Settings
from shared.url_policy import Undeliverable

FINAL_STATUSES = frozenset({410})  # "Gone": the receiver says no retry will ever succeed


@dataclass(frozen=True)
class CallbackPolicy:
    """Deepgram's schedule, as tenacity's wait and stop strategies. They are asked about the
    attempt count kept in the outbox, not run as a retry loop: the schedule must outlive the
    process that made the last attempt."""

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

    @property
    def wait(self) -> wait_base:
        return wait_fixed(self.interval)

    @property
    def stop(self) -> stop_base:
        return stop_after_attempt(self.attempts)

    def next_delay(self, attempts_made: int) -> float | None:
        """Seconds until the next attempt after `attempts_made` failed ones; None: no more."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempts_made
        return None if self.stop(state) else self.wait(state)


@dataclass(frozen=True)
class Outcome:
    """One attempt: delivered, or the error and whether no retry can help."""

    status_code: int | None
    error: str | None
    permanent: bool = False

    @property
    def delivered(self) -> bool:
        return self.error is None


def attempt(target: CallbackTarget, body: bytes, policy: CallbackPolicy) -> Outcome:
    """Send once; never raises (a receiver's oddity is an error to record, not a crash)."""
    try:
        status_code = send(
            target.method,
            target.url,
            body,
            content_type="application/json",
            timeout=policy.timeout,
            allow_private=policy.allow_private,
            headers={"dg-token": target.token} if target.token else None,
        )
    except Undeliverable as failure:
        return Outcome(None, failure.message, permanent=True)
    except ServiceError as failure:
        return Outcome(None, failure.message)
    except Exception as failure:
        return Outcome(None, f"{type(failure).__name__}: {failure}")
    if 200 <= status_code < 300:
        return Outcome(status_code, None)
    return Outcome(status_code, f"HTTP {status_code}", permanent=status_code in FINAL_STATUSES)


def callback_body(job: Job, result: Mapping[str, Any] | None) -> bytes:
    """The JSON a job's callback receives: its result shaped as `/v1/listen` answers, or the error."""
    if result is not None:
        return json.dumps(listen_response(result, job.listen or ListenOptions())).encode()
    message = job.error or f"the job ended {job.status.value}"
    return json.dumps(error_body(400, message, job.job_id)).encode()


def outbox_entry(
    store: Any, blobs: BlobStore, job: Job, result: Mapping[str, Any] | None, *, error: str | None = None
) -> OutboxEntry | None:
    """The outbox entry for a job about to finish (completed with `result`, or failed with
    `error`), to be written with its final state; None when it has no callback. A body too large
    for a row is put in the blob store first."""
    if job.callback is None:
        return None
    if error is not None:
        job = job.model_copy(update={"status": JobStatus.FAILED, "error": error})
    body = callback_body(job, result)
    outbox = store.outbox
    if len(body) <= INLINE_BODY_LIMIT:
        return outbox.new_entry(job.job_id, job.callback, project_id=job.project_id, body=body)
    key = callback_body_key(job.job_id)
    blobs.put(key, body, content_type="application/json")
    return outbox.new_entry(job.job_id, job.callback, project_id=job.project_id, body_key=key)
