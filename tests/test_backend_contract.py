"""One contract for both backends: the AWS adapters against a real emulator (moto's server) and the
embedded ones against SQLite in a temporary directory. Every test runs on each; both must agree.

Job store: every transition is conditional, leases lapse, expiry hides rows. Queue: at-least-once
delivery with visibility timeouts, receive counts and a dead-letter queue. Blob store: round trips
and the missing-object error. API keys: stored as hashes, revocable. Callback outbox: written
with the job's finish or not at all, one lease-holder per entry, lapsed leases taken over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.callback_outbox import outbox_key
from shared.errors import JobNotFound
from shared.fleet import WorkerRecord, worker_key
from shared.jobs import CallbackTarget, Job, JobOptions, JobStatus, new_job_id, utc_now_iso
from shared.ports import Queue
from shared.settings import Settings
from shared.stages import Stage
from shared.storage import UploadMissing

BACKENDS = ["aws", "local"]


class Clock:
    """A clock the test moves by hand (leases and expiry are judged by the store's clock)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class Parts:
    kind: str
    settings: Settings
    store: Any
    queue: Queue
    dead_letters: Queue
    blobs: Any


def _local_settings(tmp_path: Path) -> Settings:
    return Settings(backend="local", data_dir=tmp_path / "data", visibility_timeout_seconds=30)


@pytest.fixture(params=BACKENDS)
def parts(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Parts]:
    if request.param == "aws":
        from shared.aws_adapters import S3Blobs
        from shared.job_store import JobStore
        from shared.sqs import SqsQueue

        aws = request.getfixturevalue("aws")
        settings, sqs = aws.settings, aws.client("sqs")
        yield Parts(
            "aws",
            settings,
            JobStore(aws.client("dynamodb"), settings, clock=clock),
            SqsQueue(sqs, settings.queue_name),
            SqsQueue(sqs, settings.dlq_name),
            S3Blobs(aws.client("s3"), settings.bucket_name),
        )
    else:
        from shared.embedded.backend import local_parts
        from shared.embedded.job_store import SqliteJobStore

        settings = _local_settings(tmp_path)
        local = local_parts(settings)
        store = SqliteJobStore(local.db, settings, clock=clock)
        yield Parts("local", settings, store, local.queue, local.dead_letters, local.blobs)


@pytest.fixture
def store(parts: Parts) -> Any:
    return parts.store


def queued(store: Any, project_id: str | None = None) -> Job:
    job_id = new_job_id()
    job = store.ops.queued_job(
        job_id,
        JobOptions(whisper_model="tiny.en"),
        upload_key=f"uploads/{job_id}/a.wav",
        filename="a.wav",
        size_bytes=10,
        content_type="audio/wav",
    )
    return store.create(job.model_copy(update={"project_id": project_id}))


def test_create_and_get_round_trip(store: Any) -> None:
    job = queued(store)
    assert store.get(job.job_id) == job


@pytest.mark.parametrize("job_id", ["no-such-job", "worker#w1"])
def test_unknown_ids_are_not_found(store: Any, job_id: str) -> None:
    with pytest.raises(JobNotFound, match=f"Job {job_id} not found"):
        store.get(job_id)


@pytest.fixture
def race_store(
    request: pytest.FixtureRequest,
    parts: Parts,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> Any:
    """The store of `parts`; on AWS, one on the one-request-at-a-time moto server (see
    tests/fixtures_aws.py: threaded moto does not serialise conditional writes as DynamoDB does)."""
    if parts.kind != "aws":
        return parts.store
    import boto3

    from onebox.aws_bootstrap import ensure_resources
    from shared.job_store import JobStore
    from shared.settings import get_settings
    from tests.fixtures_aws import _test_environment

    endpoint = request.getfixturevalue("serial_moto_endpoint")
    for name, value in _test_environment(endpoint, tmp_path).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = Settings()
    session = boto3.Session(region_name=settings.aws_region)
    ensure_resources(settings, session)
    return JobStore(session.client("dynamodb"), settings, clock=clock)


def test_only_one_of_two_workers_claims_a_job(race_store: Any) -> None:
    store = race_store
    job = queued(store)
    results = []
    barrier = threading.Barrier(2)

    def claim(owner: str) -> None:
        barrier.wait()
        results.append((owner, store.run(store.ops.claim(job.job_id, owner))))

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [owner for owner, claim in results if claim.won]
    assert len(winners) == 1
    current = store.get(job.job_id)
    assert current.status is JobStatus.PROCESSING and current.owner == winners[0] and current.attempts == 1
    loser = next(claim for owner, claim in results if not claim.won)
    assert loser.job is not None and loser.job.owner == winners[0]


def test_a_lapsed_lease_can_be_claimed_and_the_old_owner_loses_every_write(store: Any, clock: Clock) -> None:
    job = queued(store)
    assert store.run(store.ops.claim(job.job_id, "w1")).won
    assert not store.run(store.ops.claim(job.job_id, "w2")).won  # lease still live

    clock.now += store.ops.lease_seconds + 1  # w1 crashed: nobody renewed the lease
    claim = store.run(store.ops.claim(job.job_id, "w2"))
    assert claim.won and claim.job is not None and claim.job.attempts == 2 and claim.job.owner == "w2"

    assert store.run(store.ops.renew_lease(job.job_id, "w1")) is None
    assert store.run(store.ops.set_progress(job.job_id, "w1", Stage.DIARIZING)) is None
    assert not store.run(store.ops.complete(job.job_id, "w1"))
    assert (
        store.run(store.ops.set_progress(job.job_id, "w2", Stage.TRANSCRIBING)).progress is Stage.TRANSCRIBING
    )
    assert store.run(store.ops.complete(job.job_id, "w2"))


def test_a_completed_job_never_changes_again(store: Any, clock: Clock) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    assert store.run(store.ops.complete(job.job_id, "w1"))
    done = store.get(job.job_id)
    assert done.status is JobStatus.COMPLETED and done.owner == "w1" and done.lease_expires_at is None

    clock.now += 10 * store.ops.lease_seconds
    ops = store.ops
    assert not store.run(ops.claim(job.job_id, "w2")).won
    assert store.run(ops.cancel_queued(job.job_id)) is None
    assert store.run(ops.request_cancel(job.job_id)) is None
    assert not store.run(ops.fail_abandoned(job.job_id, "crashed"))
    assert not store.run(ops.fail_owned(job.job_id, "w1", "late failure"))
    assert not store.run(ops.release(job.job_id, "w1"))
    assert not store.run(ops.forget_unsent(job.job_id))
    assert store.get(job.job_id).model_dump(exclude={"expires_at"}) == done.model_dump(exclude={"expires_at"})


def test_cancel_queued_then_a_claim_fails(store: Any) -> None:
    job = queued(store)
    cancelled = store.run(store.ops.cancel_queued(job.job_id))
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    claim = store.run(store.ops.claim(job.job_id, "w1"))
    assert not claim.won and claim.job is not None and claim.job.status is JobStatus.CANCELLED


def test_cancel_of_a_processing_job_is_a_request_its_owner_sees(store: Any) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    assert store.run(store.ops.cancel_queued(job.job_id)) is None  # not queued any more
    assert store.run(store.ops.request_cancel(job.job_id)).cancel_requested
    renewed = store.run(store.ops.renew_lease(job.job_id, "w1"))
    assert renewed is not None and renewed.cancel_requested
    assert store.run(store.ops.cancel_owned(job.job_id, "w1"))
    assert store.get(job.job_id).status is JobStatus.CANCELLED


def test_release_puts_a_job_back_in_the_queue(store: Any) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    assert store.run(store.ops.release(job.job_id, "w1", last_error="throttled"))
    again = store.get(job.job_id)
    assert again.status is JobStatus.QUEUED and again.owner is None and again.last_error == "throttled"
    assert store.run(store.ops.claim(job.job_id, "w2")).job.attempts == 2


def test_abandoned_jobs_fail_but_not_while_a_worker_holds_them(store: Any, clock: Clock) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    assert not store.run(store.ops.fail_abandoned(job.job_id, "worker crashed 3 times"))
    clock.now += store.ops.lease_seconds + 1
    assert store.run(store.ops.fail_abandoned(job.job_id, "worker crashed 3 times"))
    failed = store.get(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error == "worker crashed 3 times"


def test_a_job_past_its_expiry_reads_as_gone(store: Any, clock: Clock) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    store.run(store.ops.complete(job.job_id, "w1"))
    expires_at = store.get(job.job_id).expires_at
    assert expires_at == pytest.approx(clock.now + store.ops.expiry_seconds, abs=1)
    clock.now = expires_at + 1
    with pytest.raises(JobNotFound):
        store.get(job.job_id)
    assert not store.run(store.ops.claim(job.job_id, "w2")).won


def test_positions_and_counts_come_from_the_status_index(store: Any, clock: Clock) -> None:
    jobs = [queued(store) for _ in range(4)]
    ops = store.ops
    assert [store.run(ops.count(JobStatus.QUEUED, created_before=j.created_at)) for j in jobs] == [0, 1, 2, 3]
    store.run(ops.claim(jobs[0].job_id, "w1"))
    store.run(ops.cancel_queued(jobs[2].job_id))
    assert store.run(ops.count(JobStatus.QUEUED, created_before=jobs[3].created_at)) == 1
    assert (store.run(ops.count(JobStatus.QUEUED)), store.run(ops.count(JobStatus.PROCESSING))) == (2, 1)
    clock.now += ops.active_expiry_seconds + 1  # expired jobs no longer count
    assert store.run(ops.count(JobStatus.QUEUED)) == 0


def test_positions_count_only_one_projects_jobs_when_asked(store: Any) -> None:
    mine, theirs, last = queued(store, "a"), queued(store, "b"), queued(store, "a")
    ops = store.ops
    assert store.run(ops.count(JobStatus.QUEUED, created_before=last.created_at, project_id="a")) == 1
    assert store.run(ops.count(JobStatus.QUEUED, created_before=last.created_at)) == 2
    assert store.run(ops.count(JobStatus.QUEUED, project_id="b")) == 1
    assert (mine.project_id, theirs.project_id) == ("a", "b")


def test_delete_removes_only_finished_jobs(store: Any) -> None:
    job = queued(store)
    assert not store.run(store.ops.delete_finished(job.job_id))
    store.run(store.ops.cancel_queued(job.job_id))
    assert store.run(store.ops.delete_finished(job.job_id))
    with pytest.raises(JobNotFound):
        store.get(job.job_id)


def test_worker_registry_lists_live_workers_apart_from_jobs(store: Any, clock: Clock) -> None:
    def record(worker_id: str, ttl: float, models: tuple[str, ...]) -> WorkerRecord:
        now = utc_now_iso()
        return WorkerRecord(
            worker_id=worker_id,
            hostname="host",
            models=models,
            separation=False,
            model_search=("MODEL_DIR (not set)",),
            started_at=now,
            heartbeat_at=now,
            expires_at=int(clock.now + ttl),
        )

    queued(store)
    store.run(store.ops.register_worker(record("a", 60, ("tiny.en",))))
    store.run(store.ops.register_worker(record("b", -1, ("base",))))  # missed its heartbeats
    assert [w.worker_id for w in store.run(store.ops.live_workers())] == ["a"]
    assert store.run(store.ops.count(JobStatus.QUEUED)) == 1
    with pytest.raises(JobNotFound):
        store.get(worker_key("a"))
    store.run(store.ops.deregister_worker("a"))
    assert store.run(store.ops.live_workers()) == []


# --- the queue ----------------------------------------------------------------------------------------
def receive_one(queue: Queue, *, visibility: int = 30, wait: float = 1) -> Any:
    messages = queue.receive(max_messages=1, wait_seconds=wait, visibility_seconds=visibility)
    return messages[0] if messages else None


def test_a_message_is_hidden_while_received_and_gone_once_acknowledged(parts: Parts) -> None:
    parts.queue.send('{"n": 1}')
    first = receive_one(parts.queue)
    assert first.body == '{"n": 1}' and first.receive_count == 1
    assert receive_one(parts.queue, wait=0) is None  # in flight: nobody else gets it
    parts.queue.ack(first.receipt)
    assert receive_one(parts.queue, wait=1) is None


def test_an_undeleted_message_comes_back_after_its_visibility_timeout(parts: Parts) -> None:
    parts.queue.send("again")
    first = receive_one(parts.queue, visibility=1)
    second = wait_for_message(parts.queue)
    assert second.body == "again" and second.receive_count == 2 and second.receipt != first.receipt


def wait_for_message(queue: Queue, *, visibility: int = 30) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (message := receive_one(queue, visibility=visibility, wait=1)) is not None:
            return message
    raise AssertionError("no message came back")


def test_visibility_can_be_extended_and_ended(parts: Parts) -> None:
    parts.queue.send("held")
    held = receive_one(parts.queue, visibility=1)
    parts.queue.extend(held.receipt, 30)  # what the worker's heartbeat does
    time.sleep(1.5)
    assert receive_one(parts.queue, wait=0) is None
    parts.queue.release(held.receipt)  # give it back at once
    assert wait_for_message(parts.queue).receive_count == 2


def test_a_release_with_a_delay_hides_the_message_until_then(parts: Parts) -> None:
    parts.queue.send("later")
    first = receive_one(parts.queue)
    parts.queue.release(first.receipt, delay=300)  # what a retry's back-off does
    assert receive_one(parts.queue, wait=0) is None
    parts.queue.release(first.receipt)
    assert wait_for_message(parts.queue).receive_count == 2


def test_depth_counts_visible_and_in_flight_messages(parts: Parts) -> None:
    assert parts.queue.depth() == 0
    parts.queue.send("one")
    parts.queue.send("two")
    taken = receive_one(parts.queue)
    assert parts.queue.depth() == 2
    parts.queue.ack(taken.receipt)
    assert parts.queue.depth() == 1


def test_the_async_queue_keeps_the_same_contract(parts: Parts) -> None:
    """The API's side (aiobotocore, or SQLite in a thread), opened as the app opens it."""
    import asyncio

    from aiobotocore.session import get_session

    from api_lambda.aws import open_clients

    async def run() -> None:
        async with open_clients(get_session(), parts.settings) as backend:
            queue = backend.queue
            await queue.send("async")
            (first,) = await queue.receive(max_messages=1, wait_seconds=1, visibility_seconds=30)
            assert first.body == "async" and first.receive_count == 1
            await queue.extend(first.receipt, 300)
            assert await queue.receive(max_messages=1, wait_seconds=0) == []
            assert await queue.depth() == 1
            await queue.release(first.receipt)
            (again,) = await queue.receive(max_messages=1, wait_seconds=1)
            assert again.receive_count == 2
            await queue.ack(again.receipt)
            assert await queue.depth() == 0

    loop = asyncio.new_event_loop()  # not asyncio.run: it would unset the loop Mangum's tests rely on
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


def test_past_max_receive_count_a_message_moves_to_the_dead_letter_queue(parts: Parts) -> None:
    parts.queue.send("poison")
    for count in range(1, parts.settings.max_receive_count + 1):
        message = wait_for_message(parts.queue, visibility=1)
        assert message.receive_count == count
        parts.queue.release(message.receipt)
    assert receive_one(parts.queue, wait=1) is None
    dead = wait_for_message(parts.dead_letters)
    assert dead.body == "poison"


def test_each_message_is_delivered_to_one_of_many_concurrent_receivers(parts: Parts) -> None:
    bodies = {f"m{i}" for i in range(8)}
    for body in bodies:
        parts.queue.send(body)
    got: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        while (message := receive_one(parts.queue, wait=1)) is not None:
            with lock:
                got.append(message.body)
            parts.queue.ack(message.receipt)

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == sorted(bodies)


# --- the blob store -------------------------------------------------------------------------------------
def test_blobs_round_trip_and_a_missing_one_is_upload_missing(parts: Parts, tmp_path: Path) -> None:
    parts.blobs.put("results/abc.json", b'{"ok": true}', content_type="application/json")
    copy = parts.blobs.download("results/abc.json", tmp_path / "out" / "abc.json")
    assert copy.read_bytes() == b'{"ok": true}'
    parts.blobs.put("results/abc.json", b'{"ok": false}')  # overwritten whole
    assert parts.blobs.download("results/abc.json", tmp_path / "again.json").read_bytes() == b'{"ok": false}'
    with pytest.raises(UploadMissing, match="is gone"):
        parts.blobs.download("uploads/nope/a.wav", tmp_path / "a.wav")


# --- API keys -------------------------------------------------------------------------------------------
def test_api_keys_are_found_by_secret_listed_and_revoked(store: Any) -> None:
    keys = store.keys
    secret, op = keys.create("alpha", "for tests")
    record = store.run(op)
    assert store.run(keys.lookup(secret)) == record and record.active
    assert store.run(keys.lookup(secret + "x")) is None
    listed = store.run(keys.list_keys())
    assert [k for _, k in listed] == [record]
    assert store.run(keys.revoke(listed[0][0]))
    assert not store.run(keys.lookup(secret)).active
    assert not store.run(keys.revoke("apikey#nope"))
    with pytest.raises(JobNotFound):  # key rows are not jobs
        store.get(listed[0][0])
    assert store.run(store.ops.count(JobStatus.QUEUED)) == 0


def test_a_new_job_field_round_trips_without_store_changes(store: Any) -> None:
    """Both stores keep the whole row: fields added to `Job` later need nothing here."""
    job = queued(store)
    with_callback = job.model_copy(update={"result_copy_key": "results/team/call.json", "project_id": "p"})
    store.run(store.ops.forget_unsent(job.job_id))
    store.create(with_callback)
    assert store.get(job.job_id) == with_callback


def test_speaker_names_are_set_on_completed_jobs_only(store: Any) -> None:
    job = queued(store)
    assert store.run(store.ops.set_speaker_names(job.job_id, {0: "Ann"})) is None  # not completed
    store.run(store.ops.claim(job.job_id, "w1"))
    store.run(store.ops.complete(job.job_id, "w1"))
    named = store.run(store.ops.set_speaker_names(job.job_id, {1: "Bo", 0: "Ann"}))
    assert named is not None and named.speaker_names == {"0": "Ann", "1": "Bo"}
    cleared = store.run(store.ops.set_speaker_names(job.job_id, {}))
    assert cleared is not None and not cleared.speaker_names


def test_generic_rows_put_conditionally_read_and_delete(store: Any) -> None:
    row = {
        "job_id": "listen#abc",
        "status": "listen_fingerprint",
        "created_at": utc_now_iso(),
        "target_job_id": "j1",
    }
    ops = store.ops
    assert store.run(ops.put_row(row, if_absent=True))
    assert not store.run(ops.put_row(row | {"target_job_id": "j2"}, if_absent=True))
    assert not store.run(ops.put_row(row | {"target_job_id": "j3"}, if_equals=("target_job_id", "j2")))
    assert store.run(ops.put_row(row | {"target_job_id": "j2"}, if_equals=("target_job_id", "j1")))
    assert store.run(ops.get_row("listen#abc"))["target_job_id"] == "j2"
    assert not store.run(ops.delete_row("listen#abc", if_equals=("target_job_id", "j1")))
    assert store.run(ops.delete_row("listen#abc", if_equals=("target_job_id", "j2")))
    assert store.run(ops.get_row("listen#abc")) is None
    with pytest.raises(JobNotFound):
        store.get("listen#abc")


# --- the callback outbox --------------------------------------------------------------------------------
def finished_with_callback(store: Any, project_id: str | None = None, body: bytes = b'{"ok": 1}') -> Job:
    """A job completed by w1, its callback entry written in the same transaction."""
    job = queued(store, project_id)
    store.run(store.ops.claim(job.job_id, "w1"))
    entry = store.outbox.new_entry(
        job.job_id, CallbackTarget(url="https://example.com/hook"), project_id=project_id, body=body
    )
    assert store.run(store.ops.complete(job.job_id, "w1", callback=entry))
    return store.get(job.job_id)


def test_a_finish_with_a_callback_writes_its_outbox_entry_with_it(store: Any, clock: Clock) -> None:
    job = finished_with_callback(store, "p1")
    assert job.status is JobStatus.COMPLETED
    entry = store.run(store.outbox.get(job.job_id))
    assert entry is not None and entry.body == '{"ok": 1}' and entry.project_id == "p1"
    assert (entry.attempts, entry.failed, entry.lease_owner, entry.tenant) == (0, False, None, "p1")
    assert [e.job_id for e in store.run(store.outbox.due())] == [job.job_id]
    with pytest.raises(JobNotFound):  # outbox rows are not jobs
        store.get(outbox_key(job.job_id))
    assert store.run(store.ops.count(JobStatus.QUEUED)) == 0


def test_a_finish_that_loses_its_condition_writes_no_outbox_entry(store: Any, clock: Clock) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    ops, outbox = store.ops, store.outbox
    entry = outbox.new_entry(job.job_id, CallbackTarget(url="https://example.com/h"), project_id=None)
    assert not store.run(ops.complete(job.job_id, "w2", callback=entry))  # not the owner
    assert not store.run(ops.fail_abandoned(job.job_id, "crashed", callback=entry))  # w1's lease is live
    assert store.run(outbox.get(job.job_id)) is None and store.run(outbox.due()) == []
    assert store.run(ops.fail_owned(job.job_id, "w1", "not audio", callback=entry))
    assert store.get(job.job_id).status is JobStatus.FAILED and store.run(outbox.get(job.job_id))


def test_abandoned_jobs_failed_with_a_callback_get_their_entry(store: Any, clock: Clock) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    clock.now += store.ops.lease_seconds + 1
    entry = store.outbox.new_entry(job.job_id, CallbackTarget(url="https://example.com/h"), project_id=None)
    assert store.run(store.ops.fail_abandoned(job.job_id, "worker crashed", callback=entry))
    assert store.run(store.outbox.get(job.job_id)) is not None


def test_an_outbox_entry_is_held_by_one_worker_and_a_lapsed_lease_is_taken_over(
    store: Any, clock: Clock
) -> None:
    job_id, outbox = finished_with_callback(store).job_id, store.outbox
    held = store.run(outbox.claim(job_id, "w1"))
    assert held is not None and held.lease_owner == "w1"
    assert store.run(outbox.claim(job_id, "w2")) is None  # held: nobody else makes an attempt
    assert store.run(outbox.due()) == []

    clock.now += outbox.lease_seconds + 1  # w1 died mid-attempt
    assert [e.job_id for e in store.run(outbox.due())] == [job_id]
    taken = store.run(outbox.claim(job_id, "w2"))
    assert taken is not None and taken.lease_owner == "w2"
    assert not store.run(outbox.retry_at(job_id, "w1", attempts=1, next_attempt_at=clock.now))
    assert not store.run(outbox.done(job_id, "w1"))

    assert store.run(outbox.retry_at(job_id, "w2", attempts=1, next_attempt_at=clock.now + 30))
    again = store.run(outbox.get(job_id))
    assert (again.attempts, again.lease_owner, again.next_attempt_at) == (1, None, clock.now + 30)
    assert store.run(outbox.due()) == [] and store.run(outbox.claim(job_id, "w3")) is None  # not yet due
    clock.now += 31
    assert store.run(outbox.claim(job_id, "w3")) is not None
    assert store.run(outbox.done(job_id, "w3"))
    assert store.run(outbox.get(job_id)) is None and store.run(outbox.due()) == []


def test_a_failed_outbox_entry_keeps_its_reason_and_is_never_due_again(store: Any, clock: Clock) -> None:
    job_id, outbox = finished_with_callback(store).job_id, store.outbox
    store.run(outbox.claim(job_id, "w1"))
    assert store.run(outbox.fail(job_id, "w1", attempts=1, reason="the address is not public"))
    failed = store.run(outbox.get(job_id))
    assert failed.failed and failed.reason == "the address is not public" and failed.attempts == 1
    clock.now += 10 * outbox.lease_seconds
    assert store.run(outbox.due()) == [] and store.run(outbox.claim(job_id, "w2")) is None
    assert not store.run(outbox.retry_at(job_id, "w1", attempts=2, next_attempt_at=clock.now))


def test_due_entries_come_soonest_first_and_expire_with_their_jobs(store: Any, clock: Clock) -> None:
    first, second = (finished_with_callback(store, p).job_id for p in ("a", "b"))
    outbox = store.outbox
    store.run(outbox.claim(first, "w1"))
    store.run(outbox.retry_at(first, "w1", attempts=1, next_attempt_at=clock.now + 5))
    clock.now += 6
    assert [e.job_id for e in store.run(outbox.due())] == [second, first]
    clock.now += store.ops.expiry_seconds + 1
    assert store.run(outbox.due()) == [] and store.run(outbox.claim(second, "w1")) is None


def test_only_one_of_two_workers_claims_an_outbox_entry(race_store: Any) -> None:
    store = race_store
    job_id = finished_with_callback(store).job_id
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def claim(owner: str) -> None:
        barrier.wait()
        results.append(store.run(store.outbox.claim(job_id, owner)))

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [entry for entry in results if entry is not None]
    assert len(winners) == 1 and store.run(store.outbox.get(job_id)).lease_owner == winners[0].lease_owner
