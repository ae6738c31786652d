"""S3 object layout helpers for job audio and results (keys from shared.resources).

Async functions take an aiobotocore client (the API), sync ones a boto3 client (the worker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from shared.errors import ServiceError
from shared.ports import UploadBody
from shared.resources import UPLOADS_PREFIX, callback_body_key, result_key, segments_key

PART_BYTES = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB (except the last)
_MISSING = ("404", "NoSuchKey", "NotFound")  # the codes S3 and its emulators give an absent object


class UploadMissing(ServiceError, code="upload_missing", status_code=410):
    """The job's audio is no longer in S3 (deleted or expired): retrying can't bring it back."""


def is_missing(error: ClientError) -> bool:
    """Whether S3 said there is no such object (not: no access, or any other failure)."""
    return error.response.get("Error", {}).get("Code") in _MISSING


async def upload_stream(s3: Any, bucket: str, key: str, body: UploadBody) -> int:
    """Copy a stream to S3 one part at a time (never the whole file in memory); returns its size.

    Stops with `body.too_large()` as soon as more than its limit has arrived; a multipart upload
    begun is aborted on any error, so nothing half-written is left behind.
    """
    extra = {"ContentType": body.content_type} if body.content_type else {}
    size = 0

    async def next_part(start: bytes = b"") -> bytes:
        nonlocal size
        part = bytearray(start)
        size += len(start)
        while size <= body.limit and len(part) < PART_BYTES:
            chunk = await body.read(PART_BYTES - len(part))
            if not chunk:
                break
            part += chunk
            size += len(chunk)
        body.check_size(size)
        return bytes(part)

    part = await next_part(body.first_chunk)
    following = await next_part() if len(part) >= PART_BYTES else b""
    if not following:  # small files (the common case) go up in one PUT
        await s3.put_object(Bucket=bucket, Key=key, Body=part, **extra)
        return size

    upload_id = (await s3.create_multipart_upload(Bucket=bucket, Key=key, **extra))["UploadId"]
    parts: list[dict[str, Any]] = []
    try:
        while part:
            number = len(parts) + 1
            answer = await s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            part, following = following, (await next_part() if following else b"")
        await s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return size


async def delete_job_objects(s3: Any, bucket: str, job_id: str) -> None:
    """Remove a job's audio and results; missing objects are fine (idempotent)."""
    keys = [result_key(job_id), segments_key(job_id), callback_body_key(job_id)]
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=f"{UPLOADS_PREFIX}{job_id}/"):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    await s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})


def download(s3: Any, bucket: str, key: str, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3.download_file(bucket, key, str(destination))
    except ClientError as error:
        if is_missing(error):
            raise UploadMissing(f"the uploaded audio ({key}) is gone; submit the file again") from error
        raise
    return destination
