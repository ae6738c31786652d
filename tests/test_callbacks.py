"""Callback delivery with Deepgram's retry policy (count and interval from settings, short here), to a
real receiver on loopback, with every attempt recorded on a real job in the emulator's table and
every pending delivery in the table's outbox.

A job is finished through the store as a worker finishes it (its outbox entry written with it),
then the worker's own deliverer delivers it; the full path (pipeline, then callback) runs in
test_deepgram_sdk, and a worker killed with a callback pending in test_worker.
"""

from __future__ import annotations

import json
import threading

import pytest

from gpu_worker.callback_dispatch import FairDispatcher
from gpu_worker.callbacks import CallbackPolicy, attempt, callback_body, outbox_entry
from gpu_worker.deliverer import Deliverer
from gpu_worker.worker import Worker
from shared.callback_outbox import OutboxEntry
from shared.jobs import CallbackTarget, Job, JobOptions, JobStatus, ListenOptions
from shared.resources import callback_body_key
from tests.fixtures_aws import AwsEnv, Receiver, wait_for
from tests.test_listen import stored_result

SAFETY_NET_SECONDS = 30.0


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    return {"CALLBACK_MAX_ATTEMPTS": "4", "CALLBACK_RETRY_SECONDS": "0.05", "URL_FETCH_ALLOW_PRIVATE": "true"}


def completed_job(aws: AwsEnv, target: CallbackTarget, entry: OutboxEntry | None = None) -> Job:
    """A job completed by `w1` with its callback's outbox entry (by default, its result's body)."""
    ops = aws.store.ops
    listen = ListenOptions(diarize=True, utterances=True)
    job = ops.queued_job(
        "cb-job", JobOptions(whisper_model="tiny.en"), upload_key="", filename="a.wav", size_bytes=1,
        content_type=None,
    ).model_copy(update={"callback": target, "listen": listen})  # fmt: skip
    aws.store.create(job)
    aws.store.run(ops.claim(job.job_id, "w1"))
    blobs = Worker(aws.settings, session=aws.session).blobs
    entry = entry or outbox_entry(aws.store, blobs, job, stored_result(job.job_id))
    assert aws.store.run(ops.complete(job.job_id, "w1", callback=entry))
    return aws.job(job.job_id)


def delivered_by(deliverer: Deliverer, aws: AwsEnv, job_id: str) -> OutboxEntry | None:
    """Run `deliverer` until the job's entry is over; the entry as it ended (None: delivered)."""

    def over() -> list[OutboxEntry | None]:
        entry = aws.store.run(aws.store.outbox.get(job_id))
        return [entry] if entry is None or entry.failed else []

    deliverer.start()
    try:
        (ended,) = wait_for(over, "the callback to be delivered or given up")
    finally:
        deliverer.close()
    return ended


def worker_deliverer(aws: AwsEnv) -> Deliverer:
    worker = Worker(aws.settings, session=aws.session)
    return Deliverer(
        worker.store, worker.blobs, CallbackPolicy.from_settings(aws.settings), owner="w2", poll_seconds=0.05
    )


def test_a_receiver_that_fails_twice_gets_the_result_on_the_third_attempt(
    aws: AwsEnv, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    job = completed_job(aws, CallbackTarget(url=f"{receiver.url}/hook", method="PUT"))
    body = callback_body(job, stored_result(job.job_id))

    assert delivered_by(worker_deliverer(aws), aws, job.job_id) is None  # delivered: the entry is gone
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

    failed = delivered_by(worker_deliverer(aws), aws, job.job_id)
    assert failed is not None and failed.reason == "HTTP 502" and failed.attempts == 4
    assert [c.method for c in receiver.posts("/hook")] == ["POST"] * 4  # CALLBACK_MAX_ATTEMPTS
    recorded = aws.job(job.job_id)
    assert recorded.status is JobStatus.COMPLETED and recorded.callback_status == "failed"
    assert [a.status_code for a in recorded.callback_attempts] == [502] * 4


def test_an_unreachable_receiver_is_retried_and_recorded(aws: AwsEnv, receiver: Receiver) -> None:
    url = f"{receiver.url}/hook"
    receiver.close()  # nothing listens there any more
    job = completed_job(aws, CallbackTarget(url=url))
    assert delivered_by(worker_deliverer(aws), aws, job.job_id) is not None
    attempts = aws.job(job.job_id).callback_attempts
    assert len(attempts) == 4 and all(
        a.status_code is None and "can't reach" in (a.error or "") for a in attempts
    )


def test_a_gone_receiver_is_not_retried(aws: AwsEnv, receiver: Receiver) -> None:
    receiver.default = 410
    job = completed_job(aws, CallbackTarget(url=f"{receiver.url}/hook"))
    failed = delivered_by(worker_deliverer(aws), aws, job.job_id)
    assert failed is not None and failed.reason == "HTTP 410" and len(receiver.posts("/hook")) == 1
    assert aws.job(job.job_id).callback_status == "failed"


def test_a_large_body_waits_in_the_blob_store_and_is_delivered_whole(aws: AwsEnv, receiver: Receiver) -> None:
    body = json.dumps({"filler": "x" * 300_000}).encode()  # over DynamoDB's 400 KB item limit with the rest
    key = callback_body_key("cb-job")
    aws.client("s3").put_object(Bucket=aws.settings.bucket_name, Key=key, Body=body)
    target = CallbackTarget(url=f"{receiver.url}/hook")
    entry = aws.store.outbox.new_entry("cb-job", target, project_id=None, body_key=key)
    completed_job(aws, target, entry)

    assert delivered_by(worker_deliverer(aws), aws, "cb-job") is None
    assert [c.body for c in receiver.posts("/hook")] == [body]
    assert key not in aws.object_keys("results/")  # removed once delivered


def test_a_failed_job_is_delivered_in_deepgrams_error_shape(aws: AwsEnv) -> None:
    job = completed_job(aws, CallbackTarget(url="https://example.com/hook")).model_copy(
        update={"status": JobStatus.FAILED, "error": "'a.wav' is not audio"}
    )
    assert json.loads(callback_body(job, None)) == {
        "err_code": "Bad Request",
        "err_msg": "'a.wav' is not audio",
        "request_id": job.job_id,
    }


def test_private_receivers_are_refused_once_and_never_retried(aws: AwsEnv, receiver: Receiver) -> None:
    policy = CallbackPolicy(attempts=5, interval=0.0, timeout=5.0, allow_private=False)
    outcome = attempt(CallbackTarget(url=f"{receiver.url}/hook"), b"{}", policy)
    assert outcome.permanent and not outcome.delivered and "not public" in (outcome.error or "")

    job = completed_job(aws, CallbackTarget(url=f"{receiver.url}/hook"))
    worker = Worker(aws.settings, session=aws.session)
    deliverer = Deliverer(worker.store, worker.blobs, policy, owner="w2", poll_seconds=0.05)
    failed = delivered_by(deliverer, aws, job.job_id)
    assert failed is not None and failed.attempts == 1 and "not public" in (failed.reason or "")
    assert receiver.received == []
    recorded = aws.job(job.job_id)  # an address that can never be delivered to: one attempt, failed
    assert recorded.callback_status == "failed" and len(recorded.callback_attempts) == 1


def test_the_retry_schedule_is_deepgrams_through_tenacity() -> None:
    policy = CallbackPolicy(attempts=3, interval=30.0, timeout=5.0, allow_private=False)
    assert [policy.next_delay(n) for n in (1, 2, 3, 4)] == [30.0, 30.0, None, None]


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
