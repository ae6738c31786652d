"""Where the signed upload URLs of the embedded backend lead (BACKEND=local): the API itself plays
S3's part for `POST /uploads`. `PUT /uploads/{job_id}?…&signature=…` takes the body as the file;
`POST /uploads/{job_id}` takes a browser form (the `post.fields`, then `file`).

The signature (shared.embedded.signing) is the credential, as a presigned S3 URL's is: no API key
is asked. The grant's limits are enforced as S3 enforces a presigned URL's (type, exact length),
and then the arrived file is checked and its job queued at once, as its S3 event would do it
(`api_lambda.intake.upload_arrived`): the answer says whether the job is queued or why not.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile

from api_lambda.aws import AwsClients
from api_lambda.deps import AwsDep, SettingsDep
from api_lambda.intake import upload_arrived
from api_lambda.routes.listen import _BodyReader
from shared.embedded.blobs import AsyncFileBlobs
from shared.embedded.signing import UploadGrant
from shared.errors import InvalidParameter, JobStateConflict, PayloadTooLarge, ServiceError
from shared.jobs import Job, JobStatus
from shared.ports import UploadBody
from shared.settings import Settings

router = APIRouter(tags=["uploads"], include_in_schema=False)


class UploadForbidden(ServiceError, code="upload_forbidden", status_code=403): ...


class NotServedHere(ServiceError, code="not_found", status_code=404): ...


def _check_grant(settings: Settings, aws: AwsClients, grant: UploadGrant, signature: str) -> None:
    if not settings.local:
        raise NotServedHere("uploads go to the presigned S3 URL that POST /uploads returned")
    assert isinstance(aws.blobs, AsyncFileBlobs)  # what BACKEND=local stores objects in
    problem = aws.blobs.signer.problem(grant, signature)
    if problem is not None:
        raise UploadForbidden(problem)


def _check_request(grant: UploadGrant, content_type: str | None, length: int | None) -> None:
    """What S3 refuses for a presigned URL: another type than the signed one, another length."""
    if grant.content_type and content_type != grant.content_type:
        raise UploadForbidden(
            f"this upload URL is signed for Content-Type '{grant.content_type}', "
            f"not '{content_type or 'none'}'"
        )
    if grant.exact and length is not None and length != grant.max_bytes:
        raise UploadForbidden(f"this upload URL is signed for exactly {grant.max_bytes} bytes, not {length}")


async def _waiting_job(aws: AwsClients, job_id: str) -> Job:
    job = await aws.store.get(job_id)  # 404 when gone (expired, deleted)
    if job.status is not JobStatus.AWAITING_UPLOAD:
        raise JobStateConflict(f"Job {job_id} is {job.status.value}: it takes no upload now")
    return job


async def _receive(
    aws: AwsClients, job: Job, grant: UploadGrant, read: Any, content_type: str | None
) -> dict[str, str]:
    def too_large() -> PayloadTooLarge:
        return PayloadTooLarge(f"File too large: this upload allows at most {grant.max_bytes} bytes")

    body = UploadBody(read, grant.max_bytes, too_large, content_type=content_type)
    await aws.blobs.upload_stream(job.upload_key, body)
    started = await upload_arrived(aws, job)  # a refusal fails the job, deletes the file, is raised
    status = started.status if started is not None else (await aws.store.get(job.job_id)).status
    return {"job_id": job.job_id, "status": status.value}


@router.put("/uploads/{job_id}")
async def put_upload(
    job_id: str,
    request: Request,
    settings: SettingsDep,
    aws: AwsDep,
    max_bytes: Annotated[int, Query()],
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
    exact: Annotated[str, Query()] = "0",
    content_type: Annotated[str, Query()] = "",
) -> dict[str, str]:
    grant = UploadGrant(job_id, max_bytes, exact == "1", content_type, expires)
    _check_grant(settings, aws, grant, signature)
    sent_type = request.headers.get("content-type") or None
    length = request.headers.get("content-length", "")
    _check_request(grant, sent_type, int(length) if length.isdigit() else None)
    job = await _waiting_job(aws, job_id)
    return await _receive(aws, job, grant, _BodyReader(request.stream()).read, sent_type)


@router.post("/uploads/{job_id}")
async def post_upload(job_id: str, request: Request, settings: SettingsDep, aws: AwsDep) -> dict[str, str]:
    form = await request.form()
    try:
        values = {name: form[name] for name in ("max_bytes", "expires", "signature")}
        if not all(isinstance(v, str) for v in values.values()):
            raise KeyError("a text field")
        grant = UploadGrant(
            job_id,
            int(str(values["max_bytes"])),
            form.get("exact") == "1",
            str(form.get("content_type") or ""),
            int(str(values["expires"])),
        )
    except (KeyError, ValueError) as error:
        raise InvalidParameter(
            f"the upload form lacks its signed fields ({error}); send every post.fields"
        ) from None
    _check_grant(settings, aws, grant, str(values["signature"]))
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidParameter("the upload form has no file: send it last, as the field `file`")
    sent_type = str(form.get("Content-Type") or "") or None
    _check_request(grant, sent_type, None)
    job = await _waiting_job(aws, job_id)
    if form.get("key") != job.upload_key:
        raise UploadForbidden("the form's key is not this upload's")
    return await _receive(aws, job, grant, upload.read, sent_type)
