"""The job store against a real DynamoDB emulator: every transition is conditional."""

from __future__ import annotations

import threading
import time

import pytest

from shared.errors import JobNotFound
from shared.fleet import WorkerRecord, worker_key
from shared.job_store import JobStore
from shared.jobs import Job, JobOptions, JobStatus, new_job_id, utc_now_iso
from shared.stages import Stage
from tests.fixtures_aws import AwsEnv


class Clock:
    """A clock the test moves by hand (leases and expiry are judged by the store's clock)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(aws: AwsEnv, clock: Clock) -> JobStore:
    return JobStore(aws.client("dynamodb"), aws.settings, clock=clock)


def queued(store: JobStore) -> Job:
    job_id = new_job_id()
    job = store.ops.queued_job(
        job_id,
        JobOptions(whisper_model="tiny.en"),
        upload_key=f"uploads/{job_id}/a.wav",
        filename="a.wav",
        size_bytes=10,
        content_type="audio/wav",
    )
    return store.create(job)


def test_create_and_get_round_trip(store: JobStore) -> None:
    job = queued(store)
    assert store.get(job.job_id) == job


@pytest.mark.parametrize("job_id", ["no-such-job", "worker#w1"])
def test_unknown_ids_are_not_found(store: JobStore, job_id: str) -> None:
    with pytest.raises(JobNotFound, match=f"Job {job_id} not found"):
        store.get(job_id)


def test_only_one_of_two_workers_claims_a_job(store: JobStore) -> None:
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


def test_a_lapsed_lease_can_be_claimed_and_the_old_owner_loses_every_write(
    store: JobStore, clock: Clock
) -> None:
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


def test_a_completed_job_never_changes_again(store: JobStore, clock: Clock) -> None:
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


def test_cancel_queued_then_a_claim_fails(store: JobStore) -> None:
    job = queued(store)
    cancelled = store.run(store.ops.cancel_queued(job.job_id))
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    claim = store.run(store.ops.claim(job.job_id, "w1"))
    assert not claim.won and claim.job is not None and claim.job.status is JobStatus.CANCELLED


def test_cancel_of_a_processing_job_is_a_request_its_owner_sees(store: JobStore) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    assert store.run(store.ops.cancel_queued(job.job_id)) is None  # not queued any more
    assert store.run(store.ops.request_cancel(job.job_id)).cancel_requested
    renewed = store.run(store.ops.renew_lease(job.job_id, "w1"))
    assert renewed is not None and renewed.cancel_requested
    assert store.run(store.ops.cancel_owned(job.job_id, "w1"))
    assert store.get(job.job_id).status is JobStatus.CANCELLED


def test_release_puts_a_job_back_in_the_queue(store: JobStore) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    assert store.run(store.ops.release(job.job_id, "w1", last_error="throttled"))
    again = store.get(job.job_id)
    assert again.status is JobStatus.QUEUED and again.owner is None and again.last_error == "throttled"
    assert store.run(store.ops.claim(job.job_id, "w2")).job.attempts == 2


def test_abandoned_jobs_fail_but_not_while_a_worker_holds_them(store: JobStore, clock: Clock) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    assert not store.run(store.ops.fail_abandoned(job.job_id, "worker crashed 3 times"))
    clock.now += store.ops.lease_seconds + 1
    assert store.run(store.ops.fail_abandoned(job.job_id, "worker crashed 3 times"))
    failed = store.get(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error == "worker crashed 3 times"


def test_a_job_past_its_expiry_reads_as_gone(store: JobStore, clock: Clock) -> None:
    job = queued(store)
    store.run(store.ops.claim(job.job_id, "w1"))
    store.run(store.ops.complete(job.job_id, "w1"))
    expires_at = store.get(job.job_id).expires_at
    assert expires_at == pytest.approx(clock.now + store.ops.expiry_seconds, abs=1)
    clock.now = expires_at + 1
    with pytest.raises(JobNotFound):
        store.get(job.job_id)
    assert not store.run(store.ops.claim(job.job_id, "w2")).won


def test_positions_and_counts_come_from_the_status_index(store: JobStore, clock: Clock) -> None:
    jobs = [queued(store) for _ in range(4)]
    ops = store.ops
    assert [store.run(ops.count(JobStatus.QUEUED, created_before=j.created_at)) for j in jobs] == [0, 1, 2, 3]
    store.run(ops.claim(jobs[0].job_id, "w1"))
    store.run(ops.cancel_queued(jobs[2].job_id))
    assert store.run(ops.count(JobStatus.QUEUED, created_before=jobs[3].created_at)) == 1
    assert (store.run(ops.count(JobStatus.QUEUED)), store.run(ops.count(JobStatus.PROCESSING))) == (2, 1)
    clock.now += ops.active_expiry_seconds + 1  # expired jobs no longer count
    assert store.run(ops.count(JobStatus.QUEUED)) == 0


def test_delete_removes_only_finished_jobs(store: JobStore) -> None:
    job = queued(store)
    assert not store.run(store.ops.delete_finished(job.job_id))
    store.run(store.ops.cancel_queued(job.job_id))
    assert store.run(store.ops.delete_finished(job.job_id))
    with pytest.raises(JobNotFound):
        store.get(job.job_id)


def test_worker_registry_lists_live_workers_apart_from_jobs(store: JobStore, clock: Clock) -> None:
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
