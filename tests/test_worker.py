"""Worker processes (`python -m gpu_worker`) on a real emulator, running the real pipeline (tiny.en)
on synthesized speech: exactly-once processing, crash recovery, poison messages, cancellation,
permanent failures, shutdown, and a callback that outlives the worker that owed it.

Crashes are real: a worker is SIGKILLed from outside, or kills itself right after claiming a job
(WORKER_FAULT_INJECTION=crash@<file name part>). `hold@<file name part>` parks a job at its first
stage until the worker is told to stop it, so a test can act while it is `processing` without
racing the pipeline. Both are hooks that tests/faults.py installs in the worker it starts.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.jobs import Job, JobOptions, JobStatus
from shared.queue import JobMessage
from shared.resources import result_key
from tests.fixtures_aws import AwsEnv, Receiver, WorkerProcess, wait_for
from tests.fixtures_corpus import trimmed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def one_turn(corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One speaker, one sentence (about 4 s): the cheapest real speech."""
    item = corpus["two_speakers"]
    return trimmed(item.path, item.turns[0].end + 0.3, tmp_path_factory.mktemp("clips") / "one_turn.wav")


@pytest.fixture(scope="module")
def two_turns(corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two voices, one sentence each (about 10 s)."""
    item = corpus["two_speakers"]
    return trimmed(item.path, item.turns[1].end + 0.3, tmp_path_factory.mktemp("clips") / "two_turns.wav")


def submit(api: TestClient, audio: Path, name: str, **form: str) -> str:
    answer = api.post("/jobs", files={"file": (name, audio.read_bytes(), "audio/wav")}, data=form)
    assert answer.status_code == 201, answer.text
    return answer.json()["job_id"]


def wait_status(aws: AwsEnv, job_id: str, *statuses: JobStatus, **kw: float) -> Job:
    return wait_for(
        lambda: (job := aws.job(job_id)).status in statuses and job, f"job {job_id} to be {statuses}", **kw
    )


def wait_processing_stage(aws: AwsEnv, job_id: str) -> Job:
    return wait_for(
        lambda: (job := aws.job(job_id)).progress is not None and job, f"job {job_id} to report a stage"
    )


def wait_registered(aws: AwsEnv, count: int) -> None:
    wait_for(lambda: len(aws.store.run(aws.store.ops.live_workers())) == count, f"{count} registered workers")


def result_of(aws: AwsEnv, job_id: str) -> dict:
    body = aws.client("s3").get_object(Bucket=aws.settings.bucket_name, Key=result_key(job_id))["Body"].read()
    return json.loads(body)


def queue_drained(aws: AwsEnv) -> bool:
    return aws.messages_in(aws.resources.queue_url) == 0


Spawn = Callable[..., WorkerProcess]


def test_two_workers_run_ten_jobs_exactly_once(
    api: TestClient, aws: AwsEnv, spawn_worker: Spawn, one_turn: Path
):
    workers = [spawn_worker(), spawn_worker()]
    wait_registered(aws, 2)
    # Exactly-once is about the queue: diarize=false, so ten jobs cost ten transcriptions only.
    job_ids = [submit(api, one_turn, f"clip-{n}.wav", diarize="false") for n in range(10)]

    jobs = [wait_status(aws, job_id, JobStatus.COMPLETED, JobStatus.FAILED) for job_id in job_ids]
    assert [job.status for job in jobs] == [JobStatus.COMPLETED] * 10, [job.error for job in jobs]
    assert [job.attempts for job in jobs] == [1] * 10  # one claim, so one pipeline run, per job
    for job in jobs:
        result = result_of(aws, job.job_id)
        assert result["metadata"]["request_id"] == job.job_id
        words = result["results"]["channels"][0]["alternatives"][0]["words"]
        assert words and not any("speaker" in word for word in words)  # diarize=false was honoured
    assert {job.owner.split("/")[0] for job in jobs} == {w.worker_id for w in workers}
    wait_for(lambda: queue_drained(aws), "every message to be deleted")

    # A redelivered message of a finished job is acknowledged without running anything.
    message = JobMessage(
        job_id=jobs[0].job_id,
        bucket=aws.settings.bucket_name,
        upload_key=jobs[0].upload_key,
        created_at=jobs[0].created_at,
    )
    aws.client("sqs").send_message(QueueUrl=aws.resources.queue_url, MessageBody=message.to_body())
    wait_for(lambda: queue_drained(aws), "the duplicate to be acknowledged")
    assert aws.job(jobs[0].job_id).attempts == 1 and aws.messages_in(aws.resources.dlq_url) == 0


@pytest.mark.parametrize("aws_overrides", [{"VISIBILITY_TIMEOUT_SECONDS": "3"}])
def test_a_worker_killed_mid_job_loses_nothing(
    api: TestClient, aws: AwsEnv, spawn_worker: Spawn, two_turns: Path
):
    doomed = spawn_worker(WORKER_FAULT_INJECTION="hold@held")
    job_id = submit(api, two_turns, "held-call.wav")
    held = wait_processing_stage(aws, job_id)
    assert held.owner.startswith(doomed.worker_id) and held.attempts == 1
    doomed.kill()  # kill -9 while processing

    rescuer = spawn_worker()
    job = wait_status(aws, job_id, JobStatus.COMPLETED, JobStatus.FAILED)
    assert job.status is JobStatus.COMPLETED, job.error
    assert job.attempts == 2 and job.owner.startswith(rescuer.worker_id)
    assert result_of(aws, job_id)["metadata"]["request_id"] == job_id
    wait_for(lambda: queue_drained(aws), "the message to be deleted")


CALLBACK_SETTINGS = {
    "URL_FETCH_ALLOW_PRIVATE": "true",  # the receiver is on loopback
    "CALLBACK_RETRY_SECONDS": "2",
    "CALLBACK_TIMEOUT_SECONDS": "2",
    "CALLBACK_POLL_SECONDS": "0.2",
    "CALLBACK_MAX_ATTEMPTS": "100",
}


@pytest.mark.parametrize("aws_overrides", [CALLBACK_SETTINGS])
def test_a_callback_pending_when_its_worker_is_killed_is_delivered_by_the_next_worker(
    api: TestClient, aws: AwsEnv, spawn_worker: Spawn, one_turn: Path, receiver: Receiver
):
    receiver.default = 503  # the receiver is down at first
    doomed = spawn_worker()
    answer = api.post(
        "/v1/listen",
        content=one_turn.read_bytes(),
        headers={"Content-Type": "audio/wav"},
        params={"callback": f"{receiver.url}/hook"},
    )
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["request_id"]
    wait_for(
        lambda: (job := aws.job(job_id)).callback_status == "retrying" and job.status is JobStatus.COMPLETED,
        f"a first failed callback attempt\n{doomed.log()}",
    )
    doomed.kill()  # kill -9: the job is done, its message deleted, its callback still to deliver
    assert queue_drained(aws) and aws.store.run(aws.store.outbox.get(job_id)) is not None
    receiver.default = 200  # the receiver is back

    rescuer = spawn_worker()
    job = wait_for(
        lambda: (job := aws.job(job_id)).callback_status == "delivered" and job,
        f"the callback to be delivered by the next worker\n{rescuer.log()}",
    )
    delivered = [c for c in receiver.posts("/hook") if c.answered == 200]
    assert len(delivered) == 1 and json.loads(delivered[0].body)["metadata"]["request_id"] == job_id
    assert [a.status_code for a in job.callback_attempts][-1] == 200
    assert set(a.status_code for a in job.callback_attempts[:-1]) == {503}
    # The deliverer records the attempt on the job first and then deletes the entry (a crash between
    # them repeats the delivery: at least once), so the entry goes a moment after the job says so.
    wait_for(lambda: aws.store.run(aws.store.outbox.get(job_id)) is None, "the delivered entry to be removed")


@pytest.mark.parametrize("aws_overrides", [{"VISIBILITY_TIMEOUT_SECONDS": "2"}])
def test_a_poison_message_fails_its_job_after_three_tries_and_ends_in_the_dlq(
    api: TestClient, aws: AwsEnv, spawn_worker: Spawn, one_turn: Path
):
    job_id = submit(api, one_turn, "poison.wav")
    for attempt in range(1, aws.settings.max_receive_count + 1):
        crashing = spawn_worker("--no-preload", WORKER_FAULT_INJECTION="crash@poison")
        assert crashing.process.wait(timeout=120) == -signal.SIGKILL, crashing.log()
        job = aws.job(job_id)
        assert (job.status, job.attempts) == (JobStatus.PROCESSING, attempt)

    spawn_worker("--no-preload")  # a healthy worker: SQS hands it no more tries, its DLQ sweep fails the job
    job = wait_status(aws, job_id, JobStatus.FAILED)
    assert job.error == (
        "worker crashed 3 times while processing this job; giving up "
        f"(its message is in the dead-letter queue {aws.settings.dlq_name})"
    )
    assert job.attempts == 3
    assert aws.messages_in(aws.resources.dlq_url) == 1 and queue_drained(aws)
    assert api.get(f"/jobs/{job_id}").json() == {"job_id": job_id, "status": "failed", "error": job.error}


def test_cancel_a_queued_and_a_processing_job(
    api: TestClient, aws: AwsEnv, spawn_worker: Spawn, one_turn: Path
):
    spawn_worker(WORKER_FAULT_INJECTION="hold@held")
    running = submit(api, one_turn, "held.wav")
    wait_processing_stage(aws, running)
    waiting = submit(api, one_turn, "waiting.wav")
    assert api.get(f"/jobs/{waiting}").json() == {"job_id": waiting, "status": "queued", "position": 0}

    assert api.delete(f"/jobs/{waiting}").json() == {"message": "Job deleted"}
    assert api.delete(f"/jobs/{running}").json() == {"message": "Job deleted"}
    assert wait_status(aws, running, JobStatus.CANCELLED).status is JobStatus.CANCELLED
    wait_for(lambda: queue_drained(aws), "both messages to be acknowledged")
    skipped = aws.job(waiting)
    assert skipped.status is JobStatus.CANCELLED and skipped.attempts == 0  # never ran
    assert aws.object_keys("results/") == []


def enqueue_directly(aws: AwsEnv, job_id: str, options: JobOptions, audio: bytes | None) -> Job:
    """A job the API did not check (as if the fleet changed after it did), optionally without audio."""
    key = f"uploads/{job_id}/x.wav"
    job = aws.store.create(
        aws.store.ops.queued_job(
            job_id, options, upload_key=key, filename="x.wav", size_bytes=1, content_type=None
        )
    )
    if audio is not None:
        aws.client("s3").put_object(Bucket=aws.settings.bucket_name, Key=key, Body=audio)
    message = JobMessage(
        job_id=job_id, bucket=aws.settings.bucket_name, upload_key=key, created_at=job.created_at
    )
    aws.client("sqs").send_message(QueueUrl=aws.resources.queue_url, MessageBody=message.to_body())
    return job


def test_permanent_failures_fail_the_job_with_a_message(
    api: TestClient, aws: AwsEnv, spawn_worker: Spawn, one_turn: Path
):
    # Binary junk passes the API's sniffing (it might be media); the worker's decoder decides.
    junk = api.post("/jobs", files={"file": ("noise.bin", bytes(range(256)) * 64)}).json()["job_id"]
    small = enqueue_directly(aws, "job-small", JobOptions(whisper_model="small"), one_turn.read_bytes())
    gone = enqueue_directly(aws, "job-gone", JobOptions(whisper_model="tiny.en"), None)

    spawn_worker()
    failed = {
        job_id: wait_status(aws, job_id, JobStatus.FAILED) for job_id in (junk, small.job_id, gone.job_id)
    }
    assert failed[junk].error == "'noise.bin' is not an audio or video file ffmpeg recognises"
    assert failed[small.job_id].error.startswith("model 'small' is not available on this deployment;")
    assert "MODEL_DIR" not in failed[small.job_id].error  # where it looked is in the log only
    assert (
        failed["job-gone"].error
        == "the uploaded audio (uploads/job-gone/x.wav) is gone; submit the file again"
    )
    assert [job.attempts for job in failed.values()] == [1, 1, 1]  # permanent: never retried
    wait_for(lambda: queue_drained(aws), "every message to be deleted")
    assert aws.messages_in(aws.resources.dlq_url) == 0


@pytest.fixture
def ecs_agent() -> Iterator[tuple[str, list[tuple[str, dict]]]]:
    """A stand-in for the ECS agent's task-protection endpoint (a neighbour, not under test):
    records each request the worker makes."""
    calls: list[tuple[str, dict]] = []

    class Agent(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            calls.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()


def test_sigterm_finishes_the_current_job_and_a_second_gives_it_back(
    api: TestClient, aws: AwsEnv, spawn_worker: Spawn, one_turn: Path, ecs_agent, tmp_path: Path
):
    agent_uri, agent_calls = ecs_agent
    heartbeat = tmp_path / "worker-heartbeat"
    worker = spawn_worker(ECS_AGENT_URI=agent_uri, WORKER_HEARTBEAT_FILE=str(heartbeat))
    job_id = submit(api, one_turn, "call.wav")
    wait_status(aws, job_id, JobStatus.PROCESSING, JobStatus.COMPLETED)
    assert heartbeat.exists()  # the container health check's file
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=120) == 0, worker.log()
    assert aws.job(job_id).status is JobStatus.COMPLETED
    assert aws.store.run(aws.store.ops.live_workers()) == []  # deregistered on the way out
    # Protected from ECS scale-in exactly while it held the job.
    assert agent_calls == [
        ("/task-protection/v1/state", {"ProtectionEnabled": True, "ExpiresInMinutes": 2880}),
        ("/task-protection/v1/state", {"ProtectionEnabled": False}),
    ]

    held = spawn_worker(WORKER_FAULT_INJECTION="hold@held")
    job_id = submit(api, one_turn, "held.wav")
    wait_processing_stage(aws, job_id)
    held.process.send_signal(signal.SIGTERM)  # would wait for the job to finish...
    wait_for(lambda: "worker_stopping" in held.log(), "the worker to take the first signal")
    held.process.send_signal(signal.SIGTERM)  # ...so hand it back instead
    assert held.process.wait(timeout=120) == 0, held.log()
    job = aws.job(job_id)
    assert (job.status, job.owner, job.progress, job.attempts) == (JobStatus.QUEUED, None, None, 1)
    assert aws.messages_in(aws.resources.queue_url) == 1  # still there for the next worker
