"""Objects that become jobs, the parts without I/O: reading S3 event notifications, the key layout
of presigned uploads and of the `incoming/` drop folder, drop-folder job ids and parameters, and
which content types may be audio.

The I/O (HeadObject, the job store, the queue) is in `api_lambda/ingest.py`; the ingest Lambda
(`api_lambda/ingest.py`) and the emulator's ingest consumer both start from `object_events`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from shared.errors import InvalidAudio, InvalidParameter, ServiceError
from shared.options import JobParameters
from shared.resources import INCOMING_PREFIX, RESULTS_PREFIX, UPLOADS_PREFIX, upload_key

PRESIGNED_SEGMENT = "presigned"
# Drop-folder job ids are uuid5(this, the object's identity): the same object always maps to the
# same job, so repeated events (multipart completion emits two) create it once.
DROP_NAMESPACE = uuid.UUID("5b0c7f5e-3f57-4f4e-9a83-2f0d1c1f6a41")
COPY_LIMIT_BYTES = 5 * 1024**3  # one CopyObject call copies at most 5 GB

# Content types an upload may carry besides audio/* and video/*: the generic ones clients and
# `aws s3 cp` send when they don't know, and media containers registered under application/.
_GENERIC_MEDIA_TYPES = frozenset(
    {
        "application/octet-stream",
        "binary/octet-stream",
        "application/ogg",
        "application/mp4",
        "application/x-matroska",
        "application/vnd.rn-realmedia",
    }
)


class UnsupportedMediaType(InvalidAudio, code="unsupported_media_type", status_code=415): ...


class UnreadableEvent(ServiceError, code="unreadable_event"):
    """A notification that is not an S3 event this service knows how to read."""


class SourceNotAllowed(ServiceError, code="source_not_allowed", status_code=403): ...


@dataclass(frozen=True)
class ObjectCreated:
    """One ObjectCreated record of an S3 notification; `key` is decoded (S3 sends it URL-encoded)."""

    bucket: str
    key: str
    size: int | None
    etag: str | None
    event_name: str


def object_events(event: Mapping[str, Any]) -> list[ObjectCreated]:
    """The ObjectCreated records of one S3 notification, as S3 sends it to Lambda or to SQS.

    None for the `s3:TestEvent` that configuring notifications sends, nor for other event types.
    """
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise UnreadableEvent(f"not an S3 event notification (keys: {sorted(event)})")
    created = []
    for record in records:
        name = str(record.get("eventName", ""))
        if record.get("eventSource") != "aws:s3" or not name.startswith("ObjectCreated:"):
            continue
        try:
            s3_object = record["s3"]["object"]
            created.append(
                ObjectCreated(
                    bucket=record["s3"]["bucket"]["name"],
                    key=unquote_plus(s3_object["key"]),
                    size=s3_object.get("size"),
                    etag=s3_object.get("eTag"),
                    event_name=name,
                )
            )
        except (KeyError, TypeError) as error:
            raise UnreadableEvent(f"S3 event record without bucket or key: {error!r}") from error
    return created


# --- presigned uploads: uploads/{job_id}/presigned/{filename} -------------------------------------
def presigned_upload_key(job_id: str, filename: str) -> str:
    """Where `POST /uploads` lets the client write. Apart from the API's own uploads
    (`uploads/{job_id}/{filename}`), so an object with no job can be told apart: a presigned one
    came too late and is removed; one of the API's own may simply precede its job row."""
    folder, _, name = upload_key(job_id, filename).rpartition("/")
    return f"{folder}/{PRESIGNED_SEGMENT}/{name}"


@dataclass(frozen=True)
class UploadKey:
    job_id: str
    presigned: bool


def parse_upload_key(key: str) -> UploadKey | None:
    """The job an `uploads/` key belongs to, or None for a key of neither layout."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    parts = key.removeprefix(UPLOADS_PREFIX).split("/")
    if len(parts) == 2 and all(parts):
        return UploadKey(parts[0], presigned=False)
    if len(parts) == 3 and parts[1] == PRESIGNED_SEGMENT and parts[0] and parts[2]:
        return UploadKey(parts[0], presigned=True)
    return None


# --- the drop folder: incoming/... -> results/... -------------------------------------------------
def is_drop_key(key: str) -> bool:
    """An object under incoming/ (not a folder marker as the S3 console makes them)."""
    return key.startswith(INCOMING_PREFIX) and not key.endswith("/") and key != INCOMING_PREFIX


def drop_result_key(key: str) -> str:
    """`incoming/team/call.wav` → `results/team/call.json` (the extension is replaced)."""
    relative = PurePosixPath(key.removeprefix(INCOMING_PREFIX))
    return f"{RESULTS_PREFIX}{relative.with_suffix('')}.json"


def drop_project(key: str, prefixes: tuple[tuple[str, str], ...]) -> str | None:
    """The project a drop-folder key belongs to: by `DROP_FOLDER_PROJECTS` when set (the longest
    prefix that matches), else the folder right under incoming/ (`incoming/<project>/...`)."""
    if not key.startswith(INCOMING_PREFIX):
        return None
    if prefixes:
        return next((project for prefix, project in prefixes if key.startswith(prefix)), None)
    project, separator, rest = key.removeprefix(INCOMING_PREFIX).partition("/")
    return project if separator and project and rest else None


_METADATA_PROBLEMS = {"int_parsing": "is not a whole number", "bool_parsing": "is not true or false"}


def _parameter_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """The object's metadata that names job parameters (`whisper-model` or `whisper_model`)."""
    found = {}
    for name, value in metadata.items():
        field = name.lower().replace("-", "_")
        if field in JobParameters.model_fields and value.strip():
            found[field] = value.strip()
    return found


def drop_parameters(metadata: Mapping[str, str]) -> dict[str, Any]:
    """Job parameters from an object's user metadata (`x-amz-meta-whisper-model: tiny.en`, ...),
    typed as the `POST /jobs` form fields are; other metadata is ignored."""
    found = _parameter_metadata(metadata)
    try:
        return JobParameters.model_validate(found).model_dump(include=set(found))
    except ValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][0])
        header = f"x-amz-meta-{field.replace('_', '-')}"
        reason = _METADATA_PROBLEMS.get(problem["type"], problem["msg"])
        raise InvalidParameter(f"{header}: '{found[field]}' {reason}") from None


def drop_job_id(bucket: str, key: str, etag: str, metadata: Mapping[str, str]) -> str:
    """The job id of a dropped object: the same bytes under the same key with the same parameters
    are the same job (repeated events, a re-upload of an identical file); anything else is new."""
    identity = [bucket, key, etag.strip('"'), sorted(_parameter_metadata(metadata).items())]
    return str(uuid.uuid5(DROP_NAMESPACE, json.dumps(identity)))


# --- content types and S3 URIs ----------------------------------------------------------------------
# RFC 9110 media type: type/subtype and parameters, printable ASCII only (never CR/LF: the value is
# signed into upload headers and sent on to S3).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=({_TOKEN}|\"[\x20\x21\x23-\x5b\x5d-\x7e]*\"))*\s*;?"
)
MAX_MEDIA_TYPE_CHARS = 200


def well_formed_media_type(content_type: str | None) -> str | None:
    """The content type if it is a well-formed media type, else None (for values only passed on)."""
    if content_type and len(content_type) <= MAX_MEDIA_TYPE_CHARS and _MEDIA_TYPE.fullmatch(content_type):
        return content_type
    return None


def media_type_problem(content_type: str | None) -> str | None:
    """Why an object's content type can't be audio, or None when it may be (or is not given)."""
    if not content_type:
        return None
    if well_formed_media_type(content_type) is None:
        return (
            f"content type {content_type[:MAX_MEDIA_TYPE_CHARS]!r} is not a well-formed media type "
            "(type/subtype[; name=value], printable ASCII)"
        )
    essence = content_type.split(";")[0].strip().lower()
    if essence.startswith(("audio/", "video/")) or essence in _GENERIC_MEDIA_TYPES:
        return None
    return (
        f"content type '{content_type}' is not audio or video; send a recording as audio/* or "
        "video/* (or application/octet-stream when unsure)"
    )


def check_media_type(content_type: str | None) -> None:
    if (problem := media_type_problem(content_type)) is not None:
        raise UnsupportedMediaType(problem)


MAX_KEY_BYTES = 1024  # S3's limit; a longer key is an error there, not a missing object
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def valid_key(key: str) -> bool:
    return 0 < len(key.encode()) <= MAX_KEY_BYTES


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key); the key is taken as written, as `aws s3` does."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key or key.endswith("/"):
        raise InvalidParameter(f"s3_uri must name one object as s3://bucket/key (got {uri[:300]!r})")
    if not _BUCKET_NAME.fullmatch(bucket) or len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidParameter(
            f"s3_uri names no valid S3 object (a bucket name of 3-63 lowercase letters, digits, dots "
            f"and hyphens, a key of at most {MAX_KEY_BYTES} bytes; got {uri[:300]!r})"
        )
    return bucket, key
