"""Run `Op`s: `JobStore` with a boto3 DynamoDB client (the worker, tests, scripts), `AsyncJobStore`
with an aiobotocore one (the API). Both hold the same operation builders: `ops` (jobs, other
rows, the fleet), `keys` (API keys) and `outbox` (callbacks still to deliver)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import TRANSIENT_AWS_CODES, TransientError
from shared.job_store.jobs import JobOps
from shared.job_store.ops import Op
from shared.job_store.outbox import OutboxOps
from shared.jobs import Job
from shared.settings import Settings

T = TypeVar("T")

_CONDITION_FAILED = "ConditionalCheckFailedException"
_TRANSACTION_CANCELLED = "TransactionCanceledException"


def _next_page(op: Op[Any], total: dict[str, Any], page: dict[str, Any]) -> dict[str, Any] | None:
    """Fold `page` into `total`; the request for the next page, or None after the last one."""
    total["Count"] = total.get("Count", 0) + page.get("Count", 0)
    total["Items"] = total.get("Items", []) + page.get("Items", [])
    if "LastEvaluatedKey" not in page:
        return None
    return op.request | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _on_client_error(op: Op[T], error: ClientError) -> T:
    code = error.response.get("Error", {}).get("Code", "")
    if code == _TRANSACTION_CANCELLED:  # which item's check failed is in the reasons
        reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
        if "ConditionalCheckFailed" in reasons and op.on_conflict is not None:
            return op.on_conflict(None)
        raise TransientError(f"DynamoDB {op.method} was cancelled: {reasons}") from error
    if code == _CONDITION_FAILED and op.on_conflict is not None:
        # the stub's response type lacks the `Item` DynamoDB returns with
        # ReturnValuesOnConditionCheckFailure=ALL_OLD (it only has one per cancellation reason)
        return op.on_conflict(error.response.get("Item"))  # type: ignore[arg-type]
    if code in TRANSIENT_AWS_CODES:
        raise TransientError(f"DynamoDB {op.method} failed: {code}") from error
    raise error


class _Builders:
    def __init__(self, client: Any, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        from shared.api_keys import KeyOps  # (api_keys builds on this package)

        self.client = client
        self.ops = JobOps(settings, clock=clock)
        self.keys = KeyOps(settings)
        self.outbox = OutboxOps(settings, clock=clock)


class JobStore(_Builders):
    def run(self, op: Op[T]) -> T:
        call = getattr(self.client, op.method)
        try:
            if not op.paginate:
                return op.parse(call(**op.request))
            total: dict[str, Any] = {}
            request: dict[str, Any] | None = op.request
            while request is not None:
                request = _next_page(op, total, call(**request))
            return op.parse(total)
        except ClientError as error:
            return _on_client_error(op, error)
        except BotoCoreError as error:
            raise TransientError(f"DynamoDB {op.method} failed: {error}") from error

    # Shorthands for the calls made often.
    def get(self, job_id: str) -> Job:
        return self.run(self.ops.get(job_id))

    def create(self, job: Job) -> Job:
        return self.run(self.ops.create(job))


class AsyncJobStore(_Builders):
    async def run(self, op: Op[T]) -> T:
        call = getattr(self.client, op.method)
        try:
            if not op.paginate:
                return op.parse(await call(**op.request))
            total: dict[str, Any] = {}
            request: dict[str, Any] | None = op.request
            while request is not None:
                request = _next_page(op, total, await call(**request))
            return op.parse(total)
        except ClientError as error:
            return _on_client_error(op, error)
        except BotoCoreError as error:
            raise TransientError(f"DynamoDB {op.method} failed: {error}") from error

    async def get(self, job_id: str) -> Job:
        return await self.run(self.ops.get(job_id))
