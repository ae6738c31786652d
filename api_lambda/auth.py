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
from shared.settings import Settings

SCHEMES = ("token", "bearer")
MAX_JOB_ID_BYTES = 200  # ids are UUIDs; DynamoDB refuses keys over 2048 bytes with a 500-worthy error


class Unauthorized(ServiceError, code="invalid_auth", status_code=401): ...


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


PRINCIPAL_SCOPE_KEY = "whisper_diarization.principal"
"""Where `api_lambda.early_auth` leaves the caller it checked, so the route doesn't look it up again."""


async def resolve_principal(settings: Settings, aws: AwsClients, authorization: str | None) -> Principal:
    """The caller of a request with this Authorization header; Unauthorized when it has no valid key."""
    if not settings.auth_required:
        return Principal()
    key = presented_key(authorization)
    if key is None:
        raise Unauthorized("Missing credentials: send `Authorization: Token <api key>`")
    record = await aws.store.run(aws.store.keys.lookup(key))
    if record is None or not record.active:
        raise Unauthorized("Invalid credentials.")
    return Principal(record.project_id, record.key_id)


async def authenticate(request: Request, settings: SettingsDep, aws: AwsDep) -> Principal:
    checked = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(checked, Principal):
        return checked
    return await resolve_principal(settings, aws, request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def visible_job(aws: AwsClients, principal: Principal, job_id: str) -> Job:
    """The job, or JobNotFound when it is gone or belongs to another project (or the id could not
    be one: the table refuses empty and oversized keys, which must not become a 500)."""
    if not 0 < len(job_id.encode()) <= MAX_JOB_ID_BYTES:
        raise JobNotFound(job_id[:MAX_JOB_ID_BYTES])
    job = await aws.store.get(job_id)
    if not principal.sees(job):
        raise JobNotFound(job_id)
    return job
