"""Callback delivery with Deepgram's retry policy (count and interval from settings, short here), to a
real receiver on loopback, with every attempt recorded on a real job in the emulator's table.

The worker's own delivery method is used on a job finished through the store as a worker would
finish it; the full path (pipeline, then callback) runs in test_deepgram_sdk.
"""

from __future__ import annotations

import json

import pytest

from gpu_worker.worker import Worker
from shared.callbacks import CallbackPolicy, callback_body, deliver
from shared.jobs import CallbackAttempt, CallbackTarget, Job, JobOptions, JobStatus, ListenOptions
from tests.fixtures_aws import AwsEnv, Receiver
from tests.test_listen import stored_result


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


def test_private_receivers_are_refused_unless_allowed(receiver: Receiver) -> None:
    attempts: list[CallbackAttempt] = []
    policy = CallbackPolicy(attempts=2, interval=0.0, timeout=5.0, allow_private=False)
    delivered = deliver(
        CallbackTarget(url=f"{receiver.url}/hook"), b"{}", policy, on_attempt=lambda a, _: attempts.append(a)
    )
    assert delivered is False and receiver.received == []
    assert len(attempts) == 2 and all("not public" in (a.error or "") for a in attempts)
