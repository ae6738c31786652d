"""Response bodies, shaped exactly as the seed API documents them (extra fields only add)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.jobs import JobStatus
from shared.options import JobParameters
from shared.stages import Stage


class JobCreated(BaseModel):
    job_id: str
    status: JobStatus = JobStatus.QUEUED
    position: int = Field(description="Jobs queued ahead of this one")


class JobState(BaseModel):
    """`position` only while queued, `progress` only while processing, `error` only when failed."""

    job_id: str
    status: JobStatus
    position: int | None = None
    progress: Stage | None = None
    error: str | None = None


class Message(BaseModel):
    message: str


class Health(BaseModel):
    status: str = "healthy"
    queued_jobs: int
    processing_jobs: int


class Models(BaseModel):
    models: list[str] = Field(description="Whisper models the fleet can run now")
    default_whisper_model: str
    stemming_available: bool = Field(description="Whether vocal separation (htdemucs) is installed")
    default_stemming: bool = Field(description="What `stemming` is when a request leaves it out")
    source: str = Field(description="`workers` (live workers' registrations) or `api_host` (none live)")
    workers: int
    known_models: list[str] = Field(description="Every name `whisper_model` accepts")


class ErrorBody(BaseModel):
    detail: str


def _open_to_the_file(schema: dict[str, Any]) -> None:
    """The form's schema also holds `file`: `additionalProperties: false` here would contradict it."""
    schema.pop("additionalProperties", None)


class JobForm(JobParameters):
    """The `POST /jobs` form fields beside `file`. Any other field is refused (422 naming it)."""

    model_config = ConfigDict(json_schema_extra=_open_to_the_file)

    # FastAPI hands a form model the whole form, the file included.
    @model_validator(mode="before")
    @classmethod
    def _without_the_file(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if k != "file"} if isinstance(data, Mapping) else data


# --- presigned uploads and jobs from objects in S3 (routes/uploads.py) -----------------------------
# The JSON bodies take the `POST /jobs` form fields (`shared.options.JobParameters`) as well.
class UploadRequest(JobParameters):
    filename: str = Field("audio", description="Name of the file (its extension helps the decoder)")
    content_type: str | None = Field(
        None, description="If given, the upload must carry exactly this Content-Type (audio/*, video/*)"
    )
    size_bytes: int | None = Field(
        None, ge=1, description="The file's size: the PUT is signed for it, larger uploads are refused"
    )


class PresignedPut(BaseModel):
    method: str = "PUT"
    url: str
    headers: dict[str, str] = Field(description="Send these headers with the PUT, exactly")


class PresignedPost(BaseModel):
    url: str
    fields: dict[str, str] = Field(description="Form fields to send before the `file` field")


class UploadCreated(BaseModel):
    job_id: str
    upload_id: str = Field(description='The job id: `POST /jobs {"upload_id"}` starts it explicitly')
    status: JobStatus = JobStatus.AWAITING_UPLOAD
    key: str = Field(description="Where the object goes in the bucket")
    max_bytes: int
    expires_at: str = Field(description="When the URLs lapse (ISO-8601 UTC)")
    put: PresignedPut
    post: PresignedPost


class JobFromS3(JobParameters):
    """`POST /jobs` as JSON: start a presigned upload's job, or transcribe an object already in S3."""

    upload_id: str | None = Field(None, description="A job made by POST /uploads, once its file is uploaded")
    s3_uri: str | None = Field(None, description="s3://bucket/key in an allowed bucket")

    @model_validator(mode="after")
    def _one_source(self) -> JobFromS3:
        if (self.upload_id is None) == (self.s3_uri is None):
            raise ValueError("give exactly one of upload_id and s3_uri")
        return self


class DropJob(BaseModel):
    """The job of a file dropped under incoming/ (`GET /jobs?source_key=`)."""

    job_id: str
    status: JobStatus
    source_key: str
    result_key: str | None = Field(None, description="Where the result lands besides results/{job_id}.json")
    error: str | None = None
