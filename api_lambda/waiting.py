"""Waiting for a job to finish, for the routes that answer with its result (`/v1/listen`,
OpenAI's audio routes): poll its row with a growing delay."""

from __future__ import annotations

import asyncio
import math
import time

from fastapi import Request

from api_lambda.aws import AwsClients
from shared.jobs import Job

FIRST_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 2.0


class Backoff:
    """Poll delays from `first` s, each half again as long as the last, up to `most` s: quick
    answers for short jobs without polling the table hard for long ones."""

    def __init__(self, first: float, most: float) -> None:
        self.delay, self.most = first, most

    async def sleep(self, at_most: float = math.inf) -> None:
        await asyncio.sleep(min(self.delay, at_most))
        self.delay = min(self.delay * 1.5, self.most)


async def wait_finished(request: Request, aws: AwsClients, job_id: str, max_wait: float) -> Job | None:
    """Poll the job with backoff until it finishes; None after `max_wait` s or when the client left."""
    deadline = time.monotonic() + max_wait
    backoff = Backoff(FIRST_POLL_SECONDS, MAX_POLL_SECONDS)
    while True:
        job = await aws.store.get(job_id)
        remaining = deadline - time.monotonic()
        if job.status.finished or remaining <= 0 or await request.is_disconnected():
            return job if job.status.finished else None
        await backoff.sleep(remaining)
