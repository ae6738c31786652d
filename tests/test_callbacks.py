"""Callback delivery with Deepgram's retry policy (count and interval from settings, short here), to a
real receiver on loopback, with every attempt recorded on a real job in the emulator's table.

The worker's own delivery method is used on a job finished through the store as a worker would
finish it; the full path (pipeline, then callback) runs in test_deepgram_sdk.
"""

from __future__ import annotations

import json
import threading

import pytest

from gpu_worker.callback_dispatch import FairDispatcher
from gpu_worker.callbacks import CallbackPolicy, callback_body, deliver
from gpu_worker.worker import Worker
from shared.jobs import CallbackAttempt, CallbackTarget, Job, JobOptions, JobStatus, ListenOptions
from tests.fixtures_aws import AwsEnv, Receiver
from tests.test_listen import stored_result

SAFETY_NET_SECONDS = 30.0


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    return {"CALLBACK_MAX_ATTEMPTS": "4", "CALLBACK_RETRY_SECONDS": "0.05", "URL_FETCH_ALLOW_PRIVATE": "true"}


def completed_job(aws: AwsEnv, target: CallbackTarget) -> Job:
    ops = aws.store.ops
    listen = ListenOptions(diarize=True, utterances=True)
    job = ops.queued_job(
        "cb-job", JobOptions(whisper_model="tiny.en"), upload_key="", filename="a.wav", size_bytes=1,
        content_type=None,
    ).model_copy(update={"callback": target, "listen": listen})  # fmt: skip
    aws.store.create(job)
    aws.store.run(ops.claim(job.job_id, "w1"))
    assert aws.store.run(ops.complete(job.job_id, "w1"))
    return aws.job(job.job_id)


def test_a_receiver_that_fails_twice_gets_the_result_on_the_third_attempt(
    aws: AwsEnv, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    job = completed_job(aws, CallbackTarget(url=f"{receiver.url}/hook", method="PUT"))
    worker = Worker(aws.settings, session=aws.session)
    body = callback_body(job, stored_result(job.job_id))

    assert worker.send_callback(job, body) is True
    calls = receiver.posts("/hook")
    assert [(c.method, c.answered) for c in calls] == [("PUT", 500), ("PUT", 503), ("PUT", 200)]
    assert {c.body for c in calls} == {body} and calls[0].headers["Content-Type"] == "application/json"
    delivered = json.loads(calls[-1].body)
    assert delivered["metadata"]["request_id"] == job.job_id and delivered["results"]["utterances"]

    recorded = aws.job(job.job_id)
    assert recorded.status is JobStatus.COMPLETED and recorded.callback_status == "delivered"
    assert [(a.attempt, a.status_code) for a in recorded.callback_attempts] == [(1, 500), (2, 503), (3, 200)]
    assert recorded.callback_attempts[0].error == "HTTP 500" and recorded.callback_attempts[2].error is None


def test_a_receiver_that_always_fails_leaves_the_attempts_recorded_and_the_job_completed(
    aws: AwsEnv, receiver: Receiver
) -> None:
    receiver.default = 502
    job = completed_job(aws, CallbackTarget(url=f"{receiver.url}/hook"))
    worker = Worker(aws.settings, session=aws.session)

    assert worker.send_callback(job, callback_body(job, stored_result(job.job_id))) is False
    assert [c.method for c in receiver.posts("/hook")] == ["POST"] * 4  # CALLBACK_MAX_ATTEMPTS
    recorded = aws.job(job.job_id)
    assert recorded.status is JobStatus.COMPLETED and recorded.callback_status == "failed"
    assert [a.status_code for a in recorded.callback_attempts] == [502] * 4


def test_an_unreachable_receiver_is_retried_and_recorded(aws: AwsEnv, receiver: Receiver) -> None:
    url = f"{receiver.url}/hook"
    receiver.close()  # nothing listens there any more
    job = completed_job(aws, CallbackTarget(url=url))
    assert Worker(aws.settings, session=aws.session).send_callback(job, b"{}") is False
    attempts = aws.job(job.job_id).callback_attempts
    assert len(attempts) == 4 and all(
        a.status_code is None and "can't reach" in (a.error or "") for a in attempts
    )


def test_a_failed_job_is_delivered_in_deepgrams_error_shape(aws: AwsEnv) -> None:
    job = completed_job(aws, CallbackTarget(url="https://example.com/hook")).model_copy(
        update={"status": JobStatus.FAILED, "error": "'a.wav' is not audio"}
    )
    assert json.loads(callback_body(job, None)) == {
        "err_code": "Bad Request",
        "err_msg": "'a.wav' is not audio",
        "request_id": job.job_id,
    }


def test_private_receivers_are_refused_once_and_never_retried(receiver: Receiver) -> None:
    attempts: list[tuple[CallbackAttempt, str]] = []
    policy = CallbackPolicy(attempts=5, interval=0.0, timeout=5.0, allow_private=False)
    delivered = deliver(
        CallbackTarget(url=f"{receiver.url}/hook"),
        b"{}",
        policy,
        on_attempt=lambda a, s: attempts.append((a, s)),
    )
    assert delivered is False and receiver.received == []
    ((attempt, state),) = attempts  # an address that can never be delivered to: one attempt, failed
    assert "not public" in (attempt.error or "") and state == "failed"


def test_one_tenants_stuck_callbacks_dont_delay_anothers() -> None:
    """Tenant A's receivers hang (each attempt blocks until released); tenant B's delivery still
    runs at once: A may hold only one of the threads, and its retries wait off-thread."""
    release, b_done = threading.Event(), threading.Event()
    dispatcher = FairDispatcher(2, per_tenant=1)
    started: list[str] = []

    def stuck() -> float | None:
        started.append("a")
        release.wait(SAFETY_NET_SECONDS)
        return None

    def quick() -> float | None:
        b_done.set()
        return None

    try:
        for _ in range(10):
            dispatcher.submit("tenant-a", stuck)
        dispatcher.submit("tenant-b", quick)
        assert b_done.wait(SAFETY_NET_SECONDS), "tenant B waited behind tenant A"
        assert started == ["a"]  # one of A's at a time
    finally:
        release.set()
        dispatcher.shutdown(wait=True)
    assert started == ["a"] * 10 and dispatcher.pending() == 0


def test_a_retry_waits_in_the_schedule_not_on_a_thread() -> None:
    calls: list[str] = []
    dispatcher = FairDispatcher(1)
    done = threading.Event()

    def failing_twice() -> float | None:
        calls.append("retry")
        return 0.05 if calls.count("retry") < 3 else None

    def other() -> float | None:
        calls.append("other")
        done.set()
        return None

    dispatcher.submit("a", failing_twice)
    dispatcher.submit("b", other)
    assert done.wait(SAFETY_NET_SECONDS)
    dispatcher.shutdown(wait=True)
    assert calls.count("retry") == 3 and calls.index("other") < 2  # B ran between A's attempts
