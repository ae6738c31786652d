"""DynamoDB job store: every state change is one conditional write.

Each operation is built as plain data (`Op`: the client method, its request, how to read the
answer and what a failed condition means) by `JobOps`, and run by `JobStore` (boto3, the
worker) or `AsyncJobStore` (aiobotocore, the API). Both sides share one definition of every
transition, so they can't disagree about which moves are legal:

- a job never leaves `completed`, `failed` or `cancelled`;
- a claim is a conditional update that sets an owner and a lease (the SQS visibility timeout),
  taken only from `queued` or from `processing` whose lease has run out, so two workers can't
  both own a job; every later write by the worker is conditioned on still being the owner;
- a job past `expires_at` reads as gone (DynamoDB TTL deletes late, the emulator never).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import TRANSIENT_AWS_CODES, JobNotFound, JobStateConflict, TransientError
from shared.filenames import display_name
from shared.fleet import WORKER_KEY_PREFIX, WORKER_STATUS, WorkerRecord, worker_key
from shared.jobs import FINISHED, CallbackAttempt, Job, JobOptions, JobStatus, utc_now_iso
from shared.resources import JOB_PARTITION_KEY, STATUS_INDEX_NAME, TTL_ATTRIBUTE
from shared.settings import Settings
from shared.stages import Stage

T = TypeVar("T")

_CONDITION_FAILED = "ConditionalCheckFailedException"
_JOB_STATUSES = frozenset(status.value for status in JobStatus)


# --- attribute value codec (plain JSON types; no Decimal round trips) ---------------------------
def encode_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float):
        return {"N": repr(value)}
    if isinstance(value, Mapping):
        return {"M": {k: encode_value(v) for k, v in value.items() if v is not None}}
    if isinstance(value, list | tuple):
        return {"L": [encode_value(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"can't store {type(value).__name__} in DynamoDB")


def decode_value(attr: Mapping[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "N":
        return float(value) if any(c in value for c in ".eE") else int(value)
    if kind == "M":
        return {k: decode_value(v) for k, v in value.items()}
    if kind == "L":
        return [decode_value(v) for v in value]
    if kind == "NULL":
        return None
    return value  # S, BOOL


def encode_item(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: encode_value(v) for k, v in data.items() if v is not None}


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: decode_value(v) for k, v in item.items()}


# --- operations as data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Op(Generic[T]):
    """One DynamoDB call: `parse` reads a successful response; `on_conflict` gets the item as it was
    (or None) when the condition failed; `paginate` sums Count and joins Items over all pages."""

    method: str
    request: dict[str, Any]
    parse: Callable[[dict[str, Any]], T]
    on_conflict: Callable[[dict[str, Any] | None], T] | None = None
    paginate: bool = False


@dataclass(frozen=True)
class Claim:
    """Outcome of a claim: `won` says whether this worker now owns `job` (None: the job is gone)."""

    won: bool
    job: Job | None


def _placeholders(prefix: str, *expressions: str) -> set[str]:
    return set(re.findall(rf"{prefix}(\w+)", " ".join(expressions)))


class JobRules:
    """What both job stores (DynamoDB here, SQLite in shared.embedded) share: lifetimes, and the
    new rows the API builds before storing them. Time comes from `clock` so tests can move it."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.expiry_seconds = settings.job_expiry_seconds
        # An unfinished job lives as long as its queue message can, plus the usual expiry.
        self.active_expiry_seconds = settings.message_retention_seconds + settings.job_expiry_seconds
        self.lease_seconds = settings.visibility_timeout_seconds
        # A job awaiting its presigned upload: the URL's lifetime, then the usual expiry.
        self.upload_wait_seconds = settings.upload_url_expiry_seconds + settings.job_expiry_seconds
        self.clock = clock

    def _finish_fields(self, status: JobStatus, **extra: Any) -> dict[str, Any]:
        now = utc_now_iso()
        return {
            "status": status.value,
            "updated_at": now,
            "finished_at": now,
            TTL_ATTRIBUTE: int(self.clock()) + self.expiry_seconds,
            **extra,
        }

    def queued_job(
        self,
        job_id: str,
        options: JobOptions,
        *,
        upload_key: str,
        filename: str,
        size_bytes: int,
        content_type: str | None,
    ) -> Job:
        now = utc_now_iso()
        return Job(
            job_id=job_id,
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            expires_at=int(self.clock()) + self.active_expiry_seconds,
            options=options,
            upload_key=upload_key,
            filename=display_name(filename),  # for display only: never a path
            size_bytes=size_bytes,
            content_type=content_type,
        )

    def awaiting_job(self, job_id: str, options: JobOptions, **fields: Any) -> Job:
        """A job for `POST /uploads`: no message until its object arrives; gone if it never does."""
        job = self.queued_job(job_id, options, **fields)
        expires_at = int(self.clock()) + self.upload_wait_seconds
        return job.model_copy(update={"status": JobStatus.AWAITING_UPLOAD, "expires_at": expires_at})

    def refused_job(self, job: Job, error: str) -> Job:
        """`job` as a failed one (an ingested object refused before any worker saw it)."""
        return Job.model_validate(job.model_dump() | self._finish_fields(JobStatus.FAILED, error=error))


class JobOps(JobRules):
    """Builds the DynamoDB store's operations."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, clock=clock)
        self.table = settings.table_name

    # -- building blocks
    def _key(self, job_id: str) -> dict[str, Any]:
        return {JOB_PARTITION_KEY: {"S": job_id}}

    def _expressions(self, values: Mapping[str, Any], **expressions: str | None) -> dict[str, Any]:
        """Request fields for the given expressions, with only the names and values they use
        (DynamoDB rejects unused ones). `#attr` stands for the attribute `attr`."""
        used = [e for e in expressions.values() if e]
        request: dict[str, Any] = {k: v for k, v in expressions.items() if v}
        request["ExpressionAttributeNames"] = {f"#{a}": a for a in _placeholders("#", *used)}
        value_names = _placeholders(":", *used)
        if value_names:
            request["ExpressionAttributeValues"] = {f":{k}": encode_value(values[k]) for k in value_names}
        return request

    def _update(
        self,
        job_id: str,
        *,
        set_: Mapping[str, Any],
        condition: str,
        values: Mapping[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        raw_set: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        assignments = [f"#{attr} = :set_{attr}" for attr in set_] + list(raw_set)
        update = "SET " + ", ".join(assignments)
        if remove:
            update += " REMOVE " + ", ".join(f"#{attr}" for attr in remove)
        all_values = {f"set_{k}": v for k, v in set_.items()} | dict(values or {}) | {"now": self.clock()}
        return {
            "TableName": self.table,
            "Key": self._key(job_id),
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **self._expressions(all_values, UpdateExpression=update, ConditionExpression=condition),
        }

    def _live(self, job_id: str, item: Mapping[str, Any] | None) -> Job | None:
        """The job in `item`, or None when it is missing, expired or not a job."""
        if not item or job_id.startswith(WORKER_KEY_PREFIX):
            return None
        data = decode_item(item)
        # Other rows share the table (workers, API keys): only a job status makes a job.
        if data.get("status") not in _JOB_STATUSES or data.get(TTL_ATTRIBUTE, 0) <= self.clock():
            return None
        return Job.model_validate(data)

    def _job_or_none(self, job_id: str) -> Callable[[dict[str, Any] | None], Job | None]:
        return lambda item: self._live(job_id, item)

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
        request = {
            "TableName": self.table,
            "Key": self._key(job_id),
            **self._expressions(statuses, ConditionExpression=condition),
        }
        return Op("delete_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    def start_upload(self, job_id: str, size_bytes: int, content_type: str | None) -> Op[Job | None]:
        """awaiting_upload → queued once its object is in and checked; None when another event or
        request got there first, or the job expired. `created_at` becomes now: queue positions
        count from when the job joined the queue."""
        now = utc_now_iso()
        set_: dict[str, Any] = {
            "status": JobStatus.QUEUED.value,
            "created_at": now,
            "updated_at": now,
            "size_bytes": size_bytes,
            TTL_ATTRIBUTE: int(self.clock()) + self.active_expiry_seconds,
        }
        if content_type:
            set_["content_type"] = content_type
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
        request = {
            "TableName": self.table,
            "Key": self._key(job_id),
            **self._expressions({"queued": JobStatus.QUEUED.value}, ConditionExpression="#status = :queued"),
        }
        return Op("delete_item", request, parse=lambda _: True, on_conflict=lambda _: False)

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

    def _owned_finish(self, job_id: str, owner: str, status: JobStatus, **extra: Any) -> Op[bool]:
        request = self._owned_update(
            job_id,
            owner,
            self._finish_fields(status, **extra),
            remove=("lease_expires_at", "progress"),  # `owner` stays: who finished it
        )
        return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    def complete(self, job_id: str, owner: str) -> Op[bool]:
        return self._owned_finish(job_id, owner, JobStatus.COMPLETED)

    def cancel_owned(self, job_id: str, owner: str) -> Op[bool]:
        return self._owned_finish(job_id, owner, JobStatus.CANCELLED)

    def fail_owned(self, job_id: str, owner: str, error: str) -> Op[bool]:
        return self._owned_finish(job_id, owner, JobStatus.FAILED, error=error)

    def fail_abandoned(self, job_id: str, error: str) -> Op[bool]:
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
        return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)

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

    # -- other rows of the table (their own key prefix and status), for features with small records
    def put_row(
        self, item: Mapping[str, Any], *, if_absent: bool = False, if_equals: tuple[str, Any] | None = None
    ) -> Op[bool]:
        """Put a whole row; False when its condition (no row yet, or `attr == value`) fails."""
        request: dict[str, Any] = {"TableName": self.table, "Item": encode_item(item)}
        if if_absent:
            request["ConditionExpression"] = f"attribute_not_exists(#{JOB_PARTITION_KEY})"
            request["ExpressionAttributeNames"] = {f"#{JOB_PARTITION_KEY}": JOB_PARTITION_KEY}
        elif if_equals is not None:
            request["ConditionExpression"] = "#cond = :cond"
            request["ExpressionAttributeNames"] = {"#cond": if_equals[0]}
            request["ExpressionAttributeValues"] = {":cond": encode_value(if_equals[1])}
        return Op("put_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    def get_row(self, key: str) -> Op[dict[str, Any] | None]:
        request = {"TableName": self.table, "Key": self._key(key), "ConsistentRead": True}
        return Op("get_item", request, parse=lambda r: decode_item(r["Item"]) if r.get("Item") else None)

    def delete_row(self, key: str, *, if_equals: tuple[str, Any]) -> Op[bool]:
        request = {
            "TableName": self.table,
            "Key": self._key(key),
            "ConditionExpression": "#cond = :cond",
            "ExpressionAttributeNames": {"#cond": if_equals[0]},
            "ExpressionAttributeValues": {":cond": encode_value(if_equals[1])},
        }
        return Op("delete_item", request, parse=lambda _: True, on_conflict=lambda _: False)

    # -- fleet registry (same table, `worker#<id>` keys, status "worker")
    def register_worker(self, record: WorkerRecord) -> Op[None]:
        item = record.model_dump(mode="json") | {
            JOB_PARTITION_KEY: worker_key(record.worker_id),
            "status": WORKER_STATUS,
            "created_at": record.started_at,
        }
        return Op("put_item", {"TableName": self.table, "Item": encode_item(item)}, parse=lambda _: None)

    def deregister_worker(self, worker_id: str) -> Op[None]:
        request = {"TableName": self.table, "Key": self._key(worker_key(worker_id))}
        return Op("delete_item", request, parse=lambda _: None)

    def live_workers(self) -> Op[list[WorkerRecord]]:
        values = {"status": WORKER_STATUS, "now": self.clock()}
        request = {
            "TableName": self.table,
            "IndexName": STATUS_INDEX_NAME,
            **self._expressions(
                values,
                KeyConditionExpression="#status = :status",
                FilterExpression=f"#{TTL_ATTRIBUTE} > :now",
            ),
        }

        def parse(response: dict[str, Any]) -> list[WorkerRecord]:
            return [WorkerRecord.model_validate(decode_item(item)) for item in response.get("Items", [])]

        return Op("query", request, parse, paginate=True)


# --- runners ---------------------------------------------------------------------------------------
def _merge_page(total: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
    return {
        "Count": total.get("Count", 0) + page.get("Count", 0),
        "Items": total.get("Items", []) + page.get("Items", []),
    }


def _on_client_error(op: Op[T], error: ClientError) -> T:
    code = error.response.get("Error", {}).get("Code", "")
    if code == _CONDITION_FAILED and op.on_conflict is not None:
        return op.on_conflict(error.response.get("Item"))
    if code in TRANSIENT_AWS_CODES:
        raise TransientError(f"DynamoDB {op.method} failed: {code}") from error
    raise error


class JobStore:
    """Runs `JobOps` with a boto3 DynamoDB client (the worker, tests, scripts)."""

    def __init__(self, client: Any, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        from shared.api_keys import KeyOps  # (api_keys builds on this module)

        self.client = client
        self.ops = JobOps(settings, clock=clock)
        self.keys = KeyOps(settings)

    def run(self, op: Op[T]) -> T:
        call = getattr(self.client, op.method)
        try:
            if not op.paginate:
                return op.parse(call(**op.request))
            response: dict[str, Any] = {}
            request = dict(op.request)
            while True:
                page = call(**request)
                response = _merge_page(response, page)
                if "LastEvaluatedKey" not in page:
                    return op.parse(response)
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except ClientError as error:
            return _on_client_error(op, error)
        except BotoCoreError as error:
            raise TransientError(f"DynamoDB {op.method} failed: {error}") from error

    # Shorthands for the calls made often.
    def get(self, job_id: str) -> Job:
        return self.run(self.ops.get(job_id))

    def create(self, job: Job) -> Job:
        return self.run(self.ops.create(job))


class AsyncJobStore:
    """Runs `JobOps` with an aiobotocore DynamoDB client (the API)."""

    def __init__(self, client: Any, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        from shared.api_keys import KeyOps  # (api_keys builds on this module)

        self.client = client
        self.ops = JobOps(settings, clock=clock)
        self.keys = KeyOps(settings)

    async def run(self, op: Op[T]) -> T:
        call = getattr(self.client, op.method)
        try:
            if not op.paginate:
                return op.parse(await call(**op.request))
            response: dict[str, Any] = {}
            request = dict(op.request)
            while True:
                page = await call(**request)
                response = _merge_page(response, page)
                if "LastEvaluatedKey" not in page:
                    return op.parse(response)
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except ClientError as error:
            return _on_client_error(op, error)
        except BotoCoreError as error:
            raise TransientError(f"DynamoDB {op.method} failed: {error}") from error

    async def get(self, job_id: str) -> Job:
        return await self.run(self.ops.get(job_id))
