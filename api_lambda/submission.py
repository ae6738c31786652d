"""The one dependency of the routes that queue a job from their own request and answer with its
result (`/v1/listen`, OpenAI's audio routes): the request and what serves it, and the wait for
the job that both do."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api_lambda.auth import Principal, PrincipalDep
from api_lambda.aws import AwsClients
from api_lambda.deps import AwsDep, LambdaModeDep, SettingsDep
from shared.jobs import Job
from shared.settings import Settings

FIRST_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Submission:
    request: Request
    settings: Settings
    aws: AwsClients
    lambda_mode: bool
    principal: Principal


async def submission(
    request: Request,
    settings: SettingsDep,
    aws: AwsDep,
    lambda_mode: LambdaModeDep,
    principal: PrincipalDep,
) -> Submission:
    return Submission(request, settings, aws, lambda_mode, principal)


SubmissionDep = Annotated[Submission, Depends(submission)]


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
