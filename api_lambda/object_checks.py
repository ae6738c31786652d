"""Whether an object in S3 may become a job's audio, and whether the caller may read it.

Neither the emulator nor a presigned PUT enforces a size or type limit, so every object a job is
made from (a presigned upload, a file dropped under `incoming/`, an `s3_uri`) is checked here:
its size (HeadObject) against the limit, its content type, and its first bytes (the same sniff as
a direct upload; the worker's decoder gives the final word).
"""

from __future__ import annotations

from typing import Any

from api_lambda.aws import AwsClients
from api_lambda.sniff import SNIFF_BYTES, check_upload_head
from shared.errors import InvalidAudio, InvalidParameter, ModelNotAvailable, PayloadTooLarge, ServiceError
from shared.ingestion import (
    COPY_LIMIT_BYTES,
    SourceNotAllowed,
    UnsupportedMediaType,
    check_media_type,
    drop_project,
    parse_s3_uri,
)
from shared.ports import StoredObject
from shared.resources import INCOMING_PREFIX

# What makes an object (or its parameters) unacceptable for good: its job fails with the message.
REFUSALS = (InvalidAudio, PayloadTooLarge, InvalidParameter, ModelNotAvailable)


class SourceNotFound(ServiceError, code="source_not_found", status_code=404):
    """An `s3_uri` with no object, or one the caller's project may not read (the same answer)."""


async def head_object(aws: AwsClients, bucket: str, key: str) -> StoredObject | None:
    """The object's size, ETag, type and metadata; None when there is no such object."""
    return await aws.blobs.head(bucket, key)


async def check_object(
    aws: AwsClients,
    stored: StoredObject,
    *,
    limit: int,
    limit_reason: str = "the limit",
    expected_type: str | None = None,
    name: str | None = None,
) -> None:
    """Raise one of REFUSALS unless the object may be audio within the limits. `name`: what the
    messages call it (the user's file name; by default the key's last part)."""
    name = name or stored.filename
    if stored.size > limit:
        raise PayloadTooLarge(
            f"File too large: '{name}' is {stored.size} bytes, more than {limit_reason} ({limit} bytes)"
        )
    if expected_type and stored.content_type != expected_type:
        raise UnsupportedMediaType(
            f"'{name}' was uploaded as '{stored.content_type or 'no content type'}', but "
            f"the upload was created for '{expected_type}'"
        )
    check_media_type(stored.content_type)
    check_upload_head(await aws.blobs.read_head(stored, SNIFF_BYTES), name)


def may_use_drop_key(aws: AwsClients, key: str, project_id: str | None) -> bool:
    """Whether a caller of `project_id` (None: auth is off) may see the drop-folder file at `key`."""
    return project_id is None or drop_project(key, aws.settings.drop_folder_prefixes) == project_id


def allowed_source(aws: AwsClients, uri: str) -> tuple[str, str]:
    """(bucket, key) of an `s3_uri` this service may read, else SourceNotAllowed naming the rule."""
    bucket, key = parse_s3_uri(uri)
    settings = aws.settings
    if bucket not in settings.source_buckets:
        raise SourceNotAllowed(
            f"s3_uri bucket '{bucket}' is not one this service may read; allowed: "
            f"{', '.join(sorted(settings.source_buckets))} (S3_URI_ALLOWED_BUCKETS)"
        )
    if bucket == settings.bucket_name and not key.startswith(INCOMING_PREFIX):
        raise SourceNotAllowed(
            f"s3_uri may name objects of the service's own bucket under {INCOMING_PREFIX} only, "
            "not its job data"
        )
    return bucket, key


async def source_object(
    aws: AwsClients, uri: str, bucket: str, key: str, project_id: str | None
) -> StoredObject:
    """The checked object at an allowed `s3_uri`. Another project's dropped file reads as a
    missing one: the answer must not tell that it exists."""
    settings = aws.settings
    not_found = SourceNotFound(f"s3_uri: there is no object at {uri} that this key may read")
    if bucket == settings.bucket_name and not may_use_drop_key(aws, key, project_id):
        raise not_found
    try:
        stored = await head_object(aws, bucket, key)
    except Exception as error:  # botocore's ClientError, on AWS
        if _error_code(error) in ("403", "AccessDenied"):
            raise SourceNotAllowed(f"this service is not allowed to read {uri}") from error
        raise
    if stored is None:
        raise not_found
    await check_object(aws, stored, limit=min(settings.max_upload_bytes, COPY_LIMIT_BYTES))
    return stored


def _error_code(error: BaseException) -> str:
    response: Any = getattr(error, "response", None)
    return response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
