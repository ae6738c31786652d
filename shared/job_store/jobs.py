"""The DynamoDB job store's operations on jobs: every state change is one conditional write.

The rules (shared.job_store's docstring has them): a job never leaves a finished state; a claim
sets an owner and a lease and is taken only from `queued` or from `processing` whose lease has run
out; every later write by the worker is conditioned on still being the owner. A job that finishes
with a callback writes its outbox entry in the same transaction (shared.callback_outbox).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from shared.callback_outbox import OutboxEntry
from shared.errors import JobNotFound, JobStateConflict
from shared.fleet import WORKER_KEY_PREFIX
from shared.job_store.codec import decode_item, encode_item
from shared.job_store.ops import Op
from shared.job_store.rows import RowOps
from shared.job_store.rules import Claim, JobRules, OwnedFinishes
from shared.jobs import FINISHED, CallbackAttempt, Job, JobStatus, utc_now_iso
from shared.resources import JOB_PARTITION_KEY, STATUS_INDEX_NAME, TTL_ATTRIBUTE
from shared.settings import Settings
from shared.stages import Stage

_JOB_STATUSES = frozenset(status.value for status in JobStatus)


class JobOps(JobRules, OwnedFinishes[Op[bool]], RowOps):
    """Builds the DynamoDB store's operations on jobs (and, through `RowOps`, on the other rows)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, clock=clock)
        self.table = settings.table_name

    def _live(self, job_id: str, item: Mapping[str, Any] | None) -> Job | None:
        """The job in `item`, or None when it is missing, expired or not a job."""
        if not item or job_id.startswith(WORKER_KEY_PREFIX):
            return None
        data = decode_item(item)
        # Other rows share the table (workers, API keys): only a job status makes a job.
        if data.get("status") not in _JOB_STATUSES or data.get(TTL_ATTRIBUTE, 0) <= self.clock():
            return None
        return Job.model_validate(data)

    def _returned_job(self, job_id: str) -> Callable[[dict[str, Any]], Job | None]:
        return lambda response: self._live(job_id, response.get("Attributes"))

    # -- jobs: the API's side
    def create(self, job: Job, *, replace_expired: bool = False) -> Op[Job]:
        """Put a new job row. `replace_expired`: an expired row with the same id (a deterministic id
        seen again after its job expired; TTL deletes late) is overwritten instead of conflicting."""

        def conflict(_: dict[str, Any] | None) -> Job:
            raise JobStateConflict(f"Job {job.job_id} already exists")

        condition = f"attribute_not_exists(#{JOB_PARTITION_KEY})"
        if replace_expired:
            condition += f" OR #{TTL_ATTRIBUTE} <= :now"
        return Op(
            "put_item",
            {
                "TableName": self.table,
                "Item": encode_item(job.model_dump(mode="json")),
                **self._expressions({"now": self.clock()}, ConditionExpression=condition),
            },
            parse=lambda _: job,
            on_conflict=conflict,
        )

    def get(self, job_id: str) -> Op[Job]:
        def parse(response: dict[str, Any]) -> Job:
            job = self._live(job_id, response.get("Item"))
            if job is None:
                raise JobNotFound(job_id)
            return job

        return Op(
            "get_item", {"TableName": self.table, "Key": self._key(job_id), "ConsistentRead": True}, parse
        )

    def count(
        self, status: JobStatus, *, created_before: str | None = None, project_id: str | None = None
    ) -> Op[int]:
        """Live jobs in `status` (created before `created_before`; of `project_id` only, when given),
        counted within the status index's partition for `status`: a query, no scan."""
        key = "#status = :status" + (" AND #created_at < :before" if created_before else "")
        condition = f"#{TTL_ATTRIBUTE} > :now" + (" AND #project_id = :project" if project_id else "")
        values = {
            "status": status.value,
            "before": created_before,
            "now": self.clock(),
            "project": project_id,
        }
        request = {
            "TableName": self.table,
            "IndexName": STATUS_INDEX_NAME,
            "Select": "COUNT",
            **self._expressions(values, KeyConditionExpression=key, FilterExpression=condition),
        }
        return Op("query", request, parse=lambda r: int(r["Count"]), paginate=True)

    def cancel_queued(self, job_id: str) -> Op[Job | None]:
        """queued or awaiting_upload → cancelled; None when the job was neither (the caller re-reads it)."""
        request = self._update(
            job_id,
            set_=self._finish_fields(JobStatus.CANCELLED),
            remove=("progress",),
            condition="#status IN (:queued, :awaiting)",
            values={"queued": JobStatus.QUEUED.value, "awaiting": JobStatus.AWAITING_UPLOAD.value},
        )
        return Op("update_item", request, self._returned_job(job_id), on_conflict=lambda _: None)

    def request_cancel(self, job_id: str) -> Op[Job | None]:
        """Ask the owner of a processing job to stop at the next stage boundary."""
        request = self._update(
            job_id,
            set_={"cancel_requested": True, "updated_at": utc_now_iso()},
            condition="#status = :processing",
            values={"processing": JobStatus.PROCESSING.value},
        )
        return Op("update_item", request, self._returned_job(job_id), on_conflict=lambda _: None)

    def delete_finished(self, job_id: str) -> Op[bool]:
        """Remove the row of a finished job; False when it is not finished (or already gone)."""
        statuses = {f"s{i}": status.value for i, status in enumerate(sorted(FINISHED))}
        condition = "#status IN (" + ", ".join(f":{k}" for k in statuses) + ")"
        return self._conditional_delete(job_id, condition, statuses)

    def start_upload(self, job_id: str, size_bytes: int, content_type: str | None) -> Op[Job | None]:
        """awaiting_upload → queued once its object is in and checked; None when another event or
        request got there first, or the job expired. `created_at` becomes now: queue positions
        count from when the job joined the queue."""
        set_ = self._upload_started_fields(size_bytes, content_type)
        request = self._update(
            job_id,
            set_=set_,
            condition=f"#status = :awaiting AND #{TTL_ATTRIBUTE} > :now",
            values={"awaiting": JobStatus.AWAITING_UPLOAD.value},
        )
        return Op("update_item", request, self._returned_job(job_id), on_conflict=lambda _: None)

    def unstart_upload(self, job_id: str) -> Op[bool]:
        """Undo `start_upload` when the queue message could not be sent, so a retry can start it."""
        request = self._update(
            job_id,
            set_={"status": JobStatus.AWAITING_UPLOAD.value, "updated_at": utc_now_iso()},
            condition="#status = :queued AND attribute_not_exists(#owner)",
            values={"queued": JobStatus.QUEUED.value},
        )
        return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    def fail_upload(self, job_id: str, error: str) -> Op[bool]:
        """awaiting_upload → failed: the object that arrived was refused."""
        request = self._update(
            job_id,
            set_=self._finish_fields(JobStatus.FAILED, error=error),
            condition="#status = :awaiting",
            values={"awaiting": JobStatus.AWAITING_UPLOAD.value},
        )
        return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    def forget_unsent(self, job_id: str) -> Op[bool]:
        """Undo `create` when the queue message could not be sent (nobody can hold the job yet)."""
        return self._conditional_delete(job_id, "#status = :queued", {"queued": JobStatus.QUEUED.value})

    def set_speaker_names(self, job_id: str, names: Mapping[int, str]) -> Op[Job | None]:
        """Replace a completed job's speaker names (an empty mapping removes them); None when the
        job is not completed (or gone). Names are display labels only: the result keeps its ints."""
        stored = {str(speaker): name for speaker, name in sorted(names.items())}
        request = self._update(
            job_id,
            set_={"updated_at": utc_now_iso(), **({"speaker_names": stored} if stored else {})},
            remove=() if stored else ("speaker_names",),
            condition=f"#status = :completed AND #{TTL_ATTRIBUTE} > :now",
            values={"completed": JobStatus.COMPLETED.value},
        )
        return Op("update_item", request, self._returned_job(job_id), on_conflict=lambda _: None)

    # -- jobs: the worker's side
    def claim(self, job_id: str, owner: str) -> Op[Claim]:
        now_iso = utc_now_iso()
        request = self._update(
            job_id,
            set_={
                "status": JobStatus.PROCESSING.value,
                "owner": owner,
                "lease_expires_at": self.clock() + self.lease_seconds,
                "started_at": now_iso,
                "updated_at": now_iso,
            },
            raw_set=("#attempts = if_not_exists(#attempts, :zero) + :one",),
            remove=("progress",),
            condition=(
                f"#{TTL_ATTRIBUTE} > :now AND (#status = :queued OR "
                "(#status = :processing AND #lease_expires_at < :now))"
            ),
            values={
                "queued": JobStatus.QUEUED.value,
                "processing": JobStatus.PROCESSING.value,
                "zero": 0,
                "one": 1,
            },
        )
        return Op(
            "update_item",
            request,
            parse=lambda r: Claim(True, self._live(job_id, r.get("Attributes"))),
            on_conflict=lambda item: Claim(False, self._live(job_id, item)),
        )

    def _owned_update(self, job_id: str, owner: str, set_: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        return self._update(
            job_id,
            set_=set_,
            condition="#status = :processing AND #owner = :owner",
            values={"processing": JobStatus.PROCESSING.value, "owner": owner},
            **kw,
        )

    def renew_lease(self, job_id: str, owner: str) -> Op[Job | None]:
        """Extend the claim; None when it was lost. The answer carries `cancel_requested`."""
        request = self._owned_update(
            job_id,
            owner,
            {"lease_expires_at": self.clock() + self.lease_seconds, "updated_at": utc_now_iso()},
        )
        return Op("update_item", request, self._returned_job(job_id), on_conflict=lambda _: None)

    def set_progress(self, job_id: str, owner: str, stage: Stage) -> Op[Job | None]:
        request = self._owned_update(job_id, owner, {"progress": stage.value, "updated_at": utc_now_iso()})
        return Op("update_item", request, self._returned_job(job_id), on_conflict=lambda _: None)

    def _finish(self, request: dict[str, Any], callback: OutboxEntry | None) -> Op[bool]:
        """A finishing update; with `callback`, one transaction with the put of its outbox entry,
        so a finished job's callback is never lost between two writes."""
        if callback is None:
            return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)
        update = {k: v for k, v in request.items() if k != "ReturnValues"}
        put = {"TableName": self.table, "Item": encode_item(callback.to_row())}
        transaction = {"TransactItems": [{"Update": update}, {"Put": put}]}
        return Op("transact_write_items", transaction, parse=lambda _: True, on_conflict=lambda _: False)

    def _owned_finish(
        self, job_id: str, owner: str, status: JobStatus, callback: OutboxEntry | None = None, **extra: Any
    ) -> Op[bool]:
        request = self._owned_update(
            job_id,
            owner,
            self._finish_fields(status, **extra),
            remove=("lease_expires_at", "progress"),  # `owner` stays: who finished it
        )
        return self._finish(request, callback)

    def fail_abandoned(self, job_id: str, error: str, *, callback: OutboxEntry | None = None) -> Op[bool]:
        """Fail a job nobody is working on (queued, or processing with a lapsed lease): the
        dead-letter path. False when it is finished, gone, or a live worker still holds it."""
        request = self._update(
            job_id,
            set_=self._finish_fields(JobStatus.FAILED, error=error),
            remove=("lease_expires_at", "progress"),
            condition=(
                "#status = :queued OR (#status = :processing AND "
                "(attribute_not_exists(#lease_expires_at) OR #lease_expires_at < :now))"
            ),
            values={"queued": JobStatus.QUEUED.value, "processing": JobStatus.PROCESSING.value},
        )
        return self._finish(request, callback)

    def release(self, job_id: str, owner: str, *, last_error: str | None = None) -> Op[bool]:
        """Give a job back to the queue (retryable error, or shutdown) so another claim can run it."""
        set_: dict[str, Any] = {"status": JobStatus.QUEUED.value, "updated_at": utc_now_iso()}
        if last_error is not None:
            set_["last_error"] = last_error
        request = self._owned_update(job_id, owner, set_, remove=("owner", "lease_expires_at", "progress"))
        return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    def record_callback(self, job_id: str, attempt: CallbackAttempt, status: str) -> Op[bool]:
        """Append one delivery attempt to a job's record (any state; False once the job is gone)."""
        request = self._update(
            job_id,
            set_={"callback_status": status},
            raw_set=(
                "#callback_attempts = list_append(if_not_exists(#callback_attempts, :empty), :attempt)",
            ),
            condition=f"attribute_exists(#{JOB_PARTITION_KEY})",
            values={"empty": [], "attempt": [attempt.model_dump(mode="json")]},
        )
        return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)
