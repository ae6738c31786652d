"""Who is calling: an API key from `Authorization: Token <key>` (Deepgram's form) or `Bearer <key>`,
checked against the hashed keys in the table when `AUTH_REQUIRED=true`.

A job belongs to the project of the key that submitted it; another project's key gets 404 for it,
as if it did not exist (a 403 would confirm that it does). With `AUTH_REQUIRED=false` (the seed's
behaviour) nobody is asked for a key and every job is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api_lambda.aws import AwsClients
from api_lambda.deps import AwsDep, SettingsDep
from shared.errors import JobNotFound, ServiceError
from shared.jobs import Job

SCHEMES = ("token", "bearer")


class Unauthorized(ServiceError):
    status_code = 401
    code = "invalid_auth"


@dataclass(frozen=True)
class Principal:
    """The caller's project; None when authentication is off (then every job is visible)."""

    project_id: str | None = None
    key_id: str | None = None

    def sees(self, job: Job) -> bool:
        return self.project_id is None or job.project_id == self.project_id


def presented_key(header: str | None) -> str | None:
    """The key in an Authorization header (`Token` or `Bearer`, any case), or None."""
    scheme, _, credential = (header or "").strip().partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() in SCHEMES and credential else None


async def authenticate(request: Request, settings: SettingsDep, aws: AwsDep) -> Principal:
    if not settings.auth_required:
        return Principal()
    key = presented_key(request.headers.get("authorization"))
    if key is None:
        raise Unauthorized("Missing credentials: send `Authorization: Token <api key>`")
    record = await aws.store.run(aws.store.keys.lookup(key))
    if record is None or not record.active:
        raise Unauthorized("Invalid credentials.")
    return Principal(record.project_id, record.key_id)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def visible_job(aws: AwsClients, principal: Principal, job_id: str) -> Job:
    """The job, or JobNotFound when it is gone or belongs to another project."""
    job = await aws.store.get(job_id)
    if not principal.sees(job):
        raise JobNotFound(job_id)
    return job
