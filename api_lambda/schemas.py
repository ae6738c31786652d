"""Response bodies, shaped exactly as the seed API documents them (extra fields only add)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.jobs import JobStatus
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
