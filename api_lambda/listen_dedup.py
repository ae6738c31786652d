"""One job per distinct `/v1/listen` request, however often a client retries it.

Deepgram's SDKs resubmit a request on a 5xx, 408, 409 or 429, or when the connection drops; a
long transcription must not be queued again each time. A request's fingerprint is the sha256 of
its project, API key, audio (the body's sha256, or the URL) and query parameters. The first
request records `listen#<fingerprint>` → its job id (a conditional put, so two racing requests
agree); an identical one attaches to that job while it is queued, running or completed, and
waits for (or gets) the same result. A job that failed or was cancelled, or is gone, no longer
holds its fingerprint: the next identical request runs anew.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence

from api_lambda.aws import AwsClients
from shared.errors import JobNotFound
from shared.jobs import JobStatus, utc_now_iso
from shared.resources import JOB_PARTITION_KEY
from shared.settings import Settings

FINGERPRINT_PREFIX = "listen#"
FINGERPRINT_STATUS = "listen_fingerprint"  # keeps these rows out of every job query
_RERUN = (JobStatus.FAILED, JobStatus.CANCELLED)


def fingerprint(
    project_id: str | None, key_id: str | None, source: str, params: Mapping[str, Sequence[str]]
) -> str:
    canonical = json.dumps(
        {"project": project_id, "key": key_id, "source": source, "params": sorted(params.items())},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class Fingerprints:
    def __init__(self, aws: AwsClients, settings: Settings) -> None:
        self.aws = aws
        self.lifetime = settings.job_expiry_seconds + settings.message_retention_seconds

    async def _put(self, digest: str, job_id: str, replacing: str | None) -> bool:
        item = {
            JOB_PARTITION_KEY: f"{FINGERPRINT_PREFIX}{digest}",
            "status": FINGERPRINT_STATUS,
            "created_at": utc_now_iso(),
            "target_job_id": job_id,
            "expires_at": int(time.time()) + self.lifetime,
        }
        ops = self.aws.store.ops
        if replacing is None:
            return await self.aws.store.run(ops.put_row(item, if_absent=True))
        return await self.aws.store.run(ops.put_row(item, if_equals=("target_job_id", replacing)))

    async def _holder(self, digest: str) -> str | None:
        row = await self.aws.store.run(self.aws.store.ops.get_row(f"{FINGERPRINT_PREFIX}{digest}"))
        return row.get("target_job_id") if row else None

    async def claim(self, digest: str, job_id: str) -> str | None:
        """Record `job_id` for this fingerprint; or return the live job an identical request made."""
        replacing: str | None = None
        for _ in range(3):  # lose a race at most twice to requests that finish as we look
            if await self._put(digest, job_id, replacing):
                return None
            holder = await self._holder(digest)
            if holder is None:
                replacing = None
                continue
            try:
                job = await self.aws.store.get(holder)
            except JobNotFound:
                job = None
            if job is not None and job.status not in _RERUN:
                return holder
            replacing = holder
        return None  # keep ours unrecorded rather than fail the request

    async def release(self, digest: str, job_id: str) -> None:
        """Undo a claim (the job was never queued)."""
        op = self.aws.store.ops.delete_row(
            f"{FINGERPRINT_PREFIX}{digest}", if_equals=("target_job_id", job_id)
        )
        await self.aws.store.run(op)


class ListenDedup:
    """`intake.Dedup` for one `/v1/listen` request: its fingerprint is the audio's identity with
    the caller's project and key and the request's query parameters."""

    def __init__(
        self,
        fingerprints: Fingerprints,
        project_id: str | None,
        key_id: str | None,
        params: Mapping[str, Sequence[str]],
    ) -> None:
        self.fingerprints = fingerprints
        self.scope = (project_id, key_id)
        self.params = params

    def _digest(self, source: str) -> str:
        return fingerprint(*self.scope, source, self.params)

    async def claim(self, source: str, job_id: str) -> str | None:
        return await self.fingerprints.claim(self._digest(source), job_id)

    async def release(self, source: str, job_id: str) -> None:
        await self.fingerprints.release(self._digest(source), job_id)
