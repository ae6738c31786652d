"""Hand a new job to the fleet: its table row, then its queue message, in that order.

Shared by every way a job comes in (`POST /jobs`, `POST /v1/listen`), so they all leave nothing
behind when a step fails: each write pushes its undo onto the caller's stack.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from api_lambda.aws import AwsClients
from shared.jobs import Job
from shared.queue import JobMessage
from shared.settings import Settings


async def enqueue(aws: AwsClients, settings: Settings, job: Job, undo: AsyncExitStack) -> None:
    ops = aws.store.ops
    await aws.store.run(ops.create(job))
    undo.push_async_callback(aws.store.run, ops.forget_unsent(job.job_id))
    message = JobMessage(
        job_id=job.job_id, bucket=settings.bucket_name, upload_key=job.upload_key, created_at=job.created_at
    )
    await aws.queue.send(message.to_body())
